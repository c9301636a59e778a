"""Templates, the train/test split and task generation of the procedural task family."""

from __future__ import annotations

import builtins
import hashlib
import itertools
import json
import random
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from coderl.tasks.problem import Problem

SPLITS = ("train", "test")
TEST_FRACTION = 0.2  # share of each template's constant combinations held out for the test split
SOURCE = "family"
FN_NAME = "f"

_PLACEHOLDER = re.compile(r"\{([^{}]+)\}")
_SIGNATURE = re.compile(r"def f\(([a-z_][a-z_0-9]*(?:, [a-z_][a-z_0-9]*)*)\):")


def fill(text: str, consts: Mapping[str, Any]) -> str:
    """Replace each ``{expr}`` in ``text`` by ``str(expr)`` evaluated over the constants (trusted templates only)."""
    return _PLACEHOLDER.sub(lambda m: str(eval(m.group(1), {"__builtins__": {}}, dict(consts))), text)


def _jsonable(v: Any) -> Any:
    return [_jsonable(x) for x in v] if isinstance(v, (tuple, list)) else v


def _fmt(v: Any) -> str:
    return "|".join(_fmt(x) for x in v) if isinstance(v, (tuple, list)) else str(v)


def _digest(*parts: str) -> int:
    return int(hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:16], 16)


