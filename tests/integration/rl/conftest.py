"""The RL integration tests' shared setting: the task family, a BPE trained on it and a tiny GPT-2 trained on
its reference programs for a given number of epochs (how far determines how varied its samples' outcomes are)."""

from __future__ import annotations

import importlib.util

import pytest


@pytest.fixture(scope="session")
def sft_family():
    """``sft_family(epochs) -> (tasks, tokenizer, model, pairs)``, built once per ``epochs``; do not mutate the
    model (tests train copies)."""
    if importlib.util.find_spec("torch") is None:
        pytest.skip("needs the train extra")
    import torch

    from coderl.models.actor import tiny_gpt2
    from coderl.models.tokenizer import train_bpe
    from coderl.tasks.family import corpus_text, generate_tasks
    from coderl.tasks.prompt import format_prompt
    from coderl.train.sft import SFTConfig, train_sft

    built: dict[float, tuple] = {}

    def make(epochs: float) -> tuple:
        if epochs not in built:
            torch.manual_seed(0)
            tasks = generate_tasks("train", 16, seed=0)
            tok = train_bpe([format_prompt(p) for p in tasks] + [corpus_text(tasks)], vocab_size=300)
            model = tiny_gpt2(tok, n_layer=2, n_embd=64, n_head=2, n_positions=128, seed=0)
            pairs = [(format_prompt(p), p.solutions[0]) for p in tasks]
            train_sft(model, tok, pairs, SFTConfig(lr=3e-3, batch_size=16, epochs=epochs, warmup_steps=5),
                      progress=False)
            built[epochs] = (tasks, tok, model, pairs)
        return built[epochs]

    return make
