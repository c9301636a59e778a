"""The optimiser step of every training loop (SFT, RL, the critic, the online critic, the repair model): micro-
batches, mixed precision and gradient clipping, behind one small object, :class:`Precision`.

Weights stay in float32 (AdamW on bf16 weights loses small updates); only the forward passes run in the lower
precision. ``Precision("fp32", device)`` is a no-op, so training code can always go through it. A step is::

    opt.zero_grad(set_to_none=True)
    amp.accumulate(batch, n_micro, loss_of)   # each micro-batch's share of the batch loss, backpropagated
    amp.step(opt, params, grad_clip)          # unscale (fp16), clip, step
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

PRECISIONS = ("fp32", "bf16", "fp16")


def check_precision(precision: str, device: str | torch.device) -> None:
    """Raise ``ValueError`` (saying what to use instead) when ``device`` cannot train in ``precision``."""
    import torch

    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    kind = torch.device(device).type
    if precision == "fp16" and kind != "cuda":
        raise ValueError(f"precision 'fp16' needs a CUDA device (fp16 autocast with loss scaling); the device is "
                         f"{kind!r}: use 'bf16' or 'fp32'")
    if precision == "bf16":
        if kind == "cuda" and not torch.cuda.is_bf16_supported():
            raise ValueError("precision 'bf16': this GPU does not support bfloat16; use 'fp16' or 'fp32'")
        if kind not in ("cuda", "cpu"):
            raise ValueError(f"precision 'bf16' is supported on CUDA and CPU, not on {kind!r}; use 'fp32'")


class Precision:
    """Autocast context + backward + optimiser step for one training run in ``precision`` on ``device``."""

    def __init__(self, precision: str, device: str | torch.device) -> None:
        import torch

        check_precision(precision, device)
        self.precision = precision
        self.device_type = torch.device(device).type
        self.dtype = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]
        # fp16 has too little range for small gradients; bf16 has float32's range and needs no scaling.
        self.scaler = torch.amp.GradScaler("cuda") if precision == "fp16" else None

    @contextlib.contextmanager
    def autocast(self) -> Iterator[None]:
        import torch

        if self.dtype is None:
            yield
            return
        with torch.autocast(device_type=self.device_type, dtype=self.dtype):
            yield

    def backward(self, loss: torch.Tensor) -> None:
        (self.scaler.scale(loss) if self.scaler is not None else loss).backward()

    def accumulate(self, items: list, n: int, loss_of: Callable[[list], torch.Tensor]) -> float:
        """Backpropagate one batch of ``items`` as at most ``n`` micro-batches (:func:`chunks`) whose gradients add
        up: ``loss_of(part)`` computes, under autocast, ``part``'s share of the batch's loss (weighted so that the
        shares sum to it). Returns the sum of the shares' values. Less memory, the same gradient."""
        total = 0.0
        for part in chunks(items, n):
            with self.autocast():
                loss = loss_of(part)
            self.backward(loss)
            total += float(loss.detach())
        return total

    def step(self, optimizer: torch.optim.Optimizer, params: Iterable[torch.nn.Parameter], grad_clip: float | None
             ) -> None:
        """Clip (on unscaled gradients) and take the optimiser step."""
        import torch

        params = list(params)
        if self.scaler is not None:
            self.scaler.unscale_(optimizer)
        if grad_clip:
            torch.nn.utils.clip_grad_norm_(params, grad_clip)
        if self.scaler is not None:
            self.scaler.step(optimizer)
            self.scaler.update()
        else:
            optimizer.step()


def chunks(items: list, n: int) -> list[list]:
    """``items`` split into at most ``n`` consecutive, nearly equal, non-empty parts (gradient accumulation)."""
    n = max(1, min(n, len(items)))
    size, extra = divmod(len(items), n)
    out, start = [], 0
    for i in range(n):
        end = start + size + (i < extra)
        out.append(items[start:end])
        start = end
    return [c for c in out if c]
