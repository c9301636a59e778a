"""Configuration of the RL stage."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

ALGOS = ("coderl", "grpo", "actor-critic")
AGGREGATIONS = ("sequence", "sequence_mean", "token", "constant")  # see coderl.rl.losses.aggregate
MODES = ("online", "offline")
OVERLONG = ("none", "penalty", "filter")


@dataclass
class RLConfig:
    """Settings of one RL fine-tuning run (one concern: how the policy is updated from execution feedback)."""

    algo: str = "coderl"
    """"coderl": advantage = return minus the greedy program's return, tokens weighted by the critic (Le et al.);
    "grpo": advantage = return minus the mean return of the problem's other samples (group baseline);
    "actor-critic": a per-token advantage, return minus the critic's expected return after each token (the
    critic's class probabilities times the class returns; needs a 4-class critic, online mode)."""
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
    use_critic: bool | None = None
    """Weight each token by the critic's probability of the program's actual outcome (CodeRL's token weights; with
    "grpo", inside each group). None: yes for "coderl", no for "grpo"."""
    critic_floor: float = 0.0
    """Minimum token weight, so that no token gets zero credit (0 = the paper)."""
    group_std: bool = False
    """"grpo": divide advantages by the group's standard deviation."""
    leave_one_out: bool = False
    """"grpo": baseline from the other samples only (RLOO)."""
    normalize: str = "sequence"
    """How per-token losses make the batch's loss (coderl.rl.losses.aggregate): "sequence" (sum per program, mean
    over programs), "sequence_mean" (GRPO), "token" (DAPO: over all tokens of the batch), "constant" (Dr. GRPO:
    divided by max_new_tokens)."""
    epochs: int = 1
    """Optimisation passes over each batch of rollouts (PPO: 2-4); after the first the policy has moved, so more
    than 1 needs the ratio correction (``clip_low``)."""
    minibatches: int = 1
    """Optimiser steps per pass: the batch's programs split into this many parts (shuffled per pass)."""
    clip_low: float | None = None
    """Importance ratios against the policy that sampled, clipped to [1 - clip_low, 1 + clip_high] (PPO's ε,
    e.g. 0.2); None: the plain policy gradient, one step per batch."""
    clip_high: float | None = None
    """Upper clip range; None = ``clip_low`` (PPO); larger than it is DAPO's clip-higher (e.g. 0.28)."""
    ratio_level: str = "token"
    """"token" (PPO) or "sequence" (GSPO: one ratio per program, the geometric mean of its tokens'; use small
    clip ranges, e.g. 3e-4 / 4e-4)."""
    kl_coef: float = 0.0
    """Weight of a KL penalty to the initial policy (0 = off; the reference is then not kept). LoRA runs use the
    base weights (adapters off) as the reference."""
    kl_estimator: str = "k3"
    """"k1" or "k3" (Schulman 2020; see coderl.rl.losses.kl_estimate)."""
    kl_penalty: str = "loss"
    """"loss": a term of the loss (GRPO); "reward": subtracted from each program's return (classic RLHF PPO)."""
    dynamic_sampling: bool = False
    """"grpo": drop groups whose programs all got the same return (no signal) and draw more problems to fill the
    batch (DAPO), up to ``dynamic_max_rounds`` extra rounds; the share dropped is logged."""
    dynamic_max_rounds: int = 3
    overlong: str = "none"
    """Programs cut at ``max_new_tokens``: "none"; "penalty" (DAPO's soft penalty over the last
    ``overlong_cache`` tokens, -1 when cut); "filter" (no gradient from programs that were cut)."""
    overlong_cache: int = 16
    critic_online_lr: float = 0.0
    """Online critic updates: after each policy update, one AdamW step (this learning rate) of the critic on the
    step's programs and their verdicts, so that it tracks the policy; 0 = the critic stays as trained. The
    updated critic is not part of the checkpoints."""
    critic_filter: float = 0.0
    """The critic as a cheap filter before execution: a program whose predicted probability of passing is below
    this is not run; it gets the failing outcome the critic finds most likely, and its return. It can only cost
    a program reward (never "passed" without running), so fooling the critic gains nothing. 0 = off; not with
    Ray rollout workers (they execute as they generate)."""
    tis_cap: float | None = None
    """Truncated importance sampling against the sampler's own token log-probabilities, capped at this value
    (e.g. 2.0): corrects for another generation engine, or a generation worker a step behind; None = off."""
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
        if self.mode == "offline" and self.algo == "grpo":
            raise ValueError("RLConfig: mode 'offline' trains on a fixed pool of single programs, with no group to "
                             "compare them in; use algo 'coderl' (or mode 'online' for grpo)")
        if self.algo == "grpo" and self.samples_per_problem < 2:
            raise ValueError("RLConfig: algo='grpo' compares samples of the same problem; set samples_per_problem >= 2")
        if self.leave_one_out and self.algo != "grpo":
            raise ValueError("RLConfig.leave_one_out only applies to algo='grpo'")
        if self.normalize not in AGGREGATIONS:
            raise ValueError(f"RLConfig.normalize must be one of {', '.join(AGGREGATIONS)}, got {self.normalize!r}")
        if self.epochs < 1 or self.minibatches < 1:
            raise ValueError("RLConfig: epochs and minibatches must be >= 1")
        if (self.epochs > 1 or self.minibatches > 1) and self.clip_low is None:
            raise ValueError("RLConfig: after the first optimiser step the rollouts are off-policy; with epochs > 1 "
                             "or minibatches > 1 set clip_low (e.g. 0.2) so that importance ratios correct for it")
        if self.clip_low is None and (self.clip_high is not None or self.ratio_level != "token"):
            raise ValueError("RLConfig: clip_high and ratio_level='sequence' need clip_low (the clipped surrogate)")
        if (self.clip_low is not None and self.clip_low < 0) or (self.clip_high is not None and self.clip_high < 0):
            raise ValueError("RLConfig: clip ranges must be >= 0")
        if self.ratio_level not in ("token", "sequence"):
            raise ValueError("RLConfig.ratio_level must be 'token' or 'sequence'")
        if self.kl_coef < 0 or self.kl_estimator not in ("k1", "k3") or self.kl_penalty not in ("loss", "reward"):
            raise ValueError("RLConfig: kl_coef >= 0, kl_estimator 'k1' or 'k3', kl_penalty 'loss' or 'reward'")
        if self.dynamic_sampling and self.algo != "grpo":
            raise ValueError("RLConfig.dynamic_sampling drops groups of equal returns; it needs algo='grpo'")
        if self.dynamic_max_rounds < 0:
            raise ValueError("RLConfig.dynamic_max_rounds must be >= 0")
        if self.overlong not in OVERLONG:
            raise ValueError(f"RLConfig.overlong must be one of {', '.join(OVERLONG)}, got {self.overlong!r}")
        if self.overlong == "penalty" and not 0 < self.overlong_cache <= self.max_new_tokens:
            raise ValueError("RLConfig: overlong='penalty' needs 0 < overlong_cache <= max_new_tokens (the last "
                             "overlong_cache tokens of the budget are penalised)")
        if self.algo == "actor-critic" and self.mode != "online":
            raise ValueError("RLConfig: algo='actor-critic' scores each step's programs with the critic; use mode "
                             "'online'")
        if self.critic_online_lr < 0 or (self.critic_online_lr > 0 and self.mode != "online"):
            raise ValueError("RLConfig.critic_online_lr must be >= 0 (0 = off); online critic updates need mode "
                             "'online' (an offline pool is scored once)")
        if not 0.0 <= self.critic_filter < 1.0:
            raise ValueError("RLConfig.critic_filter must be in [0, 1) (a probability of passing; 0 = off)")
        if self.tis_cap is not None and self.tis_cap <= 0:
            raise ValueError("RLConfig.tis_cap must be > 0 (or None to switch it off)")
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

    @property
    def critic_weighted(self) -> bool:
        """Whether tokens are weighted by the critic: ``use_critic``, or by default only for "coderl". (A property,
        not a rewrite of the field, so that a config derived from this one with another algo resolves anew.)"""
        return self.algo == "coderl" if self.use_critic is None else bool(self.use_critic)

    @property
    def needs_critic(self) -> bool:
        """The loop needs a trained critic: token weights, the actor-critic baseline, or online updates of it."""
        return (self.critic_weighted or self.algo == "actor-critic" or self.critic_online_lr > 0
                or self.critic_filter > 0)

    @property
    def uses_ratios(self) -> bool:
        """The update corrects with importance ratios (clipped surrogate) against the policy that sampled."""
        return self.clip_low is not None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def preset(cls, name: str, **overrides: Any) -> RLConfig:
        """The settings of a named algorithm (:data:`PRESETS`), with ``overrides`` on top."""
        if name not in PRESETS:
            raise ValueError(f"unknown RL algorithm {name!r}; choose one of {', '.join(PRESETS)}")
        return cls.from_dict({**PRESETS[name], **overrides})

    @classmethod
    def from_dict(cls, d: dict[str, Any], where: str = "RLConfig") -> RLConfig:
        """Built and checked as every config is (:func:`coderl.config.build`): unknown fields and wrong types
        are errors naming the field."""
        from coderl.config import build

        return build(cls, d, where, prefix="rl.")


PRESETS: dict[str, dict[str, Any]] = {
    "grpo": {"algo": "grpo"},
    "rloo": {"algo": "grpo", "leave_one_out": True},
    "ppo": {"algo": "grpo", "clip_low": 0.2, "epochs": 2, "minibatches": 2},
    "dapo": {"algo": "grpo", "clip_low": 0.2, "clip_high": 0.28, "normalize": "token", "dynamic_sampling": True,
             "overlong": "penalty", "minibatches": 2},
    "gspo": {"algo": "grpo", "clip_low": 3e-4, "clip_high": 4e-4, "ratio_level": "sequence", "minibatches": 2},
    "coderl": {"algo": "coderl", "use_critic": True},
    "coderl-nocritic": {"algo": "coderl", "use_critic": False},
    "grpo-critic": {"algo": "grpo", "use_critic": True},
    "critic-baseline": {"algo": "actor-critic"},
}
"""Named algorithms (``coderl demo --algo NAME``): each is a set of RLConfig fields."""
