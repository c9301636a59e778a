"""The judge: runs the tests in the fork server, a process the program cannot reach, and asks the sandboxed
child only for what the program computes.

For **assert** tests the test code (HumanEval's ``check``, MBPP's asserts) is executed here, in a namespace
where every name the program defined is a stand-in (:class:`coderl.sandbox.proxy.Remote`): calling it sends
the (plain) arguments to the child, which calls the program's function and sends back the (plain) value. So
the expected values, the comparison (``==``, ``math.isclose``, ``abs(a - b) < eps``, ``sorted``, ``set``),
the builtins and modules the tests use, and the deadline all live here. A name the tests use as a module
(``math.isclose``), or that the program bound to a trusted module or to one of its attributes, is bound to
this process's own copy. An object that is not a plain value (an instance of the program's class) stays in
the child; the tests may call its methods and read its attributes, ``len``, ``str``, ``list`` and index it
(the program answers), but comparing it, hashing it, using it as a truth value or in arithmetic fails the
test (``untrusted_object``): those would let the program decide the assertion.

**Call** tests send each input to the child the same way and compare the return value here; **stdio** tests
give the child each input in turn and compare what it printed. Every deadline is set and enforced here.
"""

from __future__ import annotations

import ast
import builtins
import importlib
import signal
import sys
import time
import types
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from coderl.sandbox.child import ChildGone, Deadline
from coderl.sandbox.compare import call_match, stdio_match
from coderl.sandbox.proxy import Opaque, ProgramExit, Run, Unsupported, Untrusted

if TYPE_CHECKING:
    from coderl.sandbox.child import Child

Spawn = Callable[..., "Child"]

# A program tells the judge which module each of its globals is, and the test code may call what that name
# holds, with the tests' own arguments, in this (privileged) process. So the judge binds such a name only to
# modules that compute and nothing else, never to one that reaches files, processes or the network (a
# program claiming that its `candidate` is `os.kill` must not get the tests' integers sent to it). Attributes
# (`from math import isclose`) only of those without file functions (numpy has np.save, json has dump).
TRUSTED_MODULES = frozenset({"math", "cmath", "numpy", "collections", "itertools", "functools", "heapq", "bisect",
                             "re", "string", "fractions", "decimal", "statistics", "typing", "datetime", "copy",
                             "operator", "array", "dataclasses", "enum", "hashlib", "textwrap", "unicodedata",
                             "random", "json"})
_TRUSTED_ATTRIBUTE_MODULES = TRUSTED_MODULES - {"numpy", "json"}
# A test that says `math.isclose(...)` (or `np.allclose`) without importing the module means the module, not
# whatever the program bound to that name: such a name, used as a module in the test code, is the judge's.
_MODULE_NAMES = {**{m: m for m in TRUSTED_MODULES}, "np": "numpy"}
_BUILTIN_NAMES = frozenset(builtins.__dict__)


# -- compiled tests ---------------------------------------------------------------------------------------

class CompiledTests:
    """An assert TestSpec compiled once per server: setup, asserts, the fixtures' import statements (run
    here too, so that `math` in a test is this process's math), and every global name the test code reads
    (asked of the program)."""

    def __init__(self, tests: dict[str, Any]):
        sources = [tests.get("setup") or "", *tests["asserts"]]
        trees = [ast.parse(src) for src in sources]
        self.setup = compile(trees[0], "<setup>", "exec", dont_inherit=True)
        self.asserts = [compile(t, f"<test {i}>", "exec", dont_inherit=True) for i, t in enumerate(trees[1:])]
        # names the test code uses as modules (`math.isclose`): bound to the judge's own module when trusted
        self.module_names = sorted({n.value.id for t in trees for n in ast.walk(t)
                                    if isinstance(n, ast.Attribute) and isinstance(n.value, ast.Name)
                                    and n.value.id in _MODULE_NAMES})
        fixtures = tests.get("fixtures") or ""
        imports = [n for n in ast.parse(fixtures).body if isinstance(n, ast.Import | ast.ImportFrom)]
        self.imports = compile(ast.Module(body=imports, type_ignores=[]), "<fixtures>", "exec", dont_inherit=True)
        self.fixtures = fixtures
        names: set[str] = set()
        for code in (self.setup, *self.asserts):
            _collect_names(code, names)
        self.names = sorted(names - _BUILTIN_NAMES)


def _collect_names(code: types.CodeType, out: set[str]) -> None:
    out.update(code.co_names)
    for c in code.co_consts:
        if isinstance(c, types.CodeType):
            _collect_names(c, out)


