"""Verdicts from hand-built observations.

In-process runs (assert, call) are judged from the server's records ``(kind, index, line, detail, payload)``
(see ``Server._watch``); stdio runs from the server's per-test digest (see ``Server._run_stdio``).
"""

from __future__ import annotations

import pytest

from coderl.sandbox.schema import parse_request
from coderl.sandbox.verdict import judge, judge_in_process, judge_stdio


def assert_req(n=3):
    return parse_request({"id": "a", "program": "", "tests": {"type": "assert",
                                                              "asserts": [f"assert t{i}" for i in range(n)]}})


def call_req(outputs, wrapped=None):
    tests = {"type": "call", "fn_name": "f", "inputs": [[i] for i in range(len(outputs))], "outputs": outputs}
    if wrapped is not None:
        tests["wrapped"] = wrapped
    return parse_request({"id": "c", "program": "", "tests": tests})


def stdio_req(outputs):
    return parse_request({"id": "s", "program": "", "tests": {"type": "stdio", "inputs": [""] * len(outputs),
                                                              "outputs": outputs}})


def rec(kind, idx=-1, line=None, detail="-", payload=""):
    return (kind, idx, line, detail, payload)


def obs(*records, killed_for=None, exit="exit:0", seconds=0.12345):
    return {"records": list(records), "killed_for": killed_for, "exit": exit, "seconds": seconds,
            "stderr_tail": ""}


LOADED = [rec("compiled"), rec("loaded")]


def ran(*per_test):
    """Records of a run that loaded and then, per test, 'start' and the given (kind, detail[, line])."""
    out = list(LOADED)
    for i, t in enumerate(per_test):
        out.append(rec("start", i))
        if t is not None:
            kind, detail, *line = t
            out.append(rec(kind, i, line[0] if line else None, detail))
    return out


def check(res, outcome, detail, tests, line=None):
    assert (res.outcome, res.detail, res.tests, res.error_line) == (outcome, detail, tests, line), res
    assert res.pass_fraction == pytest.approx(tests.count("passed") / len(tests))


# -- assert runs --------------------------------------------------------------------------------------------------

def test_all_ok_is_passed():
    res = judge_in_process(assert_req(), obs(*ran(("ok", "-"), ("ok", "-"), ("ok", "-")), rec("done")), "default")
    check(res, "passed", "ok", ["passed"] * 3)
    assert res.seconds == 0.1235 and res.id == "a"


def test_compile_error():
    res = judge_in_process(assert_req(), obs(rec("compile_error", line=4, detail="SyntaxError"), rec("done")),
                           "default")
    check(res, "compile_error", "SyntaxError", ["not_run"] * 3, line=4)


@pytest.mark.parametrize("kind, detail, line", [("load_error", "ZeroDivisionError", 2), ("load_exit", "exit", None),
                                                ("bad_tests", "SyntaxError:<test 1>", None),
                                                ("load_error", "setup:NameError", None)])
def test_failures_before_the_tests_are_runtime_errors(kind, detail, line):
    res = judge_in_process(assert_req(), obs(rec("compiled"), rec(kind, line=line, detail=detail), rec("done")),
                           "default")
    check(res, "runtime_error", detail, ["not_run"] * 3, line=line)


def test_a_failed_assert_is_failed_test():
    res = judge_in_process(assert_req(), obs(*ran(("ok", "-"), ("fail", "AssertionError"), ("ok", "-")),
                                             rec("done")), "default")
    check(res, "failed_test", "AssertionError", ["passed", "failed_test", "passed"])


def test_runtime_error_wins_over_failed_test_with_the_first_errors_detail():
    res = judge_in_process(assert_req(4), obs(*ran(("fail", "untrusted_object"), ("error", "KeyError", 7),
                                                   ("ok", "-"), ("error", "IndexError", 9)), rec("done")), "default")
    check(res, "runtime_error", "KeyError", ["failed_test", "runtime_error", "passed", "runtime_error"], line=7)


