"""APPS (Hendrycks et al., 2021), the benchmark CodeRL trained and evaluated on.

Two sources, one conversion:

* the original folder format, one folder per problem: ``question.txt``, ``input_output.json``
  (``{"inputs", "outputs", "fn_name"?}``), ``solutions.json`` (ground-truth programs), ``metadata.json``
  (``{"difficulty", "url"}``) and, for call-based problems, ``starter_code.py``. ``path`` may be one problem
  folder, a folder of problem folders, or the APPS root (then ``<root>/<split>/`` is used);
* the Hugging Face dataset ``codeparrot/apps`` through ``datasets`` (its ``{split}.jsonl`` files are read
  directly because the repository's loading script is not supported by current ``datasets`` releases).

Tests. Without ``fn_name`` a problem is stdin/stdout: each input is fed on stdin and the printed output
compared (lists of lines, which APPS sometimes stores, are joined with newlines, as APPS's harness does).
With ``fn_name`` it is call-based: each input is the argument list; APPS stores many expected values wrapped
in a one-element list (``[[false], [true]]``) and its harness accepts the bare value too, so these become
``call`` specs with ``"wrapped": true``. The stdout comparison rule is the executor's ``checker`` (strict
``default``, or the lenient ``apps`` rules for comparability with published APPS/CodeRL numbers), chosen at
evaluation time, not stored in the problem.

Example tests are extracted from the statement text (see :func:`extract_examples`): the "Example(s)" /
"Input" / "Output" sections of Codeforces/Codechef-style statements, the "Sample Input"/"Sample Output"
sections of AtCoder-style ones, and LeetCode-style "Input: a = 1, b = 2" / "Output: 3" lines for call-based
problems. They are what a program may be checked against before submission (n@k filtering, critic sampling).
"""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path
from typing import Any

from coderl.sandbox.schema import RequestError, validate_tests
from coderl.tasks.problem import DataError, Problem

SOURCE = "apps"
HF_ID = "codeparrot/apps"
DIFFICULTIES = ("introductory", "interview", "competition")

# The imports APPS's test harness (and CodeRL's copy of it) puts before every program; LeetCode-style ground
# truth such as ``def f(self, arr: List[int])`` fails with NameError without them. Kept on one line so that
# error line numbers shift by exactly one.
APPS_PRELUDE = ("import sys, time, itertools, collections, math, fractions, random, heapq; "
                "from itertools import accumulate, product, permutations, combinations; "
                "from collections import Counter, OrderedDict, deque, defaultdict, ChainMap; "
                "from functools import lru_cache; "
                "from math import sqrt, sin, cos, tan, ceil, fabs, floor, gcd, exp, log, log2; "
                "from typing import List, Tuple; import numpy as np; from heapq import *\n")


# -- example extraction ---------------------------------------------------------------------------------------

_HEADER = re.compile(r"^\s*-{3,}\s*(.*?)\s*-{3,}\s*$")
_SUB_HEADER = re.compile(r"^\s*(?:sample\s+|example\s+)?(input|output)s?\s*(?:\d+|#\d+)?\s*:?\s*$", re.I)
_EXAMPLE_TITLE = re.compile(r"^(examples?|samples?|sample\s+tests?|sample\s+cases?|test\s+cases?)\s*\d*$", re.I)
_SAMPLE_IO_TITLE = re.compile(r"^sample\s+(input|output)\s*(\d*)$", re.I)


def _sections(lines: list[str]) -> list[tuple[str, list[str]]]:
    """Split a statement at APPS's ``-----Title-----`` header lines: [(title, lines), ...]."""
    out: list[tuple[str, list[str]]] = [("", [])]
    for ln in lines:
        m = _HEADER.match(ln)
        if m:
            out.append((m.group(1), []))
        else:
            out[-1][1].append(ln)
    return out


def _block(lines: list[str]) -> str | None:
    """The text of one sample: from its first non-blank line up to the next blank line."""
    i = 0
    while i < len(lines) and not lines[i].strip():
        i += 1
    j = i
    while j < len(lines) and lines[j].strip():
        j += 1
    if i == j:
        return None
    return "\n".join(ln.rstrip() for ln in lines[i:j]) + "\n"


