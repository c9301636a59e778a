"""The one problem schema used by training, sampling and evaluation (documented in docs/data.md)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from coderl.sandbox.schema import RequestError, validate_tests


@dataclass
class Problem:
    """A programming problem.

    ``tests`` are the hidden tests (an executor TestSpec); ``example_tests`` are the ones the statement
    shows, the only ones sampling-time filtering and critic sampling may run. A model's program for the
    problem is ``program_prefix + completion`` (HumanEval-style completion) or the completion alone.
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

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Problem:
        for key in ("task_id", "prompt", "tests"):
            if key not in d:
                raise RequestError("missing", field=key)
        known = {f.name for f in fields(cls)}
        p = cls(**{k: v for k, v in d.items() if k in known})
        validate_tests(p.tests, "tests.")
        if p.example_tests is not None:
            validate_tests(p.example_tests, "example_tests.")
        return p


def write_problems(problems: list[Problem], path: str | Path) -> None:
    with open(path, "w", encoding="utf-8") as f:
        for p in problems:
            f.write(json.dumps(p.to_dict()) + "\n")


def read_problems(path: str | Path) -> list[Problem]:
    """Read a problems JSONL file; errors name the file, line and field."""
    out = []
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                d = json.loads(line)
            except json.JSONDecodeError as e:
                raise RequestError(f"not valid JSON ({e.msg})", line=lineno, path=str(path)) from None
            if not isinstance(d, dict):
                raise RequestError("expected a JSON object", line=lineno, path=str(path))
            try:
                out.append(Problem.from_dict(d))
            except RequestError as e:
                raise RequestError(e.reason, field=e.field, line=lineno, path=str(path)) from None
            except TypeError as e:
                raise RequestError(str(e), line=lineno, path=str(path)) from None
    return out
