"""Tiny saved models and a CLI runner for the recipe tests (everything offline, built from configs)."""

from __future__ import annotations

import importlib.util
import os
import sys
import warnings
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


@pytest.fixture()
def cli():
    """``cli(*args) -> (exit code, output)``: the real typer app, in-process."""
    from typer.testing import CliRunner

    from coderl.cli.main import app

    runner = CliRunner()

    def run(*args: str) -> tuple[int, str]:
        # the app quiets the libraries for its process (environment, warning filters, transformers' logger):
        # undo that after each call, or later tests (and the processes they start) inherit it
        env = dict(os.environ)
        hf = sys.modules.get("transformers.utils.logging")
        level = hf.get_verbosity() if hf is not None else None
        with warnings.catch_warnings():
            res = runner.invoke(app, [str(a) for a in args])
        os.environ.clear()
        os.environ.update(env)
        hf = sys.modules.get("transformers.utils.logging")  # perhaps first imported by this call
        if hf is not None:
            hf.set_verbosity(level if level is not None else hf.WARNING)
        if res.exception is not None and not isinstance(res.exception, SystemExit):
            raise res.exception
        return res.exit_code, res.output

    return run
