"""The judge's side of a run: questions to the sandboxed child and its answers, as Python objects.

Messages are JSON arrays of plain values (:mod:`coderl.sandbox.values`). The program's objects that are not
plain stay in the child and appear here as :class:`Remote` stand-ins; calling one, reading an attribute,
``len``, ``str``, iterating or indexing it asks the child, within the current deadline. Comparing, hashing,
truth-testing or computing with one raises :class:`Untrusted` and marks the run, since those would let the
program decide an assertion. An exception the program raised comes back as the builtin exception of that
name (so tests can catch ``ValueError``), or :class:`ProgramError`.
"""

from __future__ import annotations

import builtins
from typing import TYPE_CHECKING, Any

from coderl.sandbox import values
from coderl.sandbox.child import ChildGone, Deadline

if TYPE_CHECKING:
    from coderl.sandbox.child import Child


class Untrusted(BaseException):
    """A test compared (or hashed, negated, ...) an object the program controls. A BaseException, so that test
    code catching ``Exception`` cannot turn it into a pass; the run also remembers it."""


class ProgramExit(BaseException):
    """The program called ``exit()`` (``sys.exit``) while answering."""


class ProgramError(Exception):
    """An exception the program raised that has no builtin counterpart here."""


class Unsupported(Exception):
    """The tests passed something to the program that cannot cross as a plain value (a function, an object of
    the tests' own class)."""


# -- the stand-in for the program's objects ---------------------------------------------------------------

def _untrusted(self: Remote, *_a: Any) -> Any:
    run = object.__getattribute__(self, "_run")
    run.untrusted = True
    raise Untrusted(f"{object.__getattribute__(self, '_type')} is an object of the program")


class Remote:
    """A function, class or object of the program, which stays in the sandboxed child."""

    __slots__ = ("_run", "_id", "_type")

    def __init__(self, run: Run, ident: int, type_name: str):
        object.__setattr__(self, "_run", run)
        object.__setattr__(self, "_id", ident)
        object.__setattr__(self, "_type", type_name)

    def _ask(self, op: str, *rest: Any) -> Any:
        return object.__getattribute__(self, "_run").ask(op, object.__getattribute__(self, "_id"), *rest)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return object.__getattribute__(self, "_run").call(self, args, kwargs)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") and name.endswith("__"):
            # Probes by libraries (numpy's __array__, copy's __deepcopy__) must not reach the program.
            raise AttributeError(name)
        return self._ask("getattr", name)

    def __setattr__(self, name: str, value: Any) -> None:
        raise Unsupported("setting attributes of the program's objects")

    def __len__(self) -> int:
        n = self._ask("len")
        if type(n) is not int or n < 0:
            raise TypeError("len() of the program's object is not a non-negative int")
        return n

    def __iter__(self) -> Any:
        items = self._ask("list")
        if type(items) is not list:
            raise TypeError("the program's object did not iterate to a list")
        return iter(items)

    def __getitem__(self, key: Any) -> Any:
        return self._ask("getitem", key)

    def __str__(self) -> str:
        s = self._ask("str")
        if type(s) is not str:
            raise TypeError("str() of the program's object is not a str")
        return s

    def __repr__(self) -> str:
        return f"<{object.__getattribute__(self, '_type')} object of the program>"

    __eq__ = __ne__ = __lt__ = __le__ = __gt__ = __ge__ = __contains__ = __hash__ = __bool__ = _untrusted
    __add__ = __radd__ = __sub__ = __rsub__ = __mul__ = __rmul__ = __truediv__ = __rtruediv__ = _untrusted
    __floordiv__ = __rfloordiv__ = __mod__ = __rmod__ = __pow__ = __rpow__ = __neg__ = __pos__ = _untrusted
    __abs__ = __invert__ = __and__ = __rand__ = __or__ = __ror__ = __xor__ = __rxor__ = _untrusted
    __lshift__ = __rlshift__ = __rshift__ = __rrshift__ = __matmul__ = __rmatmul__ = __divmod__ = _untrusted
    __rdivmod__ = __int__ = __float__ = __complex__ = __index__ = __round__ = __trunc__ = _untrusted
    __floor__ = __ceil__ = __format__ = __reversed__ = __instancecheck__ = _untrusted


# -- a run as the judge sees it ------------------------------------------------------------------------------

class Opaque:
    """A return value of a call test that is not plain data (it never equals an expected output)."""

    def __init__(self, ident: int, type_name: str):
        self.ident, self.type_name = ident, type_name


