"""Loss and advantage functions against values worked out by hand (the arithmetic is in the comments)."""

from __future__ import annotations

import math

import pytest
import torch

from coderl.rl.advantages import greedy_baseline_advantages, group_advantages
from coderl.rl.losses import (
    AGGREGATIONS,
    aggregate,
    clipped_surrogate_loss,
    critic_weights,
    importance_ratios,
    kl_estimate,
    overlong_penalty,
    policy_gradient_loss,
    truncated_is_weights,
)
from coderl.rl.rewards import outcome_reward, outcome_rewards
from coderl.train.sft import sft_loss

# Two programs: the first has 2 real tokens and one pad, the second 3 real tokens.
LOGP = [[-1.0, -2.0, -7.0], [-0.5, -0.5, -1.0]]
MASK = [[1.0, 1.0, 0.0], [1.0, 1.0, 1.0]]


def t(x):
    return torch.tensor(x, dtype=torch.float64)


def test_reinforce_sequence_normalisation():
    # seq 1: -(+1.0) * (-1 - 2) = 3 ; seq 2: -(-0.5) * (-0.5 - 0.5 - 1) = -1 ; (3 - 1) / B=2 = 1.0
    loss = policy_gradient_loss(t(LOGP), t(MASK), t([1.0, -0.5]))
    assert loss.item() == pytest.approx(1.0)


def test_reinforce_token_normalisation():
    # same total 2.0, divided by the 5 real tokens
    loss = policy_gradient_loss(t(LOGP), t(MASK), t([1.0, -0.5]), normalize="token")
    assert loss.item() == pytest.approx(0.4)


def test_critic_weighted_loss_and_gradient():
    # weights: seq 1 (0.2, 0.5, pad 0.9 ignored); seq 2 (1.0, 0.0, 0.5)
    # seq 1: -(1.0) * (0.2*-1 + 0.5*-2) = 1.2 ; seq 2: -(-0.5) * (1*-0.5 + 0*-0.5 + 0.5*-1) = -0.5 ; 0.7 / 2 = 0.35
    logp = t(LOGP).requires_grad_()
    w = t([[0.2, 0.5, 0.9], [1.0, 0.0, 0.5]])
    loss = policy_gradient_loss(logp, t(MASK), t([1.0, -0.5]), token_weights=w)
    assert loss.item() == pytest.approx(0.35)
    loss.backward()
    # d loss / d logp[b, t] = -A_b * w_bt * mask_bt / B
    expected = [[-0.1, -0.25, 0.0], [0.25, 0.0, 0.125]]
    assert torch.allclose(logp.grad, t(expected))


def test_advantages_and_weights_carry_no_gradient():
    adv = t([1.0, -0.5]).requires_grad_()
    w = t([[1.0, 1.0, 1.0], [1.0, 1.0, 1.0]]).requires_grad_()
    logp = t(LOGP).requires_grad_()
    policy_gradient_loss(logp, t(MASK), adv, token_weights=w).backward()
    assert adv.grad is None and w.grad is None and logp.grad is not None


def test_sft_loss_is_mean_nll_over_real_tokens():
    # real log-probs: -1, -2, -0.5, -0.5, -1 → sum -5 over 5 tokens → 1.0 (the pad's -7 is ignored)
    assert sft_loss(t(LOGP), t(MASK)).item() == pytest.approx(1.0)


def test_shape_errors_are_clear():
    with pytest.raises(ValueError, match="advantages must be"):
        policy_gradient_loss(t(LOGP), t(MASK), t([1.0]))
    with pytest.raises(ValueError, match="aggregation must be one of"):
        policy_gradient_loss(t(LOGP), t(MASK), t([1.0, 1.0]), normalize="batch")
    with pytest.raises(ValueError, match=r"\(B, T\)"):
        sft_loss(t([1.0, 2.0]), t([1.0, 1.0]))


def test_critic_weights_floor_and_mask():
    probs = t([[0.2, 0.5, 0.9], [1.0, 0.0, 0.5]])
    # floor 0.5: 0.5 + 0.5 * p, then masked
    assert torch.allclose(critic_weights(probs, t(MASK), floor=0.5), t([[0.6, 0.75, 0.0], [1.0, 0.5, 0.75]]))
    assert torch.allclose(critic_weights(probs, t(MASK)), probs * t(MASK))


def test_greedy_baseline():
    # passed vs a greedy program that failed a test: 1 - (-0.3) = 1.3 ; equal returns: 0
    adv = greedy_baseline_advantages(t([1.0, -0.3]), t([-0.3, -0.3]))
    assert torch.allclose(adv, t([1.3, 0.0]))


