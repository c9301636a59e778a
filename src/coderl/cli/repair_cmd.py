"""``coderl train-repair``: ``coderl train --stage repair`` without a config file, for the task family and the demo's
models. Its options are recipe settings (``--actor`` is ``repair.actor``, ``--problems`` is ``data.dataset``,
``--epochs`` is ``repair.train.epochs``, ...), and the stage is the same function,
:func:`coderl.pipelines.stages.run_repair`: the same model choice, outputs (``OUT/pairs.jsonl``, ``OUT/final/``,
``OUT/summary.json``), checkpoints and ``--resume``.

Exit status: 0 trained; 2 bad input (problems file, model directory, option values); 1 the sandbox failed;
130 interrupted (a checkpoint is saved; the message says how to resume).
"""

from __future__ import annotations

import json
from pathlib import Path

import typer

from coderl.cli.recipe_runner import OVERWRITE_HELP


def train_repair_command(
    actor: Path = typer.Option(..., "--actor", help="Actor model directory whose failures are repaired "
                               "(e.g. DEMO/final); a GPT-2 repair model starts from its weights unless "
                               "--from-scratch, any other architecture is fine-tuned from them."),
    problems: str = typer.Option("family:train", "--problems", "-p", help="Training problems: a problems JSONL "
                                 "(hidden tests and solutions are used) or family:train[:N]."),
    out: Path = typer.Option(..., "--out", "-o", help="Output directory for the repair model."),
    samples_per_problem: int = typer.Option(4, "--samples-per-problem", help="Actor samples per problem."),
    max_problems: int = typer.Option(800, "--max-problems", help="Use at most this many problems (seeded draw)."),
    epochs: float = typer.Option(4.0, "--epochs"),
    lr: float = typer.Option(2e-3, "--lr"),
    batch_size: int = typer.Option(64, "--batch-size"),
    warmup_steps: int = typer.Option(20, "--warmup-steps"),
    positions: int = typer.Option(256, "--positions", help="Positions of a GPT-2 repair model."),
    from_scratch: bool = typer.Option(False, "--from-scratch/--from-actor", help="A fresh tiny GPT-2 instead of "
                                      "the actor's weights."),
    max_new_tokens: int = typer.Option(48, "--max-new-tokens"),
    seed: int = typer.Option(0, "--seed", help="Seeds the problem draw, the actor's samples and training."),
    workers: int = typer.Option(0, "--workers", "-w", help="Sandbox workers (default: number of cores)."),
    timeout: float = typer.Option(2.0, "--timeout", help="Seconds per test."),
    resume: bool = typer.Option(False, "--resume", help="Keep a finished repair model; continue an interrupted "
                                "one from its checkpoint and pairs."),
    overwrite: bool = typer.Option(False, "--overwrite", help=OVERWRITE_HELP),
    progress: bool = typer.Option(True, "--progress/--no-progress"),
) -> None:
    """Train a repair model: failed sample + executor feedback -> passing program."""
    from coderl.cli import recipe_runner
    from coderl.pipelines.stages import run_repair

    # Each option once: its value, and the recipe fields it sets (the resume hint repeats the options; None, the
    # default number of workers, is null in the recipe and left out of the hint).
    options = {"actor": (actor, "repair.actor"), "problems": (problems, "data.dataset"),
               "samples-per-problem": (samples_per_problem, "repair.samples_per_problem"),
               "max-problems": (max_problems, "repair.max_problems"), "epochs": (epochs, "repair.train.epochs"),
               "lr": (lr, "repair.train.lr"), "batch-size": (batch_size, "repair.train.batch_size"),
               "warmup-steps": (warmup_steps, "repair.train.warmup_steps"),
               "positions": (positions, "repair.positions"),
               "max-new-tokens": (max_new_tokens, "repair.max_new_tokens"),
               "seed": (seed, "repair.seed", "repair.train.seed"), "workers": (workers or None, "execution.workers"),
               "timeout": (timeout, "execution.timeout")}
    overrides = [f"out={out}", "data.train_split=train", f"repair.from_scratch={str(from_scratch).lower()}",
                 *(f"{field}={'null' if value is None else value}" for value, *fields in options.values()
                   for field in fields)]
    cfg = recipe_runner.load(None, overrides)
    again = recipe_runner.resume_command(["train-repair", *(["--from-scratch"] if from_scratch else [])], None,
                                         str(out), None,
                                         **{k: None if v[0] is None else str(v[0]) for k, v in options.items()})
    with recipe_runner.errors(again):
        info = run_repair(cfg, out=out, resume=resume, overwrite=overwrite, progress=progress, log=recipe_runner.log)
    typer.echo(json.dumps(info, default=str))
