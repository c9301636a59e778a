"""The run directory's plumbing shared by the recipe's stages: file names, the guard that refuses to replace an
earlier run's files unless asked (``--resume`` / ``--overwrite``), and JSONL records a killed stage may have torn."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from coderl.tasks.problem import DataError

Log = Callable[[str], None]

# The files and directories a run keeps in its ``out`` (the layout: coderl.pipelines.stages).
SAMPLES, BASELINE, SCORED = "samples.jsonl", "baseline.jsonl", "scored.jsonl"
CRITIC_DIR, SFT_DIR, RL_DIR, REPAIR_DIR = "critic", "sft", "rl", "repair"


class StageError(RuntimeError):
    """A stage cannot run with what it was given (a missing earlier stage, mismatched files); says what to do."""


def quiet(_msg: str) -> None:
    """The default ``log`` of a stage called as a library function: says nothing."""


def verdicts_path(samples: str | Path) -> Path:
    """Where the exec stage writes the verdicts of a samples file: ``x.jsonl`` -> ``x.verdicts.jsonl``."""
    p = Path(samples)
    return p.with_name(p.name.removesuffix(".jsonl") + ".verdicts.jsonl")


def meta_path(samples: str | Path) -> Path:
    """The settings a samples file was drawn with: ``x.jsonl`` -> ``x.jsonl.meta.json``."""
    p = Path(samples)
    return p.with_name(p.name + ".meta.json")


def read_records(path: Path) -> list[tuple[int, dict[str, Any]]]:
    """``(line, record)`` of a JSONL file an interrupted stage may have left with a torn last line."""
    out: list[tuple[int, dict[str, Any]]] = []
    with open(path, encoding="utf-8") as f:
        lines = f.read().split("\n")
    for i, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            if i >= len(lines) - 1:  # the torn last line of a killed run: dropped, redone
                break
            raise DataError("not valid JSON", line=i, path=str(path)) from None
        if not isinstance(rec, dict):
            raise DataError("expected a JSON object", line=i, path=str(path))
        out.append((i, rec))
    return out


def rewrite_records(path: Path, records: list[dict[str, Any]]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            for r in records:
                f.write(json.dumps(r) + "\n")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def need_file(path: Path, what: str, how: str) -> None:
    if path.is_dir():
        raise StageError(f"{path}: is a directory, expected a file ({what})")
    if not path.is_file():
        raise StageError(f"{path}: no such file ({what}); {how}")


def check_outputs(stage: str, paths: list[Path], resume: bool, overwrite: bool) -> list[Path]:
    """Refuse to replace what an earlier run of ``stage`` wrote (finished or partial) unless asked. Returns the
    paths ``--overwrite`` removes: :func:`remove_outputs` once the stage's inputs have been checked, so that a
    run refused for a bad config loses nothing."""
    if resume and overwrite:
        raise StageError(f"{stage}: --resume keeps what an earlier run wrote and --overwrite removes it; give one")
    existing = [p for p in paths if p.exists()]
    if existing and not resume and not overwrite:
        raise StageError(f"{stage}: an earlier run's files are in the way: {', '.join(map(str, existing))}; pass "
                         "--resume to continue or keep that run, or --overwrite to replace it")
    return existing if overwrite else []


def remove_outputs(paths: list[Path], stage: str, log: Log) -> None:
    for p in paths:
        if p.is_dir():
            shutil.rmtree(p)
        else:
            p.unlink(missing_ok=True)
    if paths:
        log(f"{stage}: --overwrite: removed {', '.join(map(str, paths))}")


def describe_changes(old: dict[str, Any], new: dict[str, Any]) -> str:
    from coderl.train.checkpoint import flat

    a, b = flat(old), flat(new)
    return ", ".join(f"{k}: {a.get(k)!r} -> {b.get(k)!r}" for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k))