class Run:
    """A child with the judge's side of the protocol: messages are JSON arrays of plain values; requests about
    the program's objects go out by handle; exceptions the program raised come back as exceptions here."""

    def __init__(self, child: Child, opaque: bool = False):
        self.child = child
        self.untrusted = False  # a test touched an object of the program in a way that decides the assert
        self.expired = False  # the deadline passed (even if test code caught the exception)
        self.gone: str | None = None  # why the child can no longer answer, once it cannot
        self._decode = values.decoder(self._opaque if opaque else self._remote)

    @property
    def deadline(self) -> float:
        return self.child.deadline

    @deadline.setter
    def deadline(self, t: float) -> None:
        self.child.deadline = t

    def _remote(self, ident: int, type_name: str) -> Remote:
        return Remote(self, ident, type_name)

    def _opaque(self, ident: int, type_name: str) -> Opaque:
        return Opaque(ident, type_name)

    def _handle(self, obj: Any) -> int:
        if type(obj) is Remote and object.__getattribute__(obj, "_run") is self:
            return object.__getattribute__(obj, "_id")
        raise Unsupported(type(obj).__name__)

    def send(self, msg: dict[str, Any] | list[Any], deadline: float) -> None:
        if isinstance(msg, dict):
            text = values.encode(msg)
        else:
            text = values.dumps([values.to_plain(x, self._handle) for x in msg])
        self.child.send(text.encode("ascii"), deadline)

    def recv(self, deadline: float) -> list[Any]:
        try:
            msg = self._decode(self.child.recv(deadline))
        except values.Malformed:
            raise ChildGone("tampered") from None
        if type(msg) is not list or not msg or type(msg[0]) is not str:
            raise ChildGone("tampered")
        return msg

    def ask(self, op: str, *rest: Any) -> Any:
        """One request about the program's objects, within the current deadline; returns the answer."""
        if self.gone is not None:
            raise ChildGone(self.gone)
        if self.expired:
            raise Deadline()
        try:
            self.send([op, *rest], self.deadline)
            msg = self.recv(self.deadline)
        except Deadline:
            self.expired = True
            raise
        except ChildGone as e:
            self.gone = self.child.cause(e.cause)
            raise ChildGone(self.gone) from None
        if msg[0] == "ok" and len(msg) >= 2:
            if op == "call" and len(msg) >= 3:
                copy_back(rest[1], msg[2])
            return msg[1]
        if msg[0] == "raise" and len(msg) == 4:
            raise program_exception(msg[1], msg[2], msg[3])
        if msg[0] == "exit":
            raise ProgramExit()
        if msg[0] == "missing" and op == "resolve":
            return None
        self.gone = self.child.cause("tampered")
        raise ChildGone(self.gone)

    def call(self, remote: Remote, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        return self.ask("call", object.__getattribute__(remote, "_id"), list(args), kwargs)

    def end_cause(self, reason: str) -> str:
        self.gone = self.child.cause(reason)
        return self.gone


_ITERATION_ENDS = (StopIteration, StopAsyncIteration)


def program_exception(type_name: Any, detail: Any, line: Any) -> BaseException:
    """The judge-side exception for one the program raised: the builtin of that name when there is one (so
    that tests can catch ``ValueError``), else :class:`ProgramError`; it carries the verdict's detail and line."""
    cls = getattr(builtins, type_name, None) if type(type_name) is str else None
    # StopIteration raised by a call inside map() or a generator would end the tests' iteration early
    # (`all(map(candidate, cases))` would be True): the program's StopIteration is an error here, not the end.
    if not (isinstance(cls, type) and issubclass(cls, Exception)) or issubclass(cls, _ITERATION_ENDS):
        cls = ProgramError
    try:
        e = cls(f"raised by the program: {type_name}")
    except Exception:
        e = ProgramError(str(type_name))
    d = detail if type(detail) is str else "error"
    e._coderl = (d[:200], line if type(line) is int else None)  # type: ignore[attr-defined]
    return e


def copy_back(originals: list[Any], after: Any) -> None:
    """Apply the program's in-place changes of list/dict/set/bytearray arguments to the tests' objects (as
    if the call had happened here: `f(xs); assert xs == [...]`)."""
    if type(after) is not list:
        return
    for orig, new in zip(originals, after, strict=False):
        t = type(orig)
        if new is None or type(new) is not t:
            continue
        if t is list or t is bytearray:
            orig[:] = new
        elif t is dict or t is set:
            orig.clear()
            orig.update(new)
