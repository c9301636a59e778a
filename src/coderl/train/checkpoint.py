"""Resumable training: the one checkpoint format and resume path of every training loop (SFT, RL, the critic,
the repair model).

A loop is handed a :class:`Checkpoints` (where, which configuration, how often) and drives it the same way::

    state = checkpoints.attach(model, tokenizer, optimizer).resume()   # weights + optimiser restored, or step 0
    for ...:
        ...one optimiser step...; state.step += 1
        checkpoints.after_step(state, stop)      # saves every `every` steps, and when the run is stopped
    checkpoints.finish(state)                    # saves the last step unless it is saved already

Layout under ``OUT/checkpoints/``::

    step-000020/   the model's files (an actor's by coderl.models.actor.save_checkpoint, a critic's by
                   Critic.save) and trainer_state.pt (step, optimiser, history, the loop's own ``extra``, config)
    latest         the name of the newest complete checkpoint, replaced atomically

A checkpoint directory is written under a temporary name and renamed only when complete, and ``latest`` is
updated last, so a run killed at any moment (kill -9 included) resumes from the last complete checkpoint. A
checkpoint records the run's configuration; resuming with another one is refused (:func:`check_same_config`).
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from coderl.models.actor import load_checkpoint_weights, save_checkpoint


def commit_checkpoint(out_dir: str | Path, name: str, write: Callable[[Path], None], keep: int = 2) -> Path:
    """Write checkpoint ``name`` under ``OUT/checkpoints/``: ``write(dir)`` fills a new temporary directory,
    which is renamed when complete, then ``latest`` is pointed at it and all but the newest ``keep`` checkpoints of the
    same kind (the name's prefix, ``step-``) are removed. ``write`` must put a trainer_state.pt in
    the directory (:func:`latest_checkpoint` looks for it)."""
    root = Path(out_dir) / "checkpoints"
    root.mkdir(parents=True, exist_ok=True)
    tmp = root / f".{name}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
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
    is none (:meth:`Checkpoints.resume` restores from it; a stage may look first, to decide what to keep)."""
    ckpt = latest_checkpoint(out_dir)
    if ckpt is None:
        return None
    state = load_training_state(ckpt)
    check_same_config(state["config"], config, ckpt)
    return ckpt, state


@dataclass
class TrainingState:
    """Where a training run is: what a resumed run needs besides the weights and the optimiser."""

    step: int = 0
    """Optimiser steps taken."""
    history: list[dict[str, Any]] = field(default_factory=list)
    """The loop's records (one per step, or per epoch for the critic), carried across resumes."""
    extra: dict[str, Any] = field(default_factory=dict)
    """The loop's own position, saved with every checkpoint (the critic: its epoch, batch and partial loss sums;
    RL: the critic it updates online, with that critic's optimiser)."""
    checkpoint: Path | None = None
    """The checkpoint the run was restored from; None for a fresh run."""


def save_actor(model, tokenizer, d: Path, info: dict[str, Any]) -> None:
    save_checkpoint(model, tokenizer, d, extra=info)


class Checkpoints:
    """The checkpoints of one training run in ``out_dir``: its configuration (recorded, and compared on resume),
    how often to save (``every`` optimiser steps; 0: only when stopped and at the end), and whether to resume.

    The loop :meth:`attach`-es what it trains; ``save(model, tokenizer, dir, info)`` writes the model's files
    (default: an actor's, with LoRA adapters) and ``load(model, dir)`` restores them into the model in training
    (default: :func:`coderl.models.actor.load_checkpoint_weights`), so any module with its own format (the
    critic) checkpoints the same way."""

    def __init__(self, out_dir: str | Path, config: dict[str, Any], every: int = 0, resume: bool = False,
                 keep: int = 2, log: Callable[[str], None] | None = None) -> None:
        if every < 0 or keep < 1:
            raise ValueError(f"Checkpoints: every must be >= 0 and keep >= 1 (got {every}, {keep})")
        self.out_dir, self.config, self.every, self.resume_requested, self.keep = (Path(out_dir), config, every,
                                                                                  resume, keep)
        self.log = log  # told where a resumed run starts
        self.saved = -1  # the step of the newest checkpoint this run wrote or resumed from
        self.model = self.tokenizer = self.optimizer = None
        self._found: tuple[Path, dict[str, Any]] | None | bool = False  # False: not looked for yet

    def attach(self, model, tokenizer, optimizer: torch.optim.Optimizer,
               save: Callable[[Any, Any, Path, dict[str, Any]], None] | None = None,
               load: Callable[[Any, Path], None] | None = None) -> Checkpoints:
        self.model, self.tokenizer, self.optimizer = model, tokenizer, optimizer
        self.save_model, self.load_model = save or save_actor, load or load_checkpoint_weights
        return self

    def found(self) -> tuple[Path, dict[str, Any]] | None:
        """The checkpoint a resume starts from and its trainer state, checked against the config (``ValueError``
        naming the settings that differ); None when not resuming or there is none. Read once: a stage may look
        before it builds the model (to decide what to keep), and :meth:`resume` then uses what was read."""
        if self._found is False:
            self._found = resume_point(self.out_dir, self.config) if self.resume_requested else None
        return self._found

    def resume(self) -> TrainingState:
        """The state to start from: the newest checkpoint's (its weights and optimiser restored into the attached
        ones) when asked to resume and there is one, else a fresh state. A checkpoint of another configuration is
        refused (``ValueError`` naming the settings that differ)."""
        if self.optimizer is None:
            raise RuntimeError("Checkpoints.resume: attach the model, tokenizer and optimiser first")
        found = self.found()
        if found is None:
            return TrainingState()
        ckpt, saved = found
        self.load_model(self.model, ckpt)
        self.optimizer.load_state_dict(saved["optimizer"])
        self.saved = saved["step"]
        if self.log is not None:
            self.log(f"resuming from {ckpt} (step {saved['step']})")
        return TrainingState(saved["step"], list(saved["history"]), dict(saved.get("extra", {})), ckpt)

    def save(self, state: TrainingState) -> Path:
        def write(d: Path) -> None:
            self.save_model(self.model, self.tokenizer, d, {"config": self.config, "step": state.step})
            torch.save({"step": state.step, "optimizer": self.optimizer.state_dict(), "history": state.history,
                        "extra": state.extra, "config": self.config}, d / "trainer_state.pt")

        path = commit_checkpoint(self.out_dir, f"step-{state.step:06d}", write, self.keep)
        self.saved = state.step
        return path

    def after_step(self, state: TrainingState, stop: bool = False) -> Path | None:
        """Save after a step when ``every`` divides the step count, or when the run is being stopped."""
        if stop or (self.every and state.step % self.every == 0):
            return self.save(state)
        return None

    def finish(self, state: TrainingState) -> Path | None:
        """Save the run's last step, unless a checkpoint of it exists already (or no step was taken)."""
        return self.save(state) if state.step > max(0, self.saved) else None

    def latest(self) -> Path | None:
        return latest_checkpoint(self.out_dir)


def write_json(path: str | Path, obj: Any) -> None:
    tmp = Path(str(path) + ".tmp")
    tmp.write_text(json.dumps(obj, indent=2))
    os.replace(tmp, path)
