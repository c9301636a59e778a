"""Random bugs (mutations of a reference), habitual bugs, and the SFT data built from them."""

from __future__ import annotations

import io
import keyword
import random
import tokenize
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import NamedTuple

from coderl.tasks.family.core import FN_NAME, TEMPLATES, local_outcome
from coderl.tasks.problem import Problem

# Mutation kinds and how often each is drawn. Typical outcomes: operator/constant -> failed_test,
# name -> runtime_error, syntax -> compile_error, delete_line -> compile_error (one-line bodies) or any.
MUTATION_WEIGHTS = {"operator": 0.3, "constant": 0.2, "name": 0.2, "syntax": 0.2, "delete_line": 0.1}

OP_SWAPS = {
    "+": ("-", "*"), "-": ("+",), "*": ("+", "//"), "//": ("/", "%"), "/": ("//",), "%": ("//",),
    "<": ("<=", ">"), "<=": ("<", ">="), ">": (">=", "<"), ">=": (">", "<="), "==": ("!=",), "!=": ("==",),
    "*=": ("+=",), "+=": ("-=",),
}
NAME_SWAPS = {
    "min": ("max",), "max": ("min",), "and": ("or",), "or": ("and",), "any": ("all",), "all": ("any",),
    "True": ("False",), "False": ("True",), "startswith": ("endswith",), "endswith": ("startswith",),
    "rjust": ("ljust",), "ljust": ("rjust",), "sum": ("len",), "len": ("sum",), "abs": ("int",),
}
FRESH_NAMES = ("y", "n", "i", "v", "z", "lst", "num", "val", "total", "length", "res")
MISSPELLINGS = {"return": "retrun", "for": "fro", "if": "fi", "in": "ni", "else": "esle", "def": "dfe"}

SFT_KINDS = ("reference", "habitual", *(f"random:{k}" for k in MUTATION_WEIGHTS))


@dataclass(frozen=True)
class _Tok:
    type: int
    string: str
    start: int  # offsets into the program text
    end: int
    row: int  # 1-based line


def _tokens(program: str) -> list[_Tok]:
    starts = [0]
    for line in program.split("\n"):
        starts.append(starts[-1] + len(line) + 1)
    out = []
    try:
        for t in tokenize.generate_tokens(io.StringIO(program).readline):
            if t.type in (tokenize.OP, tokenize.NAME, tokenize.NUMBER, tokenize.STRING):
                out.append(_Tok(t.type, t.string, starts[t.start[0] - 1] + t.start[1],
                                starts[t.end[0] - 1] + t.end[1], t.start[0]))
    except (tokenize.TokenError, IndentationError, SyntaxError):
        pass
    return out


def _replace(program: str, tok: _Tok, new: str) -> str:
    return program[:tok.start] + new + program[tok.end:]


def _operator(program: str, toks: list[_Tok], rng: random.Random) -> str | None:
    cands = [t for t in toks if t.row > 1 and (t.type == tokenize.OP and t.string in OP_SWAPS
                                               or t.type == tokenize.NAME and t.string in NAME_SWAPS)]
    if not cands:
        return None
    t = rng.choice(cands)
    return _replace(program, t, rng.choice((OP_SWAPS if t.type == tokenize.OP else NAME_SWAPS)[t.string]))


def _constant(program: str, toks: list[_Tok], rng: random.Random) -> str | None:
    nums = [t for t in toks if t.type == tokenize.NUMBER and t.string.isdigit()]
    if nums:
        t = rng.choice(nums)
        v = int(t.string)
        return _replace(program, t, str(v + rng.choice((-1, 1, 2)) if v > 0 else v + 1))
    strs = [t for t in toks if t.type == tokenize.STRING and t.string[0] in "'\"" and len(t.string) >= 3]
    if not strs:
        return None
    t = rng.choice(strs)
    inner = t.string[1:-1]
    new = inner[:-1] if rng.random() < 0.5 else inner + inner[-1]
    return _replace(program, t, t.string[0] + new + t.string[0])


def _name(program: str, toks: list[_Tok], rng: random.Random) -> str | None:
    used = {t.string for t in toks if t.type == tokenize.NAME}
    cands = [t for t in toks if t.type == tokenize.NAME and not keyword.iskeyword(t.string)
             and not (t.row == 1 and t.string == FN_NAME)]
    fresh = [n for n in FRESH_NAMES if n not in used]
    if not cands or not fresh:
        return None
    return _replace(program, rng.choice(cands), rng.choice(fresh))


def _syntax(program: str, toks: list[_Tok], rng: random.Random) -> str | None:
    options = []
    lines = program.split("\n")
    colon_rows = [i for i, line in enumerate(lines) if line.rstrip().endswith(":")]
    if colon_rows:
        options.append("colon")
    closers = [t for t in toks if t.string in (")", "]")]
    if closers:
        options.append("bracket")
    words = [t for t in toks if t.type == tokenize.NAME and t.string in MISSPELLINGS]
    if words:
        options.append("keyword")
    if not options:
        return None
    how = rng.choice(options)
    if how == "colon":
        i = rng.choice(colon_rows)
        lines[i] = lines[i].rstrip()[:-1]
        return "\n".join(lines)
    if how == "bracket":
        return _replace(program, rng.choice(closers), "")
    t = rng.choice(words)
    return _replace(program, t, MISSPELLINGS[t.string])


