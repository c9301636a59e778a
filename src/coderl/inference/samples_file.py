"""Generation for a whole problem set into a samples file: what ``coderl generate`` runs, as a library function.

One JSONL line per candidate, best first within each problem ({task_id, completion, rank, origin, round,
example_outcome, critic_pass, parent}) -- the format ``coderl eval --samples`` reads as it is -- and a summary
beside it (``OUT.summary.json``). Problems go through :func:`~coderl.inference.sampling.critic_sample` or
:func:`~coderl.inference.sampling.plain_sample` in chunks, and each chunk's lines are flushed as soon as it is
done, so that a run interrupted (or failing) in a later chunk keeps every finished one.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

    from coderl.inference.sampling import CriticSamplingConfig, ProblemResult
    from coderl.models.critic import Critic
    from coderl.sandbox import Executor
    from coderl.tasks.problem import Problem

# The stats of critic_sample / plain_sample that add up over chunks.
TOTALS = ("model_calls", "critic_programs", "example_runs", "generated_tokens", "seconds")


def candidate_records(results: Sequence[ProblemResult]) -> list[dict[str, Any]]:
    """The samples-file lines of ranked results: one per candidate, ``rank`` 0 the best of its problem."""
    return [{"task_id": r.task_id, "completion": c.text, "rank": k, "origin": c.origin, "round": c.round,
             "example_outcome": c.example_outcome, "critic_pass": c.critic_pass, "parent": c.parent}
            for r in results for k, c in enumerate(r.candidates)]


def summary_path(out: str | Path) -> Path:
    """Where :func:`generate_samples_file` writes the summary of ``out``: ``OUT.summary.json`` beside it."""
    out = Path(out)
    return out.with_name(out.name + ".summary.json")


def require_example_tests(problems: Sequence[Problem], source: str | None = None) -> None:
    """Raise ``ValueError`` (prefixed by ``source``, e.g. the problems file) unless every problem has example
    tests: generation runs only those, never the hidden tests, so a problem without them cannot be filtered or
    ranked. A command calls it before loading its models, to refuse such a problems file at once."""
    missing = [p.task_id for p in problems if not p.example_tests]
    if missing:
        where = f"{source}: " if source else ""
        raise ValueError(f"{where}{len(missing)} problems have no example_tests (first: {missing[0]}); generation "
                         "may run example tests only")


def generate_samples_file(
    actor: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    problems: Sequence[Problem],
    executor: Executor,
    cfg: CriticSamplingConfig,
    out: str | Path,
    *,
    critic: Critic | None = None,
    critic_sampling: bool = False,
    repair_model: PreTrainedModel | None = None,
    repair_tokenizer: PreTrainedTokenizerBase | None = None,
    chunk: int = 64,
    progress: bool = True,
    on_chunk: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """Sample candidates for ``problems`` into the samples file ``out`` and write its summary; returns the summary
    ({method, problems, config, model_calls, critic_programs, example_runs, generated_tokens, seconds,
    model_calls_per_problem}).

    ``critic_sampling`` runs critic sampling (refine and repair; needs ``critic``), else plain sampling with the
    same budget, ranked by ``critic`` when given. ``executor`` is a started executor (``Executor`` or
    ``RayExecutor``); only the problems' example tests are run. ``chunk`` problems are sampled at a time and
    their lines flushed before the next chunk starts; ``on_chunk(done, total)`` is called after each (a command's
    progress line), ``progress`` shows critic sampling's own bar. An exception in a chunk propagates with the
    earlier chunks' lines in ``out`` and no summary written. Raises ``ValueError`` for a bad ``chunk``, critic
    sampling without a critic, or problems without example tests (before ``out`` is touched).
    """
    from coderl.inference.sampling import critic_sample, plain_sample

    if chunk < 1:
        raise ValueError(f"chunk must be >= 1, got {chunk}")
    if critic_sampling and critic is None:
        raise ValueError("critic sampling needs a critic")
    require_example_tests(problems)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    totals: dict[str, float] = dict.fromkeys(TOTALS, 0)
    with open(out, "w", encoding="utf-8") as f:
        for s in range(0, len(problems), chunk):
            part = problems[s: s + chunk]
            if critic_sampling:
                results, stats = critic_sample(actor, tokenizer, critic, part, executor, cfg, repair_model=repair_model,
                                               repair_tokenizer=repair_tokenizer, progress=progress)
            else:
                results, stats = plain_sample(actor, tokenizer, part, executor, cfg, critic=critic)
            f.writelines(json.dumps(rec) + "\n" for rec in candidate_records(results))
            f.flush()
            for key in TOTALS:
                totals[key] += stats[key]
            if on_chunk is not None:
                on_chunk(min(s + chunk, len(problems)), len(problems))
    summary = {"method": "critic_sampling" if critic_sampling else "plain", "problems": len(problems),
               "config": cfg.to_dict(), **totals,
               "model_calls_per_problem": totals["model_calls"] / max(1, len(problems))}
    summary_path(out).write_text(json.dumps(summary, indent=1) + "\n")
    return summary
