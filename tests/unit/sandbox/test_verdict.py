"""Results from the judge's per-test outcomes (see the rules in the docstring of verdict.py)."""

from __future__ import annotations

import pytest

from coderl.sandbox.schema import parse_request
from coderl.sandbox.verdict import judge


def req(n=3):
    return parse_request({"id": "a", "program": "", "tests": {"type": "assert",
                                                              "asserts": [f"assert t{i}" for i in range(n)]}})


def per_test(*outcomes):
    details = {"passed": "ok", "not_run": ""}
    return [[o, details.get(o, d), line] for o, d, line in
            ((o if isinstance(o, tuple) else (o, o, None)) for o in outcomes)]


def check(res, outcome, detail, per_test, line=None):
    assert (res.outcome, res.detail, res.tests, res.error_line) == (outcome, detail, per_test, line), res
    assert res.pass_fraction == pytest.approx(per_test.count("passed") / len(per_test))


def test_all_passed():
    res = judge(req(), {"tests": per_test("passed", "passed", "passed"), "seconds": 0.123456})
    check(res, "passed", "ok", ["passed"] * 3)
    assert res.seconds == 0.1235 and res.id == "a"


def test_compile_error():
    check(judge(req(), {"compile_error": ["SyntaxError", 4]}), "compile_error", "SyntaxError", ["not_run"] * 3, 4)


@pytest.mark.parametrize("detail, line", [("ZeroDivisionError", 2), ("exit", None), ("timeout", None),
                                          ("missing_function:f", None), ("SyntaxError:<test 1>", None)])
def test_failures_before_the_tests_are_runtime_errors(detail, line):
    check(judge(req(), {"load_error": [detail, line]}), "runtime_error", detail, ["not_run"] * 3, line)


def test_a_failed_test_is_failed_test():
    res = judge(req(), {"tests": per_test("passed", ("failed_test", "AssertionError", None), "passed")})
    check(res, "failed_test", "AssertionError", ["passed", "failed_test", "passed"])


def test_runtime_error_wins_over_failed_test_with_the_first_errors_detail():
    res = judge(req(4), {"tests": per_test(("failed_test", "untrusted_object", None), ("runtime_error", "KeyError", 7),
                                        "passed", ("runtime_error", "IndexError", 9))})
    check(res, "runtime_error", "KeyError", ["failed_test", "runtime_error", "passed", "runtime_error"], line=7)


def test_not_run_without_a_cause_is_never_passed():
    res = judge(req(), {"tests": per_test("passed", "not_run", "not_run")})
    check(res, "runtime_error", "not_run", ["passed", "not_run", "not_run"])


def test_server_errors_are_sandbox_errors():
    check(judge(req(2), {"server_error": "OSError: boom"}), "runtime_error", "sandbox_error", ["not_run"] * 2)


@pytest.mark.parametrize("per_test", [per_test("passed"), per_test("passed") * 4, [["won", "ok", None]] * 3])
def test_a_response_that_does_not_fit_the_request_is_refused(per_test):
    with pytest.raises(ValueError):
        judge(req(3), {"tests": per_test})
