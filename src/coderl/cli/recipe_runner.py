"""Shared plumbing of the recipe commands (sample, critic, train): config loading and error -> exit status.

Exit status: 0 done; 2 bad input (config field, data file, model directory, a path of the wrong kind, a missing
earlier stage, an earlier run in the way), with a message naming the file/field; 1 the sandbox itself failed;
130 interrupted (Ctrl-C; a training stage saves a checkpoint first and prints the command that resumes it).
"""

from __future__ import annotations

import contextlib
import shlex
from collections.abc import Iterator

import typer

from coderl.cli.errors import fail

CONFIG_HELP = "Recipe YAML (e.g. configs/apps_codet5.yaml); see coderl.pipelines.recipe for every field."
OVERRIDES_HELP = "key=value overrides of config fields, e.g. sampling.n=4 rl.lr=1e-5 model.path=DIR."
OVERWRITE_HELP = "Replace what an earlier run of this stage wrote (without it, the stage refuses and names the files)."


def load(config: str | None, overrides: list[str] | None, out: str | None = None):
    from coderl.pipelines.recipe import load_recipe

    extra = list(overrides or [])
    if out:
        extra.append(f"out={out}")
    with errors():
        return load_recipe(config, extra)


def log(msg: str) -> None:
    typer.echo(msg, err=True)


def resume_command(command: list[str], config: str | None, out: str | None, overrides: list[str] | None,
                   **options: str | None) -> str:
    """The command line that resumes a run of ``command`` (e.g. ``["train", "--stage", "rl"]``); ``options`` are the
    run's other path options by name (``output="x.jsonl"`` -> ``--output x.jsonl``), left out when None."""
    args = ["coderl", *command, *(["-c", config] if config else []), *(["--out", out] if out else [])]
    for name, value in options.items():
        if value is not None:
            args += [f"--{name}", str(value)]
    return shlex.join([*args, *(overrides or []), "--resume"])


@contextlib.contextmanager
def errors(resume: str | None = None) -> Iterator[None]:
    """Turn the errors a user can fix into one line on stderr and exit 2 (what was written so far stays); an
    interruption into a message saying how to continue (``resume``: the command) and exit 130."""
    from coderl.config import ConfigError
    from coderl.models.actor import ModelLoadError
    from coderl.models.tokenizer import TokenizerLoadError
    from coderl.pipelines.stages import StageError
    from coderl.sandbox import RequestError, SandboxError
    from coderl.utils.interrupt import TrainingInterrupted

    try:
        yield
    except TrainingInterrupted as e:
        typer.echo(f"{e}" + (f"; resume with: {resume}" if resume else ""), err=True)
        raise typer.Exit(130) from None
    except KeyboardInterrupt:
        typer.echo("interrupted; what was written so far is kept" + (f"; continue with: {resume}" if resume else ""),
                   err=True)
        raise typer.Exit(130) from None
    except (ConfigError, StageError, RequestError, ModelLoadError, TokenizerLoadError) as e:
        fail(str(e))
    except SandboxError as e:
        fail(str(e), 1)
    except ValueError as e:  # a setting the stage itself rejects (e.g. precision on this device, LoRA without peft),
        fail(str(e))  # a path of the wrong kind (coderl.utils.paths.PathError)
