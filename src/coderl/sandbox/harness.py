"""What runs in the sandboxed child, next to the untrusted program: loading it, and answering the judge.

Nothing here is trusted. The program shares this process, so it can read and rewrite all of it, and write
anything to the reply pipe. That is harmless by design: the child never holds expected outputs or test
code, it only *answers questions* — "call this function with these arguments", "what did you print" — with
plain values (:mod:`coderl.sandbox.values`), and the judge (the fork server, another process) decides
whether the answers are right and when time is up. A forged reply is at worst a wrong answer.

Descriptors: 0, 1, 2 are stdin (a file with the test input, or empty), stdout and stderr (memory files the
server reads after the run, capped by RLIMIT_FSIZE); 3 carries requests from the judge, 4 the replies.
"""

from __future__ import annotations

import builtins
import io
import os
import sys
import traceback
import types
from typing import Any

from coderl.sandbox import values
from coderl.sandbox.frames import FrameReader, frame, write_all

REQ_FD, REPLY_FD = 3, 4
PROGRAM_FILE = "<program>"
WRAPPED_FILE = "<program:wrapped>"  # lines after the first _wrap_at are one more than in the program
FIXTURES_FILE = "<fixtures>"
_wrap_at = 0
_REQUEST_LIMIT = 1 << 30  # requests come from the judge; the bound only guards against a broken pipe
# The harness uses builtins after the program ran; a program that rebinds them (builtins.len = ...) would
# otherwise garble its own answers. Not a protection (the program can rewrite this module too): robustness.
_BUILTINS = dict(builtins.__dict__)


def _restore_builtins() -> None:
    if builtins.__dict__ != _BUILTINS:
        builtins.__dict__.clear()
        builtins.__dict__.update(_BUILTINS)


class _Channel:
    """Messages are JSON arrays whose elements are plain values in the format of :mod:`values`."""

    def __init__(self) -> None:
        self._reader = FrameReader(_REQUEST_LIMIT)

    def send(self, *msg: Any) -> None:
        write_all(REPLY_FD, frame(values.dumps(list(msg)).encode("ascii")))

    def recv(self) -> bytes | None:
        while True:
            payload = self._reader.next()
            if payload is not None:
                return payload
            chunk = os.read(REQ_FD, self._reader.want())
            if not chunk:
                return None
            self._reader.feed(chunk)


def program_line(tb: object) -> int | None:
    """Line in the program of the innermost traceback frame that belongs to the program."""
    line = None
    try:
        for fr in traceback.extract_tb(tb):
            if fr.filename == PROGRAM_FILE:
                line = fr.lineno
            elif fr.filename == WRAPPED_FILE and fr.lineno:
                line = fr.lineno - 1 if fr.lineno > _wrap_at + 1 else fr.lineno
    except BaseException:
        return None
    return line


def exc_detail(e: BaseException) -> str:
    if isinstance(e, MemoryError):
        return "memory"
    if isinstance(e, RecursionError):
        return "RecursionError"
    if isinstance(e, OSError) and getattr(e, "errno", None) == 27:  # EFBIG: output cap hit
        return "output_limit"
    return type(e).__name__


def _raised(e: BaseException, prefix: str = "") -> list[Any]:
    if isinstance(e, SystemExit):
        return ["exit"]
    return ["raise", type(e).__name__, prefix + exc_detail(e), program_line(e.__traceback__)]


def compile_program(source: str, apps_wrap: bool = False) -> tuple[object | None, list[Any] | None]:
    """(code, None) or (None, a compile_error message)."""
    try:
        return compile(source, PROGRAM_FILE, "exec", dont_inherit=True), None
    except BaseException as e:  # SyntaxError, ValueError (NUL bytes), MemoryError, RecursionError
        if apps_wrap and isinstance(e, SyntaxError) and "outside function" in str(e.msg):
            # APPS's harness runs stdio programs as the body of a function, so some of its ground truth
            # uses a top-level `return` to stop early. The `apps` checker reproduces that wrapping.
            # Leading top-level imports stay outside, as APPS's own import prelude does (`import *` must).
            lines = source.splitlines(keepends=True)
            k = 0
            while k < len(lines) and (lines[k].startswith(("import ", "from ")) or not lines[k].strip()):
                k += 1
            global _wrap_at
            _wrap_at = k
            for indent in (" ", "\t"):  # whichever matches the program's own indentation
                body = "".join(indent + ln for ln in lines[k:])
                try:
                    return compile("".join(lines[:k]) + f"def __coderl_main__():\n{body}\n__coderl_main__()\n",
                                   WRAPPED_FILE, "exec", dont_inherit=True), None
                except BaseException:
                    pass
        return None, ["compile_error", type(e).__name__, getattr(e, "lineno", None)]