def compile_tests(tests: dict[str, Any]) -> CompiledTests | str:
    """The compiled tests, or the detail of a test spec that does not compile."""
    try:
        return CompiledTests(tests)
    except SyntaxError as e:
        return f"SyntaxError:{e.filename}"


# -- results ------------------------------------------------------------------------------------------------

def _not_run(n: int) -> list[list[Any]]:
    return [["not_run", "", None] for _ in range(n)]


def _load(run: Run, job: dict[str, Any], timeout: float) -> list[Any] | dict[str, Any]:
    """Send the program to the child and wait for it to compile and load (a timeout each). Returns the
    ``loaded`` message, or the response for a program that never got to its tests."""
    try:
        run.deadline = time.monotonic() + timeout
        run.send(job, run.deadline)
        msg = run.recv(run.deadline)
        if msg[0] == "compile_error" and len(msg) == 3:
            return {"compile_error": [str(msg[1])[:200], msg[2] if type(msg[2]) is int else None]}
        if msg[0] != "compiled":
            raise ChildGone("tampered")
        run.deadline = time.monotonic() + timeout
        msg = run.recv(run.deadline)
        if msg[0] == "load_error" and len(msg) == 4:
            return {"load_error": [str(msg[2])[:200], msg[3] if type(msg[3]) is int else None]}
        if msg[0] == "load_exit":
            return {"load_error": ["exit", None]}
        if msg[0] != "loaded" or len(msg) != 2 or type(msg[1]) is not list:
            raise ChildGone("tampered")
        return msg
    except Deadline:
        run.child.kill()
        return {"load_error": ["timeout", None]}
    except ChildGone as e:
        return {"load_error": [run.end_cause(e.cause), None]}


# -- assert tests -------------------------------------------------------------------------------------------

def _resolve(described: list[Any], module_names: list[str]) -> dict[str, Any]:
    """The program's globals as the test code sees them (see the module docstring); ``module_names`` are those
    the test code uses as modules."""
    ns: dict[str, Any] = {}
    for name in module_names:
        if name in _MODULE_NAMES:
            own = _trusted_module_attr(_MODULE_NAMES[name], None)
            if own is not None:
                ns[name] = own
    for item in described:
        if type(item) is not list or len(item) != 2 or type(item[0]) is not str or type(item[1]) is not list:
            raise ChildGone("tampered")
        name, desc = item
        if name in _BUILTIN_NAMES or name in ns or name.startswith("__") or not desc:
            continue  # dunder names: never let the program supply `__builtins__` or the like
        kind = desc[0]
        if kind == "m" and len(desc) == 3:
            own = _trusted_module_attr(desc[1], None)
        elif kind == "a" and len(desc) == 4:
            own = _trusted_module_attr(desc[1], desc[2])
        elif kind == "v" and len(desc) == 2:
            own = None
        else:
            raise ChildGone("tampered")
        ns[name] = own if own is not None else desc[-1]
    return ns


def _trusted_module_attr(module: Any, attr: Any) -> Any:
    """This process's own module (or module attribute) for a program's descriptor, when it is one the judge
    trusts (see TRUSTED_MODULES); None otherwise."""
    if type(module) is not str or module.split(".")[0] not in TRUSTED_MODULES:
        return None
    if attr is not None and (type(attr) is not str or module.split(".")[0] not in _TRUSTED_ATTRIBUTE_MODULES):
        return None
    mod = sys.modules.get(module)
    if mod is None:
        try:
            mod = importlib.import_module(module)
        except Exception:
            return None
    if attr is None:
        return mod
    obj: Any = mod
    for part in attr.split("."):
        if part.startswith("_"):
            return None
        obj = getattr(obj, part, None)
        if obj is None or type(obj) is types.ModuleType:
            return None
    return obj


class _Alarm:
    """SIGALRM while test code runs: test code is trusted but may be slow or call the program in a loop;
    the handler raises :class:`Deadline` (again and again, should the test code catch it)."""

    def __init__(self, run: Run):
        self.run = run

    def __enter__(self) -> _Alarm:
        signal.signal(signal.SIGALRM, self._fire)
        signal.setitimer(signal.ITIMER_REAL, max(self.run.deadline - time.monotonic(), 1e-3))
        return self

    def _fire(self, *_: Any) -> None:
        left = self.run.deadline - time.monotonic()
        if left > 0:
            signal.setitimer(signal.ITIMER_REAL, left)
            return
        self.run.expired = True
        signal.setitimer(signal.ITIMER_REAL, 0.05)
        raise Deadline()

    def __exit__(self, *exc: Any) -> None:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, signal.SIG_IGN)


