"""The ``coderl`` command. Sub-commands live in one thin module each and import heavy libraries lazily,
so that ``coderl exec`` starts without loading torch or transformers."""

from __future__ import annotations

import typer

from coderl.cli import (
    critic_cmd,
    data_cmd,
    demo_cmd,
    eval_cmd,
    exec_cmd,
    generate_cmd,
    repair_cmd,
    sample_cmd,
    train_cmd,
)

app = typer.Typer(
    name="coderl",
    help="Reinforcement learning from unit-test execution feedback for code language models.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.command("exec")(exec_cmd.exec_command)
app.command("demo")(demo_cmd.demo_command)
app.command("eval")(eval_cmd.eval_command)
app.add_typer(data_cmd.app, name="data")
# The CodeRL recipe on real models (coderl.pipelines.stages)
app.command("sample")(sample_cmd.sample_command)
app.add_typer(critic_cmd.app, name="critic")
app.command("train")(train_cmd.train_command)
# Critic sampling at inference (coderl.inference)
app.command("generate")(generate_cmd.generate_command)
app.command("train-repair")(repair_cmd.train_repair_command)


@app.callback(invoke_without_command=True)
def _root(
    ctx: typer.Context,
    version: bool = typer.Option(False, "--version", help="Print the version and exit.", is_eager=True),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Also show the warnings of the libraries "
                                 "underneath (transformers, peft, torch deprecations), hidden by default."),
) -> None:
    if not verbose:
        from coderl.utils.quiet import quiet_libraries

        quiet_libraries()
    if version:
        from coderl import __version__

        typer.echo(__version__)
        raise typer.Exit()
    if ctx.invoked_subcommand is None:
        typer.echo(ctx.get_help())
        raise typer.Exit(2)


if __name__ == "__main__":
    app()
