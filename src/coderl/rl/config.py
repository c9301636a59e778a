"""Configuration of the RL stage."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

ALGOS = ("coderl", "grpo")
MODES = ("online", "offline")


@dataclass
class RLConfig:
    """Settings of one RL fine-tuning run (one concern: how the policy is updated from execution feedback)."""

    algo: str = "coderl"
    """"coderl": advantage = return minus the greedy program's return, tokens weighted by the critic (Le et al.);
    "grpo": advantage = return minus the mean return of the problem's other samples (group baseline)."""
    mode: str = "online"
    """"online": sample from the current policy every step; "offline": sample once from the initial policy and
    train on that fixed pool (the paper's setting)."""
    steps: int = 60
    """Optimiser steps (the run also stops at ``time_budget_s``)."""
    problems_per_step: int = 16
    """Problems drawn per step."""
    samples_per_problem: int = 4
    """Programs sampled per problem per step (the group size for "grpo")."""
    offline_samples_per_problem: int = 8
    """"offline" mode: programs sampled per problem for the fixed pool."""
    temperature: float = 1.0
    top_p: float = 1.0
    max_new_tokens: int = 64
    lr: float = 1e-3
    """AdamW learning rate of the policy."""
    sft_weight: float = 0.5
    """Weight of the cross-entropy term on supervised pairs (ground truth, or the SFT data), against forgetting."""
    sft_batch: int = 32
    """Supervised pairs per step for that term."""
    use_critic: bool = True
    """"coderl": weight each token by the critic's probability of the program's actual outcome."""
    critic_floor: float = 0.0
    """Minimum token weight, so that no token gets zero credit (0 = the paper)."""
    group_std: bool = False
    """"grpo": divide advantages by the group's standard deviation."""
    leave_one_out: bool = False
    """"grpo": baseline from the other samples only (RLOO)."""
    normalize: str = "sequence"
    """Policy-gradient normalisation: "sequence" (per program, then mean) or "token"."""
    grad_clip: float = 1.0
    checkpoint_every: int = 20
    """Save a resumable checkpoint every N steps (and at the end); 0 = only at the end."""
    time_budget_s: float | None = None
    """Stop after this many seconds of training (checkpoints included)."""
    seed: int = 0
    grad_accum: int = 1
    """Split each step's programs (and supervised pairs) into this many micro-batches whose gradients add up to the
    whole batch's before the one optimiser step: the same update in less memory."""
    precision: str = "fp32"
    """Autocast dtype of the training forward passes: "fp32" (off), "bf16" (CUDA or CPU), "fp16" (CUDA, with loss
    scaling). Weights and optimiser state stay float32."""

    def __post_init__(self) -> None:
        if self.algo not in ALGOS:
            raise ValueError(f"RLConfig.algo must be one of {ALGOS}, got {self.algo!r}")
        if self.mode not in MODES:
            raise ValueError(f"RLConfig.mode must be one of {MODES}, got {self.mode!r}")
        if self.algo == "grpo" and self.samples_per_problem < 2:
            raise ValueError("RLConfig: algo='grpo' compares samples of the same problem; set samples_per_problem >= 2")
        if self.leave_one_out and self.algo != "grpo":
            raise ValueError("RLConfig.leave_one_out only applies to algo='grpo'")
        if self.normalize not in ("sequence", "token"):
            raise ValueError("RLConfig.normalize must be 'sequence' or 'token'")
        if self.steps < 1 or self.problems_per_step < 1 or self.samples_per_problem < 1:
            raise ValueError("RLConfig: steps, problems_per_step and samples_per_problem must be >= 1")
        if not 0.0 <= self.critic_floor <= 1.0:
            raise ValueError("RLConfig.critic_floor must be in [0, 1]")
        if self.temperature <= 0:
            raise ValueError("RLConfig.temperature must be > 0 (greedy baselines are taken separately)")
        if self.grad_accum < 1:
            raise ValueError("RLConfig.grad_accum must be >= 1 (1 = no accumulation)")
        if self.precision not in ("fp32", "bf16", "fp16"):
            raise ValueError(f"RLConfig.precision must be 'fp32', 'bf16' or 'fp16', got {self.precision!r}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RLConfig:
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"RLConfig: unknown field(s) {', '.join(sorted(unknown))}")
        return cls(**d)
