"""Fixtures for coderl.models tests: a BPE trained on a small generated Python corpus, tiny GPT-2 and T5 models.

Everything is built from configs in-process (no downloads); session-scoped so the ~1 s of tokenizer training
and model construction happen once. Tests that modify a model build their own.
"""

from __future__ import annotations

import copy
import importlib.util
import random

import pytest

# The models need the `train` extra (torch, transformers); without it these tests are not collected.
if importlib.util.find_spec("torch") is None or importlib.util.find_spec("transformers") is None:
    collect_ignore_glob = ["test_*.py"]


def _corpus(n: int = 1500, seed: int = 0) -> list[str]:
    """Small Python functions with indentation, operators, literals and a few phrases of English."""
    rng = random.Random(seed)
    names = ["x", "y", "xs", "s", "n", "total", "item", "value", "count", "result", "words", "numbers", "index",
             "left", "right", "text", "prefix", "suffix", "lower", "upper", "limit", "step", "acc", "key"]
    ops = ["+", "-", "*", "//", "%", "==", "<", ">=", "and", "or"]
    out = []
    for i in range(n):
        a, b = rng.sample(names, 2)
        op = rng.choice(ops)
        k = rng.randint(0, 99)
        body = rng.choice([
            f"    return {a} {op} {k}\n",
            f"    if {a} {op} {k}:\n        return {b}\n    return {a}\n",
            f"    {b} = 0\n    for {a} in range({k}):\n        {b} += {a}\n    return {b}\n",
            f"    return [{a} for {a} in {b} if {a} % 2 == {k % 2}]\n",
            f"    return {a}.strip().lower() + '{b}'\n",
        ])
        doc = rng.choice(["Return the sum of the list.", "Check whether x is even.", "Clamp x to a range.",
                          "Count the items that are positive.", "Reverse the string s.",
                          "Find the largest number in the list.", "Remove every vowel from the text.",
                          "Compute the product of all numbers below the limit.", "Split the words and join them.",
                          "Return True when the string starts with the given prefix.",
                          "Multiply each element by two and keep the odd ones."])
        out.append(f"# {doc}\ndef f{i % 7}({a}, {b}):\n{body}")
    return out


@pytest.fixture(scope="session", autouse=True)
def _one_torch_thread():
    """The models here are tiny: one intra-op thread is as fast, and far faster when other processes share the
    2 CPU cores (spinning OpenMP threads then tripled these tests' time). Restored afterwards."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def corpus() -> list[str]:
    return _corpus()


@pytest.fixture(scope="session")
def bpe(corpus):
    """A 512-token byte-level BPE (left padding). Do not mutate: use ``copy.deepcopy`` first."""
    from coderl.models.tokenizer import train_bpe

    return train_bpe(corpus, vocab_size=512)


@pytest.fixture(scope="session")
def gpt2(bpe):
    """The demo-sized tiny GPT-2 (eval mode). Do not mutate."""
    from coderl.models.actor import tiny_gpt2

    return tiny_gpt2(bpe, seed=0).eval()


@pytest.fixture(scope="session")
def small_gpt2(bpe):
    """A smaller GPT-2 (2 layers, 32 dims) for tests that train or generate a lot. Do not mutate."""
    from coderl.models.actor import tiny_gpt2

    return tiny_gpt2(bpe, n_layer=2, n_embd=32, n_head=2, n_positions=128, seed=1).eval()


@pytest.fixture(scope="session")
def t5_pair(bpe):
    """(tiny T5ForConditionalGeneration from a config: d_model 32, 2 layers; its tokenizer padding on the right)."""
    import torch
    from transformers import T5Config, T5ForConditionalGeneration

    from coderl.models.tokenizer import prepare_tokenizer

    tok = prepare_tokenizer(copy.deepcopy(bpe), is_encoder_decoder=True)
    cfg = T5Config(vocab_size=len(tok), d_model=32, d_kv=8, d_ff=64, num_layers=2, num_decoder_layers=2,
                   num_heads=4, dropout_rate=0.0, pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id,
                   decoder_start_token_id=tok.pad_token_id)
    torch.manual_seed(0)
    model = T5ForConditionalGeneration(cfg).eval()
    return model, tok
