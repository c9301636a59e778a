"""Critic sampling (CodeRL Sec. 3.3: refine and repair) and plain sampling with the same budget.

A **model call** is one generated program: a fresh sample from the actor, one continuation of a refine seed,
or one fix from the repair model. Critic forward passes and executor runs on the example tests are not model
calls (they are reported separately: ``critic_programs``, ``example_runs``). Each round spends exactly
``n`` model calls per problem, so ``rounds`` rounds cost ``n * rounds`` -- the budget plain sampling gets.

Per problem, round 1 samples ``n`` programs. Every later round looks at all candidates so far:

* **refine** when some pass the example tests (the set P): each is cut at the token where the critic's pass
  probability is highest (:mod:`coderl.inference.prefix`) and the actor samples ``n // |P|`` continuations from
  each seed (the remainder to the best seeds);
* **repair** when none pass and a repair model is given: the failures are ranked by the critic's sequence-level
  pass probability, the top ``top_m`` not yet repaired get ``n // top_m`` fixes each from the repair model
  (:mod:`coderl.inference.repair`);
* otherwise (no repair model, or refine off) ``n`` fresh samples.

Candidates are ranked by (passes the example tests, critic pass probability); :func:`select` takes the first
``n_submit`` as the n@k submissions. Only ``problem.example_tests`` are ever run here -- never ``problem.tests``.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

    from coderl.models.critic import Critic
    from coderl.sandbox import Executor
    from coderl.tasks.problem import Problem

ORIGINS = ("sample", "refine", "repair")


@dataclass
class CriticSamplingConfig:
    """Settings of critic sampling (and of the plain-sampling baseline, which uses ``n * rounds`` samples)."""

    n: int = 8
    """Model calls per problem per round (N in the paper); round 1 samples N programs."""
    rounds: int = 2
    """Rounds including the first sampling round; the budget per problem is ``n * rounds`` model calls."""
    top_m: int = 2
    """Failures repaired per round when no candidate passes the example tests (M)."""
    refine: bool = True
    """Resample from critic-chosen prefixes of programs that pass the example tests."""
    repair: bool = True
    """Repair failures when none passes (needs a repair model; without one the round samples afresh)."""
    min_resample: int = 1
    """A seed leaves at least this many program tokens to resample."""
    max_new_tokens: int = 48
    """Longest program (tokens); a continuation's seed counts against it."""
    temperature: float = 1.0
    top_p: float = 1.0
    seed: int = 0
    """Sampling seed; round r uses ``seed + 1000 * r`` (+1 for repairs) so rounds draw independently."""
    batch_size: int = 64
    """Sequences decoded together."""

    def __post_init__(self) -> None:
        for name in ("n", "rounds", "top_m", "min_resample", "max_new_tokens", "batch_size"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"CriticSamplingConfig.{name} must be an int >= 1, got {v!r}")
        if self.top_m > self.n:
            raise ValueError(f"CriticSamplingConfig.top_m ({self.top_m}) must be <= n ({self.n}): each repaired "
                             "failure needs at least one model call")
        if self.temperature <= 0:
            raise ValueError("CriticSamplingConfig.temperature must be > 0 (greedy sampling repeats one program; "
                             "use n=1, rounds=1 for greedy)")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"CriticSamplingConfig.top_p must be in (0, 1], got {self.top_p}")

    @property
    def budget(self) -> int:
        return self.n * self.rounds

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Candidate:
    """One generated program. ``origin``: sample, refine or repair; ``parent``: the candidate it came from
    (index in the problem's candidate list in generation order), ``seed_tokens``: the refine seed's length."""

    text: str
    origin: str
    round: int
    finished: bool = True
    parent: int | None = None
    seed_tokens: int = 0
    example_outcome: str | None = None
    example_detail: str = ""
    critic_pass: float | None = None
    index: int = 0

    @property
    def example_passed(self) -> bool:
        return self.example_outcome == "passed"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class ProblemResult:
    """The ranked candidates of one problem and what they cost."""

    task_id: str
    candidates: list[Candidate]
    model_calls: int
    rounds: list[str] = field(default_factory=list)
    """What each round did: sample, refine, repair or resample."""

    def select(self, n_submit: int = 1) -> list[Candidate]:
        return self.candidates[:n_submit]


