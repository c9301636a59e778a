"""The RL update phase (rl.loop.update and the returns it shapes) on a tiny model: the corrections of issue 16
behave as their equations say, and the default update is the whole batch's policy gradient."""

from __future__ import annotations

import copy
import importlib.util
import random

import pytest

if importlib.util.find_spec("torch") is None:
    pytest.skip("needs the train extra", allow_module_level=True)

import torch  # noqa: E402

from coderl.models.logprobs import completion_logprobs  # noqa: E402
from coderl.rl.config import PRESETS, RLConfig  # noqa: E402
from coderl.rl.loop import Reference, Rollout, advantages, shape_returns, update  # noqa: E402
from coderl.rl.losses import policy_gradient_loss  # noqa: E402
from coderl.tasks.problem import Problem  # noqa: E402
from coderl.train.precision import Precision  # noqa: E402


def rollouts(n: int = 6, seed: int = 0) -> list[Rollout]:
    p = Problem(task_id="t", prompt="x", tests={"type": "assert", "asserts": ["assert True"]})
    rng = random.Random(seed)
    return [Rollout(p, [rng.randrange(3, 290) for _ in range(rng.randint(2, 6))],
                    [rng.randrange(3, 290) for _ in range(rng.randint(1, 9))], "") for _ in range(n)]


def one_update(model, tok, rs, adv, cfg, weights=None, reference=None, lr=0.1):
    m = copy.deepcopy(model)
    opt = torch.optim.SGD(m.parameters(), lr=lr)
    stats = update(m, opt, tok, rs, adv, weights, [], cfg, random.Random(1), reference=reference)
    return m, stats


def params_close(a, b, atol=1e-6) -> bool:
    return all(torch.allclose(pa, pb, atol=atol) for pa, pb in zip(a.parameters(), b.parameters(), strict=True))


def moved(a, b) -> float:
    return max((pa - pb).abs().max().item() for pa, pb in zip(a.parameters(), b.parameters(), strict=True))


@pytest.mark.parametrize("normalize", ["sequence", "sequence_mean", "token", "constant"])
def test_the_default_update_is_the_whole_batchs_policy_gradient(tiny, normalize):
    """Zero-advantage programs are skipped but still count in the denominator: the step equals one SGD step on
    policy_gradient_loss over the whole batch (with normalize='token' it used to be 0.8x of it)."""
    model, tok = tiny
    rs = rollouts()
    adv = torch.tensor([1.0, -0.5, 0.0, 0.7, 0.0, 0.2])
    cfg = RLConfig(algo="grpo", sft_weight=0.0, normalize=normalize, grad_clip=1e9)
    got, _ = one_update(model, tok, rs, adv, cfg)
    ref = copy.deepcopy(model)
    ref.train()
    logp, mask = completion_logprobs(ref, [r.prompt_ids for r in rs], [r.completion_ids for r in rs], tok.pad_token_id)
    policy_gradient_loss(logp, mask, adv, None, normalize, constant=cfg.max_new_tokens).backward()
    with torch.no_grad():
        for p in ref.parameters():
            if p.grad is not None:
                p -= 0.1 * p.grad
    assert moved(got, model) > 1e-4 and params_close(got, ref)


def test_one_pass_of_the_clipped_surrogate_is_the_policy_gradient(tiny):
    """The invariant end to end: PPO with one epoch and one mini-batch takes the plain update's step."""
    model, tok = tiny  # no dropout, so train and eval mode are the same function
    rs = rollouts()
    adv = torch.tensor([1.0, -0.5, 0.3, 0.7, -1.3, 0.2])
    w = torch.rand((6, 9), generator=torch.Generator().manual_seed(3))
    plain, _ = one_update(model, tok, rs, adv, RLConfig(algo="grpo", use_critic=True, sft_weight=0, grad_clip=1e9), w)
    ppo, stats = one_update(model, tok, rs, adv, RLConfig(algo="grpo", use_critic=True, sft_weight=0, grad_clip=1e9,
                                                          clip_low=0.2), w)
    assert params_close(plain, ppo) and stats["clip_frac"] == 0.0


