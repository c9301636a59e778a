"""The stages that make labelled programs: ``coderl sample`` (the actor's samples and greedy baseline, resumable
by chunk) and the exec stage (a verdict per program, matched by content), and reading samples with their verdicts."""

from __future__ import annotations

import json
import shlex
from dataclasses import asdict
from pathlib import Path
from typing import Any, NamedTuple

from coderl.pipelines.inputs import (
    actor_path,
    load_actor,
    load_split,
    log_long_prompts,
    make_executor,
    make_prompter,
    token_lengths,
)
from coderl.pipelines.recipe import RecipeConfig
from coderl.pipelines.rundir import (
    BASELINE,
    SAMPLES,
    Log,
    StageError,
    check_outputs,
    describe_changes,
    meta_path,
    need_file,
    quiet,
    read_records,
    remove_outputs,
    rewrite_records,
    verdicts_path,
)
from coderl.tasks.problem import DataError, Problem
from coderl.tasks.prompt import Prompter
from coderl.utils.paths import output_file


def run_sample(cfg: RecipeConfig, out: str | Path | None = None, baseline: str | Path | None = None,
               split: str | None = None, model_path: str | None = None, resume: bool = False,
               progress: bool = True, log: Log = quiet, overwrite: bool = False) -> dict[str, Any]:
    """Sample ``sampling.n`` programs per problem (and one greedy baseline) into JSONL files.

    The actor is ``model_path``, else :func:`actor_path`. Problems are processed in fixed chunks of
    ``sampling.problems_per_chunk`` with a seed per chunk, so a resumed run (``resume=True``: problems already
    complete in the file are kept) writes exactly what an uninterrupted one would have. A resume with another
    model (by content), dataset or sampling settings is refused.
    """
    from coderl.models.actor import model_fingerprint
    from coderl.models.generate import SamplingConfig, generate
    from coderl.utils.progress import ProgressBar
    from coderl.utils.seeding import stream_seed

    s = cfg.sampling
    out = output_file(out or cfg.out_dir / SAMPLES, "the samples")
    base = output_file(baseline or cfg.out_dir / BASELINE, "the greedy baselines") if s.greedy_baseline else None
    meta_file = meta_path(out)
    doomed = check_outputs("sample", [out, meta_file, *([base] if base else [])], resume, overwrite)
    problems = load_split(cfg, split)
    actor = model_path or actor_path(cfg, "sample", log)
    meta = {"model": actor, "model_fingerprint": model_fingerprint(actor), "dataset": cfg.data.dataset,
            "data_path": cfg.data.path, "split": split or cfg.data.train_split, "limit": cfg.data.limit,
            "sampling": asdict(s)}
    if cfg.prompt.format != "plain":  # a plain run's meta stays as earlier versions wrote it, so those resume
        meta["prompt"] = asdict(cfg.prompt)
    chunk = s.problems_per_chunk
    chunks = [problems[i:i + chunk] for i in range(0, len(problems), chunk)]
    first = 0
    kept: dict[Path, list[dict[str, Any]]] = {out: []}
    if base is not None:
        kept[base] = []
    if resume and out.is_file():
        if meta_file.is_file():
            old = {k: v for k, v in json.loads(meta_file.read_text()).items() if k not in ("complete", "recipe")}
            if old != meta:
                raise StageError(f"cannot resume {out}: it was sampled with other settings "
                                 f"({describe_changes(old, meta)}; {meta_file}); use the same config, or "
                                 "--overwrite to sample again")
        counts = {p: _counts(p) for p in kept}
        want = {out: s.n, base: 1}
        while first < len(chunks) and all(counts[p].get(q.task_id, 0) >= want[p] for q in chunks[first] for p in kept):
            first += 1
        done = {q.task_id for c in chunks[:first] for q in c}
        for p in kept:
            kept[p] = [r for _, r in read_records(p)] if p.is_file() else []
            kept[p] = [r for r in kept[p] if r.get("task_id") in done]
    if first == len(chunks) and resume and meta_file.is_file() and json.loads(meta_file.read_text()).get("complete"):
        log(f"sample: {out} is complete; kept")
        return {"problems": len(problems), "samples_written": 0, "resumed_after": len(problems), "out": str(out),
                "baseline": str(base) if base else None}
    model, tok = load_actor(cfg, actor)
    prompter = make_prompter(cfg, tok, actor)
    log_long_prompts(log, "sample", model, token_lengths(tok, [prompter(p) for p in problems]), s.max_new_tokens)
    remove_outputs(doomed, "sample", log)
    out.parent.mkdir(parents=True, exist_ok=True)
    meta_file.write_text(json.dumps({**meta, "complete": False}, indent=2) + "\n")
    for p, recs in kept.items():
        p.parent.mkdir(parents=True, exist_ok=True)
        rewrite_records(p, recs)
    if first:
        log(f"sample: resuming after {sum(len(c) for c in chunks[:first])} finished problems")
    files = {p: open(p, "a", encoding="utf-8") for p in kept}
    bar = ProgressBar(len(problems), "sample", progress, unit="problem", start=sum(len(c) for c in chunks[:first]))
    n_written = 0
    try:
        for k in range(first, len(chunks)):
            batch = chunks[k]
            prompts = [prompter(p) for p in batch]
            sc = SamplingConfig(max_new_tokens=s.max_new_tokens, temperature=s.temperature, top_p=s.top_p,
                                seed=stream_seed(s.seed, k))
            outs = generate(model, tok, prompts, s.n, sc, batch_size=s.batch_size)
            _write(files[out], batch, outs, prompter)
            new = sum(len(o) for o in outs)
            n_written += new
            if base is not None:
                greedy = SamplingConfig(max_new_tokens=s.max_new_tokens, greedy=True)
                _write(files[base], batch, generate(model, tok, prompts, 1, greedy, batch_size=s.batch_size), prompter)
            bar.update(len(batch), f"{n_written} programs",
                       tokens=sum(len(c.token_ids) for o in outs for c in o))
    finally:
        bar.close()
        for f in files.values():
            f.close()
    meta_file.write_text(json.dumps({**meta, "complete": True, "recipe": cfg.to_dict()}, indent=2) + "\n")
    return {"problems": len(problems), "samples_written": n_written, "resumed_after": first * chunk, "out": str(out),
            "baseline": str(base) if base else None}


