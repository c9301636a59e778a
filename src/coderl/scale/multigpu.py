"""Data-parallel training with ``accelerate`` (``pip install 'coderl[multigpu]'``), with the same ``train_rl`` loop.

Launch one process per GPU (``accelerate launch --num_processes 4 train.py``, or ``torchrun``; on CPU the gloo
backend) and call :func:`train_rl_distributed` where ``train_rl`` would be called. Each rank samples its own
problems and programs (its seed is offset by the rank) and executes them on its own executor; the update's
forward passes go through DDP, so ``loss.backward()`` averages the gradients of all ranks and every rank takes
the same optimiser step. The effective batch is ``world_size × problems_per_step × samples_per_problem``.

Generation runs on the local (unwrapped) module: decoding takes a different number of steps on each rank, and a
collective per forward (DDP's buffer broadcast, FSDP's all-gathers) would deadlock. That is also why FSDP is not
offered here: a sharded model needs a gather of the full parameters around every generation (for models that
fit one GPU, DDP is the right choice; for larger ones, generate with vLLM workers, see
:mod:`coderl.scale.ray_rollout`, and shard only the trainer). Not tried on GPUs in this project (none was
available); tested on CPU with 2 processes over gloo.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from coderl.rl.config import RLConfig
from coderl.tasks.problem import Problem


class DistributedPolicy:
    """The policy as ``train_rl`` sees it: forward passes that build a graph go through DDP (their backward
    all-reduces the gradients); passes without gradients (generation, scoring) use the module itself, so they
    issue no collective. Every other attribute is the module's."""

    def __init__(self, module, ddp):
        object.__setattr__(self, "_module", module)
        object.__setattr__(self, "_ddp", ddp)

    def __call__(self, *args: Any, **kwargs: Any):
        import torch

        return (self._ddp if torch.is_grad_enabled() else self._module)(*args, **kwargs)

    def __getattr__(self, name: str):
        return getattr(self._module, name)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self._module, name, value)


def train_rl_distributed(policy, tokenizer, problems: Sequence[Problem], executor, cfg: RLConfig, accelerator=None,
                         critic=None, sft_pairs: Sequence[tuple[str, str]] = (), out_dir: str | Path | None = None,
                         progress: bool = True, extra_config: dict[str, Any] | None = None) -> list[dict]:
    """``train_rl`` on every rank of an ``accelerate`` launch; returns this rank's history.

    ``accelerator``: an ``accelerate.Accelerator`` (default: a new one). Rank 0 alone writes checkpoints to
    ``out_dir``. With several ranks every rank must take a backward pass every step (the gradient all-reduce is
    a collective), so the supervised term must be on (``cfg.sft_weight > 0`` and ``sft_pairs``), and runs stop
    by step count, not by ``time_budget_s``; ``resume`` is not offered.
    """
    from coderl.rl.loop import train_rl
    from coderl.scale import require

    acc_mod = require("accelerate", "multigpu")
    if accelerator is None:
        kw = acc_mod.utils.DistributedDataParallelKwargs(broadcast_buffers=False)
        accelerator = acc_mod.Accelerator(kwargs_handlers=[kw])
    world, rank = accelerator.num_processes, accelerator.process_index
    if world > 1:
        if cfg.sft_weight <= 0 or not sft_pairs:
            raise ValueError("train_rl_distributed: with several processes every rank must backpropagate every "
                             "step; set cfg.sft_weight > 0 and pass sft_pairs")
        if cfg.time_budget_s is not None:
            raise ValueError("train_rl_distributed: ranks would stop at different steps; set time_budget_s=None "
                             "and limit the run with steps")
    policy.to(accelerator.device)
    wrapped = accelerator.prepare_model(policy)
    proxy = policy if wrapped is policy else DistributedPolicy(policy, wrapped)
    rank_cfg = dataclasses.replace(cfg, seed=cfg.seed + 100_003 * rank)
    extra = {**(extra_config or {}), "distributed": {"world_size": world, "base_seed": cfg.seed}}
    return train_rl(proxy, tokenizer, problems, executor, rank_cfg, critic=critic, sft_pairs=sft_pairs,
                    out_dir=out_dir if accelerator.is_main_process else None,
                    progress=progress and accelerator.is_main_process, extra_config=extra)