def judge_assert(spawn: Spawn, job: dict[str, Any], compiled: CompiledTests) -> dict[str, Any]:
    timeout = float(job["timeout"])
    n = len(compiled.asserts)
    run = Run(spawn(cpu_seconds=int(timeout * (n + 2)) + 1))
    try:
        loaded = _load(run, {"mode": "assert", "program": job["program"], "fixtures": compiled.fixtures,
                             "names": compiled.names}, timeout)
        if isinstance(loaded, dict):
            return loaded
        ns: dict[str, Any] = {"__builtins__": builtins, "__name__": "__coderl_tests__"}
        run.deadline = time.monotonic() + timeout
        try:
            with _Alarm(run):
                ns.update(_resolve(loaded[1], compiled.module_names))
                exec(compiled.imports, ns)
                exec(compiled.setup, ns)
        except Deadline:
            run.child.kill()
            return {"load_error": ["timeout", None]}
        except ChildGone as e:
            return {"load_error": [run.gone or run.end_cause(e.cause), None]}
        except BaseException as e:
            return {"load_error": ["setup:" + _detail(e)[0], None]}
        tests = _not_run(n)
        for i, code in enumerate(compiled.asserts):
            run.deadline = time.monotonic() + timeout
            run.untrusted = run.expired = False
            tests[i] = _run_one(run, code, ns)
            if run.gone is not None or run.expired:
                break
        return {"tests": tests}
    finally:
        run.child.finish()


def _detail(e: BaseException) -> tuple[str, int | None]:
    remote = getattr(e, "_coderl", None)
    if type(remote) is tuple:
        return remote
    if isinstance(e, MemoryError):
        return "memory", None
    return type(e).__name__, None


def _run_one(run: Run, code: types.CodeType, ns: dict[str, Any]) -> list[Any]:
    """One assert: [outcome, detail, line]. What the run remembers (a deadline, a dead child, an untrusted
    comparison) outranks what the test code made of it, so catching an exception cannot turn it into a pass."""
    outcome: list[Any]
    try:
        with _Alarm(run):
            exec(code, ns)
        outcome = ["passed", "ok", None]
    except AssertionError as e:
        outcome = ["failed_test", "AssertionError", None] if getattr(e, "_coderl", None) is None else \
            ["runtime_error", *_detail(e)]
    except ProgramExit:
        outcome = ["runtime_error", "exit", None]
    except Unsupported as e:
        outcome = ["runtime_error", f"unsupported_argument:{e}"[:200], None]
    except (Deadline, ChildGone, Untrusted):
        outcome = ["runtime_error", "?", None]  # decided below, from the run's state
    except BaseException as e:
        outcome = ["runtime_error", *_detail(e)]
    if run.expired:
        run.child.kill()
        return ["runtime_error", "timeout", None]
    if run.gone is not None:
        return ["runtime_error", run.gone, None]
    if run.untrusted:
        return ["failed_test", "untrusted_object", None]
    return outcome


# -- call tests ---------------------------------------------------------------------------------------------

def judge_call(spawn: Spawn, job: dict[str, Any], checker: str) -> dict[str, Any]:
    spec = job["tests"]
    timeout = float(job["timeout"])
    n = len(spec["inputs"])
    run = Run(spawn(cpu_seconds=int(timeout * (n + 2)) + 1), opaque=True)
    try:
        loaded = _load(run, {"mode": "call", "program": job["program"], "names": []}, timeout)
        if isinstance(loaded, dict):
            return loaded
        run.deadline = time.monotonic() + timeout
        try:
            fn = run.ask("resolve", spec["fn_name"])
        except Deadline:
            run.child.kill()
            return {"load_error": ["timeout", None]}
        except ChildGone as e:
            return {"load_error": [e.cause, None]}
        except ProgramExit:
            return {"load_error": ["exit", None]}
        except BaseException as e:
            return {"load_error": list(_detail(e))}
        if fn is None:
            return {"load_error": [f"missing_function:{spec['fn_name']}"[:200], None]}
        if type(fn) is not Opaque:
            return {"load_error": [run.end_cause("tampered"), None]}
        tests = _not_run(n)
        for i, args in enumerate(spec["inputs"]):
            run.deadline = time.monotonic() + timeout
            try:
                value = run.ask("call", fn.ident, args, {})
            except Deadline:
                run.child.kill()
                tests[i] = ["runtime_error", "timeout", None]
                break
            except ChildGone as e:
                tests[i] = ["runtime_error", e.cause, None]
                break
            except ProgramExit:
                tests[i] = ["runtime_error", "exit", None]
                continue
            except BaseException as e:
                tests[i] = ["runtime_error", *_detail(e)]
                continue
            if type(value) is Opaque:
                tests[i] = ["failed_test", f"unserializable:{value.type_name}"[:200], None]
            elif call_match(value, spec["outputs"][i], bool(spec.get("wrapped")), checker):
                tests[i] = ["passed", "ok", None]
            else:
                tests[i] = ["failed_test", "wrong_answer", None]
        return {"tests": tests}
    finally:
        run.child.finish()


