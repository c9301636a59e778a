"""Tiny saved models and a CLI runner for the recipe tests (everything offline, built from configs)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

if importlib.util.find_spec("torch") is None or importlib.util.find_spec("transformers") is None:
    collect_ignore_glob = ["test_*.py"]

sys.path.insert(0, str(Path(__file__).resolve().parent))


@pytest.fixture(scope="session", autouse=True)
def _one_torch_thread():
    """Tiny models: one intra-op thread is as fast and does not fight the sandbox workers for the 2 cores."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def models(tmp_path_factory) -> dict[str, Path]:
    import tiny_models as tm

    root = tmp_path_factory.mktemp("models")
    tok = tm.tokenizer()
    # The *_dropout models drop 10% (CodeT5's rate): what makes runs differ unless every RNG is seeded
    return {"gpt2": tm.save_gpt2(root / "gpt2", tok), "t5": tm.save_t5(root / "t5", tok),
            "gpt2_dropout": tm.save_gpt2(root / "gpt2_dropout", tok, dropout=0.1),
            "t5_dropout": tm.save_t5(root / "t5_dropout", tok, dropout=0.1)}


