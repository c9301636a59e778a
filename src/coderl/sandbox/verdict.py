"""Turning the server's observations of a run into a Result. Pure functions, no processes.

Outcome rules:

* ``compile_error``: the source does not compile (nothing ran).
* ``runtime_error``: the program raised while loading or in a test, exited before its tests ran
  (``detail='exit'``), was killed for time (``timeout``), memory (``memory``) or output (``output_limit``),
  died on a signal (``signal:SIGSEGV``), or tampered with the result channel (``tampered``).
* ``failed_test``: everything ran, at least one test's answer was wrong and none raised.
* ``passed``: every test passed.

When tests disagree in class, runtime_error wins over failed_test; ``detail`` is that of the first test
with the winning class. In an assert or call run, a fatal event (timeout, signal, ...) ends the run and the
remaining tests are ``not_run``; stdio tests continue in a new child after anything but a timeout.
"""

from __future__ import annotations

from typing import Any

from coderl.sandbox.compare import call_match, parse_value, stdio_match
from coderl.sandbox.schema import Request, Result


def _end_detail(obs: dict[str, Any]) -> str:
    if obs.get("killed_for"):
        return obs["killed_for"]
    status = obs.get("exit", "")
    if status.startswith("signal:"):
        if status == "signal:SIGXCPU":
            return "timeout"
        return status
    return "exit"


def _finish(req: Request, tests: list[str], details: list[str], lines: list[int | None],
            seconds: float) -> Result:
    n = len(tests)
    passed = sum(t == "passed" for t in tests)
    outcome, detail, line = "passed", "ok", None
    for cls in ("runtime_error", "failed_test"):
        if cls in tests:
            i = tests.index(cls)
            outcome, detail, line = cls, details[i], lines[i]
            break
    else:
        if passed < n:  # not_run without a recorded cause should not happen; never call it passed
            outcome, detail = "runtime_error", "not_run"
    return Result(req.id, outcome, detail, tests, passed / n if n else 0.0, line, round(seconds, 4))


_COMMON_KINDS = {"compile_error", "load_error", "load_exit", "bad_tests", "compiled", "loaded", "start", "done",
                 "error"}
_ASSERT_KINDS = _COMMON_KINDS | {"ok", "fail"}
_CALL_KINDS = _COMMON_KINDS | {"value", "fail"}


def judge_in_process(req: Request, obs: dict[str, Any], checker: str) -> Result:
    """Judge an assert or call run: one child executed the program and then every test."""
    n = req.n_tests
    tests, details, lines = ["not_run"] * n, [""] * n, [None] * n
    loaded = False
    current: int | None = None
    done = False
    spec = req.tests
    allowed = _CALL_KINDS if spec["type"] == "call" else _ASSERT_KINDS
    for kind, idx, line, detail, payload in obs["records"]:
        if kind not in allowed:  # the harness never sends it for this test type: a forgery
            return Result(req.id, "runtime_error", "tampered", ["not_run"] * n, 0.0, None, round(obs["seconds"], 4))
        if kind == "compile_error":
            return Result(req.id, "compile_error", detail, ["not_run"] * n, 0.0, line,
                          round(obs["seconds"], 4))
        if kind in ("load_error", "load_exit", "bad_tests"):
            return Result(req.id, "runtime_error", detail, ["not_run"] * n, 0.0, line,
                          round(obs["seconds"], 4))
        if kind == "loaded":
            loaded = True
        elif kind == "start" and 0 <= idx < n:
            current = idx
        elif kind in ("ok", "fail", "error", "value") and 0 <= idx < n:
            current = None
            if kind == "ok":
                tests[idx], details[idx] = "passed", "ok"
            elif kind == "fail":
                tests[idx], details[idx] = "failed_test", detail
            elif kind == "error":
                tests[idx], details[idx], lines[idx] = "runtime_error", detail, line
            else:
                try:
                    value = parse_value(payload)
                    ok = call_match(value, spec["outputs"][idx], bool(spec.get("wrapped")), checker)
                except ValueError:
                    ok = False
                tests[idx], details[idx] = ("passed", "ok") if ok else ("failed_test", "wrong_answer")
        elif kind == "done":
            done = True
    if not done:
        cause = _end_detail(obs)
        if not obs["records"] and obs.get("exit") == "exit:70":  # confinement failed before the program ran
            return Result(req.id, "runtime_error", "sandbox_error", ["not_run"] * n, 0.0, None,
                          round(obs["seconds"], 4))
        if not loaded:
            return Result(req.id, "runtime_error", cause, ["not_run"] * n, 0.0, None,
                          round(obs["seconds"], 4))
        i = current if current is not None else next((k for k, t in enumerate(tests) if t == "not_run"), None)
        if i is not None:
            tests[i], details[i] = "runtime_error", cause
    return _finish(req, tests, details, lines, obs["seconds"])


def judge_stdio(req: Request, stdio: dict[str, Any], checker: str) -> Result:
    """Judge stdio tests from the server's per-test digest: each test is judged on what it printed."""
    n = req.n_tests
    tests, details, lines = ["not_run"] * n, [""] * n, [None] * n
    if "compile_error" in stdio:
        detail, line = stdio["compile_error"]
        return Result(req.id, "compile_error", detail, tests, 0.0, line, 0.0)
    seconds = 0.0
    for i, t in enumerate(stdio["tests"][:n]):
        seconds += t.get("seconds", 0.0)
        status = t["status"]
        if status in ("ok", "exit"):  # exit(), sys.exit() and os._exit() after printing: judged on the output
            ok = stdio_match(t.get("output", ""), req.tests["outputs"][i], checker)
            tests[i], details[i] = ("passed", "ok") if ok else ("failed_test", "wrong_answer")
        elif status == "error":
            tests[i], details[i], lines[i] = "runtime_error", t["detail"], t["line"]
        else:
            tests[i], details[i] = "runtime_error", _cause(status)
    return _finish(req, tests, details, lines, seconds)


def _cause(status: str) -> str:
    return "timeout" if status == "signal:SIGXCPU" else status


def judge(req: Request, response: dict[str, Any], checker: str) -> Result:
    if "server_error" in response:
        return Result(req.id, "runtime_error", "sandbox_error", ["not_run"] * req.n_tests, 0.0, None, 0.0)
    if req.tests["type"] == "stdio":
        return judge_stdio(req, response["stdio"], checker)
    return judge_in_process(req, response["runs"][0], checker)
