"""``coderl train-repair``: train the repair model of critic sampling on pairs of the actor's failed samples and
passing programs of the same training problems, from options (the task family, the demo's models). A recipe run
does the same with ``coderl train --stage repair -c CONFIG`` (:func:`coderl.pipelines.stages.run_repair`).

Exit status: 0 trained; 2 bad input (problems file, model directory, option values); 1 the sandbox failed.
"""

from __future__ import annotations

import json
from pathlib import Path

import typer

from coderl.cli.errors import fail


def train_repair_command(
    actor: Path = typer.Option(..., "--actor", help="Actor model directory whose failures are repaired "
                               "(e.g. DEMO/final); the repair model starts from it (GPT-2) unless --from-scratch."),
    problems: str = typer.Option("family:train", "--problems", "-p", help="Training problems: a problems JSONL "
                                 "(hidden tests and solutions are used) or family:train[:N]."),
    out: Path = typer.Option(..., "--out", "-o", help="Output directory for the repair model."),
    samples_per_problem: int = typer.Option(4, "--samples-per-problem", help="Actor samples per problem."),
    max_problems: int = typer.Option(800, "--max-problems", help="Use at most this many problems (seeded draw)."),
    epochs: float = typer.Option(4.0, "--epochs"),
    lr: float = typer.Option(2e-3, "--lr"),
    batch_size: int = typer.Option(64, "--batch-size"),
    positions: int = typer.Option(256, "--positions", help="Positions of the repair model."),
    from_scratch: bool = typer.Option(False, "--from-scratch/--from-actor", help="A fresh tiny GPT-2 instead of "
                                      "the actor's weights."),
    max_new_tokens: int = typer.Option(48, "--max-new-tokens"),
    seed: int = typer.Option(0, "--seed"),
    workers: int = typer.Option(0, "--workers", "-w"),
    progress: bool = typer.Option(True, "--progress/--no-progress"),
) -> None:
    """Train a repair model: failed sample + executor feedback -> passing program."""
    import random

    from coderl.inference.repair import collect_repair_examples, new_repair_model, train_repair, write_pairs
    from coderl.models.actor import ModelLoadError, load_model, save_checkpoint
    from coderl.sandbox import Executor, RequestError, SandboxError
    from coderl.tasks import load_problem_file_or_family as load_problem_set
    from coderl.train.sft import SFTConfig
    from coderl.utils.paths import PathError, output_dir

    if samples_per_problem < 1 or max_problems < 1:
        fail("--samples-per-problem and --max-problems must be >= 1")
    try:
        output_dir(out, "the repair model")
    except PathError as e:
        fail(str(e))
    try:
        sft_cfg = SFTConfig(lr=lr, batch_size=batch_size, epochs=epochs, seed=seed)
    except ValueError as e:
        fail(str(e))
    try:
        probs = load_problem_set(problems, seed)
    except (RequestError, ValueError) as e:
        fail(str(e))
    probs = random.Random(seed).sample(list(probs), min(max_problems, len(probs)))
    try:
        model, tok = load_model(actor, kind="causal")
    except ModelLoadError as e:
        fail(str(e))
    try:
        with Executor(workers=workers or None, timeout=2.0) as ex:
            examples, counts = collect_repair_examples(model, tok, probs, ex, samples_per_problem,
                                                       max_new_tokens=max_new_tokens, seed=seed)
    except SandboxError as e:
        fail(str(e), 1)
    if not examples:
        fail(f"no repair pairs: {counts['failures']} failures among {counts['samples']} samples had no passing "
             "program of the same problem")
    out.mkdir(parents=True, exist_ok=True)
    write_pairs(out / "pairs.jsonl", examples)
    try:
        repair = new_repair_model(tok, None if from_scratch else model, n_positions=positions, seed=seed)
    except NotImplementedError as e:
        fail(str(e))
    hist = train_repair(repair, tok, examples, sft_cfg, progress=progress)
    info = {"stage": "repair", "actor": str(actor), "problems": problems, **counts, "steps": hist["steps"],
            "final_loss": hist["loss"][-1] if hist["loss"] else None, "dropped": hist["dropped"]}
    save_checkpoint(repair, tok, out / "model", extra=info)
    (out / "summary.json").write_text(json.dumps(info, indent=1) + "\n")
    typer.echo(json.dumps(info))
