"""Resumable training checkpoints: weights (safetensors) + tokenizer + resolved config, plus trainer state.

Layout under ``OUT/checkpoints/``::

    step-000020/   model files written by coderl.models.actor.save_checkpoint, and trainer_state.pt
                   (the critic stage writes epoch-003/ with the critic's files the same way)
    latest         the name of the newest complete checkpoint, replaced atomically

A checkpoint directory is written under a temporary name and renamed only when complete, and ``latest`` is
updated last, so a run killed at any moment (kill -9 included) resumes from the last complete checkpoint.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from coderl.models.actor import save_checkpoint


def commit_checkpoint(out_dir: str | Path, name: str, write: Callable[[Path], None], keep: int = 2) -> Path:
    """Write checkpoint ``name`` under ``OUT/checkpoints/``: ``write(dir)`` creates and fills a temporary directory,
    which is renamed when complete, then ``latest`` is pointed at it and all but the newest ``keep`` checkpoints of the
    same kind (``step-*``, ``epoch-*``: the name's prefix) are removed. ``write`` must put a trainer_state.pt in
    the directory (:func:`latest_checkpoint` looks for it)."""
    root = Path(out_dir) / "checkpoints"
    root.mkdir(parents=True, exist_ok=True)
    tmp = root / f".{name}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    write(tmp)
    final = root / name
    shutil.rmtree(final, ignore_errors=True)
    os.replace(tmp, final)
    latest_tmp = root / ".latest.tmp"
    latest_tmp.write_text(name)
    os.replace(latest_tmp, root / "latest")
    kind = name.rsplit("-", 1)[0]
    for old in sorted(p for p in root.glob(f"{kind}-*") if p.name != name)[:-keep + 1 or None]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def save_training_state(out_dir: str | Path, step: int, model, tokenizer, optimizer: torch.optim.Optimizer,
                        config: dict[str, Any], history: list[dict[str, Any]], keep: int = 2) -> Path:
    def write(d: Path) -> None:
        save_checkpoint(model, tokenizer, d, extra={"config": config, "step": step})
        torch.save({"step": step, "optimizer": optimizer.state_dict(), "history": history, "config": config,
                    "torch_rng": torch.get_rng_state()}, d / "trainer_state.pt")

    return commit_checkpoint(out_dir, f"step-{step:06d}", write, keep)


def latest_checkpoint(out_dir: str | Path) -> Path | None:
    root = Path(out_dir) / "checkpoints"
    marker = root / "latest"
    if not marker.is_file():
        return None
    path = root / marker.read_text().strip()
    return path if (path / "trainer_state.pt").is_file() else None


def load_training_state(path: str | Path) -> dict[str, Any]:
    return torch.load(Path(path) / "trainer_state.pt", weights_only=False)


def check_same_config(saved: dict[str, Any], current: dict[str, Any], where: Path) -> None:
    """Resuming with a different configuration would silently mix two experiments; refuse."""
    diff = {k for k in set(saved) | set(current) if saved.get(k) != current.get(k)}
    if diff:
        lines = ", ".join(f"{k}: saved {saved.get(k)!r} vs now {current.get(k)!r}" for k in sorted(diff))
        raise ValueError(f"cannot resume from {where}: the configuration differs ({lines}); "
                         "use the same settings or a new output directory")


def write_json(path: str | Path, obj: Any) -> None:
    tmp = Path(str(path) + ".tmp")
    tmp.write_text(json.dumps(obj, indent=2))
    os.replace(tmp, path)
