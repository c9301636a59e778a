"""``coderl sample``: programs for the problems of a split, n per problem, into a samples JSONL file."""

from __future__ import annotations

import json

import typer

from coderl.cli.recipe_runner import CONFIG_HELP, OVERRIDES_HELP, OVERWRITE_HELP


def sample_command(
    overrides: list[str] = typer.Argument(None, help=OVERRIDES_HELP),
    config: str = typer.Option(None, "--config", "-c", help=CONFIG_HELP),
    output: str = typer.Option(None, "--output", "-o", help="Samples JSONL (default: OUT/samples.jsonl)."),
    baseline: str = typer.Option(None, "--baseline", help="Greedy baselines JSONL (default: OUT/baseline.jsonl; "
                                 "none with sampling.greedy_baseline=false)."),
    model: str = typer.Option(None, "--model", help="Model directory to sample from (default: model.path)."),
    split: str = typer.Option(None, "--split", help="Data split (default: data.train_split)."),
    out: str = typer.Option(None, "--out", help="Run directory (the config's `out`)."),
    resume: bool = typer.Option(False, "--resume", help="Keep the problems already complete in the output file."),
    overwrite: bool = typer.Option(False, "--overwrite", help=OVERWRITE_HELP),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Progress bar on stderr."),
) -> None:
    """Sample sampling.n programs per problem (plus one greedy baseline each) with the actor."""
    from coderl.cli import recipe_runner
    from coderl.pipelines.stages import run_sample

    cfg = recipe_runner.load(config, overrides, out)
    with recipe_runner.errors(recipe_runner.resume_command(["sample"], config, out, overrides, output=output,
                                                 baseline=baseline, model=model, split=split)):
        res = run_sample(cfg, output, baseline, split, model, resume=resume, progress=progress, log=recipe_runner.log,
                         overwrite=overwrite)
    typer.echo(json.dumps(res))