def test_first_failed_test_gives_the_detail():
    res = judge_in_process(assert_req(), obs(*ran(("ok", "-"), ("fail", "untrusted_object"),
                                                  ("fail", "AssertionError")), rec("done")), "default")
    check(res, "failed_test", "untrusted_object", ["passed", "failed_test", "failed_test"])


@pytest.mark.parametrize("end, detail", [
    ({"killed_for": "timeout", "exit": "signal:SIGKILL"}, "timeout"),
    ({"killed_for": "output_limit", "exit": "signal:SIGKILL"}, "output_limit"),
    ({"killed_for": "tampered", "exit": "exit:0"}, "tampered"),
    ({"exit": "signal:SIGSEGV"}, "signal:SIGSEGV"),
    ({"exit": "signal:SIGXCPU"}, "timeout"),
    ({"exit": "exit:0"}, "exit"),
    ({"exit": "exit:70"}, "exit"),
])
def test_death_inside_a_test_charges_that_test_and_the_rest_do_not_run(end, detail):
    res = judge_in_process(assert_req(), obs(*ran(("ok", "-"), None), **end), "default")
    check(res, "runtime_error", detail, ["passed", "runtime_error", "not_run"])


def test_death_between_tests_charges_the_next_one():
    res = judge_in_process(assert_req(), obs(*ran(("ok", "-")), exit="signal:SIGKILL"), "default")
    check(res, "runtime_error", "signal:SIGKILL", ["passed", "runtime_error", "not_run"])


@pytest.mark.parametrize("records", [[], [rec("compiled")]], ids=["nothing", "compiled"])
def test_death_before_loading_is_a_runtime_error(records):
    res = judge_in_process(assert_req(), obs(*records, killed_for="timeout"), "default")
    check(res, "runtime_error", "timeout", ["not_run"] * 3)
    res = judge_in_process(assert_req(), obs(*records, exit="exit:0"), "default")
    check(res, "runtime_error", "exit", ["not_run"] * 3)


def test_done_with_tests_missing_is_never_passed():
    res = judge_in_process(assert_req(), obs(*ran(("ok", "-")), rec("done")), "default")
    assert res.outcome == "runtime_error" and res.detail == "not_run"
    assert res.tests == ["passed", "not_run", "not_run"]


def test_records_for_tests_out_of_range_are_ignored():
    res = judge_in_process(assert_req(1), obs(*LOADED, rec("start", 5), rec("ok", 5), rec("ok", -1), rec("done")),
                           "default")
    assert res.outcome != "passed" and res.tests == ["not_run"]


def test_a_value_record_in_an_assert_run_is_not_a_crash():
    res = judge_in_process(assert_req(1), obs(*LOADED, rec("start", 0), rec("value", 0, payload="1"), rec("done")),
                           "default")
    assert res.outcome != "passed"


# -- call runs ----------------------------------------------------------------------------------------------------

def values(*payloads):
    out = list(LOADED)
    for i, p in enumerate(payloads):
        out += [rec("start", i), rec("value", i, payload=p)]
    return out + [rec("done")]


def test_call_values_are_compared_by_the_judge():
    res = judge_in_process(call_req([[1, 2], 5, "x"]), obs(*values("(1, 2)", "5", "'x'")), "default")
    check(res, "passed", "ok", ["passed"] * 3)
    res = judge_in_process(call_req([[1, 2], 5, "x"]), obs(*values("[1, 2]", "6", "'x'")), "default")
    check(res, "failed_test", "wrong_answer", ["passed", "failed_test", "passed"])


@pytest.mark.parametrize("payload", ["__import__('os')", "[1, 2", "f()", ""])
def test_unparseable_values_are_wrong_answers(payload):
    res = judge_in_process(call_req([1]), obs(*values(payload)), "default")
    check(res, "failed_test", "wrong_answer", ["failed_test"])


def test_unserializable_return_is_a_failed_test():
    res = judge_in_process(call_req([1]), obs(*LOADED, rec("start", 0), rec("fail", 0, detail="unserializable:Fake"),
                                              rec("done")), "default")
    check(res, "failed_test", "unserializable:Fake", ["failed_test"])


