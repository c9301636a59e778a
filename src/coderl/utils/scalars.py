"""Training scalars of every training stage (SFT, critic, RL) to tensorboard (``OUT/tensorboard``) and, when a
project is named and the package is installed, to Weights & Biases."""

from __future__ import annotations

from pathlib import Path
from typing import Any


class ScalarLog:
    """``add_scalar(tag, value, step)`` to each sink that is available; ``close()`` when the stage ends.

    The sinks are opened at the first scalar, so a stage that stops on a bad setting before its first step leaves
    no files behind (a later run would otherwise find them in its way)."""

    def __init__(self, out_dir: str | Path | None, wandb_project: str | None = None, run_name: str | None = None,
                 config: dict[str, Any] | None = None):
        self.out_dir, self.wandb_project, self.run_name, self.config = out_dir, wandb_project, run_name, config
        self.tb = None
        self.wandb = None
        self.opened = False
        if wandb_project:
            try:
                import wandb  # noqa: F401 - checked now, used at the first scalar
            except ImportError:
                raise ValueError(f"log.wandb_project is {wandb_project!r} but wandb is not installed: pip install "
                                 "wandb (or set log.wandb_project: null)") from None

    def _open(self) -> None:
        self.opened = True
        if self.out_dir is not None:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:  # tensorboard is optional
                SummaryWriter = None  # noqa: N806
            if SummaryWriter is not None:
                self.tb = SummaryWriter(str(Path(self.out_dir) / "tensorboard"))
        if self.wandb_project:
            import wandb

            self.wandb = wandb.init(project=self.wandb_project, name=self.run_name, config=self.config or {},
                                    dir=str(self.out_dir) if self.out_dir is not None else None)

    def add_scalar(self, tag: str, value: float, step: int) -> None:
        if not self.opened:
            self._open()
        if self.tb is not None:
            self.tb.add_scalar(tag, value, step)
        if self.wandb is not None:
            self.wandb.log({tag: value}, step=step)

    def close(self) -> None:
        if self.tb is not None:
            self.tb.close()
            self.tb = None
        if self.wandb is not None:
            self.wandb.finish()
            self.wandb = None
