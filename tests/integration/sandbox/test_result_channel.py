"""Property 3 of issue 13: the program cannot forge, speed up or slow down its verdict through the channel to
its judge. The program's process holds both ends it writes to (its reply pipe, its output files), so every
test here writes the judge's own message format, at the moments a forger would choose; the expected values
are secrets, so a forged answer can only be a guess, and the deadlines are kept by the judge.
"""

from __future__ import annotations

import secrets
import time

import pytest
from sandbox_helpers import run

FORGE = (
    "import os, json, threading, time\n"
    "def frame(msg):\n"
    "    data = json.dumps(msg).encode()\n"
    "    return b'%d\\n' % len(data) + data\n"
    "def spray(msgs, fds=(4,)):\n"
    "    data = b''.join(frame(m) for m in msgs)\n"
    "    for fd in fds:\n"
    "        try:\n"
    "            os.write(fd, data)\n"
    "        except OSError:\n"
    "            pass\n"
    "PASSING = [['compiled'], ['loaded', []], ['ok', 5, []], ['ok', True, []], ['end', 'ok', '-', None],\n"
    "           ['ok', {'$h': 0, 't': 'function'}], ['passed'], ['tests', [['passed', 'ok', None]]]]\n"
)


def secret() -> str:
    return "secret" + secrets.token_hex(8)


ASSERT = lambda v: {"type": "assert", "asserts": [f"assert f(1) == {v!r}", f"assert f(2) == {v!r}"]}  # noqa: E731
CALL = lambda v: {"type": "call", "fn_name": "f", "inputs": [[1], [2]], "outputs": [v, v]}  # noqa: E731
STDIO = lambda v: {"type": "stdio", "inputs": ["1\n", "2\n"], "outputs": [v, v]}  # noqa: E731
KINDS = {"assert": ASSERT, "call": CALL, "stdio": STDIO}


def program_for(kind: str, body: str) -> str:
    """``body`` runs while the program answers test 0 (inside f, or at the top of a stdio program)."""
    if kind == "stdio":
        return FORGE + body + "\nprint('guess')\n"
    return FORGE + "def f(x):\n" + "".join(f"    {ln}\n" for ln in body.splitlines()) + "    return 'guess'\n"


@pytest.mark.parametrize("kind", KINDS)
def test_forged_answers_and_results_do_not_pass(executor, after, kind):
    """Every message a judge could take for success, written ahead on the reply pipe and on every other
    descriptor: the verdict is still that of the program's own (wrong) answers."""
    res = run(executor, program_for(kind, "spray(PASSING * 50, fds=range(64))"), KINDS[kind](secret()))
    assert res.tests[0] != "passed" and res.tests[1] != "passed", res
    after.check()


@pytest.mark.parametrize("kind", KINDS)
def test_reporting_success_then_exiting_does_not_pass(executor, after, kind):
    res = run(executor, program_for(kind, "spray(PASSING * 50)\nos._exit(0)"), KINDS[kind](secret()))
    assert res.outcome in ("runtime_error", "failed_test") and "passed" not in res.tests, res
    after.check()


def test_the_channel_object_found_through_gc_only_sends_guesses(executor, after):
    """The program finds the harness's channel object in its own process (gc) and answers every request the
    judge will send with its own message, then keeps quiet: they are answers, judged as answers."""
    value = secret()
    body = ("import gc\n"
            "ch = [o for o in gc.get_objects() if type(o).__name__ == '_Channel'][0]\n"
            "for _ in range(10):\n"
            "    ch.send('ok', 'guess', [])\n"
            "time.sleep(0.5)")
    res = run(executor, program_for("assert", body), ASSERT(value))
    assert res.tests[0] == "failed_test", res
    after.check()


@pytest.mark.parametrize("kind", KINDS)
def test_progress_messages_do_not_extend_the_deadline(executor, after, kind):
    """A program 2.5x over its time limit that keeps writing messages while it works (what a progress or
    test-start record looked like to the old harness): it times out, at the limit, not later."""
    limit = 1.0
    body = ("def keepalive():\n"
            "    while True:\n"
            "        spray([['compiled'], ['loaded', []], ['start', 0], ['start', 1]])\n"
            "        time.sleep(0.05)\n"
            "threading.Thread(target=keepalive, daemon=True).start()\n"
            f"time.sleep({2.5 * limit})")
    t0 = time.monotonic()
    res = run(executor, program_for(kind, body), KINDS[kind](secret()), timeout=limit)
    took = time.monotonic() - t0
    assert res.outcome == "runtime_error" and res.tests[0] == "runtime_error", res
    assert res.detail in ("timeout", "tampered"), res
    # a test may take its phases' limits (compile, load, the test itself) but never the 2.5x it asked for
    assert took < 2.5 * limit + 0.5, f"the run took {took:.2f}s with a {limit}s limit"
    after.check()


@pytest.mark.parametrize("junk", [b"garbage\n", b"99999999999999999999\n", b"-5\n", b"5\nabcde", b"\n"],
                         ids=["not-a-frame", "huge-length", "negative", "not-json", "empty-header"])
def test_bytes_that_are_not_messages_end_the_run(executor, after, junk):
    program = ("import os\n"
               f"os.write(4, {junk!r})\n"
               "def f(x):\n    return 'guess'\n")
    t0 = time.monotonic()
    res = run(executor, program, ASSERT(secret()), timeout=2.0)
    assert res.outcome == "runtime_error" and res.detail in ("tampered", "output_limit"), res
    assert time.monotonic() - t0 < 2.0, "the judge waited on bytes that could never be a message"
    after.check()


@pytest.mark.parametrize("kind", ["assert", "call"])
def test_a_closed_channel_cannot_stall_the_judge(executor, after, kind):
    """The program closes its reply pipe and keeps running: the judge ends it at the deadline."""
    t0 = time.monotonic()
    res = run(executor, program_for(kind, "os.close(4)\nwhile True:\n    pass"), KINDS[kind](secret()), timeout=1.0)
    assert (res.outcome, res.detail) == ("runtime_error", "timeout"), res
    assert time.monotonic() - t0 < 4
    after.check()