def test_epochs_and_minibatches_take_several_clipped_steps(tiny):
    model, tok = tiny
    rs = rollouts(8)
    adv = torch.tensor([1.0, -1.0] * 4)
    one, _ = one_update(model, tok, rs, adv, RLConfig(algo="grpo", sft_weight=0, clip_low=0.2), lr=2.0)
    many, stats = one_update(model, tok, rs, adv, RLConfig(algo="grpo", sft_weight=0, clip_low=0.2, epochs=3,
                                                           minibatches=2), lr=2.0)
    assert not params_close(one, many)
    assert 0.0 < stats["clip_frac"] <= 1.0  # with this learning rate later steps leave the trust region


def test_kl_penalty_against_a_frozen_reference(tiny):
    model, tok = tiny
    rs = rollouts()
    adv = torch.zeros(6)  # no policy signal: only the KL term (zero at the reference) and nothing else moves
    cfg = RLConfig(algo="grpo", sft_weight=0, kl_coef=1.0, clip_low=0.2, epochs=2)
    policy = copy.deepcopy(model)
    ref = Reference(policy)
    amp = Precision("fp32", torch.device("cpu"))
    before, _ = ref.logprobs(tok, rs, list(range(6)), amp)
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():  # move the policy away from its reference
        for p in policy.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=g))
    opt = torch.optim.SGD(policy.parameters(), lr=0.1)
    stats1 = update(policy, opt, tok, rs, adv, None, [], cfg, random.Random(0), reference=ref)
    stats2 = update(policy, opt, tok, rs, adv, None, [], cfg, random.Random(0), reference=ref)
    after, _ = ref.logprobs(tok, rs, list(range(6)), amp)
    assert torch.equal(before, after), "the reference moved"
    assert stats1["kl_loss"] > 0 and stats2["kl_loss"] < stats1["kl_loss"], "the KL term did not pull back"


def test_kl_as_a_reward_penalty(tiny):
    model, tok = tiny
    rs = rollouts()
    for r in rs:
        r.reward = 1.0
    policy = copy.deepcopy(model)
    ref = Reference(model)
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in policy.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=g))
    cfg = RLConfig(algo="grpo", kl_coef=0.5, kl_penalty="reward")
    extra = shape_returns(policy, tok, rs, cfg, ref, Precision("fp32", torch.device("cpu")))
    assert extra["kl"] > 0 and all(r.reward < 1.0 for r in rs)  # k3 >= 0: every program pays


def test_overlong_penalty_and_filter():
    p = Problem(task_id="t", prompt="x", tests={"type": "assert", "asserts": ["assert True"]})
    lens, finished = [4, 14, 16, 16], [True, True, True, False]
    rs = [Rollout(p, [1], [5] * n, "", reward=1.0, finished=f) for n, f in zip(lens, finished, strict=True)]
    cfg = RLConfig(algo="grpo", samples_per_problem=4, max_new_tokens=16, overlong="penalty", overlong_cache=4)
    shape_returns(None, None, rs, cfg, None, Precision("fp32", torch.device("cpu")))
    assert [r.reward for r in rs] == pytest.approx([1.0, 0.5, 0.0, 0.0])  # 14 of 16: -(14-12)/4 ; cut: -1
    cfg = RLConfig(algo="grpo", samples_per_problem=4, max_new_tokens=16, overlong="filter", overlong_cache=4)
    for r, reward in zip(rs, [1.0, 0.0, 0.0, 1.0], strict=True):
        r.reward = reward
    adv = advantages(rs, cfg)
    assert adv[3] == 0 and adv[0] == pytest.approx(0.5)  # the cut program's advantage is dropped, not its return


