"""Every coderl command shown in README.md and docs/*.md parses against the real CLI: its subcommand exists and
its options and arguments are accepted with the types it gives them. Parsing runs no command, so this holds
the docs to the code without needing the data, models or time the commands would."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
import typer.main

from coderl.cli.main import app

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
COMMAND = re.compile(r"^\s*(?:\.venv/bin/)?coderl\s")


def documented_commands() -> list[tuple[str, str]]:
    """(where, command line) for every coderl command in a fenced or indented code block; lines ending in a
    backslash continue on the next."""
    found = []
    for path in DOCS:
        lines = path.read_text(encoding="utf-8").splitlines()
        fenced = False
        i = 0
        while i < len(lines):
            line = lines[i]
            if line.lstrip().startswith("```"):
                fenced = not fenced
            elif (fenced or line.startswith("    ")) and COMMAND.match(line):
                start, text = i, line
                while text.rstrip().endswith("\\") and i + 1 < len(lines):
                    i += 1
                    text = text.rstrip()[:-1] + " " + lines[i].strip()
                found.append((f"{path.name}:{start + 1}", text.split(" #")[0].strip()))
            i += 1
    return found


def parse(args: list[str]) -> str | None:
    """Resolve the subcommand chain and parse the command's options and arguments, as the CLI does before it
    runs anything; the usage error's message, or None when they parse. (Through the commands' public interface
    only: typer ships its own copy of click, whose classes differ between typer versions.)"""
    cmd = typer.main.get_command(app)
    name, rest, parent = "coderl", list(args), None
    try:
        while hasattr(cmd, "commands"):  # a group: its options, then one of its commands
            i = next((k for k, a in enumerate(rest) if not a.startswith("-")), len(rest))
            if i:
                parent = cmd.make_context(name, rest[:i], parent=parent)
            if i == len(rest) or rest[i] not in cmd.commands:
                return f"'{' '.join(args)}': '{rest[i] if i < len(rest) else ''}' is no command of '{name}'"
            name, cmd, rest = rest[i], cmd.commands[rest[i]], rest[i + 1:]
        cmd.make_context(name, rest, parent=parent)
    except Exception as e:  # the CLI's usage errors; anything else is a bug of this test
        if not hasattr(e, "format_message"):
            raise
        return e.format_message()
    return None


def test_the_docs_show_commands():
    assert len(documented_commands()) >= 20


@pytest.mark.parametrize("where, line", documented_commands(), ids=[w for w, _ in documented_commands()])
def test_a_documented_command_parses(where, line):
    error = parse(shlex.split(line)[1:])
    assert error is None, f"{where}: `{line}` does not parse: {error}"


@pytest.mark.parametrize("args", [["demo", "--no-such-option"], ["no-such-command"], ["data", "exprt"],
                                  ["eval", "--k"], ["demo", "--seed", "three"]])
def test_the_parse_refuses_what_the_cli_refuses(args):
    assert parse(args) is not None
