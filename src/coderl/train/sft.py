"""Supervised fine-tuning: maximise the likelihood of target programs given their prompts.

Used for the demo's from-scratch model, for CodeRL's warm-up stage on real models, and as the control arm
(the same extra wall time spent on SFT instead of RL).
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import torch

from coderl.models.logprobs import completion_logprobs
from coderl.train.checkpoint import Checkpoints, TrainingState
from coderl.utils.progress import ProgressBar
from coderl.utils.seeding import seeded, stream_seed


@dataclass
class SFTConfig:
    """Settings of one supervised fine-tuning run."""

    lr: float = 3e-3
    """Peak AdamW learning rate (tiny from-scratch models want ~1e-3..3e-3, pretrained ones ~1e-5)."""
    batch_size: int = 64
    """Programs per optimiser step."""
    epochs: float = 1.0
    """Passes over the examples; ignored once ``time_budget_s`` runs out."""
    time_budget_s: float | None = None
    """Stop after this many seconds (the demo's control arm matches RL's wall time this way)."""
    warmup_steps: int = 20
    """Linear warm-up steps, then cosine decay to ``min_lr_ratio * lr`` over the planned steps."""
    min_lr_ratio: float = 0.1
    """Where the cosine decay ends, as a fraction of ``lr``."""
    weight_decay: float = 0.01
    grad_clip: float = 1.0
    seed: int = 0
    grad_accum: int = 1
    """Split each batch into this many micro-batches whose gradients add up before the step (less memory)."""
    precision: str = "fp32"
    """Autocast dtype of the forward passes: "fp32" (off), "bf16" (CUDA or CPU), "fp16" (CUDA, loss scaling)."""

    def __post_init__(self) -> None:
        if self.lr <= 0 or self.batch_size < 1:
            raise ValueError("SFTConfig: lr must be > 0 and batch_size >= 1")
        if self.grad_accum < 1 or self.grad_accum > self.batch_size:
            raise ValueError("SFTConfig.grad_accum must be between 1 and batch_size")
        if self.precision not in ("fp32", "bf16", "fp16"):
            raise ValueError(f"SFTConfig.precision must be 'fp32', 'bf16' or 'fp16', got {self.precision!r}")
        if self.epochs <= 0 and self.time_budget_s is None:
            raise ValueError("SFTConfig: set epochs > 0 or a time_budget_s, otherwise nothing would train")

    def to_dict(self) -> dict:
        return asdict(self)


def sft_loss(logp: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of target programs: the mean negative log-likelihood over real tokens. (B, T) → scalar."""
    if logp.dim() != 2 or logp.shape != mask.shape:
        raise ValueError(f"logp and mask must both be (B, T); got {tuple(logp.shape)} and {tuple(mask.shape)}")
    return -(logp * mask).sum() / mask.sum().clamp_min(1.0)


def lr_at(step: int, total: int, cfg: SFTConfig) -> float:
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    frac = min(1.0, (step - cfg.warmup_steps) / max(1, total - cfg.warmup_steps))
    lo = cfg.min_lr_ratio
    return cfg.lr * (lo + (1 - lo) * 0.5 * (1 + math.cos(math.pi * frac)))


