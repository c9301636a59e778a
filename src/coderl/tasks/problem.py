"""The one problem schema used by training, sampling and evaluation (documented in docs/data.md)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from coderl.sandbox.schema import RequestError, validate_tests
from coderl.utils.jsonl import iter_jsonl as _iter_jsonl


class DataError(RequestError):
    """A malformed dataset, problems or samples file. The message names the file, the line and the field.

    A subclass of the executor's :class:`RequestError` so that every "bad input file" error in coderl
    prints the same way (``path:line: field 'x': reason``) and the CLI maps all of them to exit code 2.
    """


# Field name -> (accepted types, description for the error message). ``tests`` and ``example_tests`` are
# checked by the executor's own TestSpec validator so that a problem file can never hold a spec the
# executor would reject later, in the middle of an evaluation.
_FIELD_TYPES: dict[str, tuple[tuple[type, ...], str]] = {
    "task_id": ((str,), "a string"),
    "prompt": ((str,), "a string"),
    "starter_code": ((str,), "a string"),
    "difficulty": ((str,), "a string"),
    "source": ((str,), "a string"),
    "entry_point": ((str, type(None)), "a string or null"),
    "program_prefix": ((str,), "a string"),
    "prelude": ((str,), "a string"),
    "metadata": ((dict,), "an object"),
    "solutions": ((list,), "a list of strings"),
}


@dataclass
class Problem:
    """A programming problem.

    ``tests`` are the hidden tests (an executor TestSpec); ``example_tests`` are the ones the statement
    shows, the only ones sampling-time filtering and critic sampling may run. A model's program for the
    problem is ``program_prefix + completion`` (HumanEval-style completion) or the completion alone; the
    ``solutions`` follow the same convention, so ``problem.program(solution)`` is always a whole program.

    ``prelude`` is code the benchmark's own harness runs before every program and the model never sees
    (APPS's harness imports ``typing.List``, ``math``, ``heapq``... and its ground-truth solutions rely on
    it). It is one line, so verdict line numbers shift by exactly one; :meth:`program` prepends it.
    """

    task_id: str
    prompt: str
    tests: dict[str, Any]
    starter_code: str = ""
    example_tests: dict[str, Any] | None = None
    solutions: list[str] = field(default_factory=list)
    difficulty: str = ""
    source: str = ""
    entry_point: str | None = None
    program_prefix: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)
    prelude: str = ""

    @property
    def completion_style(self) -> bool:
        """True when models continue the prompt's code (HumanEval) rather than write a whole program."""
        return bool(self.program_prefix)

    @property
    def test_type(self) -> str:
        return str(self.tests["type"])

    def program(self, completion: str) -> str:
        """The program that is run for a model completion (or a ground-truth solution) of this problem."""
        return self.prelude + self.program_prefix + completion

    def request(self, id: str, program: str, *, examples: bool = False, **settings: Any) -> dict[str, Any]:
        """The execution request (a :class:`coderl.sandbox.schema.Request` as a dict) that runs ``program``
        (usually :meth:`program` of a completion) against this problem's hidden tests, or its example tests with
        ``examples``; ``settings`` are the request's own ``timeout`` / ``checker``. The one place a problem
        becomes a request."""
        tests = self.example_tests if examples else self.tests
        if tests is None:
            raise ValueError(f"{self.task_id}: no example tests")
        return {"id": id, "program": program, "tests": tests, **{k: v for k, v in settings.items() if v is not None}}

    @property
    def prelude_lines(self) -> int:
        """How many lines :meth:`program` adds before the model's code (to map error lines back)."""
        return self.prelude.count("\n")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Problem:
        """Build and validate a problem; a wrong field raises :class:`RequestError` naming it."""
        if not isinstance(d, dict):
            raise RequestError("expected a JSON object")
        for key in ("task_id", "prompt", "tests"):
            if key not in d:
                raise RequestError("missing", field=key)
        for key, (types, what) in _FIELD_TYPES.items():
            if key in d and (not isinstance(d[key], types) or isinstance(d[key], bool)):
                raise RequestError(f"expected {what}, got {type(d[key]).__name__}", field=key)
        for i, s in enumerate(d.get("solutions") or []):
            if not isinstance(s, str):
                raise RequestError(f"expected a string, got {type(s).__name__}", field=f"solutions[{i}]")
        known = {f.name for f in fields(cls)}
        p = cls(**{k: v for k, v in d.items() if k in known})
        validate_tests(p.tests, "tests.")
        if p.example_tests is not None:
            validate_tests(p.example_tests, "example_tests.")
        return p


def write_problems(problems: list[Problem], path: str | Path) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        for p in problems:
            f.write(json.dumps(p.to_dict()) + "\n")


def iter_jsonl(path: str | Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield ``(line number, object)`` for every non-blank line of a JSONL file (``.gz`` is decompressed);
    an unusable line raises a :class:`DataError` naming the file and line, so loaders only check fields."""
    return _iter_jsonl(path, DataError)


def read_problems(path: str | Path) -> list[Problem]:
    """Read a problems JSONL file; errors name the file, line and field. Task ids must be unique."""
    out = []
    seen: dict[str, int] = {}
    for lineno, d in iter_jsonl(path):
        try:
            p = Problem.from_dict(d)
        except RequestError as e:
            raise DataError(e.reason, field=e.field, line=lineno, path=str(path)) from None
        except TypeError as e:
            raise DataError(str(e), line=lineno, path=str(path)) from None
        if p.task_id in seen:
            raise DataError(f"duplicate task_id {p.task_id!r} (first on line {seen[p.task_id]})",
                            field="task_id", line=lineno, path=str(path))
        seen[p.task_id] = lineno
        out.append(p)
    return out
