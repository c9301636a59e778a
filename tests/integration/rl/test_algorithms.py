"""Every named RL algorithm (RLConfig.PRESETS) runs end to end in train_rl: rollouts sampled, executed in the
sandbox, updated with its own corrections, and logged with the statistics it promises."""

from __future__ import annotations

import copy
import importlib.util

import pytest

if importlib.util.find_spec("torch") is None:
    pytest.skip("needs the train extra", allow_module_level=True)

import torch  # noqa: E402

from coderl.rl.config import PRESETS, RLConfig  # noqa: E402
from coderl.rl.loop import train_rl  # noqa: E402


@pytest.fixture(scope="module")
def setting(sft_family):
    # a little supervised training, so that programs end at eos at different lengths
    return sft_family(60.0)


@pytest.mark.parametrize("name", [n for n in PRESETS if not RLConfig.preset(n).needs_critic])
def test_each_algorithm_trains_and_logs(executor, setting, name):
    tasks, tok, model, pairs = setting
    policy = copy.deepcopy(model)
    # the overlong penalty makes returns differ by length even when every program fails: advantages are not zero
    cfg = RLConfig.preset(name, steps=2, problems_per_step=3, samples_per_problem=2, max_new_tokens=40,
                          overlong="penalty", overlong_cache=30, lr=1e-3, sft_batch=4, checkpoint_every=0, seed=1)
    hist = train_rl(policy, tok, tasks, executor, cfg, sft_pairs=pairs, progress=False)
    assert [h["step"] for h in hist] == [1, 2]
    changed = any(not torch.equal(a, b) for a, b in zip(policy.parameters(), model.parameters(), strict=True))
    assert changed, "the policy did not move"
    for h in hist:
        assert set(h["outcomes"]) == {"compile_error", "runtime_error", "failed_test", "passed"}
        if cfg.dynamic_sampling:  # DAPO drops groups whose outcomes are all the same (here: often all of them)
            assert 0.0 <= h["dropped_groups"] <= 1.0
            if h["dropped_groups"] == 1.0:
                continue
        assert h["adv_abs"] > 0 and h["overlong_penalty"] < 0.0
        if cfg.uses_ratios:
            # the same model samples and trains: its numbers agree to float rounding, whatever the algorithm
            assert 0.0 <= h["clip_frac"] <= 1.0 and h["sampler_mismatch"] < 1e-3


@pytest.mark.parametrize("name", [n for n in PRESETS if RLConfig.preset(n).needs_critic])
def test_each_algorithm_with_a_critic_trains_and_the_critic_can_follow(executor, setting, name):
    """The algorithms that use the critic (token weights, the actor-critic baseline), with online critic
    updates: the critic's weights change during RL and its loss is logged."""
    from coderl.models.critic import tiny_critic

    tasks, tok, model, pairs = setting
    policy = copy.deepcopy(model)
    critic = tiny_critic(tok, n_classes=4, n_layer=1, n_embd=32, n_head=2, seed=0)
    start = [p.detach().clone() for p in critic.parameters()]
    cfg = RLConfig.preset(name, steps=2, problems_per_step=3, samples_per_problem=2, max_new_tokens=40,
                          overlong="penalty", overlong_cache=30, lr=1e-3, sft_batch=4, checkpoint_every=0, seed=1,
                          critic_online_lr=1e-3)
    hist = train_rl(policy, tok, tasks, executor, cfg, critic=critic, sft_pairs=pairs, progress=False)
    assert [h["step"] for h in hist] == [1, 2]
    assert all(h["critic_loss"] > 0 for h in hist)
    assert any(not torch.equal(a, b) for a, b in zip(critic.parameters(), start, strict=True))
    assert any(not torch.equal(a, b) for a, b in zip(policy.parameters(), model.parameters(), strict=True))


def test_the_critic_filter_in_the_loop(executor, setting):
    from coderl.models.critic import tiny_critic

    tasks, tok, model, pairs = setting
    critic = tiny_critic(tok, n_classes=4, n_layer=1, n_embd=32, n_head=2, seed=0)
    cfg = RLConfig.preset("grpo", steps=2, problems_per_step=3, samples_per_problem=2, max_new_tokens=40,
                          sft_batch=4, checkpoint_every=0, seed=1, critic_filter=0.5)
    hist = train_rl(copy.deepcopy(model), tok, tasks, executor, cfg, critic=critic, sft_pairs=pairs, progress=False)
    # an untrained 4-class critic gives about 1/4 to passing: it filters (almost) everything, never as passed
    assert all(0.5 <= h["critic_filtered"] <= 1.0 for h in hist)
    assert all(h["outcomes"]["passed"] == 0.0 for h in hist)


def test_a_resumed_run_continues_the_critic_that_rl_updated(executor, setting, tmp_path):
    """With online critic updates, the critic (and its optimiser) is part of the training state: stopping after
    2 steps and resuming to 4 gives the uninterrupted run's policy and critic, not one restarted from the critic
    that was passed in."""
    from coderl.models.critic import tiny_critic

    tasks, tok, model, pairs = setting
    cfg = dict(steps=4, problems_per_step=3, samples_per_problem=2, max_new_tokens=40, lr=1e-3, sft_batch=4,
               checkpoint_every=2, seed=1, critic_online_lr=1e-2)

    def run(out, steps, critic, policy, resume=False):
        rl = RLConfig.preset("critic-baseline", **{**cfg, "steps": steps})
        return train_rl(policy, tok, tasks, executor, rl, critic=critic, sft_pairs=pairs, progress=False,
                        out_dir=out, resume=resume)

    critic0 = tiny_critic(tok, n_classes=4, n_layer=1, n_embd=32, n_head=2, seed=0)
    whole_critic, whole_policy = copy.deepcopy(critic0), copy.deepcopy(model)
    whole = run(tmp_path / "whole", 4, whole_critic, whole_policy)
    run(tmp_path / "parts", 2, copy.deepcopy(critic0), copy.deepcopy(model))
    # a new process would load the critic it was given again: the resumed run starts from that one
    resumed_critic, resumed_policy = copy.deepcopy(critic0), copy.deepcopy(model)
    resumed = run(tmp_path / "parts", 4, resumed_critic, resumed_policy, resume=True)

    assert [h["critic_loss"] for h in resumed] == [h["critic_loss"] for h in whole]
    for a, b in zip(resumed_critic.parameters(), whole_critic.parameters(), strict=True):
        assert torch.equal(a, b)
    for a, b in zip(resumed_policy.parameters(), whole_policy.parameters(), strict=True):
        assert torch.equal(a, b)
