"""The per-step memory estimate against sizes worked out by hand, and activation checkpointing leaving the
gradients as they were."""

from __future__ import annotations

import copy

import pytest

torch = pytest.importorskip("torch")

from coderl.models.memory import describe, enable_checkpointing, step_memory  # noqa: E402


class Toy(torch.nn.Module):
    """A 10-token vocabulary, 4 dimensions: embedding 10x4 (tied to the output) and a 4x4 linear with bias."""

    def __init__(self) -> None:
        super().__init__()
        self.emb = torch.nn.Embedding(10, 4)
        self.mid = torch.nn.Linear(4, 4)

    def get_output_embeddings(self):
        return self.emb


def test_step_memory_counts_weights_gradients_adamw_and_logits():
    toy = Toy()  # 40 + 16 + 4 = 60 float32 parameters = 240 bytes
    mem = step_memory(toy, sequences=3, seq_len=5, grad_accum=2)
    # micro-batch of ceil(3 / 2) = 2 sequences: 2 (logits + log-softmax) x 2 x 5 x 10 values x 4 bytes = 800
    assert mem == {"weights": 240, "gradients": 240, "optimizer": 480, "logits": 800, "total": 1760}
    toy.mid.requires_grad_(False)  # frozen (as LoRA's base): no gradient, no AdamW moments for its 20 values
    mem = step_memory(toy, sequences=3, seq_len=5, grad_accum=2, autocast_bytes=2)
    assert mem == {"weights": 240, "gradients": 160, "optimizer": 320, "logits": 400, "total": 1120}
    assert describe(mem).startswith("at least 0.0 MiB per step (weights 0.0 MiB")


def test_activation_checkpointing_gives_the_same_gradients(tiny):
    model, tok = tiny
    plain = copy.deepcopy(model).train()
    ckpt = copy.deepcopy(model).train()
    enable_checkpointing(ckpt)
    ids = torch.tensor([tok("def f(x):\n    return x + 1\n")["input_ids"]] * 2)
    for m in (plain, ckpt):
        m.zero_grad()
        m(input_ids=ids, labels=ids).loss.backward()
    assert getattr(ckpt, "is_activation_checkpointing", getattr(ckpt, "is_gradient_checkpointing", False))
    for a, b in zip(plain.parameters(), ckpt.parameters(), strict=True):
        assert torch.allclose(a.grad, b.grad, atol=1e-6)
