"""Code that runs inside the sandboxed child, next to the untrusted program.

The child never sees expected outputs of stdio or call tests: it reports what the program printed or
returned, and the executor (another process) judges. Assert tests necessarily carry their expectations,
so for them the child reports whether each assert raised. Reports go to a pipe as records tagged with a
per-run random token, so bytes sprayed at inherited descriptors are recognised as forgeries.

Names used after the program starts are bound at import time, so rebinding builtins or module
attributes from the program does not change what the harness does.
"""

from __future__ import annotations

import ast
import builtins
import copy
import io
import json
import os
import sys
import traceback

_write = os.write
_type = type
_repr = repr
_len = len
_isinstance = isinstance
_deepcopy = copy.deepcopy
_encode_str = json.encoder.encode_basestring_ascii  # the C function, bound before any program runs
_INF = float("inf")
_BUILTIN_NAMES = frozenset(builtins.__dict__)
_MISSING = object()
_extract_tb = traceback.extract_tb
_BaseException = BaseException
_SystemExit = SystemExit
_AssertionError = AssertionError
_MemoryError = MemoryError
_RecursionError = RecursionError

PROGRAM_FILE = "<program>"
WRAPPED_FILE = "<program:wrapped>"  # lines after the first _wrap_at are one more than in the program
_wrap_at = 0
_PLAIN_SCALARS = (int, float, str, bool, type(None), complex, bytes)


def _numpy_scalar_types() -> tuple[type, ...]:
    try:
        import numpy as np
    except ImportError:
        return ()
    return tuple({np.dtype(c).type for c in "?bhilqBHILQefdgFDG"} | {np.str_, np.bytes_})


_NUMPY_SCALARS = _numpy_scalar_types()


class UntrustedComparison(Exception):
    """A test compared an object whose comparison operators the program controls."""


_OPS = {
    "Eq": lambda a, b: a == b, "NotEq": lambda a, b: a != b, "Lt": lambda a, b: a < b,
    "LtE": lambda a, b: a <= b, "Gt": lambda a, b: a > b, "GtE": lambda a, b: a >= b,
    "In": lambda a, b: a in b, "NotIn": lambda a, b: a not in b,
    "Is": lambda a, b: a is b, "IsNot": lambda a, b: a is not b,
}
_IDENTITY = ("Is", "IsNot")


def _make_comparators():
    """safe_compare / safe_chain as closures over private copies of their tables, so that patching this
    module's attributes from the program changes nothing."""
    ops = dict(_OPS)
    scalars = _PLAIN_SCALARS + _NUMPY_SCALARS
    type_, all_, untrusted = _type, all, UntrustedComparison

    def is_plain(x: object, depth: int = 0) -> bool:
        t = type_(x)
        if t in scalars:
            return True
        if depth > 50:
            return False
        if t is list or t is tuple or t is set or t is frozenset:
            return all_(is_plain(v, depth + 1) for v in x)
        if t is dict:
            return all_(is_plain(k, depth + 1) and is_plain(v, depth + 1) for k, v in x.items())
        return False

    def safe_compare(op: str, a: object, b: object) -> bool:
        """Comparison used by rewritten test code: only plain builtin values may be compared, so a class whose
        ``__eq__`` always returns True (or an int subclass doing the same) can never satisfy a test."""
        if op not in _IDENTITY and not (is_plain(a) and is_plain(b)):
            raise untrusted(f"{type_(a).__name__} {op} {type_(b).__name__}")
        return ops[op](a, b)

    def safe_chain(op_names: tuple, first: object, *thunks) -> bool:
        """``a < b < c`` as ``a < b and b < c``, each operand evaluated once and lazily, as Python does."""
        left = first
        for op, thunk in zip(op_names, thunks, strict=True):
            right = thunk()
            if not safe_compare(op, left, right):
                return False
            left = right
        return True

    return is_plain, safe_compare, safe_chain


_is_plain, safe_compare, safe_chain = _make_comparators()


def _located(new: ast.expr, old: ast.expr) -> ast.expr:
    """Give a new expression node (and its new children) the location of the node it replaces."""
    for n in ast.walk(new):
        if "lineno" in n._attributes and not hasattr(n, "lineno"):
            ast.copy_location(n, old)
    return new


