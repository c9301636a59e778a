"""``coderl train --stage sft|rl|repair``: train from a recipe config.

``--stage rl`` runs whatever the RL mode needs that is not there yet (offline: sample, exec, critic train and
score; online coderl: sample, exec, critic train), then RL. ``--stage repair`` trains critic sampling's repair
model on the actor's failures (the `repair` section). Stages are looked up in :data:`STAGES`, so a new one is one
function and one entry.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import typer

from coderl.cli.errors import fail
from coderl.cli.recipe_runner import CONFIG_HELP, OVERRIDES_HELP, OVERWRITE_HELP


def _sft(cfg: Any, **kw: Any) -> dict[str, Any]:
    from coderl.pipelines.stages import run_sft

    return run_sft(cfg, **kw)


def _rl(cfg: Any, **kw: Any) -> dict[str, Any]:
    from coderl.pipelines.stages import run_chain

    return run_chain(cfg, **kw)["rl"]


def _repair(cfg: Any, **kw: Any) -> dict[str, Any]:
    from coderl.pipelines.stages import run_repair

    return run_repair(cfg, **kw)


# Each is called with the config and resume=, overwrite=, progress=, log=.
STAGES: dict[str, Callable[..., dict[str, Any]]] = {"sft": _sft, "rl": _rl, "repair": _repair}


def train_command(
    overrides: list[str] = typer.Argument(None, help=OVERRIDES_HELP),
    stage: str = typer.Option(..., "--stage", help="Which training stage: " + ", ".join(STAGES) + "."),
    config: str = typer.Option(None, "--config", "-c", help=CONFIG_HELP),
    out: str = typer.Option(None, "--out", help="Run directory (the config's `out`)."),
    resume: bool = typer.Option(False, "--resume", help="Continue from the stage's last checkpoint (a finished run "
                                "too, when rl.steps / sft.epochs is now larger)."),
    overwrite: bool = typer.Option(False, "--overwrite", help=OVERWRITE_HELP),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Progress bars on stderr."),
) -> None:
    """Train: the actor by SFT on ground truth or RL from execution feedback, or the repair model."""
    from coderl.cli import recipe_runner

    if stage not in STAGES:
        fail(f"--stage must be one of {', '.join(STAGES)}, got {stage!r}")
    cfg = recipe_runner.load(config, overrides, out)
    with recipe_runner.errors(recipe_runner.resume_command(["train", "--stage", stage], config, out, overrides)):
        res = STAGES[stage](cfg, resume=resume, overwrite=overwrite, progress=progress, log=recipe_runner.log)
    typer.echo(json.dumps(res, default=str))
