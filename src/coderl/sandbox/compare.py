"""How the judge compares what a program produced with what a test expects.

Stdio (what it printed):

* ``default``: the output must equal the expected output after removing trailing whitespace from every line
  and trailing blank lines. Nothing else is forgiven.
* ``apps``: the lenient rules of the APPS harness that CodeRL used, kept for paper comparability. A test
  passes if any of these holds: the stripped non-empty lines are equal; every line parses as a number and
  the two number lists are close (numpy ``allclose`` defaults); the sets of per-line whitespace-token sets
  are equal (so line order, repeated lines and token order within a line are ignored); the same after
  rounding every token to 3 decimals.

Both read the output once, line by line, and stop at the first line that decides the answer: a program
that prints megabytes costs time linear in what it printed, and memory bounded by the expected output.

Call tests (a return value, already decoded into plain builtin values by :mod:`coderl.sandbox.values`):

* ``default``: :func:`same_value` — equal values of the same kind: ``bool`` only equals ``bool`` (``True``
  is not ``1``); ``int`` and ``float`` compare by value; ``NaN`` equals nothing; ``str``, ``bytes`` and
  ``None`` only their own kind; a ``list`` or ``tuple`` equals a list or tuple of the same length, item by
  item (APPS stores outputs as JSON, which has no tuples); dicts need the same keys, sets the same members.
* ``apps``: Python's ``==`` after turning tuples into lists, as APPS's harness compares.

With ``wrapped`` (APPS stores call outputs wrapped in a list), the return value may also equal the wrapped
list's only element; with the ``apps`` checker, its first element (APPS's own rule).
"""

from __future__ import annotations

import io
import math
from collections.abc import Iterator
from typing import Any


def _lines(text: str) -> Iterator[str]:
    """The lines of ``text`` without their endings (``\\n`` or ``\\r\\n``), lazily."""
    for line in io.StringIO(text, newline="\n"):
        if line.endswith("\r\n"):
            yield line[:-2]
        elif line.endswith("\n"):
            yield line[:-1]
        else:
            yield line


def normalize_default(text: str) -> list[str]:
    lines = [ln.rstrip() for ln in _lines(text)]
    while lines and not lines[-1]:
        lines.pop()
    return lines


def stdio_default(output: str, expected: str) -> bool:
    want = normalize_default(expected)
    got = _lines(output)
    for exp in want:
        line = next(got, None)
        if line is None or line.rstrip() != exp:
            return False
    return all(not line.strip() for line in got)


def _stripped(text: str) -> Iterator[str]:
    for ln in _lines(text):
        s = ln.strip()
        if s:
            yield s


def _same_lines(output: str, exp_lines: list[str]) -> bool:
    got = _stripped(output)
    for exp in exp_lines:
        if next(got, None) != exp:
            return False
    return next(got, None) is None


def _close_numbers(output: str, exp_lines: list[str]) -> bool:
    try:
        want = [float(x) for x in exp_lines]
    except ValueError:
        return False
    got = _stripped(output)
    for b in want:
        line = next(got, None)
        if line is None:
            return False
        try:
            a = float(line)
        except ValueError:
            return False
        if not abs(a - b) <= 1e-8 + 1e-5 * abs(b):
            return False
    return next(got, None) is None


def _token_sets(lines: Iterator[str], rounded: bool, limit: float = math.inf) -> set[frozenset] | None:
    """The set of per-line token sets; None when a token is not a number (rounded) or when the set grows past
    ``limit`` members (then it cannot equal the expected one)."""
    out: set[frozenset] = set()
    for ln in lines:
        toks = ln.split()
        if rounded:
            try:
                out.add(frozenset(round(float(t), 3) for t in toks))
            except (ValueError, OverflowError):
                return None
        else:
            out.add(frozenset(toks))
        if len(out) > limit:
            return None
    return out


def stdio_apps(output: str, expected: str) -> bool:
    exp_lines = list(_stripped(expected))
    if _same_lines(output, exp_lines) or _close_numbers(output, exp_lines):
        return True
    for rounded in (False, True):
        want = _token_sets(iter(exp_lines), rounded)
        if want is not None and _token_sets(_stripped(output), rounded, limit=len(want)) == want:
            return True
    return False


def stdio_match(output: str, expected: str, checker: str) -> bool:
    return stdio_apps(output, expected) if checker == "apps" else stdio_default(output, expected)


def same_value(a: Any, b: Any, depth: int = 0) -> bool:
    """Equality as a judge means it (see the module docstring); ``a`` is the program's value."""
    ta, tb = type(a), type(b)
    if ta is bool or tb is bool:
        return ta is tb and a == b
    if ta in (int, float) and tb in (int, float):
        return a == b
    if depth > 200:
        return False
    if ta in (list, tuple) and tb in (list, tuple):
        return len(a) == len(b) and all(same_value(x, y, depth + 1) for x, y in zip(a, b, strict=True))
    if ta is dict and tb is dict:
        return a.keys() == b.keys() and all(same_value(a[k], b[k], depth + 1) for k in a)
    if ta in (set, frozenset) and tb in (set, frozenset):
        return a == b
    return ta is tb and ta in (str, bytes, complex, type(None)) and a == b


def _listify(v: Any) -> Any:
    if isinstance(v, tuple | list):
        return [_listify(x) for x in v]
    if isinstance(v, dict):
        return {k: _listify(x) for k, x in v.items()}
    return v


def call_match(value: Any, expected: Any, wrapped: bool, checker: str = "default") -> bool:
    if checker == "apps":
        got, exp = _listify(value), _listify(expected)
        if got == exp:
            return True
        return bool(wrapped and isinstance(exp, list) and exp and got == exp[0])
    if same_value(value, expected):
        return True
    return bool(wrapped and type(expected) is list and len(expected) == 1 and same_value(value, expected[0]))