def _safe_compare_call(node: ast.Compare) -> ast.expr:
    ops = [type(o).__name__ for o in node.ops]
    if any(o not in _OPS for o in ops):
        return node
    if len(ops) == 1:
        if ops[0] in _IDENTITY:
            return node  # identity cannot be faked
        call = ast.Call(func=ast.Name(id="__coderl_compare__", ctx=ast.Load()),
                        args=[ast.Constant(ops[0]), node.left, node.comparators[0]], keywords=[])
        return _located(call, node)
    thunks = [ast.Lambda(args=ast.arguments(posonlyargs=[], args=[], kwonlyargs=[], kw_defaults=[], defaults=[]),
                         body=c) for c in node.comparators]
    call = ast.Call(func=ast.Name(id="__coderl_chain__", ctx=ast.Load()),
                    args=[ast.Tuple(elts=[ast.Constant(o) for o in ops], ctx=ast.Load()), node.left, *thunks],
                    keywords=[])
    return _located(call, node)


def _rewrite_compares(node: ast.AST) -> ast.AST:
    """Replace every comparison, innermost first, by a call of the safe comparators. A plain recursive walk:
    ast.NodeTransformer plus fix_missing_locations cost a HumanEval check function ~3 ms."""
    for field in node._fields:
        value = getattr(node, field, None)
        if type(value) is list:
            for i, v in enumerate(value):
                if isinstance(v, ast.AST):
                    value[i] = _rewrite_compares(v)
        elif isinstance(value, ast.AST):
            setattr(node, field, _rewrite_compares(value))
    return _safe_compare_call(node) if type(node) is ast.Compare else node


def compile_test_code(source: str, filename: str) -> object:
    return compile(_rewrite_compares(ast.parse(source, filename)), filename, "exec", dont_inherit=True)


def compile_tests(tests: dict) -> tuple[object, list[object]] | str:
    """Compile an assert TestSpec (trusted code) once; returns (setup, asserts) or an error detail."""
    try:
        setup = compile_test_code(tests.get("setup") or "", "<setup>")
        asserts = [compile_test_code(a, f"<test {i}>") for i, a in enumerate(tests["asserts"])]
    except SyntaxError as e:
        return f"SyntaxError:{e.filename}"
    return setup, asserts


class Unserializable(Exception):
    pass


class _NotJSON(Exception):
    pass


def _json_value(x: object, depth: int) -> str:
    t = _type(x)
    if depth > 100:
        raise Unserializable("nesting too deep")
    if t is str:
        return _encode_str(x)
    if t is bool:
        return "true" if x else "false"
    if x is None:
        return "null"
    if t is int:
        return _repr(x)
    if t is float:
        if x != x or x in (_INF, -_INF):
            raise _NotJSON
        return _repr(x)
    if t is list or t is tuple:
        return "[" + ",".join([_json_value(v, depth + 1) for v in x]) + "]"
    if t is dict:
        parts = []
        for k, v in x.items():
            if _type(k) is not str:
                raise _NotJSON
            parts.append(_encode_str(k) + ":" + _json_value(v, depth + 1))
        return "{" + ",".join(parts) + "}"
    raise _NotJSON


def _literal_value(x: object, depth: int) -> str:
    t = _type(x)
    if depth > 100:
        raise Unserializable("nesting too deep")
    if t is bool or t is int or t is str or t is bytes or t is complex or x is None:
        return _repr(x)
    if t is float:
        if x != x:
            return "__coderl_nan__" if depth == 0 else "None"
        if x in (_INF, -_INF):
            return "1e999" if x > 0 else "-1e999"
        return _repr(x)
    if t in _NUMPY_SCALARS:
        return _literal_value(x.item(), depth + 1)
    if t is list or t is tuple:
        inner = ", ".join([_literal_value(v, depth + 1) for v in x])
        return f"[{inner}]" if t is list else f"({inner}{',' if _len(x) == 1 else ''})"
    if t is set or t is frozenset:
        if not x:
            return "set()"
        return "{" + ", ".join([_literal_value(v, depth + 1) for v in x]) + "}"
    if t is dict:
        return "{" + ", ".join([f"{_literal_value(k, depth + 1)}: {_literal_value(v, depth + 1)}"
                               for k, v in x.items()]) + "}"
    raise Unserializable(t.__name__)


def serialize_value(x: object) -> str:
    """A return value made only of plain builtin types (checked by exact type), as ``J`` + JSON when it fits
    JSON (fast to parse) or ``L`` + a Python literal otherwise (tuples stay lists either way: the executor
    compares tuples as lists)."""
    try:
        return "J" + _json_value(x, 0)
    except _NotJSON:
        return "L" + _literal_value(x, 0)


class Reporter:
    """Writes records ``<token> <kind> <index> <line> <detail> <nbytes>\\n<payload>`` to the result pipe."""

    def __init__(self, fd: int, token: str):
        self._fd, self._token = fd, token

    def __call__(self, kind: str, index: int = -1, line: int | None = None, detail: str = "-",
                 payload: bytes = b"") -> None:
        detail = "".join(c if c.isalnum() or c in "_:.<>" else "_" for c in (detail or "-"))[:200] or "-"
        head = f"{self._token} {kind} {index} {line if line is not None else -1} {detail} {_len(payload)}\n"
        data = head.encode() + payload
        while data:
            n = _write(self._fd, data)
            data = data[n:]


