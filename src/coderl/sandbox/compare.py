"""Output comparison, done by the server, outside the program's process.

Two stdio checkers:

* ``default``: the output equals the expected output after removing trailing whitespace on every line
  and trailing blank lines. Nothing else is forgiven.
* ``apps``: the lenient rules of the APPS harness that CodeRL used, kept for paper comparability. A test
  passes if any of these holds: the stripped non-empty lines are equal; every line parses as a number and
  the two number lists are close (numpy ``allclose`` defaults); the sets of per-line whitespace-token sets
  are equal (so line order, repeated lines and token order within a line are ignored); the same after
  rounding every token to 3 decimals.

Call-based return values travel from the child as JSON (or, for tuples, sets, bytes and non-string keys, a
Python literal) of plain builtin types and are compared here with ``==`` after turning tuples into lists
(APPS stores outputs as JSON, which has no tuples).
"""

from __future__ import annotations

import ast
import json
from typing import Any

MAX_LITERAL = 1024 * 1024
MAX_JSON = 64 * 1024 * 1024


def normalize_default(text: str) -> list[str]:
    lines = [ln.rstrip() for ln in text.replace("\r\n", "\n").split("\n")]
    while lines and not lines[-1]:
        lines.pop()
    return lines


def stdio_default(output: str, expected: str) -> bool:
    return normalize_default(output) == normalize_default(expected)


def _floats(lines: list[str]) -> list[float] | None:
    try:
        return [float(x) for x in lines]
    except ValueError:
        return None


def _token_sets(lines: list[str], rounded: bool) -> set[frozenset] | None:
    out = set()
    for ln in lines:
        toks = ln.split()
        if not toks:
            continue
        if rounded:
            try:
                out.add(frozenset(round(float(t), 3) for t in toks))
            except (ValueError, OverflowError):
                return None
        else:
            out.add(frozenset(toks))
    return out


def stdio_apps(output: str, expected: str) -> bool:
    # Both sides split the same way, so that an output identical to the expected text always matches.
    out_lines = [ln.strip() for ln in output.replace("\r\n", "\n").split("\n") if ln.strip()]
    exp_lines = [ln.strip() for ln in expected.replace("\r\n", "\n").split("\n") if ln.strip()]
    if out_lines == exp_lines:
        return True
    fo, fe = _floats(out_lines), _floats(exp_lines)
    if fo is not None and fe is not None and len(fo) == len(fe):
        if all(abs(a - b) <= 1e-8 + 1e-5 * abs(b) for a, b in zip(fo, fe, strict=True)):
            return True
    so, se = _token_sets(out_lines, False), _token_sets(exp_lines, False)
    if so == se:
        return True
    ro, re_ = _token_sets(out_lines, True), _token_sets(exp_lines, True)
    return ro is not None and re_ is not None and ro == re_


def stdio_match(output: str, expected: str, checker: str) -> bool:
    return stdio_apps(output, expected) if checker == "apps" else stdio_default(output, expected)


def _listify(v: Any) -> Any:
    if isinstance(v, tuple | list):
        return [_listify(x) for x in v]
    if isinstance(v, dict):
        return {k: _listify(x) for k, x in v.items()}
    return v


def parse_value(literal: str) -> Any:
    """Parse a return value sent by the child: ``J`` + JSON (fast; most values) or ``L`` + a Python literal
    (tuples, sets, bytes, non-string keys). Raises ValueError when it is neither."""
    if literal.startswith("J"):
        if len(literal) > MAX_JSON:
            raise ValueError("return value too large")
        try:
            return json.loads(literal[1:])
        except (ValueError, RecursionError) as e:
            raise ValueError(f"unparseable return value: {type(e).__name__}") from None
    if literal.startswith("L"):
        literal = literal[1:]
    # ast.literal_eval is slow and memory-hungry on big inputs, and runs in the executor: keep it small.
    if len(literal) > MAX_LITERAL:
        raise ValueError("return value too large")
    if literal == "__coderl_nan__":
        return float("nan")
    try:
        return ast.literal_eval(literal)
    except (ValueError, SyntaxError, MemoryError, RecursionError) as e:
        raise ValueError(f"unparseable return value: {type(e).__name__}") from None


def call_match(value: Any, expected: Any, wrapped: bool, checker: str = "default") -> bool:
    """``wrapped`` (APPS stores call outputs wrapped in a list): the return value may also equal the wrapped
    list's only element; with the ``apps`` checker, its first element (the APPS harness's own rule)."""
    got, exp = _listify(value), _listify(expected)
    if got == exp:
        return True
    if not (wrapped and isinstance(exp, list) and exp):
        return False
    return got == exp[0] if (len(exp) == 1 or checker == "apps") else False
