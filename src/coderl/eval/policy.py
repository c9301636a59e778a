"""Evaluate a policy model directly: sample programs for problems, run them, report pass@k and greedy.

Used by the demo before and after RL (and by anything else that holds a model rather than a samples file).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from coderl.eval.passk import pass_at_k
from coderl.sandbox import Executor
from coderl.sandbox.schema import OUTCOME_CLASSES
from coderl.tasks.problem import Problem


def evaluate_policy(policy, tokenizer, problems: Sequence[Problem], executor: Executor, n: int = 10,
                    ks: Sequence[int] = (1, 5), temperature: float = 1.0, top_p: float = 1.0,
                    max_new_tokens: int = 64, seed: int = 0, greedy: bool = True) -> dict[str, Any]:
    """pass@k from ``n`` samples per problem at ``temperature`` (unbiased estimator), plus the greedy pass rate
    and the outcome-class mix of the samples. Returns plain floats (JSON-ready)."""
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
    reqs = [p.request(f"{i}/{j}", p.program(c.text))
            for i, (p, cs) in enumerate(zip(problems, samples, strict=True)) for j, c in enumerate(cs)]
    results = executor.run(reqs)
    correct = np.zeros(len(problems), dtype=int)
    mix = dict.fromkeys(OUTCOME_CLASSES, 0)
    for req, res in zip(reqs, results, strict=True):
        correct[int(req["id"].split("/")[0])] += res.passed
        mix[res.outcome] += 1
    out: dict[str, Any] = {f"pass@{k}": float(np.mean([pass_at_k(n, int(c), k) for c in correct])) for k in ks}
    out["outcomes"] = {o: mix[o] / len(results) for o in OUTCOME_CLASSES}
    if greedy_out is not None:
        g = executor.run([p.request(str(i), p.program(cs[0].text))
                          for i, (p, cs) in enumerate(zip(problems, greedy_out, strict=True))])
        out["greedy"] = float(np.mean([r.passed for r in g]))
        out["greedy_outcomes"] = {o: sum(r.outcome == o for r in g) / len(g) for o in OUTCOME_CLASSES}
    out["n_problems"], out["n_samples"] = len(problems), n
    return out
