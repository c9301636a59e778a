"""Critic sampling and its baseline run the example tests only, never the hidden ones, and spend exactly the
budget of model calls; both refine (some candidate passes) and repair (none passes) paths are exercised."""

from __future__ import annotations

import pytest

from coderl.sandbox.schema import Result


class SpyExecutor:
    """Records every request; 'passes' a program iff its problem is in ``passing`` (a stand-in for the sandbox)."""

    def __init__(self, problems, passing):
        self.by_program_tests = {}
        self.requests = []
        self.problems = problems
        self.passing = passing

    def run(self, requests):
        out = []
        for r in requests:
            self.requests.append(r)
            i = int(r["id"].split("/")[0])
            ok = i in self.passing
            n = len(r["tests"]["asserts"])
            out.append(Result(r["id"], "passed" if ok else "failed_test", "ok" if ok else "AssertionError",
                              ["passed" if ok else "failed_test"] * n, 1.0 if ok else 0.0, None))
        return out


@pytest.mark.slow
def test_only_example_tests_run_and_budget_is_exact(family_tasks, tiny_tok):
    from coderl.inference import CriticSamplingConfig, critic_sample, plain_sample
    from coderl.models.actor import tiny_gpt2
    from coderl.models.critic import tiny_critic

    problems = family_tasks[:4]
    for p in problems:
        assert p.example_tests and p.example_tests != p.tests
    actor = tiny_gpt2(tiny_tok, n_layer=1, n_embd=32, n_head=2, n_positions=128, seed=0)
    repair = tiny_gpt2(tiny_tok, n_layer=1, n_embd=32, n_head=2, n_positions=256, seed=1)
    critic = tiny_critic(tiny_tok, n_classes=4, n_layer=1, n_embd=32, n_head=2, n_positions=128)
    cfg = CriticSamplingConfig(n=4, rounds=3, top_m=2, max_new_tokens=16, seed=0)
    ex = SpyExecutor(problems, passing={0, 1})
    results, stats = critic_sample(actor, tiny_tok, critic, problems, ex, cfg, repair_model=repair, progress=False)
    hidden = [p.tests for p in problems]
    assert ex.requests and all(r["tests"] == problems[int(r["id"].split("/")[0])].example_tests
                               for r in ex.requests)
    assert not any(r["tests"] in hidden for r in ex.requests)
    assert stats["model_calls"] == len(problems) * cfg.budget
    assert [r.model_calls for r in results] == [cfg.budget] * len(problems)
    assert results[0].rounds == ["sample", "refine", "refine"] and results[2].rounds == ["sample", "repair", "repair"]
    origins = {i: {c.origin for c in r.candidates} for i, r in enumerate(results)}
    assert origins[0] == {"sample", "refine"} and origins[3] == {"sample", "repair"}
    # refined programs start with their seed: the parent's first tokens
    r0 = results[0]
    by_index = {c.index: c for c in r0.candidates}
    for c in r0.candidates:
        if c.origin == "refine":
            parent = tiny_tok(by_index[c.parent].text, add_special_tokens=False)["input_ids"]
            mine = tiny_tok(c.text, add_special_tokens=False)["input_ids"]
            assert c.seed_tokens >= 1 and mine[: c.seed_tokens] == parent[: c.seed_tokens]
    # ranked: example-test passes first, then by critic score
    assert all(c.critic_pass is not None for r in results for c in r.candidates)
    scores = [c.critic_pass for c in r0.candidates]
    assert scores == sorted(scores, reverse=True)

    ex2 = SpyExecutor(problems, passing={0})
    base, bstats = plain_sample(actor, tiny_tok, problems, ex2, cfg, critic=critic)
    assert bstats["model_calls"] == len(problems) * cfg.budget
    assert all(r["tests"] == problems[int(r["id"].split("/")[0])].example_tests for r in ex2.requests)
    assert base[0].candidates[0].example_passed and not base[1].candidates[0].example_passed


def test_problems_without_example_tests_are_refused(family_tasks, tiny_tok):
    from dataclasses import replace

    from coderl.inference import CriticSamplingConfig, plain_sample

    p = replace(family_tasks[0], example_tests=None)
    with pytest.raises(ValueError, match="no example_tests"):
        plain_sample(None, tiny_tok, [p], SpyExecutor([p], set()), CriticSamplingConfig())
