"""``coderl critic train`` / ``coderl critic score``: the CodeRL critic on executed samples."""

from __future__ import annotations

import json

import typer

from coderl.cli.recipe_runner import CONFIG_HELP, OVERRIDES_HELP, OVERWRITE_HELP

app = typer.Typer(help="Train the critic on executed samples, or score samples with it.", no_args_is_help=True)


@app.command("train")
def train_command(
    overrides: list[str] = typer.Argument(None, help=OVERRIDES_HELP),
    config: str = typer.Option(None, "--config", "-c", help=CONFIG_HELP),
    samples: str = typer.Option(None, "--samples", "-s", help="Samples JSONL (default: OUT/samples.jsonl)."),
    verdicts: str = typer.Option(None, "--verdicts", help="Their verdicts: the exec stage's SAMPLES.verdicts.jsonl "
                                 "(default) or `coderl eval`'s verdicts.jsonl."),
    output: str = typer.Option(None, "--output", "-o", help="Critic directory (default: OUT/critic)."),
    out: str = typer.Option(None, "--out", help="Run directory (the config's `out`)."),
    resume: bool = typer.Option(False, "--resume", help="Keep a critic already trained on the same inputs, or "
                                "continue an interrupted one from its last checkpoint."),
    overwrite: bool = typer.Option(False, "--overwrite", help=OVERWRITE_HELP),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Progress bar on stderr."),
) -> None:
    """Train the critic to predict each program's execution outcome."""
    from coderl.cli import recipe_runner
    from coderl.pipelines.stages import run_critic_train

    cfg = recipe_runner.load(config, overrides, out)
    with recipe_runner.errors(recipe_runner.resume_command(["critic", "train"], config, out, overrides, samples=samples,
                                                 verdicts=verdicts, output=output)):
        res = run_critic_train(cfg, samples, verdicts, output, resume=resume, progress=progress, log=recipe_runner.log,
                               overwrite=overwrite)
    typer.echo(json.dumps({k: res[k] for k in ("steps", "epochs", "examples", "loss", "class_counts")}))


@app.command("score")
def score_command(
    overrides: list[str] = typer.Argument(None, help=OVERRIDES_HELP),
    config: str = typer.Option(None, "--config", "-c", help=CONFIG_HELP),
    critic: str = typer.Option(None, "--critic", help="Critic directory (default: OUT/critic)."),
    samples: str = typer.Option(None, "--samples", "-s", help="Samples JSONL (default: OUT/samples.jsonl)."),
    verdicts: str = typer.Option(None, "--verdicts", help="Their verdicts (default: SAMPLES.verdicts.jsonl)."),
    output: str = typer.Option(None, "--output", "-o", help="Scores JSONL (default: OUT/scored.jsonl)."),
    out: str = typer.Option(None, "--out", help="Run directory (the config's `out`)."),
    resume: bool = typer.Option(False, "--resume", help="Keep the scores still valid (same program, outcome, "
                                "critic and settings) in the output file."),
    overwrite: bool = typer.Option(False, "--overwrite", help=OVERWRITE_HELP),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Progress bar on stderr."),
) -> None:
    """Score executed samples: class probabilities and per-token weights for offline RL."""
    from coderl.cli import recipe_runner
    from coderl.pipelines.stages import run_critic_score

    cfg = recipe_runner.load(config, overrides, out)
    with recipe_runner.errors(recipe_runner.resume_command(["critic", "score"], config, out, overrides, critic=critic,
                                                 samples=samples, verdicts=verdicts, output=output)):
        res = run_critic_score(cfg, critic, samples, verdicts, output, resume=resume, progress=progress,
                               log=recipe_runner.log, overwrite=overwrite)
    typer.echo(json.dumps(res))
