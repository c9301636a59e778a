"""Evaluate a policy model directly: sample programs for problems, run them, report pass@k and greedy.

Used by the demo before and after RL (and by anything else that holds a model rather than a samples file).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from coderl.sandbox import Executor
from coderl.sandbox.schema import OUTCOME_CLASSES
from coderl.tasks.problem import Problem


def evaluate_policy(policy, tokenizer, problems: Sequence[Problem], executor: Executor, n: int = 10,
                    ks: Sequence[int] = (1, 5), temperature: float = 1.0, top_p: float = 1.0,
                    max_new_tokens: int = 64, seed: int = 0, greedy: bool = True) -> dict[str, Any]:
    """pass@k from ``n`` samples per problem at ``temperature`` (unbiased estimator), plus the greedy pass rate
    and the outcome-class mix of the samples. Returns plain floats (JSON-ready).

    The samples are judged and scored by ``coderl eval``'s own path (:func:`coderl.eval.evaluate.run_samples`,
    :func:`~coderl.eval.evaluate.summarize`) with the executor's timeout and checker: one evaluator, whether
    the samples come from a file or from a model in hand."""
    import torch

    from coderl.models.generate import SamplingConfig, generate
    from coderl.tasks.prompt import format_prompt

    prompts = [format_prompt(p) for p in problems]
    policy.eval()
    with torch.no_grad():
        samples = generate(policy, tokenizer, prompts, n, SamplingConfig(max_new_tokens=max_new_tokens,
                           temperature=temperature, top_p=top_p, seed=seed))
        greedy_out = generate(policy, tokenizer, prompts, 1, SamplingConfig(max_new_tokens=max_new_tokens,
                              greedy=True)) if greedy else None
    s = _judge(problems, samples, executor, tuple(ks))
    out: dict[str, Any] = {f"pass@{e['k']}": e["value"] for e in s["pass_at_k"]}
    out["outcomes"] = {o: s["outcomes"][o]["fraction"] for o in OUTCOME_CLASSES}
    if greedy_out is not None:
        g = _judge(problems, greedy_out, executor, (1,))
        out["greedy"] = g["pass_at_k"][0]["value"]
        out["greedy_outcomes"] = {o: g["outcomes"][o]["fraction"] for o in OUTCOME_CLASSES}
    out["n_problems"], out["n_samples"] = len(problems), n
    return out


def _judge(problems: Sequence[Problem], completions: list, executor: Executor, ks: tuple[int, ...]
           ) -> dict[str, Any]:
    from coderl.eval.evaluate import EvalConfig, run_samples, summarize
    from coderl.eval.samples import Sample

    cfg = EvalConfig(ks=ks, timeout=getattr(executor, "timeout", EvalConfig.timeout),
                     checker=getattr(executor, "checker", EvalConfig.checker), examples=False, bootstrap=0)
    records = [Sample(task_id=p.task_id, text=c.text, whole_program=False, line=0, index=j)
               for p, cs in zip(problems, completions, strict=True) for j, c in enumerate(cs)]
    return summarize(list(problems), list(run_samples(list(problems), records, cfg, executor=executor)), cfg)
