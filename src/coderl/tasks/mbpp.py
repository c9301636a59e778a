"""MBPP (Austin et al., 2021): 974 short Python problems, each with three assert tests.

Sources: the original ``mbpp.jsonl`` (fields ``text, code, task_id, test_list, test_setup_code,
challenge_test_list``) from a local path, or the Hugging Face dataset through ``datasets`` when no path is
given (``google-research-datasets/mbpp``, config ``full``; the ``sanitized`` config's ``prompt`` and
``test_imports`` fields are accepted too).

Splits are the standard ones, by task id: 1-10 ``prompt`` (few-shot examples), 11-510 ``test``,
511-600 ``validation``, 601-974 ``train``. ``all`` keeps everything.

The statement is the standard one from the MBPP paper: "You are an expert Python programmer, and here is
your task: {text} Your code should pass these tests:\\n\\n{tests}\\n". Because the statement shows the three
tests, they are both the hidden tests and the example tests (n@k filtering on them is therefore trivial for
MBPP, which is faithful to the benchmark). The ``challenge_test_list`` is added to the hidden tests only with
``challenge_tests=True``; published MBPP numbers do not use it.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import Any

from coderl.tasks.problem import DataError, Problem

SOURCE = "mbpp"
HF_ID = "google-research-datasets/mbpp"
SPLITS: dict[str, tuple[int, int]] = {"prompt": (1, 10), "test": (11, 510), "validation": (511, 600),
                                      "train": (601, 974)}
FEW_SHOT_IDS = (2, 3, 4)  # the prompt-split tasks used for the standard 3-shot prompt

PROMPT_TEMPLATE = "You are an expert Python programmer, and here is your task: {text} Your code should pass these " \
                  "tests:\n\n{tests}\n"


def split_of(task_id: int) -> str | None:
    """The standard split a task id belongs to (None outside 1-974)."""
    for name, (lo, hi) in SPLITS.items():
        if lo <= task_id <= hi:
            return name
    return None


def _entry_point(code: str, tests: list[str]) -> str | None:
    """The function the tests call: a name both defined at top level in the reference code and called first."""
    try:
        defined = [n.name for n in ast.parse(code).body if isinstance(n, ast.FunctionDef | ast.ClassDef)]
    except SyntaxError:
        defined = []
    for t in tests:
        for name in re.findall(r"([A-Za-z_]\w*)\s*\(", t):
            if name in defined:
                return name
    return defined[-1] if defined else None


def problem_from_record(d: dict[str, Any], lineno: int | None = None, path: str = "<record>",
                        challenge_tests: bool = False) -> Problem:
    """One MBPP record (original or HF ``full``/``sanitized`` layout) as a Problem."""

    def bad(msg: str, key: str) -> DataError:
        return DataError(msg, field=key, line=lineno, path=path)

    tid = d.get("task_id")
    if not isinstance(tid, int) or isinstance(tid, bool):
        raise bad(f"expected an integer task id, got {type(tid).__name__}" if "task_id" in d else "missing",
                  "task_id")
    text_key = "text" if "text" in d else "prompt"
    text = d.get(text_key)
    if not isinstance(text, str):
        raise bad("missing (expected the problem text)" if text is None else "expected a string", text_key)
    code = d.get("code", "")
    if not isinstance(code, str):
        raise bad("expected a string", "code")
    lists: dict[str, list[str]] = {}
    for key in ("test_list", "challenge_test_list", "test_imports"):
        v = d.get(key) or []
        if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
            raise bad("expected a list of strings", key)
        lists[key] = v
    if not lists["test_list"]:
        raise bad("missing or empty (expected the assert statements)", "test_list")
    # MBPP's set-up code builds test inputs (and imports) that the program's functions use too, so it runs in
    # the program's process as fixtures; the asserts themselves are judged outside it.
    fixtures = d.get("test_setup_code") or ""
    if not isinstance(fixtures, str):
        raise bad("expected a string", "test_setup_code")
    if lists["test_imports"]:
        fixtures = "\n".join(lists["test_imports"]) + ("\n" + fixtures if fixtures else "")
    hidden = lists["test_list"] + (lists["challenge_test_list"] if challenge_tests else [])
    prompt = PROMPT_TEMPLATE.format(text=text.strip(), tests="\n".join(lists["test_list"]))
    return Problem(
        task_id=f"Mbpp/{tid}",
        prompt=prompt,
        tests={"type": "assert", "fixtures": fixtures, "asserts": hidden},
        example_tests={"type": "assert", "fixtures": fixtures, "asserts": list(lists["test_list"])},
        solutions=[code.replace("\r\n", "\n")] if code else [],
        source=SOURCE,
        entry_point=_entry_point(code, lists["test_list"]),
        metadata={"split": split_of(tid) or "", "text": text,
                  "challenge_tests": lists["challenge_test_list"]},
    )


def _hub_rows(hf_id: str, split: str, config: str) -> list[tuple[int | None, dict[str, Any]]]:
    from coderl.tasks.rows import dataset_rows

    names = list(SPLITS) if split == "all" else [split]
    return [(None, r) for name in names for r in dataset_rows(hf_id, name, config)]


def _local_rows(path: Path, split: str, config: str) -> list[tuple[int | None, dict[str, Any]]]:
    from coderl.tasks.rows import local_rows, read_row_file

    if path.is_file():  # the original mbpp.jsonl, or a file of HF rows (sanitized-mbpp.json, a parquet shard)
        return read_row_file(path)
    rows = []
    for name in (list(SPLITS) if split == "all" else [split]):
        found = local_rows(path, name, config)
        if found is None:
            raise DataError(f"no split {name!r} here (expected MBPP rows: {name}.jsonl, a {name}-*.parquet shard "
                            "or a copy of the hub repository)", path=str(path))
        rows += found
    return rows


def load_mbpp(path: str | Path | None = None, split: str = "test", hf_id: str = HF_ID, hf_config: str = "full",
              challenge_tests: bool = False) -> list[Problem]:
    """Load an MBPP split from ``path``: the original ``mbpp.jsonl``, a file of HF rows (the ``sanitized`` layout
    too, e.g. ``sanitized-mbpp.json``, or parquet), a local copy of the hub repository, or a hub id; from the HF
    hub (``hf_id``, config ``hf_config``) when ``path`` is None. Problems are filtered to ``split`` by task id."""
    from coderl.utils.hub import looks_local

    if split not in SPLITS and split != "all":
        raise DataError(f"unknown MBPP split {split!r}; expected one of {', '.join(SPLITS)}, all")
    where = str(path) if path is not None else hf_id
    # by its text: the CLI hands over a Path even for a hub id
    if path is None or not looks_local(str(path)):
        rows = _hub_rows(where, split, hf_config)
    elif not Path(path).exists():
        raise DataError("no such file or directory (expected mbpp.jsonl, a file of HF rows, or a hub id)",
                        path=where)
    else:
        rows = _local_rows(Path(path), split, hf_config)
    problems, seen = [], set()
    for lineno, d in rows:
        p = problem_from_record(d, lineno, where, challenge_tests)
        if split != "all" and p.metadata["split"] != split:
            continue
        if p.task_id in seen:
            raise DataError(f"duplicate task_id {p.task_id!r}", field="task_id", line=lineno, path=where)
        seen.add(p.task_id)
        problems.append(p)
    if not problems:
        raise DataError(f"no problems in split {split!r}", path=where)
    return problems


def few_shot_examples(problems: list[Problem]) -> list[Problem]:
    """The standard 3-shot examples (prompt-split tasks 2, 3, 4) from a list loaded with ``split='prompt'``."""
    by_id = {p.task_id: p for p in problems}
    missing = [i for i in FEW_SHOT_IDS if f"Mbpp/{i}" not in by_id]
    if missing:
        raise DataError(f"few-shot tasks {missing} not in the loaded problems (load split 'prompt' or 'all')")
    return [by_id[f"Mbpp/{i}"] for i in FEW_SHOT_IDS]
