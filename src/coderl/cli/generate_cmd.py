"""``coderl generate``: sample programs for a problem set, plainly or with critic sampling (refine and repair).

Writes one JSONL line per candidate, best first within each problem ({task_id, completion, rank, origin, round,
example_outcome, critic_pass, parent}), which ``coderl eval --samples`` reads as it is; plus OUT.summary.json.
Problems are processed in chunks whose candidates are appended as soon as they are done, so an interrupted run
keeps every finished chunk. Only the problems' example tests are run. The work is
:func:`coderl.inference.samples_file.generate_samples_file`; this command parses options, loads and reports.

Exit status: 0 done; 2 bad input (problems file, model directory, option values) with a message naming it;
1 the sandbox itself failed.
"""

from __future__ import annotations

import json
from pathlib import Path

import typer

from coderl.cli.errors import fail
from coderl.cli.options import ADDRESS_HELP, BACKEND_HELP


def generate_command(
    actor: Path = typer.Option(..., "--actor", help="Actor model directory (e.g. DEMO/final)."),
    problems: str = typer.Option(..., "--problems", "-p", help="Problems JSONL (with example_tests), or "
                                 "family:test[:N] / family:train[:N]."),
    out: Path = typer.Option(..., "--out", "-o", help="Output samples JSONL."),
    critic_sampling: bool = typer.Option(False, "--critic-sampling/--plain", help="Critic sampling (refine and "
                                         "repair) instead of plain sampling with the same budget."),
    critic: Path = typer.Option(None, "--critic", help="Critic directory (Critic.save; e.g. DEMO/critic). Needed "
                                "for --critic-sampling; with --plain it ranks the samples."),
    repair: Path = typer.Option(None, "--repair", help="Repair model directory (coderl train --stage repair, or "
                                "train-repair); without it, rounds where nothing passes sample afresh."),
    n: int = typer.Option(8, "--n", help="Model calls per problem per round."),
    rounds: int = typer.Option(2, "--rounds", help="Rounds (the budget is n * rounds model calls per problem)."),
    top_m: int = typer.Option(2, "--top-m", help="Failures repaired per round."),
    refine: bool = typer.Option(True, "--refine/--no-refine", help="Refine from passing programs' prefixes."),
    max_new_tokens: int = typer.Option(48, "--max-new-tokens", help="Longest program in tokens."),
    temperature: float = typer.Option(1.0, "--temperature"),
    top_p: float = typer.Option(1.0, "--top-p"),
    seed: int = typer.Option(0, "--seed", help="Sampling seed (and the family's seed for family:...)."),
    chunk: int = typer.Option(64, "--chunk", help="Problems per chunk (each chunk is written when done)."),
    workers: int = typer.Option(0, "--workers", "-w", help="Sandbox workers (default: number of cores)."),
    timeout: float = typer.Option(2.0, "--timeout", help="Seconds per example test."),
    progress: bool = typer.Option(True, "--progress/--no-progress"),
    backend: str = typer.Option("local", "--backend", help=BACKEND_HELP),
    address: str = typer.Option(None, "--address", help=ADDRESS_HELP),
) -> None:
    """Sample programs for PROBLEMS with an actor, plainly or with critic sampling; rank them for n@k."""
    from coderl.cli.options import flag
    from coderl.inference.samples_file import generate_samples_file, require_example_tests
    from coderl.inference.sampling import CriticSamplingConfig
    from coderl.models.actor import ModelLoadError, load_model
    from coderl.models.critic import Critic, check_reads_tokenizer
    from coderl.sandbox import RequestError, SandboxError
    from coderl.scale import make_executor
    from coderl.tasks import load_problem_file_or_family
    from coderl.utils.paths import PathError, output_file

    if critic_sampling and critic is None:
        fail("--critic-sampling needs --critic DIR (a critic saved with Critic.save, e.g. DEMO/critic)")
    if chunk < 1:
        fail("--chunk must be >= 1")
    try:  # not started yet: a bad setting is reported before any input is read
        ex = make_executor(backend, address=address, workers=workers or None, timeout=timeout, name=flag)
    except ValueError as e:
        fail(str(e))
    try:
        output_file(out, "the samples")
    except PathError as e:
        fail(str(e))
    try:
        cfg = CriticSamplingConfig(n=n, rounds=rounds, top_m=top_m, refine=refine, max_new_tokens=max_new_tokens,
                                   temperature=temperature, top_p=top_p, seed=seed)
    except ValueError as e:
        fail(str(e))
    try:
        probs = load_problem_file_or_family(problems, seed)
        require_example_tests(probs, problems)  # before the models load
    except (RequestError, ValueError) as e:
        fail(str(e))
    try:
        model, tok = load_model(actor)
        crit = Critic.load(critic) if critic is not None else None
        rep, rtok = load_model(repair) if repair is not None else (None, None)
    except ModelLoadError as e:
        fail(str(e))
    if crit is not None:
        try:
            check_reads_tokenizer(crit, tok, f"critic {critic}")
        except ValueError as e:
            fail(str(e))
    try:
        with ex:
            summary = generate_samples_file(
                model, tok, probs, ex, cfg, out, critic=crit, critic_sampling=critic_sampling, repair_model=rep,
                repair_tokenizer=rtok, chunk=chunk, progress=progress,
                on_chunk=lambda done, total: typer.echo(f"{done}/{total} problems", err=True))
    except SandboxError as e:
        fail(str(e), 1)
    typer.echo(json.dumps(summary))