def test_call_wrapped_outputs():
    assert judge_in_process(call_req([[5]], wrapped=True), obs(*values("5")), "default").passed
    assert not judge_in_process(call_req([[5]], wrapped=False), obs(*values("5")), "default").passed
    assert not judge_in_process(call_req([[5]]), obs(*values("5")), "default").passed


def test_nan_never_equals():
    res = judge_in_process(call_req([1.0]), obs(*values("__coderl_nan__")), "default")
    check(res, "failed_test", "wrong_answer", ["failed_test"])


def test_ok_records_do_not_pass_call_tests():
    res = judge_in_process(call_req([1, 2]), obs(*ran(("ok", "-"), ("ok", "-")), rec("done")), "default")
    assert res.outcome != "passed"


# -- stdio runs ---------------------------------------------------------------------------------------------------

def digest(*tests):
    return {"tests": [dict(t) for t in tests]}


def t(status, output="", detail="-", line=None, seconds=0.01):
    return {"status": status, "detail": detail, "line": line, "output": output, "seconds": seconds}


def test_stdio_all_match():
    res = judge_stdio(stdio_req(["1\n", "2\n"]), digest(t("ok", "1\n"), t("ok", "2  \n\n")), "default")
    check(res, "passed", "ok", ["passed", "passed"])
    assert res.seconds == pytest.approx(0.02)


def test_stdio_compile_error():
    res = judge_stdio(stdio_req(["1", "2"]), {"compile_error": ["SyntaxError", 3]}, "default")
    check(res, "compile_error", "SyntaxError", ["not_run", "not_run"], line=3)


def test_stdio_exit_is_judged_on_the_output():
    res = judge_stdio(stdio_req(["1", "2"]), digest(t("exit", "1\n", "exit"), t("exit", "", "exit")), "default")
    check(res, "failed_test", "wrong_answer", ["passed", "failed_test"])


def test_stdio_error_is_a_runtime_error_even_if_the_output_matches():
    res = judge_stdio(stdio_req(["1", "2"]), digest(t("ok", "1"), t("error", "2", "ValueError", 3)), "default")
    check(res, "runtime_error", "ValueError", ["passed", "runtime_error"], line=3)


@pytest.mark.parametrize("status, detail", [("timeout", "timeout"), ("signal:SIGXCPU", "timeout"),
                                            ("signal:SIGSEGV", "signal:SIGSEGV"), ("output_limit", "output_limit"),
                                            ("tampered", "tampered")])
def test_stdio_killed(status, detail):
    res = judge_stdio(stdio_req(["1", "2", "3"]), digest(t("ok", "1"), t(status, "2", status)), "default")
    check(res, "runtime_error", detail, ["passed", "runtime_error", "not_run"])


def test_stdio_missing_digests_are_never_passed():
    res = judge_stdio(stdio_req(["1", "2"]), digest(t("ok", "1")), "default")
    assert res.outcome == "runtime_error" and res.detail == "not_run"


def test_stdio_extra_digests_are_ignored():
    res = judge_stdio(stdio_req(["1"]), digest(t("ok", "1"), t("error", "", "ValueError")), "default")
    check(res, "passed", "ok", ["passed"])


def test_stdio_checker_is_applied():
    req = stdio_req(["1.0000001\n2"])
    d = digest(t("ok", "1\n2\n"))
    assert not judge_stdio(req, d, "default").passed
    assert judge_stdio(req, d, "apps").passed


# -- judge() ------------------------------------------------------------------------------------------------------

def test_judge_dispatches_and_reports_server_errors():
    assert judge(assert_req(1), {"id": "a", "runs": [obs(*ran(("ok", "-")), rec("done"))]}, "default").passed
    assert judge(stdio_req(["1"]), {"id": "s", "stdio": digest(t("ok", "1"))}, "default").passed
    res = judge(call_req([1, 2]), {"id": "c", "server_error": "OSError: boom"}, "default")
    check(res, "runtime_error", "sandbox_error", ["not_run", "not_run"])