def test_truncated_importance_sampling_needs_the_samplers_log_probabilities(tiny):
    model, tok = tiny
    rs = rollouts()
    with pytest.raises(ValueError, match="sampler's log-probability"):
        one_update(model, tok, rs, torch.ones(6), RLConfig(algo="grpo", tis_cap=2.0))
    for r in rs:  # the sampler was this very policy: weights 1, the same step as without the correction
        logp, _ = completion_logprobs(model.eval(), [r.prompt_ids], [r.completion_ids], tok.pad_token_id)
        r.sampler_logprobs = logp[0].tolist()
    a, stats = one_update(model, tok, rs, torch.ones(6), RLConfig(algo="grpo", tis_cap=2.0, sft_weight=0))
    b, _ = one_update(model, tok, rs, torch.ones(6), RLConfig(algo="grpo", sft_weight=0))
    assert stats["sampler_mismatch"] == pytest.approx(0.0, abs=1e-6) and params_close(a, b, atol=1e-5)


@pytest.mark.parametrize("name", PRESETS)
def test_every_named_algorithm_is_a_valid_configuration(name):
    cfg = RLConfig.preset(name, steps=3)
    assert cfg.steps == 3 and cfg.algo in ("coderl", "grpo", "actor-critic")


@pytest.mark.parametrize("fields, message", [
    ({"epochs": 2}, "set clip_low"), ({"minibatches": 2}, "set clip_low"), ({"clip_high": 0.3}, "need clip_low"),
    ({"clip_low": 0.2, "ratio_level": "seq"}, "ratio_level"), ({"kl_estimator": "k2"}, "kl_estimator"),
    ({"dynamic_sampling": True, "algo": "coderl"}, "needs algo='grpo'"), ({"overlong": "cut"}, "overlong"),
    ({"overlong": "penalty", "overlong_cache": 999}, "overlong_cache"), ({"tis_cap": 0}, "tis_cap"),
    ({"normalize": "batch"}, "normalize"),
])
def test_bad_combinations_say_how_to_fix_them(fields, message):
    with pytest.raises(ValueError, match=message):
        RLConfig.from_dict({"algo": "grpo", **fields})


def test_use_critic_defaults_to_the_algorithm():
    assert RLConfig(algo="coderl").critic_weighted is True
    assert RLConfig(algo="grpo").critic_weighted is False
    assert RLConfig(algo="grpo", use_critic=True).critic_weighted is True
    # a config derived from a coderl one with another algo resolves anew
    assert RLConfig.from_dict({**RLConfig(algo="coderl").to_dict(), "algo": "grpo"}).critic_weighted is False


def test_a_lora_runs_reference_is_its_base_weights_without_a_copy(tiny):
    """For a LoRA policy the KL reference is the same model with its adapters off: no second copy, and what the
    adapters learn does not move it."""
    pytest.importorskip("peft")
    from coderl.models.lora import apply_lora

    model, tok = tiny
    base = copy.deepcopy(model)
    policy = apply_lora(copy.deepcopy(model), r=4, alpha=8, dropout=0.0)
    ref = Reference(policy)
    assert not ref.holds_copy and Reference(model).holds_copy
    rs = rollouts()
    amp = Precision("fp32", torch.device("cpu"))
    idx = list(range(6))
    base_lp, _ = Reference(base).logprobs(tok, rs, idx, amp)
    before, _ = ref.logprobs(tok, rs, idx, amp)
    opt = torch.optim.SGD([p for p in policy.parameters() if p.requires_grad], lr=1.0)
    cfg = RLConfig(algo="grpo", sft_weight=0, kl_coef=0.1, clip_low=0.2, epochs=2)
    update(policy, opt, tok, rs, torch.tensor([1.0, -1.0] * 3), None, [], cfg, random.Random(0), reference=ref)
    after, _ = ref.logprobs(tok, rs, idx, amp)
    assert torch.allclose(before, base_lp, atol=1e-5) and torch.allclose(after, base_lp, atol=1e-5)
    with torch.no_grad():
        moved_lp, _ = completion_logprobs(policy.eval(), [r.prompt_ids for r in rs], [r.completion_ids for r in rs],
                                          tok.pad_token_id)
    assert not torch.allclose(moved_lp, base_lp, atol=1e-4), "the adapters did not learn"