@dataclass(frozen=True)
class Template:
    """One task type. Adding a task type = adding one ``Template(...)`` to ``templates.py``.

    ``specs`` (2-4 phrasings), ``body`` and ``habit`` may use ``{expr}`` placeholders, Python expressions
    over the constants (``{a}``, ``{a + d}``, ``{w[0]}``); do not use literal braces in them. ``body`` is the
    reference function body, unindented (nested blocks indented by 4 spaces). ``consts`` maps each constant
    to its values; the task space is their product filtered by ``where``. ``inputs(**consts)`` returns the
    4 test inputs: the argument itself for a one-parameter signature, else a tuple of arguments. The
    expected outputs are computed by running the reference. ``habit`` is the body of this template's
    habitual bug (a consistent, plausible mistake the tests catch for every constant combination).
    """

    name: str
    category: str
    specs: tuple[str, ...]
    signature: str
    body: str
    consts: Mapping[str, Sequence[Any]]
    inputs: Callable[..., Sequence[Any]]
    where: Callable[..., bool] | None = None
    habit: str | None = None
    habit_kind: str = ""
    _combos: list[dict[str, Any]] = field(default_factory=list, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not re.fullmatch(r"[a-z][a-z0-9_]*", self.name):
            raise ValueError(f"template name {self.name!r}: lower-case identifier expected")
        if not 2 <= len(self.specs) <= 4:
            raise ValueError(f"template {self.name}: 2-4 phrasings expected, got {len(self.specs)}")
        if not _SIGNATURE.fullmatch(self.signature):
            raise ValueError(f"template {self.name}: signature must look like 'def f(x, y):'")
        if self.habit is not None and not self.habit_kind:
            raise ValueError(f"template {self.name}: a habit needs a habit_kind")
        if self.habit is not None and self.habit == self.body:
            raise ValueError(f"template {self.name}: the habit must differ from the body")
        if re.search(r"\bwhile\b", self.body + (self.habit or "")):
            # mutations are judged in-process (local_outcome), so no body may be able to loop forever
            raise ValueError(f"template {self.name}: no while loops (a mutation could run forever)")

    @property
    def params(self) -> list[str]:
        m = _SIGNATURE.fullmatch(self.signature)
        assert m is not None
        return m.group(1).split(", ")

    def combos(self) -> list[dict[str, Any]]:
        """Every constant combination, in a fixed order."""
        if not self._combos:
            keys = list(self.consts)
            for values in itertools.product(*(self.consts[k] for k in keys)):
                c = dict(zip(keys, values, strict=True))
                if self.where is None or self.where(**c):
                    self._combos.append(c)
        return list(self._combos)

    def task_id(self, consts: Mapping[str, Any]) -> str:
        return f"{SOURCE}/{self.name}/" + ",".join(f"{k}={_fmt(v)}" for k, v in consts.items())

    def split_of(self, consts: Mapping[str, Any]) -> str:
        return split_of(self.name, consts)

    def program(self, consts: Mapping[str, Any], body: str | None = None) -> str:
        body = fill(self.body if body is None else body, consts)
        return self.signature + "\n" + "\n".join("    " + line for line in body.split("\n"))

    def reference(self, consts: Mapping[str, Any]) -> str:
        return self.program(consts)

    def habit_program(self, consts: Mapping[str, Any]) -> str | None:
        return None if self.habit is None else self.program(consts, self.habit)

    def phrasings(self, consts: Mapping[str, Any]) -> list[str]:
        return [fill(s, consts) for s in self.specs]

    def test_args(self, consts: Mapping[str, Any]) -> list[tuple[Any, ...]]:
        raw = list(self.inputs(**consts))
        if len(raw) != 4:
            raise ValueError(f"template {self.name}: 4 test inputs expected, got {len(raw)}")
        return [(a,) if len(self.params) == 1 else tuple(a) for a in raw]

    def tests(self, consts: Mapping[str, Any]) -> dict[str, Any]:
        """The 4 hidden tests as an assert TestSpec; expected values come from the reference."""
        fn = load_function(self.reference(consts))
        asserts = []
        for args in self.test_args(consts):
            expected = fn(*args)
            asserts.append(f"assert {FN_NAME}({', '.join(repr(a) for a in args)}) == {expected!r}")
        return {"type": "assert", "asserts": asserts}

    def problem(self, consts: Mapping[str, Any], seed: int = 0) -> Problem:
        tid = self.task_id(consts)
        tests = self.tests(consts)
        phrasings = self.phrasings(consts)
        k = _digest("phrasing", tid, str(seed)) % len(phrasings)
        return Problem(
            task_id=tid,
            prompt=phrasings[k],
            tests=tests,
            example_tests=example_tests(tests),
            solutions=[self.reference(consts)],
            difficulty="easy",
            source=SOURCE,
            entry_point=FN_NAME,
            metadata={
                "template": self.name,
                "category": self.category,
                "consts": {key: _jsonable(v) for key, v in consts.items()},
                "split": self.split_of(consts),
                "signature": self.signature,
                "phrasing": k,
                "phrasings": phrasings,
                "habit": self.habit_program(consts),
                "habit_kind": self.habit_kind or None,
            },
        )


EXAMPLE_TESTS = 2
"""How many of a task's 4 hidden asserts count as its example tests (the first ones; the prompt does not show
them, so the demo's prompts and training data are unchanged). Critic sampling filters with these only."""


def example_tests(tests: Mapping[str, Any]) -> dict[str, Any]:
    """The example tests of a family task: the first :data:`EXAMPLE_TESTS` of its hidden asserts (the hidden
    set includes them, as on APPS). Two of four catch all but 6% of the habitual bugs the four catch."""
    return {"type": "assert", "asserts": list(tests["asserts"][:EXAMPLE_TESTS])}


TEMPLATES: dict[str, Template] = {}


def register(t: Template) -> Template:
    if t.name in TEMPLATES:
        raise ValueError(f"duplicate template name {t.name!r}")
    TEMPLATES[t.name] = t
    return t


def split_of(template: str, consts: Mapping[str, Any]) -> str:
    """'test' or 'train': a pure function of the template name and its constants (stable across runs)."""
    key = json.dumps({k: _jsonable(v) for k, v in consts.items()}, sort_keys=True)
    return "test" if _digest("split", template, key) % 10_000 < TEST_FRACTION * 10_000 else "train"


def load_function(program: str) -> Callable[..., Any]:
    """Run a generated (trusted) program in-process and return its ``f``."""
    ns: dict[str, Any] = {"__builtins__": builtins}
    exec(compile(program, "<family>", "exec"), ns)
    return ns[FN_NAME]


def local_outcome(program: str, tests: Mapping[str, Any]) -> str:
    """The executor's outcome class for a *generated* program, computed in-process (no sandbox).

    Only for programs this module builds (references and their mutations, which have no loops that can
    run forever); model output goes through :class:`coderl.sandbox.Executor`.
    """
    try:
        code = compile(program, "<program>", "exec")
    except (SyntaxError, ValueError):
        return "compile_error"
    ns: dict[str, Any] = {"__builtins__": builtins}
    try:
        exec(code, ns)
    except Exception:
        return "runtime_error"
    failed = errored = False
    for a in tests["asserts"]:
        try:
            exec(a, ns)
        except AssertionError:
            failed = True
        except Exception:
            errored = True
    return "runtime_error" if errored else "failed_test" if failed else "passed"


def _templates(names: Iterable[str] | None) -> list[Template]:
    if names is None:
        return list(TEMPLATES.values())
    out = []
    for n in names:
        if n not in TEMPLATES:
            raise ValueError(f"unknown template {n!r}; known: {', '.join(TEMPLATES)}")
        out.append(TEMPLATES[n])
    return out


def count_tasks(split: str | None = None, templates: Iterable[str] | None = None) -> dict[str, int]:
    """Number of distinct tasks per template in a split (both splits when None)."""
    return {t.name: sum(1 for c in t.combos() if split is None or t.split_of(c) == split)
            for t in _templates(templates)}


def generate_tasks(split: str, n: int | None = None, seed: int = 0,
                   templates: Iterable[str] | None = None) -> list[Problem]:
    """``n`` distinct tasks of ``split`` ('train' or 'test'), balanced over templates, deterministic in ``seed``.

    Templates take turns (in a seeded order), each drawing its next unused constant combination, so the
    mix stays balanced and a smaller ``n`` gives a prefix of a larger one. ``n=None`` returns every task of
    the split. Raises ValueError when the split has fewer than ``n`` tasks.
    """
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    rng = random.Random(f"coderl.family/{split}/{seed}")
    chosen = _templates(templates)
    rng.shuffle(chosen)
    pools = []
    for t in chosen:
        combos = [c for c in t.combos() if t.split_of(c) == split]
        rng.shuffle(combos)
        pools.append((t, combos))
    total = sum(len(c) for _, c in pools)
    if n is None:
        n = total
    if n < 0 or n > total:
        raise ValueError(f"asked for {n} {split} tasks; the family has {total}")
    out: list[Problem] = []
    for i in range(max((len(c) for _, c in pools), default=0)):
        for t, combos in pools:
            if len(out) == n:
                return out
            if i < len(combos):
                out.append(t.problem(combos[i], seed))
    return out


def template_of(problem: Problem) -> Template:
    return TEMPLATES[problem.metadata["template"]]