def program_line(tb: object) -> int | None:
    """Line in the program of the innermost traceback frame that belongs to the program."""
    line = None
    try:
        for fr in _extract_tb(tb):
            if fr.filename == PROGRAM_FILE:
                line = fr.lineno
            elif fr.filename == WRAPPED_FILE and fr.lineno:
                line = fr.lineno - 1 if fr.lineno > _wrap_at + 1 else fr.lineno
    except _BaseException:
        return None
    return line


def _exc_detail(e: BaseException) -> str:
    if _isinstance(e, _MemoryError):
        return "memory"
    if _isinstance(e, _RecursionError):
        return "RecursionError"
    if _isinstance(e, OSError) and getattr(e, "errno", None) == 27:  # EFBIG: output cap hit
        return "output_limit"
    return _type(e).__name__


def _compile_program(source: str, report: Reporter, apps_wrap: bool = False) -> object | None:
    try:
        return compile(source, PROGRAM_FILE, "exec", dont_inherit=True)
    except _BaseException as e:  # SyntaxError, ValueError (NUL bytes), MemoryError, RecursionError
        if apps_wrap and _isinstance(e, SyntaxError) and "outside function" in str(e.msg):
            # APPS's harness runs stdio programs as the body of a function, so some of its ground truth
            # uses a top-level `return` to stop early. The `apps` checker reproduces that wrapping.
            # Leading top-level imports stay outside, as APPS's own import prelude does (`import *` must).
            lines = source.splitlines(keepends=True)
            k = 0
            while k < _len(lines) and (lines[k].startswith(("import ", "from ")) or not lines[k].strip()):
                k += 1
            global _wrap_at
            _wrap_at = k
            for indent in (" ", "\t"):  # whichever matches the program's own indentation
                body = "".join(indent + ln for ln in lines[k:])
                try:
                    return compile("".join(lines[:k]) + f"def __coderl_main__():\n{body}\n__coderl_main__()\n",
                                   WRAPPED_FILE, "exec", dont_inherit=True)
                except _BaseException:
                    pass
        report("compile_error", line=getattr(e, "lineno", None), detail=_type(e).__name__)
        return None


def _load(code: object, ns: dict, report: Reporter) -> bool:
    try:
        exec(code, ns)
    except _SystemExit:
        report("load_exit", detail="exit")
        return False
    except _BaseException as e:
        report("load_error", line=program_line(e.__traceback__), detail=_exc_detail(e))
        return False
    report("loaded")
    return True


def run_assert(job: dict, report: Reporter) -> None:
    compiled = job.get("_compiled") or compile_tests(job["tests"])
    if isinstance(compiled, str):
        report("bad_tests", detail=compiled)
        return
    setup, asserts = compiled
    code = _compile_program(job["program"], report)
    if code is None:
        return
    report("compiled")
    saved_builtins = dict(builtins.__dict__)
    ns: dict = {"__name__": "__coderl__", "__builtins__": builtins}
    if not _load(code, ns, report):
        return
    # The program may have rebound builtins (abs, len, ...) that the tests use; tests get the originals,
    # both in the builtins module and in their own namespace, from which program globals named like a builtin
    # are dropped (the program's own functions keep seeing them: they hold the program's namespace). So a
    # function under test must not be named like a builtin.
    builtins.__dict__.clear()
    builtins.__dict__.update(saved_builtins)
    program_ns = ns
    ns = {k: v for k, v in ns.items() if k not in _BUILTIN_NAMES}
    ns["__builtins__"] = builtins
    ns["__coderl_compare__"] = safe_compare
    ns["__coderl_chain__"] = safe_chain
    before = dict(ns)
    try:
        exec(setup, ns)
    except _BaseException as e:
        report("load_error", line=program_line(e.__traceback__), detail="setup:" + _exc_detail(e))
        return
    # Program, setup and tests behave as one module (MBPP's test_setup_code defines names the program's
    # functions use): what the setup defined is visible to the program's functions too.
    for k, v in ns.items():
        if before.get(k, _MISSING) is not v:
            program_ns[k] = v
    for i, test in enumerate(asserts):
        report("start", i)
        try:
            exec(test, ns)
        except _AssertionError:
            report("fail", i, detail="AssertionError")
        except UntrustedComparison:
            report("fail", i, detail="untrusted_object")
        except _SystemExit:
            report("error", i, detail="exit")
        except _BaseException as e:
            report("error", i, line=program_line(e.__traceback__), detail=_exc_detail(e))
        else:
            report("ok", i)


