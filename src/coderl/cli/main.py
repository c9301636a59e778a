"""The ``coderl`` command. Sub-commands live in one thin module each and import heavy libraries lazily,
so that ``coderl exec`` starts without loading torch or transformers."""

from __future__ import annotations

import typer

from coderl.cli import data_cmd, demo_cmd, eval_cmd, exec_cmd, generate_cmd, repair_cmd

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
app.command("generate")(generate_cmd.generate_command)
app.command("train-repair")(repair_cmd.train_repair_command)  # temporary: to be `coderl train --stage repair`


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", help="Print the version and exit.", is_eager=True),
) -> None:
    if version:
        from coderl import __version__

        typer.echo(__version__)
        raise typer.Exit()


if __name__ == "__main__":
    app()