# -- stdio tests --------------------------------------------------------------------------------------------

def judge_stdio(spawn: Spawn, job: dict[str, Any], checker: str) -> dict[str, Any]:
    """Each input in turn, each judged on what the program printed for it. The judge writes the input into the
    child's stdin file, empties its stdout file and its run directory, then starts the test and its deadline;
    a child that ends (``os._exit`` after printing, a crash) is replaced by a fresh one for the next input."""
    spec = job["tests"]
    timeout = float(job["timeout"])
    inputs = spec["inputs"]
    n = len(inputs)
    tests = _not_run(n)
    program = {"mode": "stdio", "program": job["program"], "apps_wrap": bool(job.get("apps_wrap"))}
    run: Run | None = None
    try:
        for i, text in enumerate(inputs):
            if run is None:
                run = Run(spawn(cpu_seconds=int(timeout * (n - i + 2)) + 1))
                started = _start_stdio(run, program, timeout)
                if started is not None:
                    if started[0] == "compile_error":
                        return {"compile_error": started[1:]}
                    if i == 0:
                        return {"load_error": started[1:]}
                    tests[i] = ["runtime_error", *started[1:]]
                    break
            run.child.next_test(text.encode("utf-8", "surrogatepass"))
            end = _one_stdio(run, timeout)
            if end[0] in ("ok", "exit"):  # exit(), sys.exit() and os._exit() after printing: judged on the output
                output, capped = run.child.read_stdout()
                if capped:
                    tests[i] = ["runtime_error", "output_limit", None]
                elif stdio_match(output.decode("utf-8", "replace"), spec["outputs"][i], checker):
                    tests[i] = ["passed", "ok", None]
                else:
                    tests[i] = ["failed_test", "wrong_answer", None]
            else:
                tests[i] = ["runtime_error", end[1], end[2]]
            if run.gone is not None or tests[i][1] == "timeout":
                run.child.finish()
                run = None
            if tests[i][1] == "timeout":  # a program that hangs on one input would cost a timeout on every other
                break
        return {"tests": tests}
    finally:
        if run is not None:
            run.child.finish()


def _start_stdio(run: Run, program: dict[str, Any], timeout: float) -> list[Any] | None:
    """Send the program and wait for it to compile: None, or ``[compile_error|<cause>, detail, line]``."""
    try:
        run.deadline = time.monotonic() + timeout
        run.send(program, run.deadline)
        msg = run.recv(run.deadline)
        if msg[0] == "compile_error" and len(msg) == 3:
            return ["compile_error", str(msg[1])[:200], msg[2] if type(msg[2]) is int else None]
        if msg[0] != "compiled":
            raise ChildGone("tampered")
    except Deadline:
        run.child.kill()
        return ["timeout", "timeout", None]
    except ChildGone as e:
        cause = run.end_cause(e.cause)
        return [cause, cause, None]
    return None


def _one_stdio(run: Run, timeout: float) -> list[Any]:
    """One test: ``[ok|exit]``, ``[error, detail, line]`` or ``[<cause>, cause, None]``."""
    try:
        run.deadline = time.monotonic() + timeout
        run.send(["test"], run.deadline)
        end = run.recv(run.deadline)
        if end[0] != "end" or len(end) != 4:
            raise ChildGone("tampered")
    except Deadline:
        run.child.kill()
        run.gone = "timeout"
        return ["timeout", "timeout", None]
    except ChildGone as e:
        cause = run.end_cause(e.cause)
        return ["exit"] if cause == "exit" else [cause, cause, None]
    status = end[1]
    if status in ("ok", "exit"):
        return [status]
    return ["error", str(end[2])[:200], end[3] if type(end[3]) is int else None]
