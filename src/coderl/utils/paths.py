"""Checks of the paths a user gives, before anything is computed: an output file that is a directory, an output
directory that is a file, a parent that is a file, an input file that is a directory or is missing.

Without them the same mistakes surfaced as ``IsADirectoryError`` / ``NotADirectoryError`` tracebacks in the
middle of a run (after the model was loaded), and left temporary files behind. Every check raises
:class:`PathError`, a ``ValueError`` whose message names the path and what was expected; the CLI prints it and
exits with status 2.
"""

from __future__ import annotations

import os
from pathlib import Path


class PathError(ValueError):
    """A path given by the user is of the wrong kind (file vs directory) or missing; the message names it."""


def _parents_are_directories(p: Path) -> None:
    for parent in p.parents:
        if parent.exists():
            if not parent.is_dir():
                raise PathError(f"{p}: {parent} is a file, not a directory")
            return


def output_file(path: str | os.PathLike[str], what: str) -> Path:
    """``path`` as a file to (over)write: not a directory, and no parent of it a file."""
    p = Path(path)
    if p.is_dir():
        raise PathError(f"{p}: is a directory, but {what} is written to a file; give a file path")
    _parents_are_directories(p)
    return p


def output_dir(path: str | os.PathLike[str], what: str) -> Path:
    """``path`` as a directory to create or write into: not a file, and no parent of it a file."""
    p = Path(path)
    if p.exists() and not p.is_dir():
        raise PathError(f"{p}: is a file, but {what} is written to a directory; give a directory path")
    _parents_are_directories(p)
    return p


def input_file(path: str | os.PathLike[str], what: str) -> Path:
    """``path`` as an existing file to read."""
    p = Path(path)
    if p.is_dir():
        raise PathError(f"{p}: is a directory, expected {what} (a file)")
    if not p.is_file():
        raise PathError(f"{p}: no such file ({what})")
    return p