def rank(cands: Sequence[Candidate]) -> list[Candidate]:
    """Passing the example tests first, then by critic pass probability (unscored last), then generation order."""
    return sorted(cands, key=lambda c: (not c.example_passed, -(c.critic_pass if c.critic_pass is not None
                                                                 else float("-inf")), c.index))


def select(results: Sequence[ProblemResult], n_submit: int = 1) -> dict[str, list[Candidate]]:
    """n@k submissions: the first ``n_submit`` ranked candidates of each problem."""
    return {r.task_id: r.select(n_submit) for r in results}


# ---------------------------------------------------------------------- generation helpers
def _encode(tokenizer, texts: Sequence[str], finished: Sequence[bool]) -> list[list[int]]:
    if not texts:
        return []
    ids = [list(x) for x in tokenizer(list(texts), add_special_tokens=False)["input_ids"]]
    return [i + [tokenizer.eos_token_id] if f else i for i, f in zip(ids, finished, strict=True)]


def _prompt_ids(tokenizer, prompts: Sequence[str], eos: list[int]) -> list[list[int]]:
    enc = [list(x) for x in tokenizer(list(prompts))["input_ids"]]
    start = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else eos[0]
    return [e if e else [start] for e in enc]


def continue_from(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    prompt_ids: Sequence[Sequence[int]],
    prefix_ids: Sequence[Sequence[int]],
    max_new_tokens: int,
    temperature: float = 1.0,
    top_p: float = 1.0,
    seed: int | None = None,
    batch_size: int = 64,
) -> list[tuple[list[int], bool]]:
    """Sample the rest of each program from ``prompt_ids[i] + prefix_ids[i]``: returns ``(prefix + new ids, finished)``
    per row. The whole program stays within ``max_new_tokens`` (the prefix counts) and within the model's
    positions. Causal models only: an encoder-decoder model would need the prefix as forced decoder input,
    which :mod:`coderl.models.generate` does not support yet."""
    from coderl.models.generate import SamplingConfig, eos_token_ids, generate_ids, max_positions

    if getattr(model.config, "is_encoder_decoder", False):
        raise NotImplementedError("refine (continuing a program from a seed prefix) is not implemented for "
                                  "encoder-decoder actors: coderl.models.generate has no decoder-prefix input "
                                  "(decoder_input_ids); run critic sampling with refine=False")
    eos = eos_token_ids(model, tokenizer)
    limit = max_positions(model)
    rows = [list(p) + list(c) for p, c in zip(prompt_ids, prefix_ids, strict=True)]
    budget = []
    for r, c in zip(rows, prefix_ids, strict=True):
        b = max_new_tokens - len(c)
        if limit is not None:
            b = min(b, limit - len(r))
        budget.append(b)
    out: list[tuple[list[int], bool] | None] = [None] * len(rows)
    groups: dict[int, list[int]] = {}
    for i, b in enumerate(budget):
        if b < 1:  # nothing left to sample: the seed is the program
            out[i] = (list(prefix_ids[i]), False)
            continue
        key = b if b < 4 else b - b % 4  # few groups (few generate calls); each row gets at most its budget
        groups.setdefault(key, []).append(i)
    for j, (key, idx) in enumerate(sorted(groups.items())):
        cfg = SamplingConfig(max_new_tokens=key, temperature=temperature, top_p=top_p,
                             seed=None if seed is None else seed + j)
        res = generate_ids(model, [rows[i] for i in idx], cfg, eos, tokenizer.pad_token_id, batch_size=batch_size)
        for i, (ids, fin) in zip(idx, res, strict=True):
            out[i] = (list(prefix_ids[i]) + ids, fin)
    return [o for o in out if o is not None]


def _decode(tokenizer, ids: list[int], eos: set[int]) -> str:
    return tokenizer.decode([t for t in ids if t not in eos], skip_special_tokens=True,
                            clean_up_tokenization_spaces=False)


