"""Property 4 of issue 13: values compare the way a judge would (the rules are in docs/execution.md).

Each wrong answer here is one that a lenient comparison used to accept; each test asserts the verdict, and
that the same tests accept the right answer (so the failure is the comparison's doing, not the test's).
"""

from __future__ import annotations

import pytest
from sandbox_helpers import run


@pytest.mark.parametrize("kind", ["assert", "call"])
def test_a_numpy_scalar_does_not_pass_a_test_expecting_a_list(executor, after, kind):
    """`np.float64(5.0) == [5.0]` is true in numpy (broadcasting); a number is not a list."""
    wrong = "import numpy as np\ndef f(x):\n    return np.float64(5.0)\n"
    right = "def f(x):\n    return [5.0]\n"
    tests = ({"type": "assert", "asserts": ["assert f(1) == [5.0]"]} if kind == "assert" else
             {"type": "call", "fn_name": "f", "inputs": [[1]], "outputs": [[5.0]]})
    res = run(executor, wrong, tests)
    assert res.outcome == "failed_test", res
    assert executor.run_one(right, tests).passed
    after.check()


def test_a_numpy_scalar_passes_as_the_number_it_is(executor, after):
    program = "import numpy as np\ndef f(x):\n    return np.float64(x) / 2\n"
    assert executor.run_one(program, {"type": "assert", "asserts": ["assert f(5) == 2.5",
                                                                    "assert abs(f(1) - 0.5) < 1e-9"]}).passed
    assert executor.run_one(program, {"type": "call", "fn_name": "f", "inputs": [[5]], "outputs": [2.5]}).passed
    after.check()


@pytest.mark.parametrize("value", ["[1.0, float('nan')]", "{'a': float('nan')}", "[[float('nan')]]"])
def test_a_nested_nan_is_not_a_missing_value(executor, after, value):
    expected = value.replace("float('nan')", "None")
    program = f"def f(x):\n    return {value}\n"
    res = run(executor, program, {"type": "call", "fn_name": "f", "inputs": [[1]], "outputs": [eval(expected)]})
    assert (res.outcome, res.detail) == ("failed_test", "wrong_answer"), res
    res = run(executor, program, {"type": "assert", "asserts": [f"assert f(1) == {expected}"]})
    assert res.outcome == "failed_test", res
    after.check()


@pytest.mark.parametrize("returned, expected", [("True", 1), ("1", True), ("False", 0), ("[True, False]", [1, 0])])
def test_a_bool_is_not_a_number_in_call_tests(executor, after, returned, expected):
    program = f"def f(x):\n    return {returned}\n"
    tests = {"type": "call", "fn_name": "f", "inputs": [[1]], "outputs": [expected]}
    assert run(executor, program, tests).detail == "wrong_answer"
    # APPS's own harness compares with Python's ==: the `apps` checker keeps that for comparability
    assert executor.run_one(program, tests, checker="apps").passed
    after.check()


@pytest.mark.parametrize("returned", ["np.array([1, 2])", "IntLike(3)", "StrLike('x')", "iter([1, 2])",
                                      "(x for x in [1, 2])"])
def test_values_that_are_not_plain_never_equal_an_expected_output(executor, after, returned):
    program = ("import numpy as np\n"
               "class IntLike(int):\n    def __eq__(self, o): return True\n    __hash__ = int.__hash__\n"
               "class StrLike(str):\n    def __eq__(self, o): return True\n    __hash__ = str.__hash__\n"
               f"def f(x):\n    return {returned}\n")
    expected = {"np.array([1, 2])": [1, 2], "IntLike(3)": 3, "StrLike('x')": "x", "iter([1, 2])": [1, 2],
                "(x for x in [1, 2])": [1, 2]}[returned]
    res = run(executor, program, {"type": "call", "fn_name": "f", "inputs": [[1]], "outputs": [expected]})
    assert res.outcome == "failed_test" and res.detail.startswith("unserializable:"), res
    res = run(executor, program, {"type": "assert", "asserts": [f"assert f(1) == {expected!r}"]})
    assert (res.outcome, res.detail) == ("failed_test", "untrusted_object"), res
    after.check()


def test_tuples_sets_bytes_and_big_ints_keep_their_types_in_asserts(executor, after):
    program = ("def f(k):\n"
               "    return [(1, 2), {1, 2}, b'x', 2 ** 200, -0.0, 3 + 4j, frozenset({1}), {(1, 2): 'a'}][k]\n")
    ok = ["assert f(0) == (1, 2) and f(0) != [1, 2]", "assert f(1) == {1, 2}", "assert f(2) == b'x' != 'x'",
          "assert f(3) == 2 ** 200", "assert str(f(4)) == '-0.0'", "assert f(5).imag == 4",
          "assert f(6) == frozenset({1})", "assert f(7)[(1, 2)] == 'a'"]
    assert executor.run_one(program, {"type": "assert", "asserts": ok}).passed
    after.check()