def test_group_mean_baseline():
    # group 1 mean (1 - 0.3 - 0.3 + 1) / 4 = 0.35 ; group 2 all -1 → mean -1, advantages 0
    adv = group_advantages(t([[1.0, -0.3, -0.3, 1.0], [-1.0, -1.0, -1.0, -1.0]]))
    assert torch.allclose(adv, t([[0.65, -0.65, -0.65, 0.65], [0.0, 0.0, 0.0, 0.0]]))


def test_leave_one_out_baseline():
    # for a 1.0: others (-0.3 - 0.3 + 1) / 3 = 0.13333 → 0.86667 ; for a -0.3: others (1 - 0.3 + 1) / 3 = 0.56667
    adv = group_advantages(t([[1.0, -0.3, -0.3, 1.0]]), leave_one_out=True)
    assert torch.allclose(adv, t([[0.866667, -0.866667, -0.866667, 0.866667]]), atol=1e-5)


def test_leave_one_out_is_the_group_baseline_scaled_by_k_over_k_minus_1():
    # r_i - mean_{j!=i} r_j = r_i - (K mean - r_i)/(K-1) = K/(K-1) (r_i - mean): with K = 4, 4/3 of GRPO's
    r = t([[1.0, -0.3, -0.6, -1.0], [0.2, 0.2, 1.0, -1.0]])
    assert torch.allclose(group_advantages(r, leave_one_out=True), group_advantages(r) * 4 / 3, atol=1e-6)


def test_std_scaled_group_baseline():
    # population std of (1, -0.3, -0.3, 1) is 0.65 → advantages ±0.65 / 0.65 = ±1
    adv = group_advantages(t([[1.0, -0.3, -0.3, 1.0]]), scale_by_std=True, eps=0.0)
    assert torch.allclose(adv, t([[1.0, -1.0, -1.0, 1.0]]))


def test_rewards_follow_the_paper():
    assert outcome_rewards(["compile_error", "runtime_error", "failed_test", "passed"]) == [-1.0, -0.6, -0.3, 1.0]
    with pytest.raises(ValueError, match="unknown outcome"):
        outcome_reward("timeout")


# -- aggregation, importance ratios, clipping, KL, truncated IS, overlong (issue 16) ---------------------------

PER_TOKEN = [[1.0, 2.0, 0.0], [3.0, 4.0, 5.0]]  # zero at the first program's pad


@pytest.mark.parametrize("how, expected", [
    ("sequence", 7.5),        # (1 + 2 + 3 + 4 + 5) / B=2
    ("sequence_mean", 2.75),  # (3/2 + 12/3) / 2
    ("token", 3.0),           # 15 / 5 real tokens
    ("constant", 1.875),      # 15 / (2 programs x 4)
])
def test_aggregations(how, expected):
    assert aggregate(t(PER_TOKEN), t(MASK), how, constant=4).item() == pytest.approx(expected)


@pytest.mark.parametrize("how", AGGREGATIONS)
def test_parts_of_a_batch_add_up_to_the_whole(how):
    whole = aggregate(t(PER_TOKEN), t(MASK), how, constant=4)
    parts = sum(aggregate(t(PER_TOKEN)[i:i + 1], t(MASK)[i:i + 1], how, constant=4, n_sequences=2, n_tokens=5.0)
                for i in range(2))
    assert parts.item() == pytest.approx(whole.item())


LN2, LN3 = math.log(2.0), math.log(3.0)
SHIFT = [[LN2, -LN2, 5.0], [0.0, LN3, 0.0]]  # log π_θ - log π_old; the 5.0 sits on a pad


def test_token_and_sequence_importance_ratios():
    old = t(LOGP)
    ratios = importance_ratios(old + t(SHIFT), old, t(MASK), "token")
    assert torch.allclose(ratios, t([[2.0, 0.5, 1.0], [1.0, 3.0, 1.0]]))
    # GSPO: exp of each program's mean log-ratio: (ln2 - ln2)/2 = 0 -> 1; ln3 / 3 -> 3^(1/3)
    seq = importance_ratios(old + t(SHIFT), old, t(MASK), "sequence")
    assert torch.allclose(seq, t([[1.0, 1.0, 1.0], [3 ** (1 / 3)] * 3]))