def run_call(job: dict, report: Reporter) -> None:
    tests = job["tests"]
    code = _compile_program(job["program"], report)
    if code is None:
        return
    report("compiled")
    inputs = _deepcopy(tests["inputs"])
    ns: dict = {"__name__": "__coderl__", "__builtins__": builtins}
    if not _load(code, ns, report):
        return
    name = tests["fn_name"]
    fn = ns.get(name)
    if not callable(fn):
        cls = ns.get("Solution")
        try:
            fn = getattr(cls(), name) if cls is not None else None
        except _BaseException as e:
            report("load_error", line=program_line(e.__traceback__), detail="Solution:" + _exc_detail(e))
            return
    if not callable(fn):
        report("load_error", detail=f"missing_function:{name}")
        return
    for i, args in enumerate(inputs):
        report("start", i)
        try:
            value = fn(*args)
        except _SystemExit:
            report("error", i, detail="exit")
            continue
        except _BaseException as e:
            report("error", i, line=program_line(e.__traceback__), detail=_exc_detail(e))
            continue
        try:
            literal = serialize_value(value)
        except Unserializable as e:
            report("fail", i, detail=f"unserializable:{e}")
            continue
        except _BaseException as e:
            report("error", i, detail=_exc_detail(e))
            continue
        report("value", i, payload=literal.encode("utf-8", "surrogatepass"))


_prepared_streams: tuple | None = None
_server_streams: tuple = ()


def _std_streams() -> tuple:
    return (io.TextIOWrapper(io.BufferedReader(io.FileIO(0, "r", closefd=False)), encoding="utf-8", errors="replace"),
            io.TextIOWrapper(io.BufferedWriter(io.FileIO(1, "w", closefd=False)), encoding="utf-8", errors="replace"),
            io.TextIOWrapper(io.BufferedWriter(io.FileIO(2, "w", closefd=False)), encoding="utf-8", errors="replace",
                             line_buffering=True))


def prepare_std_streams() -> None:
    """Build one set of std* objects in the fork server, never written there, for children to take over: they
    wrap descriptor numbers, which each child re-points at its own files before using them."""
    global _prepared_streams, _server_streams
    _prepared_streams = _std_streams()
    # Held so that a child replacing sys.std* never frees (and so never writes to) the server's objects.
    _server_streams = (sys.stdin, sys.stdout, sys.stderr, sys.__stdin__, sys.__stdout__, sys.__stderr__)


def fresh_std_streams(prepared: bool = False) -> None:
    """New sys.std* objects on fds 0-2: the inherited ones may hold the server's buffered bytes. With
    ``prepared``, the set made by :func:`prepare_std_streams` (empty buffers) is used once."""
    global _prepared_streams
    if prepared and _prepared_streams is not None:
        streams, _prepared_streams = _prepared_streams, None
    else:
        streams = _std_streams()
    sys.stdin, sys.stdout, sys.stderr = streams
    sys.__stdin__, sys.__stdout__, sys.__stderr__ = sys.stdin, sys.stdout, sys.stderr


def run_stdio(job: dict, start: int, report: Reporter) -> None:
    """Stdio tests ``start..n-1`` in this process, each a fresh ``__main__`` run of the program.

    Per test, fd 0 is ``in<i>.txt`` and fd 1 a new capped ``out<i>.txt`` in the run directory, with fresh
    ``sys.std*`` objects and the original builtins. A program that ends the process (``os._exit``, a crash)
    ends this child; the server judges that test and continues the rest in a new child.
    """
    code = _compile_program(job["program"], report, apps_wrap=bool(job.get("apps_wrap")))
    if code is None:
        return
    report("compiled")
    saved_builtins = dict(builtins.__dict__)
    for i in range(start, _len(job["tests"]["inputs"])):
        fd = os.open(f"in{i}.txt", os.O_RDONLY)
        os.dup2(fd, 0)
        os.close(fd)
        fd = os.open(f"out{i}.txt", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.dup2(fd, 1)
        os.close(fd)
        fresh_std_streams()
        builtins.__dict__.clear()
        builtins.__dict__.update(saved_builtins)
        out = sys.stdout
        report("start", i)
        ns = {"__name__": "__main__", "__builtins__": builtins}
        status, line, detail = "ok", None, "-"
        try:
            exec(code, ns)
        except _SystemExit:
            status, detail = "exit", "exit"
        except _BaseException as e:
            status, line, detail = "error", program_line(e.__traceback__), _exc_detail(e)
        for stream in (sys.stdout, out):
            try:
                stream.flush()
            except _BaseException as e:
                if status == "ok" or status == "exit":
                    status, detail = "error", _exc_detail(e)
        report(status, i, line=line, detail=detail)
