"""Property 5 of issue 13: hostile output costs linear time, and never more than the output limit is read.

The bounds on wall time are generous (several times what these take on a 2-core machine) because they
guard against the quadratic and unbounded behaviours the issue describes, which took tens of seconds.
"""

from __future__ import annotations

import logging
import time

import psutil
import pytest
from sandbox_helpers import run


def test_megabytes_of_invalid_utf8_are_judged_quickly(executor, after):
    program = "import os\nfor _ in range(64):\n    os.write(1, bytes(range(128, 256)) * 512)\nprint()\n"
    me = psutil.Process()
    rss0 = me.memory_info().rss
    t0 = time.monotonic()
    res = run(executor, program, {"type": "stdio", "inputs": ["1\n"] * 3, "outputs": ["5\n"] * 3})
    took = time.monotonic() - t0
    assert res.tests == ["failed_test"] * 3, res  # 4 MB of invalid UTF-8 per test, each a wrong answer
    assert took < 5, f"judging 12 MB of invalid UTF-8 took {took:.1f}s"
    assert me.memory_info().rss - rss0 < 64 * 2 ** 20, "the program's output reached the executor"
    after.check()


@pytest.mark.parametrize("catch", [False, True], ids=["dies-at-the-limit", "ignores-the-limit"])
def test_printing_forever_on_several_inputs(executor, after, catch):
    """Without catching EFBIG the program stops at the output limit on each input; catching it, it spins
    until its deadline on the first, and the other inputs do not run."""
    loop = "while True:\n    print('x' * 1000)\n"
    if catch:
        loop = "while True:\n    try:\n        print('x' * 1000)\n    except OSError:\n        pass\n"
    t0 = time.monotonic()
    res = run(executor, loop, {"type": "stdio", "inputs": ["1\n"] * 5, "outputs": ["1\n"] * 5}, timeout=1.0)
    took = time.monotonic() - t0
    if catch:
        assert res.tests == ["runtime_error"] + ["not_run"] * 4 and res.detail == "timeout", res
    else:
        assert res.tests == ["runtime_error"] * 5 and res.detail == "output_limit", res
    assert took < 8, f"{took:.1f}s"
    after.check()


def test_large_outputs_on_many_inputs_do_not_lose_the_worker(executor, after, caplog):
    """8 MB printed on each of 6 inputs (below the 16 MB cap, so each is read and compared in full)."""
    program = "import sys\nsys.stdout.write(('y' * 1023 + '\\n') * 8192)\n"
    t0 = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="coderl.sandbox"):
        res = run(executor, program, {"type": "stdio", "inputs": ["1\n"] * 6, "outputs": ["1\n"] * 6})
    took = time.monotonic() - t0
    assert res.tests == ["failed_test"] * 6, res
    assert not [r for r in caplog.records if "lost" in r.getMessage()], "a worker was declared lost"
    assert took < 10, f"{took:.1f}s"
    after.check()  # the same servers, alive


def test_an_output_that_matches_after_megabytes_of_trailing_blank_lines(executor, after):
    """The right answer followed by 8 MB of whitespace is right (trailing whitespace is forgiven) and costs no
    more than reading it."""
    program = "import sys\nprint(5)\nsys.stdout.write(' \\n' * (4 << 20))\n"
    t0 = time.monotonic()
    res = executor.run_one(program, {"type": "stdio", "inputs": ["1\n"] * 3, "outputs": ["5\n"] * 3})
    assert res.passed, res
    assert time.monotonic() - t0 < 6
    after.check()


@pytest.mark.parametrize("value", [
    "[[[]]] * 2_000_000",
    "'z' * (64 << 20)",
    "{k * (2 ** 61 - 1) for k in range(5000)}",
    "list(range(3_000_000))",
], ids=["many-lists", "64MB-string", "hash-flood-set", "3M-ints"])
def test_return_values_that_cost_the_judge_are_bounded(executor, after, value):
    """Answers the judge would spend memory or quadratic time on are refused (over the output limit, or
    built to collide in one hash bucket) or decoded in linear time."""
    program = f"def f(x):\n    return {value}\n"
    t0 = time.monotonic()
    res = run(executor, program, {"type": "call", "fn_name": "f", "inputs": [[1]], "outputs": [[1]]}, timeout=10.0)
    assert res.outcome in ("failed_test", "runtime_error"), res
    assert time.monotonic() - t0 < 15
    for pid in after.pids:
        assert psutil.Process(pid).memory_info().rss < 1024 * 2 ** 20
    after.check()
