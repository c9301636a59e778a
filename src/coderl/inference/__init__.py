"""Inference-time search with the critic: critic sampling (refine and repair), plain sampling with the same
budget, n@k selection, the repair model, and a problem set sampled into a samples file. See docs/critic_sampling.md.

Importing ``coderl.inference`` is cheap: torch and transformers load when one of the names below is first used.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "CriticSamplingConfig": "sampling",
    "Candidate": "sampling",
    "ProblemResult": "sampling",
    "critic_sample": "sampling",
    "plain_sample": "sampling",
    "continue_from": "sampling",
    "rank": "sampling",
    "select": "sampling",
    "generate_samples_file": "samples_file",
    "Seed": "prefix",
    "allocate": "prefix",
    "build_seeds": "prefix",
    "prefix_pass_probs": "prefix",
    "seed_lengths": "prefix",
    "Feedback": "repair",
    "RepairExample": "repair",
    "repair_prompt": "repair",
    "collect_repair_examples": "repair",
    "new_repair_model": "repair",
    "train_repair": "repair",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'coderl.inference' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"coderl.inference.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(list(globals()) + __all__)
