"""generate_samples_file, the library side of ``coderl generate``: one line per candidate in rank order, the
summary beside them, and every finished chunk kept on disk when a later chunk fails."""

from __future__ import annotations

import json

import pytest

FIELDS = ["task_id", "completion", "rank", "origin", "round", "example_outcome", "critic_pass", "parent"]


def lines(path):
    return [json.loads(x) for x in path.read_text().splitlines()]


@pytest.fixture(scope="module")
def tiny_models(tiny_tok):
    from coderl.models.actor import tiny_gpt2
    from coderl.models.critic import tiny_critic

    actor = tiny_gpt2(tiny_tok, n_layer=1, n_embd=32, n_head=2, n_positions=128, seed=0)
    critic = tiny_critic(tiny_tok, n_classes=4, n_layer=1, n_embd=32, n_head=2, n_positions=128)
    return actor, critic


class FailingOnSecondRun:
    """A real executor that fails like a broken sandbox on its second batch (the second chunk's example tests)."""

    def __init__(self, ex):
        self.ex, self.calls = ex, 0

    def run(self, requests):
        from coderl.sandbox import SandboxError

        self.calls += 1
        if self.calls == 2:
            raise SandboxError("the sandbox died")
        return self.ex.run(requests)


@pytest.mark.parametrize("critic_sampling", [False, True])
def test_writes_every_candidate_ranked_per_problem_and_the_summary(tmp_path, family_tasks, tiny_tok, tiny_models,
                                                                   critic_sampling):
    from coderl.inference import CriticSamplingConfig, generate_samples_file
    from coderl.sandbox import Executor

    actor, critic = tiny_models
    problems = family_tasks[:5]
    cfg = CriticSamplingConfig(n=2, rounds=2, max_new_tokens=12, seed=0)
    out = tmp_path / "sub" / "g.jsonl"
    chunks = []
    with Executor(workers=2, timeout=2.0) as ex:
        summary = generate_samples_file(actor, tiny_tok, problems, ex, cfg, out, critic=critic,
                                        critic_sampling=critic_sampling, chunk=2, progress=False,
                                        on_chunk=lambda done, total: chunks.append((done, total)))
    assert chunks == [(2, 5), (4, 5), (5, 5)]
    got = lines(out)
    assert all(list(r) == FIELDS for r in got)
    assert [r["task_id"] for r in got] == [p.task_id for p in problems for _ in range(cfg.budget)]
    assert [r["rank"] for r in got] == list(range(cfg.budget)) * len(problems)
    assert all(r["example_outcome"] is not None and r["critic_pass"] is not None for r in got)
    assert json.loads((tmp_path / "sub" / "g.jsonl.summary.json").read_text()) == summary
    assert summary["method"] == ("critic_sampling" if critic_sampling else "plain")
    assert summary["problems"] == 5 and summary["config"] == cfg.to_dict()
    assert summary["model_calls"] == 5 * cfg.budget and summary["model_calls_per_problem"] == cfg.budget
    assert summary["example_runs"] == len(got) and summary["critic_programs"] >= len(got)


def test_a_failure_in_the_second_chunk_keeps_the_first_chunks_lines(tmp_path, family_tasks, tiny_tok, tiny_models):
    from coderl.inference import CriticSamplingConfig, generate_samples_file
    from coderl.sandbox import Executor, SandboxError

    actor, _ = tiny_models
    problems = family_tasks[:4]
    cfg = CriticSamplingConfig(n=2, rounds=1, max_new_tokens=12, seed=0)
    out = tmp_path / "g.jsonl"
    with Executor(workers=2, timeout=2.0) as ex, pytest.raises(SandboxError, match="the sandbox died"):
        generate_samples_file(actor, tiny_tok, problems, FailingOnSecondRun(ex), cfg, out, chunk=2, progress=False)
    got = lines(out)
    assert [r["task_id"] for r in got] == [p.task_id for p in problems[:2] for _ in range(cfg.budget)]
    assert all(r["critic_pass"] is None for r in got)  # plain sampling without a critic: unranked by one
    assert not (tmp_path / "g.jsonl.summary.json").exists()


def test_refuses_before_touching_the_output(tmp_path, family_tasks, tiny_tok):
    from dataclasses import replace

    from coderl.inference import CriticSamplingConfig, generate_samples_file

    out = tmp_path / "g.jsonl"
    bare = [family_tasks[0], replace(family_tasks[1], example_tests=None)]
    for problems, kw, message in ((bare, {}, "1 problems have no example_tests"),
                                  (family_tasks[:1], {"chunk": 0}, "chunk must be >= 1"),
                                  (family_tasks[:1], {"critic_sampling": True}, "needs a critic")):
        with pytest.raises(ValueError, match=message):
            generate_samples_file(None, tiny_tok, problems, None, CriticSamplingConfig(), out, **kw)
    assert not out.exists()
