"""A rich progress bar on stderr that disappears when stderr is not a terminal (CI logs stay readable)."""

from __future__ import annotations

import sys


class ProgressBar:
    def __init__(self, total: int | None, desc: str, enabled: bool = True):
        self.p = None
        if not (enabled and sys.stderr.isatty()):
            return
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self.p = Progress(TextColumn(f"{desc:>8s}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                          TextColumn("{task.fields[info]}"), console=Console(stderr=True), transient=True)
        self.p.start()
        self.task = self.p.add_task(desc, total=total, info="")

    def update(self, n: int = 1, info: str = "") -> None:
        if self.p is not None:
            self.p.update(self.task, advance=n, info=info)

    def close(self) -> None:
        if self.p is not None:
            self.p.stop()
            self.p = None

    def __enter__(self) -> ProgressBar:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
