"""Values that cross between the program's process and the judge: plain data, never objects.

A value returned by the program (or an argument sent to it) travels as JSON text. JSON's own types carry
``None``, ``bool``, ``int``, finite ``float``, ``str`` and ``list``; every JSON object is a tag for one of the
other plain types::

    {"$t": [...]}  tuple            {"$s": [...]}  set           {"$fs": [...]} frozenset
    {"$d": [[k, v], ...]} dict      {"$b": base64} bytes         {"$ba": base64} bytearray
    {"$f": "nan"|"inf"|"-inf"}      {"$c": [re, im]} complex     {"$i": hex} int of over 4,000 digits
    {"$h": id, "t": type name}      a handle: an object that stays in the process that owns it

The encoder checks exact types (``type(x) is list``, never ``isinstance``), so a subclass with its own
``__eq__`` or ``__hash__`` is not plain: it becomes a handle. numpy scalars cross as the Python scalar of the
same value (``np.float64(5.0)`` as ``5.0``), so they compare as numbers, not by broadcasting.

The decoder builds only builtin types, checks every tag's shape, and never calls code of the sender: what
the program sends is data, whatever it wrote into the channel. It raises :class:`Malformed` on anything
else (unknown tags, unhashable set members, nesting deeper than the JSON parser's stack, ints of more than
:data:`MAX_HEX_DIGITS` hex digits, sets or dicts built to collide in one hash bucket, which would make building
them quadratic).
"""

from __future__ import annotations

import binascii
import json
import math
from collections import Counter
from collections.abc import Callable
from typing import Any

MAX_DEPTH = 200
_BIG_INT_BITS = 13_000  # ~3,900 decimal digits: below CPython's 4,300-digit limit on int <-> str
MAX_HEX_DIGITS = 1 << 17  # a received int of at most 2**19 bits, so arithmetic on it stays cheap
MAX_SAME_HASH = 32  # distinct set members or dict keys with one hash: more is a hash-flooding attempt

dumps = json.JSONEncoder(ensure_ascii=True, allow_nan=False, separators=(",", ":")).encode
"""JSON text of a structure already made of :func:`to_plain` output (messages are JSON arrays of those)."""


def _numpy_scalar_types() -> tuple[type, ...]:
    try:
        import numpy as np
    except ImportError:
        return ()
    return tuple({np.dtype(c).type for c in "?bhilqBHILQefdgFDG"} | {np.str_, np.bytes_})


_NUMPY_SCALARS = _numpy_scalar_types()


class Malformed(ValueError):
    """A message that is not a well-formed encoding of plain values."""


class NotPlain(Exception):
    """Raised by the encoder when a value holds an object and no handle table was given."""


def _float(x: float) -> Any:
    if x != x:
        return {"$f": "nan"}
    if x in (math.inf, -math.inf):
        return {"$f": "inf" if x > 0 else "-inf"}
    return x


def to_plain(x: Any, handle: Callable[[Any], int] | None, depth: int = 0) -> Any:
    """``x`` as a JSON-ready structure of the tagged format. ``handle(obj)`` registers an object that is not
    plain and returns its id; without it such an object raises :class:`NotPlain`."""
    t = type(x)
    if t is str or t is bool or x is None:
        return x
    if t is int:
        return x if x.bit_length() < _BIG_INT_BITS else {"$i": format(x, "x")}
    if t is float:
        return _float(x)
    if depth < MAX_DEPTH:
        if t is list:
            return [to_plain(v, handle, depth + 1) for v in x]
        if t is tuple:
            return {"$t": [to_plain(v, handle, depth + 1) for v in x]}
        if t is dict:
            return {"$d": [[to_plain(k, handle, depth + 1), to_plain(v, handle, depth + 1)] for k, v in x.items()]}
        if t is set or t is frozenset:
            return {"$s" if t is set else "$fs": [to_plain(v, handle, depth + 1) for v in x]}
    if t is bytes or t is bytearray:
        return {"$b" if t is bytes else "$ba": binascii.b2a_base64(x, newline=False).decode("ascii")}
    if t is complex:
        return {"$c": [_float(x.real), _float(x.imag)]}
    if t in _NUMPY_SCALARS:
        return to_plain(x.item(), handle, depth)
    if handle is None:
        raise NotPlain(t.__name__)
    name = t.__name__ if type(t.__name__) is str else "?"
    return {"$h": handle(x), "t": name[:100]}


def encode(x: Any, handle: Callable[[Any], int] | None = None) -> str:
    """JSON text of ``x`` (see :func:`to_plain`)."""
    return dumps(to_plain(x, handle))


_FLOATS = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}


def _number(v: Any) -> float:
    if type(v) is float or type(v) is int:
        return float(v)
    raise Malformed("complex parts must be numbers")


