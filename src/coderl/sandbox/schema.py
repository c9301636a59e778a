"""Request and result records of the executor, and their validation.

A request is one program with its tests::

    {"id": str, "program": str, "tests": TestSpec, "timeout"?: float, "checker"?: "default"|"apps"}

TestSpec is one of::

    {"type": "assert", "setup"?: str, "fixtures"?: str, "asserts": [str, ...]}
    {"type": "stdio",  "inputs": [str, ...], "outputs": [str, ...]}
    {"type": "call",   "fn_name": str, "inputs": [[arg, ...], ...], "outputs": [value, ...], "wrapped"?: bool}

``setup`` is test code run by the judge only (it may hold expected values: HumanEval's ``check``);
``fixtures`` is code run in the program's process after the program (test inputs and imports the program
may rely on: MBPP's ``test_setup_code`` and ``test_imports``), so it must hold neither expected values nor
functions the asserts check answers with.

``wrapped`` (APPS convention) lets ``outputs[i]`` also match a return value equal to its only element (with
the ``apps`` checker: its first element, as APPS's harness does).

A result is::

    {"id", "outcome", "detail", "tests", "pass_fraction", "error_line", "seconds"}
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

from coderl.utils.jsonl import iter_jsonl

OUTCOMES = ("passed", "failed_test", "runtime_error", "compile_error")
"""A program's outcome, best first: the one list of them (rewards, critic classes and reports use it)."""
OUTCOME_CLASSES = OUTCOMES[::-1]
"""The same outcomes worst first: the order of the critic's classes and of reports' columns."""
TEST_TYPES = ("assert", "stdio", "call")
CHECKERS = ("default", "apps")


class RequestError(ValueError):
    """A malformed request; the message names the field (and the file and line when known)."""

    def __init__(self, message: str, field: str | None = None, line: int | None = None,
                 path: str | None = None):
        self.field, self.line, self.path, self.reason = field, line, path, message
        where = ""
        if path is not None:
            where += f"{path}:"
        if line is not None:
            where += f"{line}:"
        if field is not None:
            where += f" field '{field}':"
        super().__init__(f"{where} {message}".strip())


@dataclass
class Request:
    id: str
    program: str
    tests: dict[str, Any]
    timeout: float | None = None
    checker: str | None = None

    @property
    def n_tests(self) -> int:
        t = self.tests
        return len(t["asserts"]) if t["type"] == "assert" else len(t["inputs"])

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"id": self.id, "program": self.program, "tests": self.tests}
        if self.timeout is not None:
            d["timeout"] = self.timeout
        if self.checker is not None:
            d["checker"] = self.checker
        return d


@dataclass
class Result:
    id: str
    outcome: str
    detail: str
    tests: list[str] = field(default_factory=list)
    pass_fraction: float = 0.0
    error_line: int | None = None
    seconds: float = 0.0

    @property
    def passed(self) -> bool:
        return self.outcome == "passed"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Result:
        return cls(**{k: d[k] for k in ("id", "outcome", "detail", "tests", "pass_fraction", "error_line",
                                        "seconds")})


def _need(d: dict, key: str, types: type | tuple[type, ...], prefix: str, what: str) -> Any:
    if key not in d:
        raise RequestError(f"missing (expected {what})", field=prefix + key)
    v = d[key]
    if not isinstance(v, types) or isinstance(v, bool) and bool not in (
        types if isinstance(types, tuple) else (types,)
    ):
        raise RequestError(f"expected {what}, got {type(v).__name__}", field=prefix + key)
    return v


def _str_list(d: dict, key: str, prefix: str) -> list[str]:
    v = _need(d, key, list, prefix, "a list of strings")
    for i, s in enumerate(v):
        if not isinstance(s, str):
            raise RequestError(f"expected a string, got {type(s).__name__}", field=f"{prefix}{key}[{i}]")
    return v


def validate_tests(t: Any, prefix: str = "tests.") -> dict[str, Any]:
    """Check a TestSpec; returns it unchanged or raises RequestError naming the field."""
    if not isinstance(t, dict):
        raise RequestError("expected an object (a TestSpec)", field=prefix.rstrip("."))
    typ = _need(t, "type", str, prefix, "one of " + "|".join(TEST_TYPES))
    if typ not in TEST_TYPES:
        raise RequestError(f"unknown test type {typ!r}; expected one of {', '.join(TEST_TYPES)}",
                           field=prefix + "type")
    if typ == "assert":
        asserts = _str_list(t, "asserts", prefix)
        if not asserts:
            raise RequestError("needs at least one assert", field=prefix + "asserts")
        for key in ("setup", "fixtures"):
            if key in t and not isinstance(t[key], str):
                raise RequestError("expected a string", field=prefix + key)
    else:
        inputs = _need(t, "inputs", list, prefix, "a list")
        outputs = _need(t, "outputs", list, prefix, "a list")
        if not inputs:
            raise RequestError("needs at least one test", field=prefix + "inputs")
        if len(inputs) != len(outputs):
            raise RequestError(f"{len(inputs)} inputs but {len(outputs)} outputs", field=prefix + "outputs")
        if typ == "stdio":
            _str_list(t, "inputs", prefix)
            _str_list(t, "outputs", prefix)
        else:
            _need(t, "fn_name", str, prefix, "a function name")
            for i, args in enumerate(inputs):
                if not isinstance(args, list):
                    raise RequestError("expected a list of arguments", field=f"{prefix}inputs[{i}]")
            if "wrapped" in t and not isinstance(t["wrapped"], bool):
                raise RequestError("expected true or false", field=prefix + "wrapped")
    return t


def parse_request(d: Any) -> Request:
    if not isinstance(d, dict):
        raise RequestError("expected a JSON object")
    rid = d.get("id")
    if rid is None:
        raise RequestError("missing (expected a string id)", field="id")
    if not isinstance(rid, (str, int)) or isinstance(rid, bool):
        raise RequestError(f"expected a string, got {type(rid).__name__}", field="id")
    program = _need(d, "program", str, "", "the program source as a string")
    tests = validate_tests(d.get("tests"), "tests.") if "tests" in d else None
    if tests is None:
        raise RequestError("missing (expected a TestSpec object)", field="tests")
    timeout = d.get("timeout")
    if timeout is not None and (not isinstance(timeout, (int, float)) or isinstance(timeout, bool)
                                or timeout <= 0):
        raise RequestError("expected a positive number of seconds", field="timeout")
    checker = d.get("checker")
    if checker is not None and checker not in CHECKERS:
        raise RequestError(f"expected one of {', '.join(CHECKERS)}", field="checker")
    return Request(str(rid), program, tests, float(timeout) if timeout is not None else None, checker)


def read_requests(path: str) -> list[Request]:
    """Parse and validate every line of a requests JSONL file before anything runs."""
    out: list[Request] = []
    seen: dict[str, int] = {}
    for lineno, d in iter_jsonl(path, RequestError):
        try:
            req = parse_request(d)
        except RequestError as e:
            raise RequestError(e.reason, field=e.field, line=lineno, path=path) from None
        if req.id in seen:
            raise RequestError(f"duplicate id {req.id!r} (first on line {seen[req.id]})", field="id",
                               line=lineno, path=path)
        seen[req.id] = lineno
        out.append(req)
    return out


def iter_results(path: str) -> Iterator[Result]:
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.strip():
                yield Result.from_dict(json.loads(line))
