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

from coderl.models.actor import load_checkpoint_weights, save_checkpoint


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
                        config: dict[str, Any], history: list[dict[str, Any]], keep: int = 2,
                        extra_state: dict[str, Any] | None = None) -> Path:
    """``extra_state``: whatever else a resumed run needs to continue exactly (e.g. a critic updated during RL,
    with its optimiser), stored in trainer_state.pt under its keys."""
    def write(d: Path) -> None:
        save_checkpoint(model, tokenizer, d, extra={"config": config, "step": step})
        torch.save({"step": step, "optimizer": optimizer.state_dict(), "history": history, "config": config,
                    **(extra_state or {})}, d / "trainer_state.pt")

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


# Settings that only say how long a run trains or how often it checkpoints: resuming with a larger value extends
# a finished (or interrupted) run instead of being refused. (SFT's cosine schedule is planned over the steps of
# sft.epochs, so extending SFT by epochs stretches the rest of the schedule.)
EXTENDABLE = frozenset({"steps", "epochs", "time_budget_s", "checkpoint_every", "sft_checkpoint_every"})


def flat(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}}`` -> ``{"a.b": 1}``: a resume refusal then names exactly the settings that changed."""
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, dict) and v:
            out.update(flat(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def check_same_config(saved: dict[str, Any], current: dict[str, Any], where: Path) -> None:
    """Resuming with a different configuration would silently mix two experiments; refuse, naming each setting
    that changed once (a setting saved under two names, e.g. ``rl.lr`` and ``recipe.rl.lr``, is named once).
    The :data:`EXTENDABLE` settings may change."""
    a, b = flat(saved), flat(current)
    diff = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k) and k.rsplit(".", 1)[-1] not in EXTENDABLE)
    named = [k for k in diff if not any(k != o and k.endswith("." + o) and a.get(k) == a.get(o)
                                        and b.get(k) == b.get(o) for o in diff)]
    if named:
        lines = ", ".join(f"{k}: saved {a.get(k)!r} vs now {b.get(k)!r}" for k in named)
        raise ValueError(f"cannot resume from {where}: the configuration differs ({lines}); use the same settings, "
                         "or --overwrite to start a new run in this directory")


def resume_point(out_dir: str | Path, config: dict[str, Any]) -> tuple[Path, dict[str, Any]] | None:
    """The newest checkpoint under ``out_dir`` and its trainer state, checked against ``config``; None when there
    is none. The one resume path of every training stage (SFT, RL, the critic)."""
    ckpt = latest_checkpoint(out_dir)
    if ckpt is None:
        return None
    state = load_training_state(ckpt)
    check_same_config(state["config"], config, ckpt)
    return ckpt, state


def resume_actor(out_dir: str | Path, model, optimizer: torch.optim.Optimizer, config: dict[str, Any]
                 ) -> tuple[int, list[dict[str, Any]], Path | None]:
    """Restore an actor's weights (tied weights re-tied, LoRA adapters) and optimiser from its newest checkpoint:
    ``(step, history, checkpoint)``, or ``(0, [], None)`` when there is none."""
    found = resume_point(out_dir, config)
    if found is None:
        return 0, [], None
    ckpt, state = found
    load_checkpoint_weights(model, ckpt)
    optimizer.load_state_dict(state["optimizer"])
    return state["step"], state["history"], ckpt


def write_json(path: str | Path, obj: Any) -> None:
    tmp = Path(str(path) + ".tmp")
    tmp.write_text(json.dumps(obj, indent=2))
    os.replace(tmp, path)