def test_actor_critic_advantages_are_per_token_returns_minus_values():
    p = Problem(task_id="t", prompt="x", tests={"type": "assert", "asserts": ["assert True"]})
    rs = [Rollout(p, [1], [5, 6, 7], "", reward=1.0), Rollout(p, [1], [5], "", reward=-0.3)]
    values = torch.tensor([[0.5, -0.2, 1.0], [-1.0, 9.0, 9.0]])  # the second program's pads carry junk values
    adv = advantages(rs, RLConfig(algo="actor-critic"), values)
    assert torch.allclose(adv, torch.tensor([[0.5, 1.2, 0.0], [0.7, 0.0, 0.0]]))


def test_token_values_carry_the_last_seen_value():
    from coderl.models.critic import token_values

    # 2 classes with returns (-1, +1): value = p1 - p0 ; the third token was not seen by the critic
    dist = torch.tensor([[[0.5, 0.5], [0.2, 0.8], [0.9, 0.1]]])
    v = token_values(dist, torch.tensor([[1.0, 1.0, 0.0]]), [-1.0, 1.0])
    assert torch.allclose(v, torch.tensor([[0.0, 0.6, 0.6]]))


def test_per_token_advantages_in_both_losses(tiny):
    """A (B, T) advantage equal to A_b on every token is the (B,) advantage A_b, in both update paths."""
    model, tok = tiny
    rs = rollouts()
    adv = torch.tensor([1.0, -0.5, 0.3, 0.7, -1.3, 0.2])
    t = max(len(r.completion_ids) for r in rs)
    wide = adv[:, None].expand(-1, t).clone()
    for cfg in (RLConfig(algo="grpo", sft_weight=0, grad_clip=1e9),
                RLConfig(algo="grpo", sft_weight=0, grad_clip=1e9, clip_low=0.2, epochs=2)):
        a, _ = one_update(model, tok, rs, adv, cfg)
        b, _ = one_update(model, tok, rs, wide, cfg)
        assert params_close(a, b)


def test_online_critic_updates_learn_the_verdicts(tiny):
    from coderl.models.critic import outcome_label, program_token_probs, tiny_critic
    from coderl.train.critic import OnlineCritic

    _, tok = tiny
    rs = rollouts(8)
    outcomes = ["passed", "compile_error"] * 4
    critic = tiny_critic(tok, n_classes=4, n_layer=1, n_embd=32, n_head=2, seed=0)
    labels = [outcome_label(o, 4) for o in outcomes]

    def prob_of_truth() -> float:
        probs, mask = program_token_probs(critic, [r.prompt_ids for r in rs], [r.completion_ids for r in rs], labels,
                                          tok.pad_token_id)
        return float((probs * mask).sum() / mask.sum())

    before = prob_of_truth()
    online = OnlineCritic(critic, lr=1e-2)
    losses = [online.step([r.prompt_ids for r in rs], [r.completion_ids for r in rs], labels, tok.pad_token_id)
              for _ in range(20)]
    assert losses[-1] < losses[0] and prob_of_truth() > before and not critic.training


@pytest.mark.parametrize("favoured, filtered", [("compile_error", 6), ("passed", 0)])
def test_the_critic_filter_skips_programs_it_judges_failing(tiny, favoured, filtered):
    """Programs the critic gives little chance of passing are not executed and get its predicted failure; a
    filtered program is never 'passed'."""
    from coderl.models.critic import outcome_label, tiny_critic
    from coderl.rl.loop import critic_prefilter

    _, tok = tiny
    critic = tiny_critic(tok, n_classes=4, n_layer=1, n_embd=32, n_head=2, seed=0)
    with torch.no_grad():
        critic.head[-1].bias.zero_()
        critic.head[-1].bias[outcome_label(favoured, 4)] = 20.0  # the critic is sure of this class
    rs = rollouts()
    run = critic_prefilter(critic, tok, rs, threshold=0.5)
    assert len(rs) - len(run) == filtered
    for r in rs:
        if r not in run:
            assert (r.outcome, r.reward) == ("compile_error", -1.0)
        else:
            assert r.outcome == ""  # left for the executor