def decoder(make_handle: Callable[[int, str], Any] | None) -> Callable[[str | bytes], Any]:
    """A decode function; ``make_handle(id, type_name)`` turns a handle into the receiver's stand-in (None:
    handles are malformed)."""

    def hook(d: dict) -> Any:
        # called for JSON objects only; lists are checked by `decode` after parsing
        if len(d) == 1:
            (tag, v), = d.items()
            if tag == "$t" and type(v) is list:
                return tuple(v)
            if tag == "$d" and type(v) is list:
                for pair in v:
                    if type(pair) is not list or len(pair) != 2:
                        raise Malformed("a dict item is not a [key, value] pair")
                _spread([pair[0] for pair in v])
                return dict(v)
            if (tag == "$s" or tag == "$fs") and type(v) is list:
                _spread(v)
                return set(v) if tag == "$s" else frozenset(v)
            if (tag == "$b" or tag == "$ba") and type(v) is str:
                raw = binascii.a2b_base64(v.encode("ascii"), strict_mode=True)
                return raw if tag == "$b" else bytearray(raw)
            if tag == "$f" and v in _FLOATS:
                return _FLOATS[v]
            if tag == "$c" and type(v) is list and len(v) == 2:
                return complex(_number(v[0]), _number(v[1]))
            if tag == "$i" and type(v) is str and len(v) <= MAX_HEX_DIGITS and v.lstrip("-").isalnum():
                return int(v, 16)
        elif len(d) == 2 and make_handle is not None and type(d.get("$h")) is int and type(d.get("t")) is str:
            return make_handle(d["$h"], d["t"])
        raise Malformed(f"unknown tag {sorted(d)[:2]}")

    parse = json.JSONDecoder(object_hook=hook, parse_constant=_reject_constant).decode

    def decode(text: str | bytes) -> Any:
        try:
            value = parse(text.decode("utf-8") if type(text) is bytes else text)
            _check_lists(value)
            return value
        except Malformed:
            raise
        except (ValueError, TypeError, RecursionError, MemoryError, binascii.Error) as e:
            # TypeError: an unhashable set member or dict key; ValueError: bad JSON, an int of too many digits
            raise Malformed(f"{type(e).__name__}: {str(e)[:200]}") from None

    return decode


def _spread(items: list[Any]) -> None:
    if len(items) > MAX_SAME_HASH and max(Counter(map(hash, items)).values()) > MAX_SAME_HASH:
        raise Malformed("set members or dict keys that share one hash")


_ARITHMETIC_HASH = (int, float, complex, tuple, frozenset)  # str and bytes hashes are salted per process
_ORDERED_NUMBERS = (int, float, bool)
_MODULUS = (1 << 61) - 1  # CPython hashes numbers modulo this prime


def _no_flood(items: list[Any]) -> None:
    """A list whose items would collide in one hash bucket if the judge's tests put them in a set or dict
    (`set(candidate(x)) == {...}`), which is quadratic in C code that no deadline interrupts. Equal items
    (a list of zeros) are fine; more than MAX_SAME_HASH *different* items with one hash are refused."""
    try:
        lo, hi = min(items), max(items)  # in C: most long lists are numbers, or strings
    except (TypeError, ValueError):
        pass
    else:
        if type(lo) in (str, bytes):
            return  # all strings (a str never orders against a non-str): salted hashes
        if type(lo) in _ORDERED_NUMBERS and type(hi) in _ORDERED_NUMBERS and -_MODULUS < lo and hi < _MODULUS:
            return  # numbers below the hash modulus: distinct ints never share a hash, floats only a few
    hashes = Counter(hash(x) for x in items if type(x) in _ARITHMETIC_HASH)
    for h, count in hashes.items():
        if count > MAX_SAME_HASH:
            group = [x for x in items if type(x) in _ARITHMETIC_HASH and hash(x) == h]
            if len({_key(x) for x in group}) > MAX_SAME_HASH:
                raise Malformed("list items built to share one hash")


def _key(x: Any) -> str:
    """A salted-hash stand-in for a value (ints in hex: no digit limit)."""
    return format(x, "x") if type(x) is int else repr(x)


_CONTAINERS = frozenset({list, tuple, dict})


def _check_lists(value: Any) -> None:
    t = type(value)
    if t is list or t is tuple:
        if len(value) > MAX_SAME_HASH:
            _no_flood(value)
        items = value
    elif t is dict:
        items = value.values()
    else:
        return
    for v in items:
        if type(v) in _CONTAINERS:
            _check_lists(v)


def _reject_constant(name: str) -> Any:
    raise Malformed(f"bare {name} is not part of the format")


decode_plain = decoder(None)
"""Decode a message that may hold only plain values (no handles)."""
