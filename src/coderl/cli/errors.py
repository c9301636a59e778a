"""How every command stops on an error it can name: one line on stderr, no traceback, and the exit status the
README promises (2: bad input the user can fix, with the file/field named; 1: the sandbox or another
component itself failed)."""

from __future__ import annotations

from typing import NoReturn

import typer


def fail(message: str, code: int = 2) -> NoReturn:
    """Print ``error: message`` on stderr and exit with ``code``."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code) from None