def _stdio_examples(question: str) -> list[tuple[str, str]]:
    lines = question.replace("\r\n", "\n").split("\n")
    pairs: list[tuple[str, str]] = []
    sample_in: list[str] = []
    sample_out: list[str] = []
    for title, body in _sections(lines):
        m = _SAMPLE_IO_TITLE.match(title)
        if m:  # AtCoder: -----Sample Input 1----- / -----Sample Output 1-----
            b = _block(body)
            if b is not None:
                (sample_in if m.group(1).lower() == "input" else sample_out).append(b)
            continue
        if not _EXAMPLE_TITLE.match(title):
            continue
        # Codeforces/Codechef: one section holding "Input" / "Output" sub-headers, possibly several pairs.
        kind: str | None = None
        current: list[str] = []
        blocks: list[tuple[str, list[str]]] = []
        for ln in body:
            sm = _SUB_HEADER.match(ln)
            if sm:
                if kind is not None:
                    blocks.append((kind, current))
                kind, current = sm.group(1).lower(), []
            elif kind is not None:
                current.append(ln)
        if kind is not None:
            blocks.append((kind, current))
        pending: str | None = None
        for kind, body_lines in blocks:
            b = _block(body_lines)
            if b is None:
                continue
            if kind == "input":
                pending = b
            elif pending is not None:
                pairs.append((pending, b))
                pending = None
    pairs += list(zip(sample_in, sample_out, strict=False))
    return pairs


_LITERAL_WORDS = {"true": "True", "false": "False", "null": "None", "None": "None", "True": "True",
                  "False": "False"}


def parse_literal(text: str) -> Any:
    """A value written in a statement: JSON or a Python literal (true/false/null accepted). Raises ValueError."""
    text = text.strip().rstrip(".").strip()
    try:
        return json.loads(text)
    except (json.JSONDecodeError, RecursionError):
        pass
    # Map JSON words to Python ones outside string literals, then read a Python literal.
    out, i = [], 0
    for m in re.finditer(r"\"(?:\\.|[^\"\\])*\"|'(?:\\.|[^'\\])*'|\b(true|false|null)\b", text):
        out.append(text[i:m.start()])
        out.append(_LITERAL_WORDS[m.group(1)] if m.group(1) else m.group(0))
        i = m.end()
    out.append(text[i:])
    try:
        return ast.literal_eval("".join(out))
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        raise ValueError(f"not a literal: {text[:60]!r}") from None


def _split_top_level(text: str) -> list[str]:
    """Split at commas that are not inside brackets or quotes."""
    parts, depth, quote, cur = [], 0, "", []
    i = 0
    while i < len(text):
        c = text[i]
        if quote:
            cur.append(c)
            if c == "\\" and i + 1 < len(text):
                cur.append(text[i + 1])
                i += 1
            elif c == quote:
                quote = ""
        elif c in "\"'":
            quote = c
            cur.append(c)
        elif c in "([{":
            depth += 1
            cur.append(c)
        elif c in ")]}":
            depth -= 1
            cur.append(c)
        elif c == "," and depth == 0:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(c)
        i += 1
    parts.append("".join(cur))
    return [p.strip() for p in parts if p.strip()]


def _param_names(starter_code: str, fn_name: str) -> list[str] | None:
    m = re.search(rf"def\s+{re.escape(fn_name)}\s*\((.*?)\)\s*(->[^:]*)?:", starter_code, re.S)
    if not m:
        return None
    names = []
    for p in _split_top_level(m.group(1)):
        name = p.split(":")[0].split("=")[0].strip().lstrip("*")
        if name and name != "self":
            names.append(name)
    return names


def _call_args(text: str, params: list[str] | None) -> list[Any] | None:
    """Arguments from "a = [1,2], k = 3" (reordered to the signature when the names match) or "[1,2], 3"."""
    pieces = _split_top_level(text)
    named: list[tuple[str, Any]] = []
    for piece in pieces:
        m = re.match(r"^([A-Za-z_]\w*)\s*=\s*(.+)$", piece, re.S)
        try:
            named.append((m.group(1), parse_literal(m.group(2))) if m else ("", parse_literal(piece)))
        except ValueError:
            return None
    if params and all(n for n, _ in named) and sorted(n for n, _ in named) == sorted(params):
        by_name = dict(named)
        return [by_name[p] for p in params]
    return [v for _, v in named]


