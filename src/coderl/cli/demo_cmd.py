"""``coderl demo``: the embedded default job.

Until the learning loop lands, the demo shows the executor that every reward comes from: a handful of
correct, buggy and hostile programs for one small task are judged in the sandbox, and the table shows
each verdict with its cause.
"""

from __future__ import annotations

import typer

TESTS = {"type": "assert", "asserts": ["assert add_evens([1, 2, 3, 4]) == 6", "assert add_evens([]) == 0",
                                        "assert add_evens([7, 9, 10]) == 10", "assert add_evens([-2, 5]) == -2"]}

PROGRAMS = [
    ("correct", "def add_evens(xs):\n    return sum(x for x in xs if x % 2 == 0)\n"),
    ("habitual bug: odd for even", "def add_evens(xs):\n    return sum(x for x in xs if x % 2 == 1)\n"),
    ("does not compile", "def add_evens(xs)\n    return sum(xs)\n"),
    ("runtime error", "def add_evens(xs):\n    return sum(xs) / len(xs)\n"),
    ("infinite loop", "def add_evens(xs):\n    while True:\n        pass\n"),
    ("always-equal object", "class Any:\n    def __eq__(self, other):\n        return True\n"
                            "def add_evens(xs):\n    return Any()\n"),
    ("exits before the tests", "import sys\nsys.exit(0)\n"),
    ("fork bomb", "import os\nwhile True:\n    os.fork()\n"),
    ("memory bomb", "def add_evens(xs):\n    x = [0] * (10 ** 10)\n    return 0\n"),
    ("reads /etc/shadow", "secret = open('/etc/shadow').read()\ndef add_evens(xs):\n    return 0\n"),
    ("network", "import socket\nsocket.create_connection(('127.0.0.1', 22), timeout=1)\n"),
    ("segfault", "import ctypes\nctypes.string_at(0)\n"),
]


def demo_command(
    workers: int = typer.Option(0, "--workers", help="Sandbox workers (default: number of cores)."),
    timeout: float = typer.Option(1.0, "--timeout", help="Seconds per test."),
) -> None:
    """Run the embedded demonstration (currently: the sandboxed executor on good, buggy and hostile code)."""
    from rich.console import Console
    from rich.table import Table

    from coderl.sandbox import Executor

    console = Console()
    reqs = [{"id": name, "program": src, "tests": TESTS} for name, src in PROGRAMS]
    with Executor(workers=workers or None, timeout=timeout) as ex:
        console.print(ex.explain())
        results = ex.run(reqs)
    table = Table(title="Verdicts for add_evens (4 hidden tests)")
    for col in ("program", "outcome", "detail", "tests passed", "seconds"):
        table.add_column(col)
    for res in results:
        table.add_row(res.id, res.outcome, res.detail, f"{res.pass_fraction:.2f}", f"{res.seconds:.3f}")
    console.print(table)