def train_sft(model, tokenizer, pairs: Sequence[tuple[str, str]], cfg: SFTConfig,
              optimizer: torch.optim.Optimizer | None = None, progress: bool = True,
              on_step: Callable[[dict[str, Any]], None] | None = None,
              should_stop: Callable[[], bool] | None = None, checkpoints: Checkpoints | None = None) -> dict:
    """Fine-tune ``model`` in place on (prompt, program) pairs. Returns {"steps", "loss" (this run's, per step),
    "history" (every step's record, resumed ones included), "seconds", "stopped", "truncated", "dropped"}: pairs
    longer than a causal model's positions have their prompts cut from the start (``truncated``), and those whose
    program alone does not fit are left out (``dropped``; see :func:`coderl.models.tokenizer.fit_pairs`).

    ``on_step(record)`` follows every step (``{"step", "loss", "lr", "tokens"}``); ``should_stop()`` is asked
    after it, and a true answer ends the run there (``stopped``). With ``checkpoints`` the run saves there and,
    when they say so, resumes from the newest one (weights and optimiser): the batches of the steps already taken
    are drawn but not trained on, so data order and learning rates continue as if never interrupted. Dropout masks
    come from a stream seeded by ``(cfg.seed, step)``, so two runs are identical and a resumed one continues as the
    uninterrupted one."""
    from coderl.models.generate import prompt_room
    from coderl.models.tokenizer import encode_pairs, fit_pairs
    from coderl.train.precision import Precision

    device = next(model.parameters()).device
    amp = Precision(cfg.precision, device)
    data = list(zip(*encode_pairs(tokenizer, [p for p, _ in pairs], [c for _, c in pairs]), strict=True))
    data, truncated, dropped = fit_pairs(data, prompt_room(model, 0), getattr(model.config, "bos_token_id", None))
    if pairs and not data:
        raise ValueError(f"every one of the {len(pairs)} SFT targets is longer than the model's positions")
    rng = random.Random(cfg.seed)
    steps_per_epoch = max(1, math.ceil(len(data) / cfg.batch_size))
    total = max(1, int(steps_per_epoch * cfg.epochs)) if cfg.epochs > 0 else 10**9
    if cfg.time_budget_s is not None and cfg.epochs <= 0:
        total = 10**9
    opt = optimizer or torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=cfg.lr,
                                         weight_decay=cfg.weight_decay)
    state = checkpoints.attach(model, tokenizer, opt).resume() if checkpoints is not None else TrainingState()
    start = state.step
    model.train()
    t0 = time.monotonic()
    losses: list[float] = []
    order: list[int] = []
    step = 0
    stopped = False
    bar = ProgressBar(total if total < 10**9 else None, "sft", progress, unit="step", start=min(start, total))
    try:
        while step < total:
            if cfg.time_budget_s is not None and time.monotonic() - t0 >= cfg.time_budget_s:
                break
            if len(order) < cfg.batch_size:
                perm = list(range(len(data)))
                rng.shuffle(perm)
                order += perm
            idx, order = order[:cfg.batch_size], order[cfg.batch_size:]
            if step < start:
                step += 1
                continue
            batch = [data[i] for i in idx]
            lr = lr_at(step, total if total < 10**9 else 1000, cfg)
            for g in opt.param_groups:
                g["lr"] = lr
            n_tok = sum(len(b[1]) for b in batch)

            def part_loss(part: list[tuple[list[int], list[int]]], n_tok: int = n_tok) -> torch.Tensor:
                logp, mask = completion_logprobs(model, [b[0] for b in part], [b[1] for b in part],
                                                 tokenizer.pad_token_id)
                return sft_loss(logp, mask) * (mask.sum().item() / max(1, n_tok))  # token-weighted: sums to the batch's

            opt.zero_grad(set_to_none=True)
            with seeded(stream_seed(cfg.seed, step), device):
                loss_value = amp.accumulate(batch, cfg.grad_accum, part_loss)
            amp.step(opt, model.parameters(), cfg.grad_clip)
            losses.append(loss_value)
            step += 1
            tokens = n_tok + sum(len(b[0]) for b in batch)
            state.step = step
            state.history.append({"step": step, "loss": loss_value})
            if on_step is not None:
                on_step({"step": step, "loss": loss_value, "lr": lr, "tokens": tokens})
            bar.update(1, f"loss {loss_value:.4f} lr {lr:.2e}", tokens=tokens)
            stopped = should_stop is not None and should_stop()
            if checkpoints is not None:
                checkpoints.after_step(state, stopped)
            if stopped:
                break
    finally:
        bar.close()
        model.eval()
    if checkpoints is not None:
        checkpoints.finish(state)
    return {"steps": step, "loss": losses, "history": state.history, "seconds": time.monotonic() - t0,
            "stopped": stopped, "truncated": truncated, "dropped": dropped, "resumed_from": start}