# -- answering the judge --------------------------------------------------------------------------------------

class _Handles:
    """Objects the judge refers to by number: functions, classes, instances that are not plain values."""

    def __init__(self) -> None:
        self.objects: list[Any] = []

    def add(self, obj: Any) -> int:
        self.objects.append(obj)
        return len(self.objects) - 1

    def get(self, i: int, _type: str = "") -> Any:
        if not 0 <= i < len(self.objects):
            raise values.Malformed("unknown handle")
        return self.objects[i]


def _describe(name: str, obj: Any, handles: _Handles) -> list[Any]:
    """How the judge should bind a global the tests use: its own copy of a module or of a module's attribute
    (so that patching `math.isclose` in here changes nothing there), else the value or a handle. Module
    descriptors carry a handle too, for a module the judge does not take its own copy of."""
    if type(obj) is types.ModuleType and type(obj.__name__) is str:
        return ["m", obj.__name__, values.to_plain(obj, handles.add)]
    mod = getattr(obj, "__module__", None)
    if type(mod) is str and mod != "__coderl__" and mod in sys.modules:
        for attr in (getattr(obj, "__qualname__", None), name):
            if type(attr) is str and getattr(sys.modules[mod], attr, None) is obj:
                return ["a", mod, attr, values.to_plain(obj, handles.add)]
    return ["v", values.to_plain(obj, handles.add)]


_MUTABLE = (list, dict, set, bytearray)


def _answer(req: list[Any], ns: dict[str, Any], handles: _Handles) -> list[Any]:
    op = req[0]
    if op == "resolve":  # a call test's function: a global, else a method of Solution() (LeetCode style)
        name = req[1]
        fn = ns.get(name)
        if not callable(fn):
            cls = ns.get("Solution")
            try:
                fn = getattr(cls(), name) if cls is not None else None
            except BaseException as e:
                return _raised(e, "Solution:")
        if not callable(fn):
            return ["missing"]
        return ["ok", {"$h": handles.add(fn), "t": "function"}]
    obj = handles.get(req[1])
    if op == "call":
        args, kwargs = req[2], req[3]
        value = obj(*args, **kwargs)
        back = [values.to_plain(a, handles.add) if type(a) in _MUTABLE else None for a in args]
        return ["ok", values.to_plain(value, handles.add), back]
    if op == "getattr":
        value = getattr(obj, req[2])
    elif op == "getitem":
        value = obj[req[2]]
    elif op == "len":
        value = len(obj)
    elif op == "str":
        value = str(obj)
    elif op == "list":
        value = list(obj)
    else:
        raise values.Malformed(f"unknown request {op!r}")
    return ["ok", values.to_plain(value, handles.add)]


def _serve(ch: _Channel, ns: dict[str, Any], handles: _Handles) -> None:
    decode = values.decoder(handles.get)
    while True:
        raw = ch.recv()
        if raw is None:
            return
        try:
            reply = _answer(decode(raw), ns, handles)
        except BaseException as e:
            _restore_builtins()
            reply = _raised(e)
        _restore_builtins()
        try:
            ch.send(*reply)
        except BaseException as e:  # a value that cannot be written (EFBIG, nesting too deep for JSON)
            ch.send(*_raised(e))


