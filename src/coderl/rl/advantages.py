"""Advantages: how much better a sampled program did than a baseline. Pure tensor functions.

* CodeRL (Sec. 3.2): the baseline is the return of the greedy-decoded program for the same problem,
  ``A(W^s) = r(W^s) - r(W^b)``; it reduces variance without biasing the gradient.
* Group baselines (GRPO, Shao et al. 2024; RLOO, Ahmadian et al. 2024): ``k`` samples per problem, baseline
  = the mean return of the group (GRPO, optionally divided by the group's standard deviation) or of the
  other ``k - 1`` samples (RLOO, unbiased).
"""

from __future__ import annotations

import torch


def greedy_baseline_advantages(rewards: torch.Tensor, baseline_rewards: torch.Tensor) -> torch.Tensor:
    """``rewards`` (B,) of sampled programs, ``baseline_rewards`` (B,) of the greedy program of the same
    problem (repeated per sample). Returns (B,) ``r(W^s) - r(W^b)``."""
    if rewards.shape != baseline_rewards.shape:
        raise ValueError(f"shape mismatch: rewards {tuple(rewards.shape)} vs baseline {tuple(baseline_rewards.shape)}")
    return rewards - baseline_rewards


def group_advantages(rewards: torch.Tensor, leave_one_out: bool = False, scale_by_std: bool = False,
                     eps: float = 1e-6) -> torch.Tensor:
    """``rewards`` (G, K): K sampled programs for each of G problems. Returns (G, K) advantages.

    ``leave_one_out`` uses the mean of the other K-1 samples (RLOO); otherwise the group mean (GRPO).
    ``scale_by_std`` divides by the group's (population) standard deviation + ``eps``; a group whose samples all
    got the same reward has zero advantage either way.
    """
    if rewards.dim() != 2:
        raise ValueError(f"rewards must be (G, K), got shape {tuple(rewards.shape)}")
    g, k = rewards.shape
    if leave_one_out:
        if k < 2:
            raise ValueError("leave_one_out needs at least 2 samples per problem")
        baseline = (rewards.sum(dim=1, keepdim=True) - rewards) / (k - 1)
    else:
        baseline = rewards.mean(dim=1, keepdim=True)
    adv = rewards - baseline
    if scale_by_std:
        adv = adv / (rewards.std(dim=1, unbiased=False, keepdim=True) + eps)
    return adv