# ---------------------------------------------------------------------- the algorithm
class _Spy:
    """Counts what generation runs (model calls, critic programs, example-test runs)."""

    def __init__(self) -> None:
        self.model_calls = 0
        self.critic_programs = 0
        self.example_runs = 0
        self.generated_tokens = 0


def _check(problems: Sequence[Problem]) -> None:
    missing = [p.task_id for p in problems if not p.example_tests]
    if missing:
        raise ValueError(f"{len(missing)} problems have no example_tests (first: {missing[0]}); critic sampling and "
                         "its baseline filter by example tests only, never the hidden ones")


def _run_examples(executor: Executor, problems: Sequence[Problem], todo: list[tuple[int, Candidate]],
                  spy: _Spy) -> None:
    reqs = [problems[i].request(f"{i}/{c.index}", problems[i].program(c.text), examples=True) for i, c in todo]
    for (_, c), r in zip(todo, executor.run(reqs), strict=True):
        c.example_outcome, c.example_detail = r.outcome, r.detail
        c._result = r  # type: ignore[attr-defined]  # kept for the repair feedback, not serialised
    spy.example_runs += len(reqs)


def _score(critic: Critic | None, tokenizer, prompts: Sequence[str], todo: list[tuple[int, Candidate]],
           spy: _Spy) -> None:
    if critic is None or not todo:
        return
    from coderl.inference.prefix import pass_index
    from coderl.models.critic import score_programs

    p_ids = [list(x) for x in tokenizer([prompts[i] for i, _ in todo])["input_ids"]]
    c_ids = _encode(tokenizer, [c.text for _, c in todo], [c.finished for _, c in todo])
    probs = score_programs(critic, p_ids, c_ids, tokenizer.pad_token_id)[:, pass_index(critic)]
    for (_, c), p in zip(todo, probs.tolist(), strict=True):
        c.critic_pass = float(p)
    spy.critic_programs += len(todo)


def _sample(actor, tokenizer, prompts: Sequence[str], counts: dict[int, int], cfg: CriticSamplingConfig,
            seed: int, round_no: int, spy: _Spy) -> dict[int, list[Candidate]]:
    from coderl.models.generate import SamplingConfig, generate

    idx = [i for i, k in counts.items() if k > 0]
    out: dict[int, list[Candidate]] = {i: [] for i in idx}
    for k in sorted({counts[i] for i in idx}):
        group = [i for i in idx if counts[i] == k]
        res = generate(actor, tokenizer, [prompts[i] for i in group], k,
                       SamplingConfig(max_new_tokens=cfg.max_new_tokens, temperature=cfg.temperature,
                                      top_p=cfg.top_p, seed=seed + k), batch_size=cfg.batch_size)
        for i, comps in zip(group, res, strict=True):
            out[i] = [Candidate(c.text, "sample", round_no, c.finished) for c in comps]
            spy.model_calls += len(comps)
            spy.generated_tokens += sum(len(c.token_ids) for c in comps)
    return out


def plain_sample(
    actor: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    problems: Sequence[Problem],
    executor: Executor,
    cfg: CriticSamplingConfig,
    critic: Critic | None = None,
    budget: int | None = None,
) -> tuple[list[ProblemResult], dict[str, Any]]:
    """The baseline: ``budget`` (default ``cfg.budget``) plain samples per problem, run on the example tests,
    scored by ``critic`` when given, ranked like critic sampling's candidates. Returns ``(results, stats)``."""
    from coderl.tasks.prompt import format_prompt

    _check(problems)
    budget = cfg.budget if budget is None else budget
    spy = _Spy()
    t0 = time.perf_counter()
    prompts = [format_prompt(p) for p in problems]
    new = _sample(actor, tokenizer, prompts, dict.fromkeys(range(len(problems)), budget), cfg, cfg.seed, 1, spy)
    cands = [new[i] for i in range(len(problems))]
    todo = []
    for i, cs in enumerate(cands):
        for j, c in enumerate(cs):
            c.index = j
            todo.append((i, c))
    _run_examples(executor, problems, todo, spy)
    _score(critic, tokenizer, prompts, todo, spy)
    results = [ProblemResult(p.task_id, rank(cs), len(cs), ["sample"]) for p, cs in zip(problems, cands, strict=True)]
    return results, _stats(spy, t0, results)