def _call_examples(question: str, fn_name: str, starter_code: str) -> list[tuple[list[Any], Any]]:
    params = _param_names(starter_code, fn_name)
    text = question.replace("\r\n", "\n")
    out: list[tuple[list[Any], Any]] = []
    # LeetCode: "Input: nums = [1,2], k = 3" followed (possibly after blank lines) by "Output: 4".
    for m in re.finditer(r"^\s*Input\s*:\s*(.+?)\s*\n\s*Output\s*:\s*(.+?)\s*$", text, re.M | re.I):
        args = _call_args(m.group(1), params)
        try:
            value = parse_literal(m.group(2))
        except ValueError:
            continue
        if args is not None:
            out.append((args, value))
    if out:
        return out
    # Codewars-style one-liners: "fn(1, 2) == 3", "fn(1, 2) => 3", "fn(1, 2) returns 3".
    pat = rf"^\s*(?:>>>\s*)?{re.escape(fn_name)}\s*\((.*)\)\s*(?:==|=>|->|➞|returns?|should\s+return)\s*(.+?)\s*$"
    for m in re.finditer(pat, text, re.M):
        args = _call_args(m.group(1), None) if m.group(1).strip() else []
        try:
            value = parse_literal(m.group(2))
        except ValueError:
            continue
        if args is not None:
            out.append((args, value))
    return out


def extract_examples(question: str, fn_name: str | None = None, starter_code: str = "") -> dict[str, Any] | None:
    """The example tests shown in an APPS statement, as a TestSpec (None when the statement shows none).

    stdio problems: Input/Output pairs from the "Example(s)" section (sub-headed "Input"/"Output") or from
    "Sample Input N"/"Sample Output N" sections; each sample runs up to the first blank line. Call-based
    problems: "Input: x = ..., y = ..." / "Output: ..." lines, or ``fn(args) == value`` lines; arguments are
    put in the starter code's parameter order and outputs are stored APPS-style (wrapped).
    """
    if fn_name:
        calls = _call_examples(question, fn_name, starter_code)
        if not calls:
            return None
        return {"type": "call", "fn_name": fn_name, "inputs": [a for a, _ in calls],
                "outputs": [[v] for _, v in calls], "wrapped": True}
    pairs = _stdio_examples(question)
    if not pairs:
        return None
    return {"type": "stdio", "inputs": [i for i, _ in pairs], "outputs": [o for _, o in pairs]}


# -- conversion -----------------------------------------------------------------------------------------------

def _joined(v: Any) -> Any:
    return "\n".join(str(x) for x in v) if isinstance(v, list) else v


def tests_from_io(io: Any, where: str) -> dict[str, Any]:
    """An executor TestSpec from APPS's ``input_output`` object; DataError naming the field when malformed."""
    if not isinstance(io, dict):
        raise DataError(f"expected an object, got {type(io).__name__}", path=where)
    for key in ("inputs", "outputs"):
        if not isinstance(io.get(key), list):
            raise DataError("missing or not a list", field=key, path=where)
    fn_name = io.get("fn_name")
    if fn_name is not None and not (isinstance(fn_name, str) and fn_name.isidentifier()):
        raise DataError(f"expected a function name, got {fn_name!r}", field="fn_name", path=where)
    if fn_name:
        spec = {"type": "call", "fn_name": fn_name, "inputs": io["inputs"], "outputs": io["outputs"],
                "wrapped": True}
    else:
        spec = {"type": "stdio", "inputs": [_joined(x) for x in io["inputs"]],
                "outputs": [_joined(x) for x in io["outputs"]]}
    try:
        validate_tests(spec, "")
    except RequestError as e:
        raise DataError(e.reason, field=e.field, path=where) from None
    return spec


def make_problem(task_id: str, question: str, io: Any, solutions: Any, difficulty: str, starter_code: str,
                 url: str = "", where: str = "<record>", examples: bool = True, io_where: str | None = None,
                 prelude: str = APPS_PRELUDE) -> Problem:
    """One APPS problem from its parts (shared by the folder and the HF loaders).

    ``where`` / ``io_where`` name the record and its input_output data in error messages.
    """
    tests = tests_from_io(io, io_where or where)
    if not isinstance(solutions, list) or not all(isinstance(s, str) for s in solutions):
        raise DataError("expected a list of program strings", field="solutions", path=where)
    ex = extract_examples(question, tests.get("fn_name"), starter_code) if examples else None
    if ex is not None:
        try:
            validate_tests(ex, "example_tests.")
        except RequestError:
            ex = None
    return Problem(task_id=task_id, prompt=question, tests=tests, starter_code=starter_code, example_tests=ex,
                   solutions=solutions, difficulty=difficulty, source=SOURCE,
                   entry_point=tests.get("fn_name"), metadata={"url": url} if url else {}, prelude=prelude)


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise DataError(f"not valid JSON ({e.msg} at column {e.colno})", line=e.lineno, path=str(path)) from None
    except UnicodeDecodeError as e:
        raise DataError(f"not UTF-8 text ({e.reason})", path=str(path)) from None


