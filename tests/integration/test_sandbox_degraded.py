"""The executor still gives right verdicts when protections are switched off, and says which are off.

This is the path users without root or user namespaces get; a regression here once made every run of a
non-root executor fail before the program started.
"""

from __future__ import annotations

import logging

import pytest

from coderl.sandbox import Executor

ASSERTS = {"type": "assert", "asserts": ["assert f(2) == 3", "assert f(0) == 1"]}


@pytest.fixture(scope="module")
def weak():
    with Executor(workers=1, timeout=2.0, isolate=False, use_seccomp=False, uid_base=None) as ex:
        yield ex


def test_missing_protections_are_listed(weak):
    active, missing = weak.protections()
    assert {"seccomp", "dedicated uid", "network namespace", "private filesystem"} <= set(missing)
    assert "rlimits" in active
    text = weak.explain()
    assert "Missing protections:" in text and "seccomp" in text


def test_verdicts_in_degraded_mode(weak):
    ok = weak.run_one("def f(x):\n    return x + 1\n", ASSERTS)
    bad = weak.run_one("def f(x):\n    return 3\n", ASSERTS)
    stdio = weak.run_one("print(int(input()) * 2)", {"type": "stdio", "inputs": ["4\n"], "outputs": ["8\n"]})
    assert (ok.outcome, bad.outcome, stdio.outcome) == ("passed", "failed_test", "passed")
    assert bad.tests == ["passed", "failed_test"]


def test_timeout_still_enforced(weak):
    res = weak.run_one("while True:\n    pass\n", ASSERTS, timeout=0.5)
    assert (res.outcome, res.detail) == ("runtime_error", "timeout")


def test_start_logs_the_missing_protections(caplog):
    with caplog.at_level(logging.WARNING, logger="coderl.sandbox"):
        with Executor(workers=1, isolate=False, use_seccomp=True, uid_base=None):
            pass
    assert any("sandbox running without" in r.getMessage() for r in caplog.records)