def _counts(path: Path | None) -> dict[str, int]:
    c: dict[str, int] = {}
    if path is not None and path.is_file():
        for _, r in read_records(path):
            c[r.get("task_id")] = c.get(r.get("task_id"), 0) + 1
    return c


def _write(f, batch: list[Problem], outs, prompter: Prompter) -> None:
    for p, comps in zip(batch, outs, strict=True):
        for j, c in enumerate(comps):
            rec = {"task_id": p.task_id, "completion": c.text, "sample": j, "completion_ids": list(c.token_ids),
                   "finished": c.finished}
            if prompter.chat:  # the program in the reply; `coderl eval` and the exec stage run a "solution" as is
                rec["solution"] = p.program_prefix + prompter.completion(p, c.text)
            f.write(json.dumps(rec) + "\n")
    f.flush()


def exec_config(cfg: RecipeConfig):
    """The evaluator settings of the exec stage: the recipe's execution settings, hidden tests only."""
    from coderl.eval.evaluate import EvalConfig

    e = cfg.execution
    return EvalConfig(workers=e.workers, timeout=e.timeout, checker=e.checker, memory_mb=e.memory_mb,
                      examples=False, bootstrap=0)


def sample_key(problem: Problem, rec: dict[str, Any], line: int) -> str:
    """The ``program_key`` a verdict of this samples-file record carries (the program as ``coderl eval`` runs it)."""
    from coderl.eval.evaluate import program_key, sample_program
    from coderl.eval.samples import Sample

    whole = "solution" in rec
    return program_key(problem, sample_program(problem, Sample(problem.task_id, rec["solution" if whole else
                                                                                   "completion"], whole, line)))