def load_problem_dir(folder: str | Path, task_id: str | None = None, examples: bool = True,
                     prelude: str = APPS_PRELUDE) -> Problem | None:
    """One APPS problem folder; None when it has no ``input_output.json`` (some APPS training problems)."""
    folder = Path(folder)
    qpath = folder / "question.txt"
    if not qpath.is_file():
        raise DataError("missing question.txt", path=str(folder))
    iopath = folder / "input_output.json"
    if not iopath.is_file():
        return None
    try:
        question = qpath.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise DataError(f"not UTF-8 text ({e.reason})", path=str(qpath)) from None
    io = _read_json(iopath)
    sol_path = folder / "solutions.json"
    solutions = _read_json(sol_path) if sol_path.is_file() else []
    if not isinstance(solutions, list) or not all(isinstance(s, str) for s in solutions):
        raise DataError("expected a list of program strings", path=str(sol_path))
    meta_path = folder / "metadata.json"
    meta = _read_json(meta_path) if meta_path.is_file() else {}
    if not isinstance(meta, dict):
        raise DataError("expected an object", path=str(meta_path))
    difficulty = meta.get("difficulty", "")
    if not isinstance(difficulty, str):
        raise DataError("expected a string", field="difficulty", path=str(meta_path))
    starter_path = folder / "starter_code.py"
    starter = starter_path.read_text(encoding="utf-8") if starter_path.is_file() else ""
    return make_problem(task_id or f"APPS/{folder.name}", question, io, solutions, difficulty, starter,
                        str(meta.get("url", "")), str(sol_path), examples, io_where=str(iopath), prelude=prelude)


SPLITS = ("train", "test")


def _problem_dirs(path: Path, split: str | None) -> tuple[list[Path], str]:
    """The problem folders of ``split`` under ``path`` and their task id prefix. The id does not depend on how the
    path is written: ``APPS/``, ``APPS/test`` and ``APPS/test/0001`` all give ``APPS/test/0001``."""
    path = path.resolve()
    if (path / "question.txt").is_file():  # one problem folder
        parent = path.parent.name
        return [path], f"APPS/{parent}/" if parent in SPLITS else "APPS/"
    if path.name in SPLITS and not (path / path.name).is_dir():  # a split folder
        if split is not None and split != path.name:
            raise DataError(f"this is APPS's {path.name!r} split folder, but split {split!r} was asked for; give "
                            f"the APPS root ({path.parent}) to use both splits", path=str(path))
        return _folders(path), f"APPS/{path.name}/"
    split = split or "test"
    if (path / split).is_dir():
        return _folders(path / split), f"APPS/{split}/"
    present = sorted(d.name for d in path.iterdir() if d.is_dir() and d.name in SPLITS)
    if present:
        raise DataError(f"no split {split!r} here (it has: {', '.join(present)})", path=str(path))
    return _folders(path), "APPS/"


def _folders(path: Path) -> list[Path]:
    dirs = sorted(d for d in path.iterdir() if d.is_dir() and (d / "question.txt").is_file())
    if not dirs:
        raise DataError("no APPS problem folders (folders with question.txt) found", path=str(path))
    return dirs


def _hf_rows(hf_id: str, split: str) -> list[dict[str, Any]]:
    from coderl.tasks.rows import dataset_rows

    try:
        # codeparrot/apps ships {train,test}.jsonl next to a loading script that `datasets` >= 4 refuses to
        # run; reading the JSONL files directly works with every version.
        return dataset_rows("json", split, data_files={split: f"hf://datasets/{hf_id}/{split}.jsonl"})
    except DataError:  # not that layout (another mirror with parquet files): let `datasets` resolve it
        return dataset_rows(hf_id, split)


