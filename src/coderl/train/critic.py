"""Training the critic: offline, on executed samples (:func:`train_critic`, the paper's critic stage), and online,
one step per RL step on the programs just executed (:class:`OnlineCritic`). Both take their optimiser steps
through :class:`coderl.train.precision.Precision` and the offline one checkpoints through
:class:`coderl.train.checkpoint.Checkpoints`, like every other training loop."""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from coderl.models.critic import Critic, PoolMode, critic_loss, critic_max_length, encode_examples
from coderl.train.checkpoint import Checkpoints, TrainingState
from coderl.train.precision import Precision

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase


class OnlineCritic:
    """Keeps a critic in step with a changing policy: one AdamW step per call on the programs just executed and
    their outcomes (the RL loop calls it once per step), so the weights and values it gives track the policy."""

    def __init__(self, critic: Critic, lr: float, pool: PoolMode = "max", grad_clip: float | None = 1.0,
                 max_length: int | None = None, precision: str = "fp32"):
        self.critic, self.pool, self.grad_clip = critic, pool, grad_clip
        self.amp = Precision(precision, critic.device)  # the RL run's precision
        self.max_len = critic_max_length(critic, max_length)
        self.opt = torch.optim.AdamW([p for p in critic.parameters() if p.requires_grad], lr=lr, weight_decay=0.0)

    def step(self, prompt_ids: Sequence[Sequence[int]], program_ids: Sequence[Sequence[int]], labels: Sequence[int],
             pad_id: int) -> float:
        """One optimiser step; returns the batch's loss before it. Leaves the critic in eval mode."""
        self.critic.train()
        try:
            self.opt.zero_grad(set_to_none=True)
            value = self.amp.accumulate(list(range(len(labels))), 1, lambda idx: critic_loss(
                self.critic, [prompt_ids[i] for i in idx], [program_ids[i] for i in idx], [labels[i] for i in idx],
                pad_id, self.max_len, self.pool))
            self.amp.step(self.opt, self.critic.parameters(), self.grad_clip)
        finally:
            self.critic.eval()
        return value

    def state_dict(self) -> dict[str, Any]:
        """The critic's weights and its optimiser, for an RL checkpoint: a resumed run continues the same critic."""
        return {"critic": self.critic.state_dict(), "optimizer": self.opt.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.critic.load_state_dict(state["critic"])
        self.opt.load_state_dict(state["optimizer"])


def save_critic(critic: Critic, tokenizer, d: Path, info: dict[str, Any]) -> None:
    """A critic checkpoint's model files: the critic as :meth:`Critic.save` writes it (``info`` is in
    trainer_state.pt already)."""
    critic.save(d, tokenizer=tokenizer)


def load_critic(critic: Critic, d: Path) -> None:
    critic.load_state_dict(Critic.load(d, device=critic.device).state_dict())


def train_critic(
    critic: Critic,
    tokenizer: PreTrainedTokenizerBase,
    examples: Sequence[tuple[str, str, int]],
    epochs: int = 3,
    lr: float = 1e-3,
    batch_size: int = 32,
    seed: int = 0,
    time_budget_s: float | None = None,
    progress: bool = True,
    pool: PoolMode = "max",
    token_loss_weight: float = 0.0,
    weight_decay: float = 0.01,
    balance_classes: bool = False,
    max_length: int | None = None,
    grad_clip: float | None = 1.0,
    checkpoints: Checkpoints | None = None,
    on_step: Callable[[dict[str, Any]], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    precision: str = "fp32",
    grad_accum: int = 1,
) -> dict[str, Any]:
    """Train ``critic`` on ``(prompt text, program text, label)`` examples with cross-entropy on pooled logits.

    The loss per batch is ``CE(pooled_logits(program tokens), label)`` plus, when ``token_loss_weight > 0``,
    that weight times the mean per-token CE of every program token against the program's label.
    ``balance_classes`` weights the CE by inverse class frequency. AdamW, shuffled each epoch with ``seed``;
    dropout masks come from a stream seeded by ``(seed, step)``; stops early once ``time_budget_s`` seconds have
    passed. Leaves the critic in eval mode.

    With ``checkpoints`` the run saves there after every full epoch and after the step at which ``should_stop()``
    first answers true (the run then ends there, ``interrupted``), and, when they say so, resumes from the newest
    one: mid-epoch, exactly as the uninterrupted run would have continued. ``on_step(record)`` follows every step
    (``{"step", "epoch", "loss"}``).

    ``precision`` ("fp32", "bf16", "fp16") and ``grad_accum`` (micro-batches per batch, each weighted by its
    share of the batch: exactly the batch's gradient for the plain cross-entropy) work as in SFT and RL, through
    the same :class:`coderl.train.precision.Precision` step.

    Returns ``{"steps", "epochs", "examples", "loss" (mean of the last epoch), "epoch_losses", "seconds",
    "stopped_early", "interrupted", "class_counts", "resumed_after_step"}``.
    """
    from coderl.utils.progress import ProgressBar
    from coderl.utils.seeding import seeded, stream_seed

    if not examples:
        raise ValueError("no training examples")
    if not 1 <= grad_accum <= batch_size:
        raise ValueError(f"grad_accum must be between 1 and batch_size ({batch_size}), got {grad_accum}")
    labels = [int(lab) for _, _, lab in examples]
    bad = [lab for lab in labels if not 0 <= lab < critic.n_classes]
    if bad:
        raise ValueError(f"labels must be in [0, {critic.n_classes}); got {sorted(set(bad))}")
    device = critic.device
    amp = Precision(precision, device)
    p_ids, c_ids = encode_examples(tokenizer, [e[0] for e in examples], [e[1] for e in examples])
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    max_len = critic_max_length(critic, max_length)
    counts = [labels.count(c) for c in range(critic.n_classes)]
    weight = None
    if balance_classes:
        w = [len(labels) / (critic.n_classes * c) if c else 0.0 for c in counts]
        weight = torch.tensor(w, dtype=torch.float32, device=device)
    opt = torch.optim.AdamW([p for p in critic.parameters() if p.requires_grad], lr=lr, weight_decay=weight_decay)
    state = (checkpoints.attach(critic, tokenizer, opt, save_critic, load_critic).resume() if checkpoints is not None
             else TrainingState())
    resumed_after = state.step
    rng = random.Random(seed)
    t0 = time.perf_counter()
    stopped = interrupted = False
    # Where in the data the run is: finished epochs (one history record each), batches of the next, loss sums.
    first_epoch, first_batch = state.extra.get("epoch", 0), state.extra.get("batch", 0)
    partial = tuple(state.extra.get("partial", (0.0, 0)))
    for _ in range(first_epoch):  # the shuffles the finished epochs drew
        rng.shuffle(list(range(len(examples))))
    n_batches = (len(examples) + batch_size - 1) // batch_size
    bar = ProgressBar(epochs * n_batches, "critic", progress, unit="step", start=first_epoch * n_batches + first_batch)

    def part_loss(part: list[int], n: int) -> torch.Tensor:
        return critic_loss(critic, [p_ids[i] for i in part], [c_ids[i] for i in part], [labels[i] for i in part],
                           pad_id, max_len, pool, weight, token_loss_weight) * (len(part) / n)

    critic.train()
    try:
        for epoch in range(first_epoch, epochs):
            order = list(range(len(examples)))
            rng.shuffle(order)
            total, n_seen = partial if epoch == first_epoch else (0.0, 0)
            for b in range(first_batch if epoch == first_epoch else 0, n_batches):
                idx = order[b * batch_size: (b + 1) * batch_size]
                opt.zero_grad(set_to_none=True)
                with seeded(stream_seed(seed, state.step), device):  # dropout masks
                    value = amp.accumulate(idx, grad_accum, lambda part, n=len(idx): part_loss(part, n))
                amp.step(opt, critic.parameters(), grad_clip)
                state.step += 1
                total += value * len(idx)
                n_seen += len(idx)
                bar.update(1, f"epoch {epoch + 1}/{epochs} loss {value:.4f}",
                           tokens=sum(len(p_ids[i]) + len(c_ids[i]) for i in idx))
                if on_step is not None:
                    on_step({"step": state.step, "epoch": epoch + 1, "loss": value})
                if time_budget_s is not None and time.perf_counter() - t0 > time_budget_s:
                    stopped = True
                    break
                interrupted = should_stop is not None and should_stop()
                if interrupted and b + 1 < n_batches:
                    if checkpoints is not None:
                        state.extra = {"epoch": epoch, "batch": b + 1, "partial": [total, n_seen]}
                        checkpoints.save(state)
                    break
            if interrupted and b + 1 < n_batches:
                break
            state.history.append({"epoch": epoch + 1, "loss": total / max(1, n_seen)})
            if stopped:
                break
            if checkpoints is not None:
                state.extra = {"epoch": epoch + 1, "batch": 0, "partial": [0.0, 0]}
                checkpoints.save(state)
            if interrupted:
                break
    finally:
        bar.close()
        critic.eval()
    epoch_losses = [h["loss"] for h in state.history]
    return {"steps": state.step, "epochs": len(epoch_losses), "examples": len(examples),
            "loss": epoch_losses[-1] if epoch_losses else float("nan"), "epoch_losses": epoch_losses,
            "seconds": round(time.perf_counter() - t0, 3), "stopped_early": stopped, "interrupted": interrupted,
            "class_counts": dict(zip(critic.class_names, counts, strict=True)), "resumed_after_step": resumed_after}