def run_exec(cfg: RecipeConfig, samples: str | Path, verdicts: str | Path | None = None, split: str | None = None,
             resume: bool = True, progress: bool = True, log: Log = quiet) -> dict[str, Any]:
    """Run every sample against its problem's hidden tests; write ``coderl eval``'s verdict records.

    Uses the evaluator's own code path (``coderl.eval.evaluate.run_samples``), so the chained recipe and
    ``coderl eval --samples samples.jsonl`` label programs identically. With ``resume``, a verdict is kept when a
    sample still has its program (``program_key``) and the execution settings are the same (``settings_key``);
    every other verdict is dropped as stale and exactly the programs without a verdict run.
    """
    from coderl.eval.evaluate import run_samples, settings_key
    from coderl.eval.samples import read_samples
    from coderl.utils.progress import ProgressBar

    samples = Path(samples)
    need_file(samples, "the samples to execute", "run `coderl sample` first")
    out = output_file(verdicts or verdicts_path(samples), "the verdicts")
    problems = load_split(cfg, split)
    by_id = {p.task_id: p for p in problems}
    todo = read_samples(samples, problems)
    ecfg = exec_config(cfg)
    keys = [sample_key(by_id[x.task_id], {"completion": x.text} if not x.whole_program else {"solution": x.text},
                       x.line) for x in todo]
    kept: dict[str, dict[str, Any]] = {}
    stale = 0
    if resume and out.is_file():
        wanted, how = set(keys), settings_key(ecfg)
        for _, r in read_records(out):
            if r.get("program_key") in wanted and r.get("settings_key") == how:
                kept.setdefault(r["program_key"], r)
            else:
                stale += 1
    rewrite_records(out, list(kept.values()))
    todo = [x for x, k in zip(todo, keys, strict=True) if k not in kept]
    counts: dict[str, int] = {}
    bar = ProgressBar(len(todo), "exec", progress, unit="program")
    ex = make_executor(cfg) if todo else None
    try:
        if ex is not None:
            ex.start()
        with open(out, "a", encoding="utf-8") as f:
            for v in (run_samples(problems, todo, ecfg, executor=ex) if todo else []):
                f.write(json.dumps(v.to_dict()) + "\n")
                f.flush()
                counts[v.outcome] = counts.get(v.outcome, 0) + 1
                bar.update(1, " ".join(f"{k}={n}" for k, n in sorted(counts.items())))
    finally:
        bar.close()
        if ex is not None:
            ex.close()
    log(f"exec: {len(todo)} programs run, {len(kept)} verdicts kept from before"
        + (f", {stale} stale ones dropped (their programs or the execution settings changed)" if stale else "")
        + f" -> {out}")
    return {"run": len(todo), "kept": len(kept), "stale": stale, "outcomes": counts, "out": str(out)}


def exec_hint(cfg: RecipeConfig, samples: Path) -> str:
    """Commands that make the verdicts of ``samples`` by hand, exactly as printed (the exec stage's settings)."""
    d, e = cfg.data, cfg.execution
    out = samples.with_name(samples.name.removesuffix(".jsonl") + ".eval")
    cmd = ["coderl", "eval", "--dataset", d.dataset, *(["--path", d.path] if d.path else []), "--split",
           d.train_split, "--samples", str(samples), "--no-examples", "--timeout", str(e.timeout), "--checker",
           e.checker, "--output", str(out)]
    return (f"run `{shlex.join(cmd)}` and pass `--verdicts {shlex.quote(str(out / 'verdicts.jsonl'))}`, or let "
            "`coderl train --stage rl` run the exec stage")


class Labelled(NamedTuple):
    """A sample with its verdict: the problem, the samples-file record, its line there and the verdict record."""

    problem: Problem
    sample: dict[str, Any]
    line: int
    verdict: dict[str, Any]


def labelled_samples(cfg: RecipeConfig, samples: Path, verdicts: Path, problems: list[Problem]) -> list[Labelled]:
    """Every line of ``samples`` with its verdict, found by the program's ``program_key`` (not by line: a samples
    file rewritten since has no verdicts for its new programs, and says so)."""
    from coderl.eval.samples import task_aliases

    need_file(samples, "programs sampled by `coderl sample`", "run `coderl sample` first")
    need_file(verdicts, "their execution verdicts", exec_hint(cfg, samples))
    by_key: dict[str, dict[str, Any]] = {}
    for _, r in read_records(verdicts):
        if r.get("program_key"):
            by_key.setdefault(r["program_key"], r)
    aliases, by_id = task_aliases(problems), {p.task_id: p for p in problems}
    out = []
    for line, rec in read_records(samples):
        for key in ("task_id", "completion"):
            if key not in rec:
                raise DataError("missing", field=key, line=line, path=str(samples))
        tid = aliases.get(str(rec["task_id"]))
        if tid is None:
            raise DataError(f"unknown task id {rec['task_id']!r} (not in the configured data split)",
                            field="task_id", line=line, path=str(samples))
        v = by_key.get(sample_key(by_id[tid], rec, line))
        if v is None:
            raise StageError(f"{samples}:{line}: no verdict in {verdicts} for this program (sampled after the "
                             "verdicts were made, or they come from an older coderl); run the exec stage again: "
                             "it runs only the programs without a verdict (" + exec_hint(cfg, samples) + ")")
        out.append(Labelled(by_id[tid], rec, line, v))
    if not out:
        raise DataError("no samples in file", path=str(samples))
    return out