def _delete_line(program: str, toks: list[_Tok], rng: random.Random) -> str | None:
    lines = program.split("\n")
    if len(lines) < 2:
        return None
    del lines[rng.randrange(1, len(lines))]
    return "\n".join(lines)


_MUTATORS = {"operator": _operator, "constant": _constant, "name": _name, "syntax": _syntax,
             "delete_line": _delete_line}


def mutate(program: str, rng: random.Random, kind: str | None = None) -> tuple[str, str] | None:
    """One random mutation of ``program``: ``(new_program, kind)``, or None when ``kind`` does not apply.

    Kinds: operator (swap an operator or min/max, any/all, ...), constant (change a number or a string
    literal), name (use an undefined name), syntax (drop a colon or bracket, misspell a keyword),
    delete_line. Without ``kind`` one is drawn by :data:`MUTATION_WEIGHTS` among those that apply.
    """
    toks = _tokens(program)
    kinds = [kind] if kind is not None else list(MUTATION_WEIGHTS)
    for k in kinds:
        if k not in _MUTATORS:
            raise ValueError(f"unknown mutation kind {k!r}; expected one of {', '.join(_MUTATORS)}")
    while kinds:
        k = kinds[0] if len(kinds) == 1 else rng.choices(kinds, [MUTATION_WEIGHTS[x] for x in kinds])[0]
        new = _MUTATORS[k](program, toks, rng)
        if new is not None and new != program:
            return new, k
        kinds.remove(k)
    return None


def random_bug(program: str, tests: dict, rng: random.Random, kind: str | None = None,
               tries: int = 20) -> tuple[str, str, str]:
    """A mutation of ``program`` that fails ``tests`` (an assert TestSpec): ``(program, kind, outcome)``.

    ``outcome`` is the executor's outcome class, computed in-process (only sound for generated code).
    """
    for _ in range(tries):
        m = mutate(program, rng, kind)
        if m is None:
            break
        outcome = local_outcome(m[0], tests)
        if outcome != "passed":
            return m[0], m[1], outcome
    lines = program.split("\n")  # fallback that always fails: the def line without its colon
    return "\n".join([lines[0].rstrip().rstrip(":"), *lines[1:]]), "syntax", "compile_error"


class SFTExample(NamedTuple):
    prompt: str
    program: str
    is_correct: bool


@dataclass(frozen=True)
class SFTRecord:
    """An SFT example with its provenance: ``kind`` is one of :data:`SFT_KINDS`, ``outcome`` the outcome
    class the executor gives ``program`` on the task's hidden tests."""

    task_id: str
    template: str
    prompt: str
    program: str
    is_correct: bool
    kind: str
    outcome: str

    def example(self) -> SFTExample:
        return SFTExample(self.prompt, self.program, self.is_correct)


def habit_templates() -> list[str]:
    """Names of the templates that declare a habitual bug."""
    return [t.name for t in TEMPLATES.values() if t.habit is not None]


def sft_records(tasks: Sequence[Problem], rng: random.Random | int, p_habitual: float = 0.8,
                p_random: float = 0.2, habitual: Iterable[str] | None = None) -> list[SFTRecord]:
    """One SFT record per task, in order.

    A task whose template is in ``habitual`` (default: every template that declares a habit) gets that
    template's habitual bug with probability ``p_habitual`` -- the same mistake every time, so a model
    learns it. Otherwise the task gets a random bug (a mutation that fails the tests) with probability
    ``p_random``, else its reference solution.
    """
    if not (0 <= p_habitual <= 1 and 0 <= p_random <= 1):
        raise ValueError("p_habitual and p_random must lie in [0, 1]")
    if isinstance(rng, int):
        rng = random.Random(rng)
    names = set(habit_templates() if habitual is None else habitual)
    unknown = names - set(habit_templates())
    if unknown:
        raise ValueError(f"templates without a habitual bug: {', '.join(sorted(unknown))}")
    out = []
    for p in tasks:
        if p.tests.get("type") != "assert" or not p.solutions:
            raise ValueError(f"task {p.task_id}: needs assert tests and a reference solution")
        template = p.metadata.get("template", "")
        habit = p.metadata.get("habit")
        ref = p.solutions[0]
        if habit and template in names and rng.random() < p_habitual:
            out.append(SFTRecord(p.task_id, template, p.prompt, habit, False, "habitual",
                                 local_outcome(habit, p.tests)))
        elif rng.random() < p_random:
            prog, kind, outcome = random_bug(ref, p.tests, rng)
            out.append(SFTRecord(p.task_id, template, p.prompt, prog, False, f"random:{kind}", outcome))
        else:
            out.append(SFTRecord(p.task_id, template, p.prompt, ref, True, "reference", "passed"))
    return out


def sft_examples(tasks: Sequence[Problem], rng: random.Random | int, p_habitual: float = 0.8,
                 p_random: float = 0.2, habitual: Iterable[str] | None = None) -> list[SFTExample]:
    """``(prompt, program, is_correct)`` per task; see :func:`sft_records` for how each program is chosen."""
    return [r.example() for r in sft_records(tasks, rng, p_habitual, p_random, habitual)]


def corpus_text(tasks: Iterable[Problem]) -> str:
    """Text for tokenizer training: every phrasing, the reference and the habitual bug of each task."""
    parts: list[str] = []
    for p in tasks:
        parts.extend(p.metadata.get("phrasings") or [p.prompt])
        parts.extend(p.solutions[:1])
        if p.metadata.get("habit"):
            parts.append(p.metadata["habit"])
    return "\n".join(parts) + "\n"
