"""``coderl data export`` / ``coderl data show`` end to end."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

from coderl.tasks.problem import read_problems

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


def coderl(*args: str) -> subprocess.CompletedProcess:
    script = Path(sys.executable).parent / "coderl"
    cmd = [str(script)] if script.exists() else [shutil.which("coderl") or "coderl"]
    return subprocess.run(cmd + list(args), capture_output=True, text=True, timeout=120)


def test_export_each_dataset(tmp_path):
    out = tmp_path / "he.jsonl"
    r = coderl("data", "export", "--dataset", "humaneval", "--output", str(out))
    assert r.returncode == 0, r.stderr
    assert len(read_problems(out)) == 164 and "wrote 164 problems" in r.stderr
    r = coderl("data", "export", "--dataset", "mbpp", "--path", str(FIXTURES / "mbpp_mini.jsonl"), "--split", "all",
               "-o", str(tmp_path / "mbpp.jsonl"))
    assert r.returncode == 0, r.stderr
    assert [p.task_id for p in read_problems(tmp_path / "mbpp.jsonl")][:2] == ["Mbpp/2", "Mbpp/3"]
    r = coderl("data", "export", "--dataset", "apps", "--path", str(FIXTURES / "apps_mini"), "--split", "test",
               "--limit", "2", "-o", str(tmp_path / "apps.jsonl"))
    assert r.returncode == 0, r.stderr
    problems = read_problems(tmp_path / "apps.jsonl")
    assert [p.test_type for p in problems] == ["stdio", "call"] and problems[0].difficulty == "introductory"
    assert "call 1, stdio 1" in r.stderr and "2 with example tests" in r.stderr


def test_show(tmp_path):
    r = coderl("data", "show", "HumanEval/2", "--dataset", "humaneval")
    assert r.returncode == 0, r.stderr
    assert "truncate_number" in r.stdout and "example tests" in r.stdout and "completion" in r.stdout
    r = coderl("data", "show", "0001", "--dataset", "apps", "--path", str(FIXTURES / "apps_mini"), "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["tests"]["fn_name"] == "findKthLargest"
    r = coderl("data", "show", "--dataset", "apps", "--path", str(FIXTURES / "apps_mini"))
    assert r.returncode == 0 and "QUESTION:" in r.stdout and "Use Standard Input format" in r.stdout
    r = coderl("data", "show", "nope", "--dataset", "humaneval")
    assert r.returncode == 2 and "no problem 'nope'" in r.stderr


def test_malformed_dataset_exits_2(tmp_path):
    bad = tmp_path / "0000"
    shutil.copytree(FIXTURES / "apps_mini" / "test" / "0000", bad)
    (bad / "input_output.json").write_text('{"inputs": ["1\\n"]}')
    r = coderl("data", "export", "--dataset", "apps", "--path", str(bad), "-o", str(tmp_path / "x.jsonl"))
    assert r.returncode == 2
    assert f"{bad / 'input_output.json'}: field 'outputs': missing or not a list" in r.stderr