def _json_field(row: dict[str, Any], key: str, where: str, default: Any) -> Any:
    v = row.get(key)
    if v is None or v == "":
        return default
    if not isinstance(v, str):
        return v
    try:
        return json.loads(v)
    except json.JSONDecodeError as e:
        raise DataError(f"not valid JSON ({e.msg})", field=key, path=where) from None


def problems_from_hf_rows(rows: list[dict[str, Any]], split: str, hf_id: str = HF_ID, examples: bool = True,
                          prelude: str = APPS_PRELUDE) -> list[Problem]:
    """Rows of the HF dataset (``problem_id, question, solutions, input_output, difficulty, url, starter_code``;
    ``solutions`` and ``input_output`` are JSON strings) as Problems; rows without tests are skipped."""
    out = []
    for i, row in enumerate(rows):
        pid = row.get("problem_id", i)
        where = f"{hf_id}[{split}][{i}]"
        io = _json_field(row, "input_output", where, None)
        if io is None:
            continue
        question = row.get("question")
        if not isinstance(question, str):
            raise DataError("missing or not a string", field="question", path=where)
        tid = f"APPS/{split}/{int(pid):04d}" if isinstance(pid, int) or str(pid).isdigit() else f"APPS/{split}/{pid}"
        out.append(make_problem(tid, question, io, _json_field(row, "solutions", where, []),
                                str(row.get("difficulty") or ""), str(row.get("starter_code") or ""),
                                str(row.get("url") or ""), where, examples, prelude=prelude))
    return out


def load_apps(path: str | Path | None = None, split: str | None = "test",
              difficulties: tuple[str, ...] | None = None, hf_id: str = HF_ID, limit: int | None = None,
              examples: bool = True, harness_imports: bool = True) -> list[Problem]:
    """Load APPS problems: from the original folder format (the root, a split folder or one problem folder), from
    a local file of HF rows (``codeparrot/apps``'s ``{split}.jsonl``, or parquet) or a local copy of a hub
    repository, from a hub id given as ``path``, or, when ``path`` is None, from ``hf_id`` on the HF hub.

    ``split`` None takes the split of a split folder given as ``path`` (else ``test``); a split folder of another
    split is an error, never silently the wrong split. Problems without tests (a few APPS training problems) are
    skipped. ``difficulties`` keeps only those levels; ``limit`` keeps the first N problems (after filtering), in
    folder / problem-id order. ``harness_imports`` sets each problem's ``prelude`` to the imports APPS's harness
    adds (:data:`APPS_PRELUDE`).
    """
    from coderl.tasks.rows import local_rows
    from coderl.utils.hub import looks_local

    prelude = APPS_PRELUDE if harness_imports else ""
    for d in difficulties or ():
        if d not in DIFFICULTIES:
            raise DataError(f"unknown APPS difficulty {d!r}; expected one of {', '.join(DIFFICULTIES)}")
    # by its text: the CLI hands over a Path even for a hub id
    if path is None or not looks_local(str(path)):
        source = hf_id if path is None else str(path)
        split = split or "test"
        problems = problems_from_hf_rows(_hf_rows(source, split), split, source, examples, prelude)
    else:
        root = Path(path)
        if not root.exists():
            raise DataError("no such file or directory (expected APPS's folder tree, a file of its HF rows, or a "
                            "hub id)", path=str(root))
        tree = any(next(root.glob(pattern), None) for pattern in ("question.txt", "*/question.txt",
                                                                  "*/*/question.txt"))
        rows = None if tree else local_rows(root, split or "test")
        if rows is not None:
            split = split or "test"
            problems = problems_from_hf_rows([r for _, r in rows], split, str(root), examples, prelude)
        elif not root.is_dir():
            raise DataError("not a directory or a file of rows (expected APPS problem folders, or .jsonl / .json / "
                            ".parquet rows)", path=str(root))
        else:
            dirs, prefix = _problem_dirs(root, split)
            problems = []
            for d in dirs:
                p = load_problem_dir(d, prefix + d.name, examples, prelude)
                if p is not None:
                    problems.append(p)
    if difficulties:
        problems = [p for p in problems if p.difficulty in difficulties]
    if limit is not None:
        problems = problems[:limit]
    if not problems:
        raise DataError(f"no APPS problems with tests found in split {split!r}",
                        path=str(path) if path is not None else hf_id)
    return problems
