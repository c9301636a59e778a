"""Ctrl-C during training: finish the step under way, save a checkpoint, say how to resume.

A ``KeyboardInterrupt`` raised wherever the signal happens to land (inside an optimiser step, half-way through a
checkpoint) would leave weights and optimiser state out of step; instead the first SIGINT only sets a flag that
the training loops read between steps, and a second one aborts at once, as Ctrl-C normally does.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Callable, Iterator
from pathlib import Path


class TrainingInterrupted(Exception):
    """A training stage stopped on Ctrl-C after saving ``checkpoint`` (resumable with ``--resume``)."""

    def __init__(self, stage: str, step: int, checkpoint: Path | None):
        self.stage, self.step, self.checkpoint = stage, step, checkpoint
        where = f"checkpoint saved to {checkpoint}" if checkpoint is not None else "no checkpoint was written"
        super().__init__(f"{stage}: interrupted at step {step}; {where}")


class StopFlag:
    """Whether a stop was requested; training loops call it between steps."""

    def __init__(self) -> None:
        self.requested = False

    def __call__(self) -> bool:
        return self.requested


@contextlib.contextmanager
def stop_on_sigint(log: Callable[[str], None], what: str) -> Iterator[StopFlag]:
    """Within the block, the first Ctrl-C sets the yielded flag (and says so); the second raises
    ``KeyboardInterrupt``. Outside the main thread signals cannot be caught, and the flag simply stays unset."""
    flag = StopFlag()
    if threading.current_thread() is not threading.main_thread():
        yield flag
        return

    def handler(signum: int, frame: object) -> None:
        if flag.requested:
            raise KeyboardInterrupt
        flag.requested = True
        log(f"{what}: Ctrl-C: stopping after the current step and saving a checkpoint (Ctrl-C again to abort now)")

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield flag
    finally:
        signal.signal(signal.SIGINT, previous)
