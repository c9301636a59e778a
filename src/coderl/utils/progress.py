"""Progress on stderr: a rich bar on a terminal; without one (nohup, SLURM, CI logs) a plain line every
``CODERL_LOG_EVERY`` seconds (default 30; 0 = every update) with the count, the caller's figures (loss, reward,
pass rate), tokens per second, the elapsed time and an ETA."""

from __future__ import annotations

import os
import sys
import time

DEFAULT_EVERY_S = 30.0


def log_every_s() -> float:
    """Seconds between plain progress lines (``CODERL_LOG_EVERY``); a bad value falls back to the default."""
    try:
        return max(0.0, float(os.environ.get("CODERL_LOG_EVERY", DEFAULT_EVERY_S)))
    except ValueError:
        return DEFAULT_EVERY_S


def _duration(s: float) -> str:
    s = int(round(s))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"


class ProgressBar:
    """``update(n, info, tokens)`` after each unit of work; ``start`` units were done by an earlier (resumed) run
    and count towards the total but not towards the rates."""

    def __init__(self, total: int | None, desc: str, enabled: bool = True, unit: str = "", start: int = 0):
        self.p = None
        self.lines = False
        self.total, self.desc, self.unit = total, desc, unit
        self.done, self.start, self.tokens = start, start, 0
        if not enabled:
            return
        if not sys.stderr.isatty():
            self.lines, self.every = True, log_every_s()
            self.t0, self.last, self.printed, self.info = time.monotonic(), None, start, ""
            return
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self.p = Progress(TextColumn(f"{desc:>8s}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                          TextColumn("{task.fields[info]}"), console=Console(stderr=True), transient=True)
        self.p.start()
        self.task = self.p.add_task(desc, total=total, info="", completed=start)

    def update(self, n: int = 1, info: str = "", tokens: int = 0) -> None:
        if self.p is not None:
            self.p.update(self.task, advance=n, info=info)
        if not self.lines:
            return
        self.done += n
        self.tokens += tokens
        self.info = info or self.info
        now = time.monotonic()
        if self.last is None or now - self.last >= self.every or (self.total and self.done >= self.total):
            self._line(now)

    def _line(self, now: float) -> None:
        self.last, self.printed = now, self.done
        elapsed = now - self.t0
        count = f"{self.done}/{self.total}" if self.total else str(self.done)
        parts = [f"{self.desc}: {self.unit + ' ' if self.unit else ''}{count}"]
        if self.info:
            parts.append(self.info)
        if self.tokens and elapsed > 0:
            parts.append(f"{self.tokens / elapsed:,.0f} tok/s")
        new = self.done - self.start
        if self.total and 0 < new and self.done < self.total:
            parts.append(f"ETA {_duration(elapsed / new * (self.total - self.done))}")
        parts.append(f"elapsed {_duration(elapsed)}")
        print(" | ".join(parts), file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.p is not None:
            self.p.stop()
            self.p = None
        if self.lines and self.done > self.printed:  # the last figures, whenever the last periodic line was
            self._line(time.monotonic())
        self.lines = False

    def __enter__(self) -> ProgressBar:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
