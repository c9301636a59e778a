"""``coderl exec``: run a JSONL file of programs against their tests in the sandbox."""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import typer

from coderl.cli.errors import fail
from coderl.cli.options import ADDRESS_HELP, BACKEND_HELP


def exec_command(
    requests: str = typer.Argument(None, help="Requests JSONL (one program + tests per line); '-' for stdin."),
    output: Path = typer.Option(None, "--output", "-o", help="Results JSONL (default: stdout)."),
    workers: int = typer.Option(0, "--workers", "-w", help="Sandbox workers (default: number of cores)."),
    timeout: float = typer.Option(3.0, "--timeout", help="Seconds per test unless a request sets its own."),
    memory_mb: int = typer.Option(2048, "--memory-mb", help="Address-space limit per program, in MB."),
    output_mb: int = typer.Option(16, "--output-mb", help="Cap on captured stdout/stderr per run, in MB."),
    checker: str = typer.Option("default", "--checker", help="stdio comparison: default (exact up to "
                                "trailing whitespace) or apps (APPS/CodeRL lenient rules)."),
    cache: Path = typer.Option(None, "--cache", help="Content-hash cache file: repeated programs run once."),
    explain: bool = typer.Option(False, "--explain", help="Print the active protections and exit."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Progress bar on stderr."),
    backend: str = typer.Option("local", "--backend", help=BACKEND_HELP),
    address: str = typer.Option(None, "--address", help=ADDRESS_HELP),
) -> None:
    """Run programs against unit tests in the sandbox and write one verdict per line."""
    from coderl.cli.options import flag
    from coderl.sandbox import RequestError, SandboxError, read_requests
    from coderl.scale import make_executor
    from coderl.utils.paths import PathError, input_file, output_file

    try:  # not started yet: a bad setting is reported before any input is read
        ex = make_executor(backend, address=address, workers=workers or None, timeout=timeout, memory_mb=memory_mb,
                           output_mb=output_mb, checker=checker, cache=cache, name=flag)
    except ValueError as e:
        fail(str(e))
    reqs = []
    if not explain:
        if requests is None:
            fail("give a REQUESTS.jsonl file (or --explain)")
        path = "/dev/stdin" if requests == "-" else requests
        try:
            if requests != "-":
                input_file(requests, "the requests JSONL")
            if output is not None:
                output_file(output, "the results")
        except PathError as e:
            fail(str(e))
        try:
            reqs = read_requests(path)
        except RequestError as e:
            fail(str(e))
        except UnicodeDecodeError as e:
            fail(f"{requests}: not UTF-8 text ({e.reason})")
    try:
        with ex:
            if explain:
                typer.echo(ex.explain())
                return
            _run(ex, reqs, output, progress)
    except SandboxError as e:
        fail(str(e), 1)


def _run(ex, reqs, output: Path | None, progress: bool) -> None:
    out = open(output, "w", encoding="utf-8") if output else sys.stdout
    counts: dict[str, int] = {}
    try:
        with _progress_bar(progress and sys.stderr.isatty(), len(reqs)) as advance:
            for res in ex.imap(reqs):
                # Written as they arrive, so an interrupted run keeps every verdict it produced.
                out.write(json.dumps(res.to_dict()) + "\n")
                out.flush()
                counts[res.outcome] = counts.get(res.outcome, 0) + 1
                advance(" ".join(f"{k}={v}" for k, v in sorted(counts.items())))
    finally:
        if output:
            out.close()
    summary = ", ".join(f"{k}: {v}" for k, v in sorted(counts.items()))
    typer.echo(f"{len(reqs)} programs ({summary})" + (f"; {ex.cache_hits} from cache" if ex.cache_hits else ""),
               err=True)


@contextlib.contextmanager
def _progress_bar(show: bool, total: int) -> Iterator[Callable[[str], None]]:
    """A rich progress bar on stderr, or nothing: rich is imported only when it is shown (a tenth of a second
    of start-up that scripted and piped runs do not need)."""
    if not show:
        yield lambda mix: None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(TextColumn("exec"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  TextColumn("{task.fields[mix]}"), console=Console(stderr=True)) as bar:
        task = bar.add_task("exec", total=total, mix="")
        yield lambda mix: bar.update(task, advance=1, mix=mix)
