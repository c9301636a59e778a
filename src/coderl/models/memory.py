"""What a training step will hold in memory, said before training starts, and activation checkpointing.

The estimate counts what is known exactly from the model and the step's shape: the weights, their gradients
(trainable parameters only, so LoRA's are small), AdamW's two moments, and the logits of one micro-batch with
their log-softmax (batch x sequence x vocabulary floats, usually the largest activation of a code model with a
large vocabulary). The other activations depend on the architecture and on activation checkpointing and are not
counted, so the figure is a lower bound; on a GPU the peak measured by ``benchmarks/gpu_check.py`` is the check.
"""

from __future__ import annotations

from typing import Any

GIB = 2**30


def step_memory(model: Any, sequences: int, seq_len: int, grad_accum: int = 1, autocast_bytes: int = 4
                ) -> dict[str, int]:
    """Bytes a training step holds at least: ``weights``, ``gradients``, ``optimizer`` (AdamW), ``logits`` (one
    micro-batch of ``sequences / grad_accum`` sequences of ``seq_len`` tokens, the logits and their
    log-softmax at ``autocast_bytes`` per value: 4 for fp32, 2 under bf16/fp16 autocast) and their ``total``."""
    weights = sum(p.numel() * p.element_size() for p in model.parameters())
    trainable = [p for p in model.parameters() if p.requires_grad]
    grads = sum(p.numel() * p.element_size() for p in trainable)
    optimizer = sum(2 * p.numel() * 4 for p in trainable)  # AdamW's exp_avg and exp_avg_sq, float32
    vocab = model.get_output_embeddings().weight.shape[0]
    micro = -(-sequences // max(1, grad_accum))
    logits = 2 * micro * seq_len * vocab * autocast_bytes
    return {"weights": weights, "gradients": grads, "optimizer": optimizer, "logits": logits,
            "total": weights + grads + optimizer + logits}


def _size(n: int) -> str:
    return f"{n / GIB:.2f} GiB" if n >= GIB else f"{n / 2**20:.1f} MiB"


def describe(mem: dict[str, int]) -> str:
    """One line for the log: the total and its parts."""
    parts = ", ".join(f"{k} {_size(mem[k])}" for k in ("weights", "gradients", "optimizer", "logits"))
    return f"at least {_size(mem['total'])} per step ({parts}; other activations not counted)"


def enable_checkpointing(model: Any) -> None:
    """Recompute activations in the backward pass instead of keeping them (less memory, ~30% more compute).
    Non-reentrant, so it works with LoRA's frozen inputs and without ``enable_input_require_grads``."""
    kwargs = {"use_reentrant": False}
    if hasattr(model, "activation_checkpointing_enable"):  # transformers >= 5.25 (the old name warns)
        model.activation_checkpointing_enable(activation_checkpointing_kwargs=kwargs)
    else:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs=kwargs)
