"""Loss and advantage functions against values worked out by hand (the arithmetic is in the comments)."""

from __future__ import annotations

import pytest
import torch

from coderl.rl.advantages import greedy_baseline_advantages, group_advantages
from coderl.rl.losses import critic_weights, policy_gradient_loss, sft_loss
from coderl.rl.rewards import outcome_reward, outcome_rewards

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
    with pytest.raises(ValueError, match="normalize"):
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


def test_std_scaled_group_baseline():
    # population std of (1, -0.3, -0.3, 1) is 0.65 → advantages ±0.65 / 0.65 = ±1
    adv = group_advantages(t([[1.0, -0.3, -0.3, 1.0]]), scale_by_std=True, eps=0.0)
    assert torch.allclose(adv, t([[1.0, -1.0, -1.0, 1.0]]))


def test_rewards_follow_the_paper():
    assert outcome_rewards(["compile_error", "runtime_error", "failed_test", "passed"]) == [-1.0, -0.6, -0.3, 1.0]
    with pytest.raises(ValueError, match="unknown outcome"):
        outcome_reward("timeout")