def run_in_process(ch: _Channel, job: dict[str, Any]) -> None:
    """Assert and call tests: load the program (and the fixtures) once, then answer requests."""
    code, err = compile_program(job["program"])
    if err is not None:
        ch.send(*err)
        return
    ch.send("compiled")
    ns: dict[str, Any] = {"__name__": "__coderl__", "__builtins__": builtins}
    try:
        exec(code, ns)
    except BaseException as e:
        _restore_builtins()
        ch.send(*(["load_exit"] if isinstance(e, SystemExit) else ["load_error", *_raised(e)[1:]]))
        return
    if job.get("fixtures"):
        try:
            exec(compile(job["fixtures"], FIXTURES_FILE, "exec", dont_inherit=True), ns)
        except BaseException as e:
            ch.send("load_error", type(e).__name__, "fixtures:" + exc_detail(e), program_line(e.__traceback__))
            return
    _restore_builtins()
    handles = _Handles()
    described = []
    for name in job.get("names", ()):
        if name in ns:
            try:
                described.append([name, _describe(name, ns[name], handles)])
            except BaseException:
                described.append([name, ["v", {"$h": handles.add(ns[name]), "t": "object"}]])
    ch.send("loaded", described)
    _serve(ch, ns, handles)


def run_stdio(ch: _Channel, job: dict[str, Any]) -> None:
    """Stdio tests, one per ``["test", i]`` request: the program as a fresh ``__main__`` on the input the judge
    put in fd 0, printing to fd 1 (both rewound here; the judge rewrites and reads them between tests)."""
    code, err = compile_program(job["program"], apps_wrap=bool(job.get("apps_wrap")))
    if err is not None:
        ch.send(*err)
        return
    ch.send("compiled")
    while ch.recv() is not None:
        os.lseek(0, 0, os.SEEK_SET)
        os.lseek(1, 0, os.SEEK_SET)
        fresh_std_streams()
        out = sys.stdout
        status, line, detail = "ok", None, "-"
        try:
            exec(code, {"__name__": "__main__", "__builtins__": builtins})
        except SystemExit:
            status, detail = "exit", "exit"
        except BaseException as e:
            _restore_builtins()
            status, line, detail = "error", program_line(e.__traceback__), exc_detail(e)
        _restore_builtins()
        for stream in (sys.stdout, out):
            try:
                stream.flush()
            except BaseException as e:
                if status != "error":
                    status, detail = "error", exc_detail(e)
        ch.send("end", status, detail, line)


def main() -> None:
    """Entry point of a confined child (called by the zygote after confinement); never returns."""
    code = 0
    try:
        ch = _Channel()
        raw = ch.recv()
        if raw is not None:
            job = values.decode_plain(raw)
            if job["mode"] == "stdio":
                run_stdio(ch, job)
            else:
                run_in_process(ch, job)
    except BaseException:
        code = 1
    finally:
        os._exit(code)


# -- standard streams -----------------------------------------------------------------------------------------

_prepared_streams: tuple | None = None
_server_streams: tuple = ()


def _std_streams() -> tuple:
    return (io.TextIOWrapper(io.BufferedReader(io.FileIO(0, "r", closefd=False)), encoding="utf-8", errors="replace"),
            io.TextIOWrapper(io.BufferedWriter(io.FileIO(1, "w", closefd=False)), encoding="utf-8", errors="replace"),
            io.TextIOWrapper(io.BufferedWriter(io.FileIO(2, "w", closefd=False)), encoding="utf-8", errors="replace",
                             line_buffering=True))


def prepare_std_streams() -> None:
    """Build one set of std* objects in the zygote, never written there, for children to take over: they wrap
    descriptor numbers, which each child points at its own files before using them."""
    global _prepared_streams, _server_streams
    _prepared_streams = _std_streams()
    # Held so that a child replacing sys.std* never frees (and so never writes to) the zygote's objects.
    _server_streams = (sys.stdin, sys.stdout, sys.stderr, sys.__stdin__, sys.__stdout__, sys.__stderr__)


def fresh_std_streams() -> None:
    """New sys.std* objects on fds 0-2 (the inherited ones may hold buffered bytes of the zygote)."""
    global _prepared_streams
    if _prepared_streams is not None:
        streams, _prepared_streams = _prepared_streams, None
    else:
        streams = _std_streams()
    sys.stdin, sys.stdout, sys.stderr = streams
    sys.__stdin__, sys.__stdout__, sys.__stderr__ = sys.stdin, sys.stdout, sys.stderr
