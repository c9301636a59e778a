"""Seeded random streams, so that one config and seed give one run, and a resumed run draws what the
uninterrupted one drew.

Every random draw of a training step (dropout masks, sampling, the supervised pairs it picks) comes from a stream
seeded by ``(seed, step)`` rather than from one generator advanced through the whole run: the stream of step N
does not depend on what ran before it, so a run resumed at step N needs no saved generator state, and two runs of
one config are identical whatever else touched the global generators in between.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch


def stream_seed(seed: int, index: int) -> int:
    """The seed of stream ``index`` (a step, a chunk of problems) of a run seeded with ``seed``."""
    return seed * 1_000_003 + index


@contextlib.contextmanager
def seeded(seed: int | None, device: torch.device | str | None = None) -> Iterator[None]:
    """Run the block with torch's generators (CPU, and ``device``'s when it is CUDA) seeded with ``seed``; the
    caller's generator states are restored afterwards. ``seed=None``: the block uses the global state as it is."""
    import torch

    if seed is None:
        yield
        return
    dev = torch.device(device) if device is not None else None
    devices = [dev] if dev is not None and dev.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        yield
