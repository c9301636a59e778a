from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def tiny_causal():
    """(tiny GPT-2, its BPE tokenizer), random weights."""
    from coderl.models.actor import tiny_gpt2
    from coderl.models.tokenizer import train_bpe

    texts = [f"def f{i}(x):\n    return x + {i}\nprint({i})\n" for i in range(200)]
    tok = train_bpe(texts, vocab_size=300)
    return tiny_gpt2(tok, n_layer=1, n_embd=32, n_head=2, n_positions=64, seed=0), tok
