"""``coderl exec`` end to end, as a subprocess."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="the sandbox needs Linux")

ADD = "def add(a, b):\n    return a + b\n"
REQUESTS = [
    {"id": "assert-ok", "program": ADD, "tests": {"type": "assert", "asserts": ["assert add(1, 2) == 3"]}},
    {"id": "stdio-wrong", "program": "print(int(input()) * 3)\n",
     "tests": {"type": "stdio", "inputs": ["2\n", "5\n"], "outputs": ["4\n", "10\n"]}},
    {"id": "call-ok", "program": ADD,
     "tests": {"type": "call", "fn_name": "add", "inputs": [[1, 2], [3, 4]], "outputs": [3, 7]}},
    {"id": "syntax", "program": "def add(a, b)\n    return a + b\n",
     "tests": {"type": "assert", "asserts": ["assert add(1, 2) == 3"]}},
    {"id": "crash", "program": ADD + "1 / 0\n", "tests": {"type": "assert", "asserts": ["assert add(1, 2) == 3"]},
     "timeout": 2},
    {"id": "stdio-apps", "program": "print('  2 1  ')\n",
     "tests": {"type": "stdio", "inputs": [""], "outputs": ["1 2\n"]}, "checker": "apps"},
]
EXPECTED = {
    "assert-ok": ("passed", "ok", ["passed"]),
    "stdio-wrong": ("failed_test", "wrong_answer", ["failed_test", "failed_test"]),
    "call-ok": ("passed", "ok", ["passed", "passed"]),
    "syntax": ("compile_error", "SyntaxError", ["not_run"]),
    "crash": ("runtime_error", "ZeroDivisionError", ["not_run"]),
    "stdio-apps": ("passed", "ok", ["passed"]),
}


def coderl_command() -> list[str]:
    script = Path(sys.executable).parent / "coderl"
    if script.exists():
        return [str(script)]
    found = shutil.which("coderl")
    if found:
        return [found]
    return [sys.executable, "-m", "coderl.cli.main"]


def cli(*args: str, stdin: str | None = None, timeout: float = 180) -> subprocess.CompletedProcess:
    return subprocess.run(coderl_command() + ["exec", *args], input=stdin, capture_output=True, text=True,
                          timeout=timeout)


def write_jsonl(path: Path, lines: list) -> Path:
    path.write_text("".join((ln if isinstance(ln, str) else json.dumps(ln)) + "\n" for ln in lines))
    return path


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(ln) for ln in path.read_text().splitlines() if ln.strip()]


def check_results(results: list[dict]) -> None:
    assert [r["id"] for r in results] == [r["id"] for r in REQUESTS]
    for r in results:
        assert (r["outcome"], r["detail"], r["tests"]) == EXPECTED[r["id"]], r
        assert set(r) == {"id", "outcome", "detail", "tests", "pass_fraction", "error_line", "seconds"}
    assert results[3]["error_line"] == 1  # the syntax error is on the first line


COMMON = ("--workers", "2", "--timeout", "3", "--no-progress")


def test_valid_file_gives_one_result_per_request_in_order(tmp_path):
    reqs = write_jsonl(tmp_path / "reqs.jsonl", REQUESTS)
    out = tmp_path / "results.jsonl"
    p = cli(str(reqs), "-o", str(out), *COMMON)
    assert p.returncode == 0, p.stderr
    check_results(read_jsonl(out))
    assert "6 programs" in p.stderr and "from cache" not in p.stderr
    assert p.stdout == ""


def test_results_on_stdout_and_requests_from_stdin(tmp_path):
    text = "".join(json.dumps(r) + "\n" for r in REQUESTS)
    p = cli("-", *COMMON, stdin=text)
    assert p.returncode == 0, p.stderr
    check_results([json.loads(ln) for ln in p.stdout.splitlines()])


GOOD_LINE = {"id": "g1", "program": ADD, "tests": {"type": "assert", "asserts": ["assert add(1, 2) == 3"]}}


@pytest.mark.parametrize("lines, line, words", [
    ([GOOD_LINE, {**GOOD_LINE, "id": "g2"}, '{"id": "g3", "program": "x"'], 3, "not valid JSON"),
    ([GOOD_LINE, {"id": "g2", "program": ADD, "tests": {"type": "assert"}}, {**GOOD_LINE, "id": "g3"}], 2,
     "field 'tests.asserts'"),
    ([GOOD_LINE, {**GOOD_LINE, "id": "g2", "timeout": "3s"}], 2, "field 'timeout'"),
    ([GOOD_LINE, "", {**GOOD_LINE, "id": "g1"}], 3, "field 'id'"),
], ids=["bad-json-line-3", "missing-asserts-line-2", "timeout-type", "duplicate-id"])
def test_malformed_file_is_rejected_before_anything_runs(tmp_path, lines, line, words):
    reqs = write_jsonl(tmp_path / "bad.jsonl", lines)
    out = tmp_path / "results.jsonl"
    p = cli(str(reqs), "-o", str(out), *COMMON)
    assert p.returncode == 2, (p.stdout, p.stderr)
    assert f"{reqs}:{line}:" in p.stderr
    assert words in p.stderr
    assert "Traceback" not in p.stderr
    assert not out.exists() or out.read_text() == "", "results were written for a rejected file"
    p = cli(str(reqs), *COMMON)  # and with results on stdout: nothing there either
    assert p.returncode == 2 and p.stdout == ""


@pytest.mark.parametrize("args, words", [
    (("/nonexistent/reqs.jsonl",), "no such file"),
    ((), "REQUESTS"),
    (("--checker", "fuzzy", "x.jsonl"), "--checker"),
])
def test_usage_errors_exit_2(args, words):
    p = cli(*args)
    assert p.returncode == 2
    assert words in p.stderr


def test_explain_lists_protections():
    p = cli("--explain", "--workers", "1")
    assert p.returncode == 0, p.stderr
    assert p.stdout.startswith("Active protections:")
    for name in ("rlimits", "session + deadlines", "scrubbed environment", "result channel",
                 "parent-death signal"):
        assert f"+ {name}:" in p.stdout
    listed = [ln for ln in p.stdout.splitlines() if ln.startswith(("  + ", "  - "))]
    for name in ("seccomp", "dedicated uid", "network namespace", "private filesystem"):
        assert any(ln[4:].startswith(name + ":") for ln in listed), f"{name} neither active nor missing"
    if "Missing protections:" in p.stdout:
        assert p.stdout.index("Missing protections:") > p.stdout.index("Active protections:")


def test_cache_second_run_reports_hits_and_identical_verdicts(tmp_path):
    reqs = write_jsonl(tmp_path / "reqs.jsonl", REQUESTS)
    cache = tmp_path / "cache.jsonl"
    out1, out2 = tmp_path / "r1.jsonl", tmp_path / "r2.jsonl"
    p1 = cli(str(reqs), "-o", str(out1), "--cache", str(cache), *COMMON)
    assert p1.returncode == 0, p1.stderr
    assert "from cache" not in p1.stderr
    assert len(read_jsonl(cache)) == len(REQUESTS)
    p2 = cli(str(reqs), "-o", str(out2), "--cache", str(cache), *COMMON)
    assert p2.returncode == 0, p2.stderr
    assert f"{len(REQUESTS)} from cache" in p2.stderr
    r1, r2 = read_jsonl(out1), read_jsonl(out2)
    check_results(r2)
    assert r1 == r2
    assert len(read_jsonl(cache)) == len(REQUESTS)  # nothing new was cached


START_UP_PROBE = r'''
import json, os, sys
from coderl.cli.main import app
try:
    app(sys.argv[1:])
except SystemExit as e:
    assert e.code in (0, None), e.code
print(json.dumps(sorted({m.split(".")[0] for m in sys.modules} & set(json.loads(os.environ["HEAVY"])))))
'''


def test_exec_start_up_imports_no_heavy_library(tmp_path):
    # What `coderl exec` imports before it can run anything is paid on every call; numpy belongs in the sandbox
    # servers only, rich only when a progress bar is shown, and torch/transformers/pydantic nowhere on this path.
    heavy = ["numpy", "rich", "pydantic", "torch", "transformers", "ray"]
    req = write_jsonl(tmp_path / "r.jsonl", REQUESTS[:1])
    out = subprocess.run([sys.executable, "-c", START_UP_PROBE, "exec", str(req), "-o",
                          str(tmp_path / "out.jsonl"), "--workers", "1", "--no-progress"],
                         capture_output=True, text=True, timeout=120, env={**os.environ, "HEAVY": json.dumps(heavy)})
    assert out.returncode == 0, out.stderr[-2000:]
    assert read_jsonl(tmp_path / "out.jsonl")[0]["outcome"] == "passed"
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []
