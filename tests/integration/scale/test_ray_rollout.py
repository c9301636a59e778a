"""Ray rollouts in train_rl: generation on separate workers with weights pushed every step, execution on the
Ray executor. With one micro-batch the samples must be exactly those of the single-process run."""

from __future__ import annotations

import copy

import pytest
import torch

from .conftest import RAY_UID_BASE


class Recorder:
    """An executor proxy that records every program it is asked to run, per call."""

    def __init__(self, ex):
        self.ex, self.calls = ex, []

    def run(self, reqs):
        self.calls.append([r["program"] for r in reqs])
        return self.ex.run(reqs)


def _setup():
    from coderl.models.actor import tiny_gpt2
    from coderl.models.tokenizer import train_bpe
    from coderl.rl.config import RLConfig
    from coderl.tasks.family import corpus_text, generate_tasks
    from coderl.tasks.prompt import format_prompt

    tasks = generate_tasks("train", 32, seed=0)
    tok = train_bpe([format_prompt(p) for p in tasks] + [corpus_text(tasks)], vocab_size=300)
    model = tiny_gpt2(tok, n_layer=1, n_embd=32, n_head=2, n_positions=96, seed=0)
    # a large learning rate, so that sampling from stale weights would visibly change the programs
    cfg = RLConfig(algo="grpo", steps=3, problems_per_step=4, samples_per_problem=2, max_new_tokens=24,
                   checkpoint_every=0, lr=3e-2, sft_weight=0.5, sft_batch=4)
    pairs = [(format_prompt(p), p.solutions[0]) for p in tasks]
    return tasks, tok, model, cfg, pairs


@pytest.fixture(scope="module")
def ray_backends(ray_cluster):
    """One Ray executor actor and one generation worker, shared by this module's tests (actor start-up, which
    imports torch and transformers in a fresh process, is the slow part)."""
    from coderl.scale.ray_executor import RayExecutor
    from coderl.scale.ray_rollout import RayRollouts, RolloutWorkerConfig

    _, tok, model, _, _ = _setup()
    with RayExecutor(workers=2, cpus_per_actor=1, timeout=2.0, memory_mb=1024, uid_base=RAY_UID_BASE + 8) as rex, \
            RayRollouts(model, tok, RolloutWorkerConfig(workers=1, micro_batches=1, threads=1)) as ro:
        yield rex, ro


@pytest.mark.slow
def test_ray_rollouts_reproduce_the_single_process_run(ray_backends, executor, monkeypatch):
    import ray

    from coderl.rl.loop import train_rl

    rex, ro = ray_backends
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the worker decodes with one thread; identical arithmetic needs the same here
    try:
        tasks, tok, model, cfg, pairs = _setup()
        init = copy.deepcopy(model)
        local = Recorder(executor)
        hist_local = train_rl(model, tok, tasks, local, cfg, sft_pairs=pairs, progress=False)

        ray_model = copy.deepcopy(init)
        rec = Recorder(rex)
        hist_ray = train_rl(ray_model, tok, tasks, rec, cfg, sft_pairs=pairs, progress=False, rollout_backend=ro)

        # negative control: the version moves on but the initial weights stay on the worker
        frozen = {k: v.clone() for k, v in init.state_dict().items()}

        def stale(_policy):
            ro.version += 1
            ray.get([w.set_weights.remote(frozen, ro.version) for w in ro.workers])
            return 0.0, 0.0

        monkeypatch.setattr(ro, "sync", stale)
        stale_rec = Recorder(rex)
        train_rl(copy.deepcopy(init), tok, tasks, stale_rec, cfg, sft_pairs=pairs, progress=False,
                 rollout_backend=ro)
    finally:
        torch.set_num_threads(threads)

    assert rec.calls == local.calls  # the same programs, step by step
    for a, b in zip(hist_local, hist_ray, strict=True):
        for k in ("reward", "pass_rate", "loss_pg", "loss_sft"):
            assert a[k] == pytest.approx(b[k], abs=1e-6), k
        assert b["sync_s"] > 0 and b["sync_mb"] > 0 and b["gen_s"] > 0 and b["exec_s"] > 0
    for (k, p), q in zip(model.state_dict().items(), ray_model.state_dict().values(), strict=True):
        assert torch.allclose(p, q, atol=1e-6), k
    # the comparison above can fail: without the weight push, later steps sample different programs
    assert stale_rec.calls[0] == local.calls[0]
    assert stale_rec.calls[1:] != local.calls[1:]


@pytest.mark.slow
def test_micro_batches_overlap_execution_with_generation(ray_backends, monkeypatch):
    from coderl.rl.loop import Rollout

    rex, ro = ray_backends
    tasks, _, model, cfg, _ = _setup()
    monkeypatch.setattr(ro.cfg, "micro_batches", 3)
    out = ro.rollouts(model, tasks[:6], cfg, seed=1, executor=rex)
    assert len(out) == 6 * cfg.samples_per_problem and all(isinstance(r, Rollout) for r in out)
    assert [r.problem.task_id for r in out] == [p.task_id for p in tasks[:6] for _ in range(cfg.samples_per_problem)]
    assert all(r.outcome for r in out)  # every program was executed
    s = ro.last_stats
    assert s["rollout_s"] <= s["sync_s"] + s["gen_s"] + s["exec_s"] + 0.05