def test_clipped_surrogate_by_hand():
    # ratios [[2, .5], [1, 3, 1]], advantages [+1, -1], eps 0.2:
    # A=+1: min(2, 1.2) = 1.2 (clipped), min(.5, .8) = .5 ; A=-1: -1, min(-3, -1.2) = -3, -1
    # loss = -(1.2 + .5 - 1 - 3 - 1) = 3.3 over 5 tokens = 0.66 ; one token of five clipped
    old = t(LOGP)
    loss, clipped = clipped_surrogate_loss(old + t(SHIFT), old, t(MASK), t([1.0, -1.0]), clip_low=0.2)
    assert loss.item() == pytest.approx(0.66) and clipped == pytest.approx(0.2)
    # DAPO's clip-higher (0.2, 0.28): the first token gives 1.28 -> 3.22 / 5
    loss, _ = clipped_surrogate_loss(old + t(SHIFT), old, t(MASK), t([1.0, -1.0]), clip_low=0.2, clip_high=0.28)
    assert loss.item() == pytest.approx(0.644)


def test_clipped_surrogate_with_critic_weights_and_is_weights():
    # weights scale each token's advantage: row 1 A=+1 w=(.5, 1) -> min(2*.5, 1.2*.5) = .6 ; min(.5, .8) = .5
    # row 2 A=-1 w=(1, 1, 1) as above (+5); IS weights (1, 2 | 1, 1, 1) double the second token: -(.6 + 1.0) + 5
    old = t(LOGP)
    w = t([[0.5, 1.0, 1.0], [1.0, 1.0, 1.0]])
    isw = t([[1.0, 2.0, 0.0], [1.0, 1.0, 1.0]])
    loss, _ = clipped_surrogate_loss(old + t(SHIFT), old, t(MASK), t([1.0, -1.0]), token_weights=w, is_weights=isw,
                                     normalize="sequence")
    assert loss.item() == pytest.approx((-(0.6 + 1.0) + 5.0) / 2)


@pytest.mark.parametrize("normalize", AGGREGATIONS)
@pytest.mark.parametrize("level", ["token", "sequence"])
def test_one_pass_with_ratio_one_is_the_policy_gradient(normalize, level):
    """The invariant of issue 16: PPO-clip over fresh rollouts (π_old = π_θ) has the policy gradient (the values
    differ: the surrogate is -A·r, the policy-gradient loss -A·log π). GSPO's sequence ratio spreads a program's
    gradient evenly over its tokens, so it equals the policy gradient without per-token weights."""
    g = torch.Generator().manual_seed(0)
    logp = (-torch.rand(4, 6, generator=g, dtype=torch.float64) * 3).requires_grad_()
    mask = (torch.rand(4, 6, generator=g) > 0.2).double()
    adv = torch.randn(4, generator=g, dtype=torch.float64)
    w = torch.rand(4, 6, generator=g, dtype=torch.float64) if level == "token" else None
    loss, clipped = clipped_surrogate_loss(logp, logp.detach(), mask, adv, token_weights=w, level=level,
                                           normalize=normalize, constant=6)
    (grad_ppo,) = torch.autograd.grad(loss, logp)
    pg = policy_gradient_loss(logp, mask, adv, token_weights=w, normalize=normalize, constant=6)
    (grad_pg,) = torch.autograd.grad(pg, logp)
    assert clipped == 0.0
    assert torch.allclose(grad_ppo, grad_pg)


def test_kl_estimators_by_hand():
    # log π_ref - log π_θ = ln 2 on one token, 0 elsewhere: k1 = -ln 2 ; k3 = 2 - ln 2 - 1
    logp = t([[-1.0, -2.0]])
    ref = logp + t([[LN2, 0.0]])
    mask = t([[1.0, 1.0]])
    assert torch.allclose(kl_estimate(logp, ref, mask, "k1"), t([[-LN2, 0.0]]))
    assert torch.allclose(kl_estimate(logp, ref, mask, "k3"), t([[1.0 - LN2, 0.0]]))
    assert (kl_estimate(logp, logp + torch.randn(1, 2, dtype=torch.float64), mask, "k3") >= 0).all()


def test_truncated_importance_weights():
    # π_old / π_sampler = 3 (capped at 2) and 0.5; pads get 0
    old = t([[0.0, 0.0, 0.0]])
    sampler = t([[-LN3, LN2, 0.0]])
    w = truncated_is_weights(old, sampler, t([[1.0, 1.0, 0.0]]), cap=2.0)
    assert torch.allclose(w, t([[2.0, 0.5, 0.0]])) and not w.requires_grad


def test_overlong_penalty_by_hand():
    # max 10 tokens, cache 4: free up to 6, then -(L - 6)/4, -1 at 10; an unfinished program gets -1
    pen = overlong_penalty(torch.tensor([5, 6, 8, 10, 7]), torch.tensor([1, 1, 1, 1, 0]), max_len=10, cache=4)
    assert torch.allclose(pen, t([0.0, 0.0, -0.5, -1.0, -1.0]))