def critic_sample(
    actor: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    critic: Critic,
    problems: Sequence[Problem],
    executor: Executor,
    cfg: CriticSamplingConfig,
    repair_model: PreTrainedModel | None = None,
    repair_tokenizer: PreTrainedTokenizerBase | None = None,
    progress: bool = True,
) -> tuple[list[ProblemResult], dict[str, Any]]:
    """Critic sampling for ``problems``: ``cfg.rounds`` rounds of ``cfg.n`` model calls each (see the module doc).

    The critic must share the actor's tokenizer (its prefix scores index the actor's tokens); the repair model
    may have its own (default: the actor's). Returns ``(results, stats)``: per problem the ranked candidates,
    and counts of model calls, critic-scored programs, example-test runs, generated tokens and what the rounds did.
    """
    import torch

    from coderl.inference.prefix import build_seeds, prefix_pass_probs
    from coderl.inference.repair import Feedback, repair_prompt
    from coderl.models.critic import check_reads_tokenizer
    from coderl.models.generate import eos_token_ids, max_positions
    from coderl.tasks.prompt import format_prompt
    from coderl.utils.progress import ProgressBar

    _check(problems)
    check_reads_tokenizer(critic, tokenizer, "critic sampling's critic")
    rtok = repair_tokenizer or tokenizer
    spy = _Spy()
    t0 = time.perf_counter()
    prompts = [format_prompt(p) for p in problems]
    eos = eos_token_ids(actor, tokenizer)
    prompt_ids = _prompt_ids(tokenizer, prompts, eos)
    cands: list[list[Candidate]] = [[] for _ in problems]
    repaired: list[set[int]] = [set() for _ in problems]
    actions: list[list[str]] = [[] for _ in problems]
    bar = ProgressBar(cfg.rounds, "critic sampling", progress)

    def add(i: int, new: list[Candidate]) -> list[tuple[int, Candidate]]:
        for c in new:
            c.index = len(cands[i])
            cands[i].append(c)
        return [(i, c) for c in new]

    for r in range(1, cfg.rounds + 1):
        seed = cfg.seed + 1000 * r
        todo: list[tuple[int, Candidate]] = []
        fresh: dict[int, int] = {}
        if r == 1:
            fresh = dict.fromkeys(range(len(problems)), cfg.n)
            for i in range(len(problems)):
                actions[i].append("sample")
        else:
            refine_rows: list[tuple[int, int, list[int]]] = []  # (problem, parent, prefix ids)
            repair_rows: list[tuple[int, int]] = []  # (problem, parent)
            for i in range(len(problems)):
                passing = [c for c in cands[i] if c.example_passed]
                if passing and cfg.refine:
                    passing = sorted(passing, key=lambda c: -(c.critic_pass or 0.0))[: cfg.n]
                    c_ids = _encode(tokenizer, [c.text for c in passing], [c.finished for c in passing])
                    probs, mask = prefix_pass_probs(critic, [prompt_ids[i]] * len(passing), c_ids,
                                                    tokenizer.pad_token_id, batch_size=cfg.batch_size)
                    spy.critic_programs += len(passing)
                    for s in build_seeds(c_ids, probs, mask, tokenizer.eos_token_id, cfg.n, cfg.min_resample,
                                         parents=[c.index for c in passing]):
                        refine_rows += [(i, s.parent, s.prefix_ids)] * s.count
                    actions[i].append("refine")
                elif not passing and cfg.repair and repair_model is not None:
                    fails = [c for c in cands[i] if c.index not in repaired[i]]
                    fails = sorted(fails, key=lambda c: (-(c.critic_pass or 0.0), c.index))[: cfg.top_m]
                    if not fails:
                        fresh[i] = cfg.n
                        actions[i].append("resample")
                        continue
                    share = [cfg.n // len(fails) + (1 if k < cfg.n % len(fails) else 0) for k in range(len(fails))]
                    for c, k in zip(fails, share, strict=True):
                        repaired[i].add(c.index)
                        repair_rows += [(i, c.index)] * k
                    actions[i].append("repair")
                else:
                    fresh[i] = cfg.n
                    actions[i].append("resample")
            if refine_rows:
                outs = continue_from(actor, tokenizer, [prompt_ids[i] for i, _, _ in refine_rows],
                                     [p for _, _, p in refine_rows], cfg.max_new_tokens, cfg.temperature, cfg.top_p,
                                     seed, cfg.batch_size)
                by_problem: dict[int, list[Candidate]] = {}
                for (i, parent, prefix), (ids, fin) in zip(refine_rows, outs, strict=True):
                    by_problem.setdefault(i, []).append(Candidate(_decode(tokenizer, ids, set(eos)), "refine", r, fin,
                                                                  parent, len(prefix)))
                    spy.generated_tokens += len(ids) - len(prefix)
                spy.model_calls += len(refine_rows)
                for i, new in by_problem.items():
                    todo += add(i, new)
            if repair_rows:
                texts = [repair_prompt(problems[i], cands[i][j].text,
                                       Feedback.from_result(cands[i][j]._result, problems[i], cands[i][j].text,
                                                            problems[i].example_tests))
                         for i, j in repair_rows]
                r_eos = eos_token_ids(repair_model, rtok)
                r_ids = _prompt_ids(rtok, texts, r_eos)
                limit = max_positions(repair_model)
                if limit is not None:  # keep the end of an over-long input: the bug, its feedback and "# fix:"
                    r_ids = [x[-(limit - cfg.max_new_tokens):] for x in r_ids]
                outs = continue_from(repair_model, rtok, r_ids, [[] for _ in r_ids], cfg.max_new_tokens,
                                     cfg.temperature, cfg.top_p, seed + 1, cfg.batch_size) \
                    if not getattr(repair_model.config, "is_encoder_decoder", False) else _seq2seq_repair(
                        repair_model, rtok, texts, cfg, seed + 1)
                by_problem = {}
                for (i, parent), (ids, fin) in zip(repair_rows, outs, strict=True):
                    by_problem.setdefault(i, []).append(Candidate(_decode(rtok, ids, set(r_eos)), "repair", r, fin,
                                                                  parent))
                    spy.generated_tokens += len(ids)
                spy.model_calls += len(repair_rows)
                for i, new in by_problem.items():
                    todo += add(i, new)
        if fresh:
            new = _sample(actor, tokenizer, prompts, fresh, cfg, seed, r, spy)
            for i, cs in new.items():
                for c in cs:
                    c.origin = "sample"
                todo += add(i, cs)
        _run_examples(executor, problems, todo, spy)
        with torch.no_grad():
            _score(critic, tokenizer, prompts, todo, spy)
        bar.update(1, f"round {r}")
    bar.close()
    results = []
    for p, cs, acts in zip(problems, cands, actions, strict=True):
        for c in cs:
            c.__dict__.pop("_result", None)
        results.append(ProblemResult(p.task_id, rank(cs), len(cs), acts))
    return results, _stats(spy, t0, results)


def _seq2seq_repair(model, tokenizer, texts: list[str], cfg: CriticSamplingConfig, seed: int):
    from coderl.models.generate import SamplingConfig, generate

    res = generate(model, tokenizer, texts, 1, SamplingConfig(max_new_tokens=cfg.max_new_tokens,
                   temperature=cfg.temperature, top_p=cfg.top_p, seed=seed), batch_size=cfg.batch_size)
    return [(list(c[0].token_ids), c[0].finished) for c in res]


def _stats(spy: _Spy, t0: float, results: Sequence[ProblemResult]) -> dict[str, Any]:
    acts: dict[str, int] = {}
    for r in results:
        for a in r.rounds[1:]:
            acts[a] = acts.get(a, 0) + 1
    origins: dict[str, int] = {}
    for r in results:
        for c in r.candidates:
            origins[c.origin] = origins.get(c.origin, 0) + 1
    return {"problems": len(results), "model_calls": spy.model_calls,
            "model_calls_per_problem": spy.model_calls / max(1, len(results)),
            "critic_programs": spy.critic_programs, "example_runs": spy.example_runs,
            "generated_tokens": spy.generated_tokens, "round_actions": acts, "origins": origins,
            "seconds": round(time.perf_counter() - t0, 2)}
