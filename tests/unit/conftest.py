"""Fixtures shared by unit tests of different packages."""

from __future__ import annotations

import importlib.util

import pytest


@pytest.fixture(scope="module")
def tiny():
    """(model, tokenizer): a one-layer GPT-2 of a few thousand parameters and a 300-token BPE, for update tests."""
    if importlib.util.find_spec("torch") is None:
        pytest.skip("needs the train extra")
    import torch

    from coderl.models.actor import tiny_gpt2
    from coderl.models.tokenizer import train_bpe

    torch.set_num_threads(1)
    tok = train_bpe([f"def f{i}(x):\n    return x + {i}\n" for i in range(200)], vocab_size=300)
    return tiny_gpt2(tok, n_layer=1, n_embd=32, n_head=2, n_positions=64, seed=0), tok
