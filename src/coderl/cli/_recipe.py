"""Shared plumbing of the recipe commands (sample, critic, train): config loading and error -> exit status.

Exit status: 0 done; 2 bad input (config field, data file, model directory, missing earlier stage), with a message
naming the file/field; 1 the sandbox itself failed.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import typer

CONFIG_HELP = "Recipe YAML (e.g. configs/apps_codet5.yaml); see coderl.pipelines.recipe for every field."
OVERRIDES_HELP = "key=value overrides of config fields, e.g. sampling.n=4 rl.lr=1e-5 model.path=DIR."


def load(config: str | None, overrides: list[str] | None, out: str | None = None):
    from coderl.pipelines.recipe import load_recipe

    extra = list(overrides or [])
    if out:
        extra.append(f"out={out}")
    with errors():
        return load_recipe(config, extra)


def log(msg: str) -> None:
    typer.echo(msg, err=True)


@contextlib.contextmanager
def errors() -> Iterator[None]:
    """Turn the errors a user can fix into one line on stderr and exit 2 (what was written so far stays)."""
    from coderl.models.actor import ModelLoadError
    from coderl.models.tokenizer import TokenizerLoadError
    from coderl.pipelines.recipe import ConfigError
    from coderl.pipelines.stages import StageError
    from coderl.sandbox import RequestError, SandboxError

    try:
        yield
    except (ConfigError, StageError, RequestError, ModelLoadError, TokenizerLoadError) as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(2) from None
    except SandboxError as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(1) from None
    except ValueError as e:  # a setting the stage itself rejects (e.g. precision on this device, LoRA without peft)
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(2) from None
