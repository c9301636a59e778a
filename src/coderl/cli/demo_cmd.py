"""``coderl demo``: the embedded default job (see coderl.pipelines.demo); ``--sandbox`` shows the executor
judging a handful of correct, buggy and hostile programs instead."""

from __future__ import annotations

import typer

from coderl.cli.errors import fail

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
    overrides: list[str] = typer.Argument(None, help="Settings as key=value (e.g. rl.lr=1e-4 eval_tasks=80), on "
                                          "top of the defaults or --config; every field of DemoConfig "
                                          "(configs/demo.yaml), checked like the file."),
    out: str = typer.Option("demo-out", "--out", help="Output directory (summary, report, plots, checkpoints)."),
    seed: int = typer.Option(None, "--seed", help="Random seed (tasks, data, model initialisation, sampling) [0]."),
    algo: str = typer.Option(None, "--algo", help="RL algorithm: rloo (leave-one-out group baseline; the "
                             "default), grpo, ppo, dapo, gspo, coderl (greedy baseline, tokens weighted by the learned "
                             "critic), coderl-nocritic, grpo-critic, critic-baseline (see docs/rl.md)."),
    quick: bool = typer.Option(False, "--quick", help="A much smaller run (about a minute), for CI and smoke tests."),
    config: str = typer.Option(None, "--config", help="A YAML preset (e.g. configs/demo.yaml); --seed, --algo, "
                               "--workers and key=value settings override it."),
    resume: bool = typer.Option(False, "--resume", help="Continue the RL stage from its last checkpoint in --out."),
    workers: int = typer.Option(0, "--workers", help="Sandbox workers (default: number of cores)."),
    sandbox: bool = typer.Option(False, "--sandbox", help="Only show the sandbox judging good, buggy and hostile "
                                 "programs (a few seconds)."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Progress bars on stderr."),
) -> None:
    """Train a tiny code model from scratch on the built-in task family, then improve it with RL from execution
    feedback; report pass@k before/after against an SFT-only control."""
    if sandbox:
        _sandbox_demo(workers, 1.0)
        return
    from coderl.pipelines.demo import load_demo_config, run_demo
    from coderl.utils.paths import output_dir

    # the flags are overrides like any key=value: one way to build, check and override the demo's config
    flags = [f"{k}={v}" for k, v in (("seed", seed), ("algo", algo), ("workers", workers or None)) if v is not None]
    try:
        output_dir(out, "the demo's results")
        cfg = load_demo_config(config, [*flags, *(overrides or [])], quick=quick)
    except ValueError as e:
        fail(str(e))
    summary = run_demo(cfg, out, progress=progress, resume=resume, log=lambda m: typer.echo(m, err=True))
    b, a, c = summary["before"], summary["after"], summary["control"]
    typer.echo(f"pass@1 {b['pass@1']:.3f} -> {a['pass@1']:.3f} (control {c['pass@1']:.3f}); "
               f"greedy {b['greedy']:.3f} -> {a['greedy']:.3f} (control {c['greedy']:.3f}); "
               f"{summary['seconds']['total']:.0f}s; see {out}/report.md")


def _sandbox_demo(workers: int, timeout: float) -> None:
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
