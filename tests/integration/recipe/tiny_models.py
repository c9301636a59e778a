"""Tiny random models saved like real checkpoints (config.json + safetensors + tokenizer files), built from configs.

A byte-level BPE trained on the fixture problems; a GPT-2-style causal LM and a T5-style encoder-decoder of a few
hundred thousand parameters each. They are written with ``save_pretrained`` so that every stage loads them through
the standard ``from_pretrained`` path, as it would a downloaded model.
"""

from __future__ import annotations

import copy
from pathlib import Path

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
APPS_DIR = FIXTURES / "apps_mini"
MBPP_FILE = FIXTURES / "mbpp_mini.jsonl"


def corpus() -> list[str]:
    from coderl.tasks import load_problems
    from coderl.tasks.prompt import format_prompt

    ps = load_problems("apps", APPS_DIR, "train") + load_problems("apps", APPS_DIR, "test")
    ps += load_problems("mbpp", MBPP_FILE, "all")
    return [format_prompt(p) for p in ps] + [s for p in ps for s in p.solutions]


def tokenizer(vocab_size: int = 400):
    from coderl.models.tokenizer import train_bpe

    return train_bpe(corpus(), vocab_size=vocab_size)


def save_gpt2(path: Path, tok, n_positions: int = 512, seed: int = 0, dropout: float = 0.0) -> Path:
    """GPT2LMHeadModel, 2 layers x 96 dims (~0.3M parameters with the 400-token vocabulary), saved with its
    tokenizer."""
    from coderl.models.actor import tiny_gpt2

    model = tiny_gpt2(tok, n_layer=2, n_embd=96, n_head=4, n_positions=n_positions, seed=seed, dropout=dropout)
    model.save_pretrained(path)
    tok.save_pretrained(path)
    return path


def save_t5(path: Path, tok, seed: int = 0, dropout: float = 0.0) -> Path:
    """T5ForConditionalGeneration, d_model 96, 2+2 layers (~0.3M parameters), saved with its (right-padding)
    tokenizer. Its input and output embeddings are tied: the weights hold them once, as ``shared.weight``."""
    import torch
    from transformers import T5Config, T5ForConditionalGeneration

    from coderl.models.tokenizer import prepare_tokenizer

    tok = prepare_tokenizer(copy.deepcopy(tok), is_encoder_decoder=True)
    cfg = T5Config(vocab_size=len(tok), d_model=96, d_kv=24, d_ff=192, num_layers=2, num_decoder_layers=2,
                   num_heads=4, dropout_rate=dropout, pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id,
                   decoder_start_token_id=tok.pad_token_id)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = T5ForConditionalGeneration(cfg)
    model.generation_config.decoder_start_token_id = tok.pad_token_id
    model.save_pretrained(path)
    tok.save_pretrained(path)
    return path
