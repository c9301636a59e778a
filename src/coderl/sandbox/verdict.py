"""Turning the judge's per-test outcomes into a Result. Pure functions, no processes.

Outcome rules:

* ``compile_error``: the source does not compile (nothing ran).
* ``runtime_error``: the program raised while loading or in a test, exited before its tests ran
  (``detail='exit'``), was killed for time (``timeout``), memory (``memory``) or output (``output_limit``),
  died on a signal (``signal:SIGSEGV``), or broke the protocol with the judge (``tampered``).
* ``failed_test``: everything ran, at least one test's answer was wrong and none raised.
* ``passed``: every test passed.

When tests disagree in class, runtime_error wins over failed_test; ``detail`` is that of the first test
with the winning class. After a fatal event (timeout, signal, ...) the remaining tests are ``not_run``.
"""

from __future__ import annotations

from typing import Any

from coderl.sandbox.schema import Request, Result

TEST_OUTCOMES = ("passed", "failed_test", "runtime_error", "not_run")


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


def _line(x: Any) -> int | None:
    return x if type(x) is int else None


def judge(req: Request, response: dict[str, Any]) -> Result:
    """The Result for ``req`` from the server's response: ``{"compile_error": [detail, line]}``,
    ``{"load_error": [detail, line]}`` (the program never got to its tests) or ``{"tests": [[outcome, detail,
    line], ...]}``, each with ``seconds``; ``{"server_error": ...}`` when the server itself failed."""
    n = req.n_tests
    seconds = float(response.get("seconds") or 0.0)
    if "server_error" in response:
        return Result(req.id, "runtime_error", "sandbox_error", ["not_run"] * n, 0.0, None, round(seconds, 4))
    for key, outcome in (("compile_error", "compile_error"), ("load_error", "runtime_error")):
        if key in response:
            detail, line = response[key]
            return Result(req.id, outcome, str(detail), ["not_run"] * n, 0.0, _line(line), round(seconds, 4))
    tests = response["tests"]
    if len(tests) != n or any(t[0] not in TEST_OUTCOMES for t in tests):
        raise ValueError(f"the server judged {len(tests)} tests of {n}")
    return _finish(req, [t[0] for t in tests], [str(t[1]) for t in tests], [_line(t[2]) for t in tests], seconds)
