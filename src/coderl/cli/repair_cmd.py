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

    overrides = [f"out={out}", f"data.dataset={problems}", "data.train_split=train", f"repair.actor={actor}",
                 f"repair.samples_per_problem={samples_per_problem}", f"repair.max_problems={max_problems}",
                 f"repair.max_new_tokens={max_new_tokens}", f"repair.positions={positions}",
                 f"repair.from_scratch={str(from_scratch).lower()}", f"repair.seed={seed}",
                 f"repair.train.epochs={epochs}", f"repair.train.lr={lr}", f"repair.train.batch_size={batch_size}",
                 f"repair.train.warmup_steps={warmup_steps}", f"repair.train.seed={seed}",
                 f"execution.timeout={timeout}", f"execution.workers={workers or 'null'}"]
    cfg = recipe_runner.load(None, overrides)
    options = {"actor": actor, "problems": problems, "samples-per-problem": samples_per_problem,
               "max-problems": max_problems, "epochs": epochs, "lr": lr, "batch-size": batch_size,
               "warmup-steps": warmup_steps, "positions": positions, "max-new-tokens": max_new_tokens, "seed": seed,
               "workers": workers, "timeout": timeout}
    again = recipe_runner.resume_command(["train-repair", *(["--from-scratch"] if from_scratch else [])], None,
                                         str(out), None, **{k: str(v) for k, v in options.items()})
    with recipe_runner.errors(again):
        info = run_repair(cfg, out=out, resume=resume, overwrite=overwrite, progress=progress, log=recipe_runner.log)
    typer.echo(json.dumps(info, default=str))
