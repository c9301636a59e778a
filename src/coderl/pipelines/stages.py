"""The recipe's stages as library functions; the CLI commands (sample, critic, train) are thin wrappers.

Every stage reads and writes plain files in the run directory (``RecipeConfig.out``) and can run alone. A stage
refuses to replace what an earlier run of it wrote (finished or not) unless asked: ``resume=True`` keeps and
continues it, ``overwrite=True`` removes it first. :func:`run_chain` runs the stages an RL run needs, each keeping
what is still valid, then RL.

Derived files record what they were made from and are matched by it, never by position, so a changed input is
recomputed (or refused), never silently reused:

* a verdict carries the ``program_key`` of its program and hidden tests and the ``settings_key`` of the execution
  settings; samples find their verdicts by that key, and the exec stage runs exactly the programs that have none;
* the critic records a fingerprint of its training examples (programs, outcomes, solutions), its settings and its
  backbone's weights; a critic made from other inputs is retrained by the chain and refused by ``--resume``;
* a score carries its sample's key, the critic's fingerprint and the scoring settings; stale scores are redone;
* samples record the fingerprint of the model that drew them; SFT and RL checkpoints record the starting model's,
  and RL's the fingerprint of its pool (or critic), so a resume with other inputs is refused.

Files (all JSONL files have one record per line; ``line`` means the line number in ``samples.jsonl``)::

    samples.jsonl            {task_id, completion, sample, completion_ids, finished}   (coderl eval reads it)
    samples.jsonl.meta.json  the model (path and fingerprint), dataset, split and sampling settings
    baseline.jsonl           the same for one greedy program per problem
    *.verdicts.jsonl         coderl eval's verdict records {task_id, sample, line, outcome, ..., program_key}
    critic/                  the critic (Critic.save) + critic_train.json (statistics, inputs fingerprint)
    scored.jsonl             {line, task_id, sample, outcome, key, critic, critic_probs, token_probs, aligned}
    sft/, rl/                checkpoints/step-N (resumable), final/ (a model directory), history.json, tensorboard/
    repair/                  pairs.jsonl (failed sample + feedback -> passing program), final/, summary.json
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any, NamedTuple

from coderl.pipelines.recipe import RecipeConfig, save_resolved
from coderl.tasks.problem import DataError, Problem
from coderl.tasks.prompt import Prompter
from coderl.utils.fingerprint import content_key
from coderl.utils.paths import output_dir, output_file

Log = Callable[[str], None]

SAMPLES, BASELINE, SCORED = "samples.jsonl", "baseline.jsonl", "scored.jsonl"
CRITIC_DIR, SFT_DIR, RL_DIR, REPAIR_DIR = "critic", "sft", "rl", "repair"


class StageError(RuntimeError):
    """A stage cannot run with what it was given (a missing earlier stage, mismatched files); says what to do."""


def _quiet(_msg: str) -> None:
    pass


def verdicts_path(samples: str | Path) -> Path:
    """Where the exec stage writes the verdicts of a samples file: ``x.jsonl`` -> ``x.verdicts.jsonl``."""
    p = Path(samples)
    return p.with_name(p.name.removesuffix(".jsonl") + ".verdicts.jsonl")


def meta_path(samples: str | Path) -> Path:
    """The settings a samples file was drawn with: ``x.jsonl`` -> ``x.jsonl.meta.json``."""
    p = Path(samples)
    return p.with_name(p.name + ".meta.json")


# -- shared helpers ------------------------------------------------------------------------------------------

def resolve_device(name: str) -> str:
    import torch

    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise StageError(f"model.device is {name!r} but no CUDA device is available; use 'auto' or 'cpu'")
    return name


def actor_path(cfg: RecipeConfig, stage: str, log: Log = _quiet) -> str:
    """The actor every stage after SFT starts from: the run's SFT model (``OUT/sft/final``) when it was trained
    from ``model.path`` (and ``model.use_sft_model``), else ``model.path``. Says which (so an RL run never silently
    starts from the base model of a run that has an SFT model)."""
    from coderl.models.actor import load_extra

    final = cfg.out_dir / SFT_DIR / "final"
    if cfg.model.path and final.is_dir() and Path(cfg.model.path).expanduser().resolve() == final.resolve():
        log(f"{stage}: actor {cfg.model.path} (model.path: this run's SFT model)")
        return cfg.model.path
    if cfg.model.use_sft_model and (final / "config.json").is_file():
        base = load_extra(final).get("config", {}).get("model", {}).get("path")
        if base == cfg.model.path:
            log(f"{stage}: actor {final} (this run's SFT model, fine-tuned from model.path {cfg.model.path})")
            return str(final)
        log(f"{stage}: {final} was fine-tuned from {base!r}, not from model.path; it is not used")
    if not cfg.model.path:
        raise StageError("no model given: set model.path in the config (or model.path=DIR on the command line)")
    why = "" if final.is_dir() else f"; no SFT model in {final}"
    log(f"{stage}: actor {cfg.model.path} (model.path{why if cfg.model.use_sft_model else ''})")
    return cfg.model.path


def load_actor(cfg: RecipeConfig, path: str | None = None, for_training: bool = False, seed: int = 0):
    """``(model, tokenizer)`` of the actor (``path`` or ``model.path``), on its device; LoRA added for training
    (its initial weights drawn with ``seed``)."""
    from coderl.models.actor import load_model

    src = path or cfg.model.path
    if not src:
        raise StageError("no model given: set model.path in the config (or model.path=DIR on the command line)")
    model, tok = load_model(src, kind=cfg.model.kind, dtype=cfg.model.dtype, device=resolve_device(cfg.model.device))
    if for_training and cfg.model.gradient_checkpointing:
        from coderl.models.memory import enable_checkpointing

        enable_checkpointing(model)
    return (with_lora(cfg, model, seed) if for_training else model), tok


def token_lengths(tok, texts: list[str]) -> list[int]:
    """How many tokens each text encodes to (prompts as the model is given them, special tokens included)."""
    return [len(ids) for ids in tok(texts)["input_ids"]] if texts else []


def log_long_prompts(log: Log, stage: str, model, lengths: list[int], new_tokens: int) -> None:
    """Say how many prompts (of ``lengths`` tokens) are too long for the model's context and will be cut from the
    start (coderl.models.generate.fit_to_context), before the stage runs."""
    from coderl.models.generate import max_positions, prompt_room

    room = prompt_room(model, new_tokens)
    over = 0 if room is None else sum(n > room for n in lengths)
    if over:
        log(f"{stage}: {over} of {len(lengths)} prompts are longer than the model's {max_positions(model)} positions "
            f"minus {new_tokens} new tokens; they are cut from the start (their ends are kept)")


def log_step_memory(log: Log, stage: str, model, lengths: list[int], new_tokens: int, sequences: int,
                    grad_accum: int, precision: str) -> None:
    """Say, before training starts, the memory a step of ``stage`` needs at least (coderl.models.memory), for
    sequences of the longest of ``lengths`` tokens plus ``new_tokens``."""
    from coderl.models.memory import describe, step_memory

    longest = max(lengths, default=0) + new_tokens
    mem = step_memory(model, sequences, longest, grad_accum, autocast_bytes=4 if precision == "fp32" else 2)
    log(f"{stage}: {sequences} sequences of up to {longest} tokens: {describe(mem)}")


def with_lora(cfg: RecipeConfig, model, seed: int = 0):
    """``model`` ready for training: wrapped with LoRA adapters when ``model.lora.enabled`` (initialised from
    ``seed``, so one config builds one run), else itself."""
    if not cfg.model.lora.enabled:
        return model
    from coderl.models.lora import apply_lora
    from coderl.utils.seeding import seeded

    lo = cfg.model.lora
    with seeded(seed, next(model.parameters()).device):
        return apply_lora(model, lo.r, lo.alpha, lo.dropout, lo.target_modules)


def load_split(cfg: RecipeConfig, split: str | None = None) -> list[Problem]:
    from coderl.tasks import load_problems

    d = cfg.data
    return load_problems(d.dataset, d.path, split or d.train_split, d.limit)


def make_prompter(cfg: RecipeConfig, tok, model: str = "the actor") -> Prompter:
    """The :class:`~coderl.tasks.prompt.Prompter` of ``prompt`` for the actor's tokenizer ``tok`` (``model``: its
    path, for the message when a chat format meets a tokenizer without a chat template)."""
    from coderl.tasks.prompt import NoChatTemplate

    try:
        return Prompter(cfg.prompt.format, tok, cfg.prompt.system, where=model)
    except NoChatTemplate as e:
        raise StageError(str(e)) from None


def sft_pairs(cfg: RecipeConfig, problems: list[Problem], prompter: Prompter) -> list[tuple[str, str]]:
    """(prompt, target) of the ground-truth solutions, as ``prompter`` puts them to the actor."""
    k = cfg.data.solutions_per_problem
    return [(prompter(p), prompter.target(p, s)) for p in problems for s in p.solutions[:k]]


def make_executor(cfg: RecipeConfig):
    """The executor ``execution`` describes (not started): local sandbox workers, or one per Ray node."""
    from coderl.scale import make_executor as executor_for

    e = cfg.execution
    try:
        return executor_for(e.backend, address=e.address, workers=e.workers, timeout=e.timeout,
                            memory_mb=e.memory_mb, checker=e.checker, name=lambda n: f"execution.{n}")
    except ValueError as err:
        raise StageError(str(err)) from None


def _read_records(path: Path) -> list[tuple[int, dict[str, Any]]]:
    """``(line, record)`` of a JSONL file an interrupted stage may have left with a torn last line."""
    out: list[tuple[int, dict[str, Any]]] = []
    with open(path, encoding="utf-8") as f:
        lines = f.read().split("\n")
    for i, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            if i >= len(lines) - 1:  # the torn last line of a killed run: dropped, redone
                break
            raise DataError("not valid JSON", line=i, path=str(path)) from None
        if not isinstance(rec, dict):
            raise DataError("expected a JSON object", line=i, path=str(path))
        out.append((i, rec))
    return out


def _rewrite(path: Path, records: list[dict[str, Any]]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            for r in records:
                f.write(json.dumps(r) + "\n")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _need_file(path: Path, what: str, how: str) -> None:
    if path.is_dir():
        raise StageError(f"{path}: is a directory, expected a file ({what})")
    if not path.is_file():
        raise StageError(f"{path}: no such file ({what}); {how}")


def check_outputs(stage: str, paths: list[Path], resume: bool, overwrite: bool) -> list[Path]:
    """Refuse to replace what an earlier run of ``stage`` wrote (finished or partial) unless asked. Returns the
    paths ``--overwrite`` removes: :func:`remove_outputs` once the stage's inputs have been checked, so that a
    run refused for a bad config loses nothing."""
    if resume and overwrite:
        raise StageError(f"{stage}: --resume keeps what an earlier run wrote and --overwrite removes it; give one")
    existing = [p for p in paths if p.exists()]
    if existing and not resume and not overwrite:
        raise StageError(f"{stage}: an earlier run's files are in the way: {', '.join(map(str, existing))}; pass "
                         "--resume to continue or keep that run, or --overwrite to replace it")
    return existing if overwrite else []


def remove_outputs(paths: list[Path], stage: str, log: Log) -> None:
    for p in paths:
        if p.is_dir():
            shutil.rmtree(p)
        else:
            p.unlink(missing_ok=True)
    if paths:
        log(f"{stage}: --overwrite: removed {', '.join(map(str, paths))}")


def _describe_changes(old: dict[str, Any], new: dict[str, Any]) -> str:
    from coderl.train.checkpoint import flat

    a, b = flat(old), flat(new)
    return ", ".join(f"{k}: {a.get(k)!r} -> {b.get(k)!r}" for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k))


# -- sample ----------------------------------------------------------------------------------------------------

def run_sample(cfg: RecipeConfig, out: str | Path | None = None, baseline: str | Path | None = None,
               split: str | None = None, model_path: str | None = None, resume: bool = False,
               progress: bool = True, log: Log = _quiet, overwrite: bool = False) -> dict[str, Any]:
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
                                 f"({_describe_changes(old, meta)}; {meta_file}); use the same config, or "
                                 "--overwrite to sample again")
        counts = {p: _counts(p) for p in kept}
        want = {out: s.n, base: 1}
        while first < len(chunks) and all(counts[p].get(q.task_id, 0) >= want[p] for q in chunks[first] for p in kept):
            first += 1
        done = {q.task_id for c in chunks[:first] for q in c}
        for p in kept:
            kept[p] = [r for _, r in _read_records(p)] if p.is_file() else []
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
        _rewrite(p, recs)
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
        for _, r in _read_records(path):
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


# -- exec ------------------------------------------------------------------------------------------------------

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
             resume: bool = True, progress: bool = True, log: Log = _quiet) -> dict[str, Any]:
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
    _need_file(samples, "the samples to execute", "run `coderl sample` first")
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
        for _, r in _read_records(out):
            if r.get("program_key") in wanted and r.get("settings_key") == how:
                kept.setdefault(r["program_key"], r)
            else:
                stale += 1
    _rewrite(out, list(kept.values()))
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


# -- critic ----------------------------------------------------------------------------------------------------

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

    _need_file(samples, "programs sampled by `coderl sample`", "run `coderl sample` first")
    _need_file(verdicts, "their execution verdicts", exec_hint(cfg, samples))
    by_key: dict[str, dict[str, Any]] = {}
    for _, r in _read_records(verdicts):
        if r.get("program_key"):
            by_key.setdefault(r["program_key"], r)
    aliases, by_id = task_aliases(problems), {p.task_id: p for p in problems}
    out = []
    for line, rec in _read_records(samples):
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


def build_critic(cfg: RecipeConfig, backbone: str):
    """``(critic, tokenizer)``: a head on a copy of the actor's backbone (``critic.backbone: actor``; ``backbone``
    is then the actor's path), or on a separate model's."""
    from coderl.models.actor import ModelLoadError
    from coderl.models.critic import SEQ2SEQ_PART, Critic
    from coderl.models.tokenizer import load_tokenizer, prepare_tokenizer

    c = cfg.critic
    device = resolve_device(cfg.model.device)
    if c.backbone == "actor":
        model, tok = load_actor(cfg, backbone)
        critic = Critic.from_model(model, c.n_classes, seed=c.seed)
        del model
    else:
        critic = Critic.from_pretrained_backbone(backbone, c.n_classes, seed=c.seed)
        try:
            tok = load_tokenizer(backbone)
        except Exception as e:  # noqa: BLE001 - TokenizerLoadError names the path
            raise ModelLoadError(str(e)) from e
        prepare_tokenizer(tok, is_encoder_decoder=critic.backbone_part == SEQ2SEQ_PART)
    return critic.to(device), tok


def run_critic_train(cfg: RecipeConfig, samples: str | Path | None = None, verdicts: str | Path | None = None,
                     out: str | Path | None = None, resume: bool = False, progress: bool = True,
                     log: Log = _quiet, overwrite: bool = False, redo_stale: bool = False) -> dict[str, Any]:
    """Train the critic on executed samples (+ ground-truth solutions as "passed"); save it to ``out``.

    The critic's inputs (its examples, its settings, its backbone's weights) are fingerprinted. ``resume``: a
    critic already trained on the same inputs is kept (or trained on to a larger ``critic.epochs``), an interrupted
    one continues from its last checkpoint (``out/checkpoints/step-N``: every epoch and on Ctrl-C); one made from
    other inputs is refused, or, with ``redo_stale`` (the chain), trained again."""
    from coderl.models.actor import model_fingerprint
    from coderl.models.critic import outcome_label
    from coderl.train.checkpoint import Checkpoints, resume_point
    from coderl.train.critic import train_critic
    from coderl.utils.interrupt import TrainingInterrupted, stop_on_sigint
    from coderl.utils.scalars import ScalarLog

    samples = Path(samples or cfg.out_dir / SAMPLES)
    verdicts = Path(verdicts) if verdicts else verdicts_path(samples)
    out = output_dir(out or cfg.out_dir / CRITIC_DIR, "the critic")
    stats_file = out / "critic_train.json"
    doomed = check_outputs("critic train", [out], resume, overwrite)
    c = cfg.critic
    rows = labelled_samples(cfg, samples, verdicts, load_split(cfg))
    backbone = actor_path(cfg, "critic", log) if c.backbone == "actor" else c.backbone
    prompter = critic_prompter(cfg, backbone if c.backbone == "actor" else None, log)
    examples = [(prompter(r.problem), r.sample["completion"], outcome_label(r.verdict["outcome"], c.n_classes))
                for r in rows]
    if c.include_solutions:
        passed = outcome_label("passed", c.n_classes)
        seen = {r.problem.task_id: r.problem for r in rows}
        examples += [(prompter(p), prompter.target(p, sol), passed) for p in seen.values()
                     for sol in p.solutions[:max(1, cfg.data.solutions_per_problem)]]
    # critic.epochs is left out: more epochs extend a trained critic instead of making it stale
    inputs = content_key({k: v for k, v in asdict(c).items() if k != "epochs"}, model_fingerprint(backbone), examples)
    settings = {"critic": asdict(c), "inputs": inputs}
    if resume and stats_file.is_file():
        done = json.loads(stats_file.read_text())
        if done.get("inputs") == inputs and done.get("epochs", 0) >= c.epochs:
            log(f"critic: {out} is already trained on these samples and settings; kept")
            return done
        if done.get("inputs") != inputs:
            if not redo_stale:
                raise StageError(f"critic train: {out} was trained on other inputs (the samples, their verdicts, the "
                                 "critic settings or the backbone changed since); pass --overwrite to train it again")
            log(f"critic: {out} was trained on other inputs (samples, verdicts, settings or backbone changed); "
                "training it again")
            doomed = [out]
    if resume and not doomed:
        try:
            resume_point(out, settings)
        except ValueError:  # checkpoints of other inputs: refused, or (the chain) started over
            if not redo_stale:
                raise
            log(f"critic: the checkpoints in {out} are of other inputs or settings; starting over")
            doomed = [out]
    critic, tok = build_critic(cfg, backbone)
    remove_outputs(doomed, "critic train", log if overwrite else _quiet)
    ckpts = Checkpoints(out, settings, resume=resume and not doomed, log=lambda m: log(f"critic: {m}"))
    writer = ScalarLog(out, cfg.log.wandb_project, "critic", cfg.to_dict())
    try:
        with stop_on_sigint(log, "critic") as stop:
            stats = train_critic(critic, tok, examples, epochs=c.epochs, lr=c.lr, batch_size=c.batch_size,
                                 seed=c.seed, progress=progress, pool=c.pool, token_loss_weight=c.token_loss_weight,
                                 balance_classes=c.balance_classes, max_length=c.max_length,
                                 precision=c.precision, grad_accum=c.grad_accum, checkpoints=ckpts,
                                 should_stop=stop,
                                 on_step=lambda r: writer.add_scalar("critic/loss", r["loss"], r["step"]))
    finally:
        writer.close()
    if stats["interrupted"] and stats["epochs"] < c.epochs:
        raise TrainingInterrupted("critic", stats["steps"], ckpts.latest())
    critic.save(out, tokenizer=tok)
    save_resolved(cfg, out / "recipe.yaml")
    stats = {**stats, "samples": str(samples), "verdicts": str(verdicts), "backbone": c.backbone,
             "backbone_path": backbone, "inputs": inputs}
    stats_file.write_text(json.dumps(stats, indent=2) + "\n")
    log(f"critic: trained on {stats['examples']} examples, final loss {stats['loss']:.4f} -> {out}")
    return stats


def critic_prompter(cfg: RecipeConfig, actor: str | None = None, log: Log = _quiet) -> Prompter:
    """The prompts the critic reads: the actor's (its samples were drawn with them), rendered by the actor's
    tokenizer (``actor``: its path; None = :func:`actor_path`), whichever backbone the critic has."""
    from coderl.tasks.prompt import PLAIN

    if cfg.prompt.format == "plain":
        return PLAIN
    from coderl.models.tokenizer import load_tokenizer

    actor = actor or actor_path(cfg, "critic", log)
    return make_prompter(cfg, load_tokenizer(actor), actor)


def critic_fingerprint(critic_dir: str | Path) -> str:
    """The fingerprint of a saved critic (its weights and head settings)."""
    from coderl.models.critic import CRITIC_FILE, WEIGHTS_FILE
    from coderl.utils.fingerprint import files_key

    d = Path(critic_dir)
    return files_key([d / WEIGHTS_FILE, d / CRITIC_FILE])


def score_key(row: Labelled) -> str:
    """What a critic score is of: the program (its verdict's key), the sampled tokens and the outcome."""
    return content_key(row.verdict["program_key"], row.sample.get("completion_ids"), row.verdict["outcome"])


def run_critic_score(cfg: RecipeConfig, critic_dir: str | Path | None = None, samples: str | Path | None = None,
                     verdicts: str | Path | None = None, out: str | Path | None = None, resume: bool = False,
                     progress: bool = True, log: Log = _quiet, batch: int = 64, overwrite: bool = False
                     ) -> dict[str, Any]:
    """Score executed samples with a trained critic: pooled class probabilities and, at every program token,
    the probability of the program's actual outcome (CodeRL's token weights for offline RL).

    Token weights line up with the actor's sampled tokens only when the critic shares the actor's tokenizer;
    otherwise they are computed on the critic's own tokens and marked ``aligned: false`` (RL then refuses them).
    Each score records its sample (:func:`score_key`), the critic (:func:`critic_fingerprint`) and the scoring
    settings; with ``resume`` only the scores whose three still match are kept.
    """
    import torch

    from coderl.models.critic import Critic, outcome_label, program_token_probs, score_programs
    from coderl.models.tokenizer import encode_pairs, load_tokenizer
    from coderl.utils.progress import ProgressBar

    samples = Path(samples or cfg.out_dir / SAMPLES)
    verdicts = Path(verdicts) if verdicts else verdicts_path(samples)
    out = output_file(out or cfg.out_dir / SCORED, "the critic scores")
    critic_dir = Path(critic_dir or cfg.out_dir / CRITIC_DIR)
    doomed = check_outputs("critic score", [out], resume, overwrite)
    rows = labelled_samples(cfg, samples, verdicts, load_split(cfg))
    critic = Critic.load(critic_dir, device=resolve_device(cfg.model.device))
    ctok = load_tokenizer(critic_dir)
    if ctok.pad_token_id is None:
        ctok.pad_token = ctok.eos_token
    actor = actor_path(cfg, "critic score", log)
    aligned = same_tokenizer(ctok, actor)
    prompter = critic_prompter(cfg, actor)
    made_by, scoring = critic_fingerprint(critic_dir), content_key(cfg.critic.pool, cfg.critic.max_length, aligned)
    remove_outputs(doomed, "critic score", log)
    keys = [score_key(r) for r in rows]
    kept: dict[str, dict[str, Any]] = {}
    stale = 0
    if resume and out.is_file():
        wanted = set(keys)
        for _, r in _read_records(out):
            if r.get("key") in wanted and r.get("critic") == made_by and r.get("scoring") == scoring:
                kept.setdefault(r["key"], r)
            else:
                stale += 1
    _rewrite(out, list(kept.values()))
    todo, seen = [], set(kept)
    for r, k in zip(rows, keys, strict=True):
        if k not in seen:
            seen.add(k)
            todo.append((r, k))
    bar = ProgressBar(len(todo), "score", progress, unit="program")
    try:
        with open(out, "a", encoding="utf-8") as f, torch.no_grad():
            for s in range(0, len(todo), batch):
                part = todo[s:s + batch]
                prompts = [prompter(r.problem) for r, _ in part]
                p_ids, own_ids = encode_pairs(ctok, prompts, [r.sample["completion"] for r, _ in part])
                prog_ids = [list(r.sample["completion_ids"]) if aligned and "completion_ids" in r.sample else own
                            for (r, _), own in zip(part, own_ids, strict=True)]
                labels = [outcome_label(r.verdict["outcome"], critic.n_classes) for r, _ in part]
                pooled = score_programs(critic, p_ids, prog_ids, ctok.pad_token_id, mode=cfg.critic.pool,
                                        max_length=cfg.critic.max_length)
                tp, mask = program_token_probs(critic, p_ids, prog_ids, labels, ctok.pad_token_id,
                                               max_length=cfg.critic.max_length)
                for j, (r, k) in enumerate(part):
                    n = int(mask[j].sum())
                    f.write(json.dumps({
                        "line": r.line, "task_id": r.sample["task_id"], "sample": r.sample.get("sample"),
                        "outcome": r.verdict["outcome"], "key": k, "critic": made_by, "scoring": scoring,
                        "critic_probs": dict(zip(critic.class_names, [round(x, 6) for x in pooled[j].tolist()],
                                                 strict=True)),
                        "token_probs": [round(x, 6) for x in tp[j, :n].tolist()],
                        "aligned": bool(aligned and "completion_ids" in r.sample)}) + "\n")
                f.flush()
                bar.update(len(part))
    finally:
        bar.close()
    log(f"critic score: {len(todo)} programs scored ({'aligned with' if aligned else 'NOT aligned with'} the "
        f"actor's tokens), {len(kept)} kept" + (f", {stale} stale ones dropped" if stale else "") + f" -> {out}")
    return {"scored": len(todo), "kept": len(kept), "stale": stale, "aligned": aligned, "out": str(out)}


def same_tokenizer(tok, model_path: str) -> bool:
    """Whether ``tok`` has the same vocabulary as the tokenizer saved with the actor at ``model_path``."""
    from coderl.models.tokenizer import TokenizerLoadError, load_tokenizer

    if not model_path:
        return False
    try:
        other = load_tokenizer(model_path)
    except TokenizerLoadError:
        return False
    return tok.get_vocab() == other.get_vocab()


# -- training stages -------------------------------------------------------------------------------------------

def _export_final(model, tok, out_dir: Path, cfg: RecipeConfig, stage: str, steps: int) -> Path:
    from coderl.models.actor import save_checkpoint
    from coderl.models.lora import merged

    path = save_checkpoint(merged(model), tok, out_dir / "final",
                           extra={"config": cfg.to_dict(), "stage": stage, "step": steps})
    save_resolved(cfg, out_dir / "config.yaml")
    return path


def run_sft(cfg: RecipeConfig, out: str | Path | None = None, resume: bool = False, progress: bool = True,
            log: Log = _quiet, overwrite: bool = False) -> dict[str, Any]:
    """Supervised fine-tuning of ``model.path`` on the ground-truth solutions of the training split (CodeRL's
    warm-up stage). ``resume`` continues from the last checkpoint, also a finished run when ``sft.epochs`` is now
    larger; Ctrl-C saves a checkpoint and raises :class:`~coderl.utils.interrupt.TrainingInterrupted`."""

    from coderl.models.actor import model_fingerprint
    from coderl.train.checkpoint import Checkpoints, flat, write_json
    from coderl.train.sft import train_sft
    from coderl.utils.interrupt import TrainingInterrupted, stop_on_sigint
    from coderl.utils.scalars import ScalarLog

    out_dir = output_dir(out or cfg.out_dir / SFT_DIR, "the SFT run")
    doomed = check_outputs("sft", [out_dir], resume, overwrite)
    problems = load_split(cfg)
    if not any(p.solutions for p in problems) or cfg.data.solutions_per_problem < 1:
        raise StageError(f"no ground-truth solutions in the {cfg.data.train_split!r} split of {cfg.data.dataset!r}: "
                         "nothing to fine-tune on")
    model, tok = load_actor(cfg, for_training=True, seed=cfg.sft.seed)
    pairs = sft_pairs(cfg, problems, make_prompter(cfg, tok, cfg.model.path))
    config = {"sft": asdict(cfg.sft), **flat(cfg.to_dict(), "recipe."),
              "inputs.model": model_fingerprint(cfg.model.path)}
    log_step_memory(log, "sft", model, token_lengths(tok, [p + s for p, s in pairs]), 1,
                    min(cfg.sft.batch_size, len(pairs)), cfg.sft.grad_accum, cfg.sft.precision)
    remove_outputs(doomed, "sft", log)
    ckpts = Checkpoints(out_dir, config, cfg.sft_checkpoint_every, resume, log=lambda m: log(f"sft: {m}"))
    writer = ScalarLog(out_dir, cfg.log.wandb_project, "sft", config)

    def on_step(rec: dict[str, Any]) -> None:
        writer.add_scalar("sft/loss", rec["loss"], rec["step"])
        writer.add_scalar("sft/lr", rec["lr"], rec["step"])

    try:
        with stop_on_sigint(log, "sft") as stop:
            stats = train_sft(model, tok, pairs, cfg.sft, progress=progress, on_step=on_step, should_stop=stop,
                              checkpoints=ckpts)
    finally:
        writer.close()
    write_json(out_dir / "history.json", stats["history"])
    if stats["stopped"]:
        raise TrainingInterrupted("sft", stats["steps"], ckpts.latest())
    final = _export_final(model, tok, out_dir, cfg, "sft", stats["steps"])
    cut = "".join(f", {stats[k]} {k}" for k in ("truncated", "dropped") if stats.get(k))
    log(f"sft: {stats['steps']} steps on {len(pairs)} pairs{cut and ' (too long for the model: ' + cut[2:] + ')'}"
        f" -> {final}")
    return {"steps": stats["steps"], "pairs": len(pairs), "final": str(final), "resumed_from": stats["resumed_from"]}


def offline_pool(cfg: RecipeConfig, tok, problems: list[Problem], samples: Path, verdicts: Path,
                 baseline: tuple[Path, Path] | None, scored: Path | None, critic_dir: Path | None
                 ) -> tuple[list, str]:
    """The RL pool from files, and its fingerprint: sampled tokens, their outcomes and returns, the greedy
    baseline's return per problem (``baseline``: its samples and verdicts files, which must hold every problem of
    the pool; ``None``, with ``sampling.greedy_baseline: false``: the mean return of the problem's samples), and
    the token weights of the critic in ``critic_dir`` (scores of another critic,
    or of other programs, are refused)."""
    from coderl.rl.loop import Rollout
    from coderl.rl.rewards import outcome_reward

    rows = labelled_samples(cfg, samples, verdicts, problems)
    base: dict[str, float] = {}
    if baseline is not None:
        _need_file(baseline[0], "greedy baseline programs", "run `coderl sample` (sampling.greedy_baseline: true "
                   "writes them) or set sampling.greedy_baseline: false for the mean of the samples")
        _need_file(baseline[1], "verdicts of the greedy baseline", "run `coderl train --stage rl`, which executes "
                   "them, or `coderl eval`")
        base = {r.problem.task_id: outcome_reward(r.verdict["outcome"])
                for r in labelled_samples(cfg, baseline[0], baseline[1], problems)}
        missing = sorted({r.problem.task_id for r in rows} - set(base))
        if missing:
            raise StageError(f"{baseline[0]}: no greedy baseline for {len(missing)} problem(s) of the pool (e.g. "
                             f"{missing[0]}); sample them again (`coderl sample --resume`)")
    weights: dict[str, dict[str, Any]] = {}
    made_by = ""
    if scored is not None:
        _need_file(scored, "critic scores of the samples", "run `coderl critic score` (or set rl.use_critic=false)")
        made_by = critic_fingerprint(critic_dir) if critic_dir is not None and critic_dir.is_dir() else ""
        weights = {r["key"]: r for _, r in _read_records(scored) if r.get("key") and r.get("critic") == made_by}
    by_task: dict[str, list[float]] = {}
    for r in rows:
        by_task.setdefault(r.problem.task_id, []).append(outcome_reward(r.verdict["outcome"]))
    prompter = make_prompter(cfg, tok)
    prompt_ids = {}
    rollouts, parts = [], []
    for row in rows:
        p, rec, v = row.problem, row.sample, row.verdict
        if "completion_ids" not in rec:
            raise DataError("missing (offline RL trains on the sampled tokens; sample with `coderl sample`)",
                            field="completion_ids", line=row.line, path=str(samples))
        if p.task_id not in prompt_ids:
            prompt_ids[p.task_id] = list(tok([prompter(p)])["input_ids"][0]) or [tok.eos_token_id]
        r = Rollout(p, prompt_ids[p.task_id], list(rec["completion_ids"]), rec["completion"], v["outcome"],
                    outcome_reward(v["outcome"]))
        r.baseline = base[p.task_id] if baseline is not None else sum(by_task[p.task_id]) / len(by_task[p.task_id])
        key = score_key(row)
        if scored is not None:
            w = weights.get(key)
            if w is None:
                raise StageError(f"{scored}: no score by the critic in {critic_dir} for line {row.line} of {samples} "
                                 "(the samples or the critic changed since it was scored); rerun "
                                 "`coderl critic score --resume`")
            if not w.get("aligned", False):
                raise StageError(f"{scored}: the critic's tokenizer differs from the actor's, so its token weights do "
                                 "not line up with the sampled tokens; use a critic with the actor's tokenizer or "
                                 "set rl.use_critic=false")
            r.token_probs = list(w["token_probs"])
        rollouts.append(r)
        parts.append((key, r.baseline))
    return rollouts, content_key(parts, made_by)


def run_rl(cfg: RecipeConfig, out: str | Path | None = None, resume: bool = False, progress: bool = True,
           log: Log = _quiet, samples: str | Path | None = None, verdicts: str | Path | None = None,
           baseline: str | Path | None = None, scored: str | Path | None = None,
           critic_dir: str | Path | None = None, overwrite: bool = False) -> dict[str, Any]:
    """RL fine-tuning of :func:`actor_path`: offline (``rl.mode: offline``, the paper: a fixed pool from the files
    of the earlier stages) or online (sample, execute and, for ``coderl``, weight by the critic every step).

    The checkpoints record the actor's fingerprint and the pool's (or the online critic's), so ``resume`` refuses
    to continue on other inputs; a finished run resumed with a larger ``rl.steps`` is extended. Ctrl-C saves a
    checkpoint and raises :class:`~coderl.utils.interrupt.TrainingInterrupted`."""
    from coderl.models.actor import model_fingerprint
    from coderl.models.critic import Critic
    from coderl.rl.loop import train_rl
    from coderl.train.checkpoint import flat, latest_checkpoint, write_json
    from coderl.utils.interrupt import TrainingInterrupted, stop_on_sigint

    out_dir = output_dir(out or cfg.out_dir / RL_DIR, "the RL run")
    doomed = check_outputs("rl", [out_dir], resume, overwrite)
    problems = load_split(cfg)
    actor = actor_path(cfg, "rl", log)
    model, tok = load_actor(cfg, actor, for_training=True, seed=cfg.rl.seed)
    prompter = make_prompter(cfg, tok, actor)
    lengths = token_lengths(tok, [prompter(p) for p in problems])  # prompts built and encoded once, for both lines
    log_long_prompts(log, "rl", model, lengths, cfg.rl.max_new_tokens)
    log_step_memory(log, "rl", model, lengths, cfg.rl.max_new_tokens,
                    -(-cfg.rl.problems_per_step * cfg.rl.samples_per_problem // cfg.rl.minibatches),
                    cfg.rl.grad_accum, cfg.rl.precision)
    inputs = {"actor": model_fingerprint(actor)}
    use_critic = cfg.rl.needs_critic
    cdir = Path(critic_dir or cfg.out_dir / CRITIC_DIR)
    critic, pool = None, None
    if cfg.rl.mode == "offline":
        s = Path(samples or cfg.out_dir / SAMPLES)
        b = Path(baseline or cfg.out_dir / BASELINE)
        sc = Path(scored or cfg.out_dir / SCORED) if use_critic else None
        pool, inputs["pool"] = offline_pool(cfg, tok, problems, s, Path(verdicts) if verdicts else verdicts_path(s),
                                            (b, verdicts_path(b)) if cfg.sampling.greedy_baseline else None, sc,
                                            cdir if use_critic else None)
        log(f"rl: offline pool of {len(pool)} programs from {s}; baseline: "
            + ("the greedy program's return" if cfg.sampling.greedy_baseline else "the mean return of the samples"))
    elif use_critic:
        if not (cdir / "critic.json").is_file():
            raise StageError(f"{cdir}: no trained critic (online coderl weights tokens by it); run `coderl critic "
                             "train` or set rl.use_critic=false")
        critic = Critic.load(cdir, device=resolve_device(cfg.model.device))
        inputs["critic"] = critic_fingerprint(cdir)
        from coderl.models.tokenizer import load_tokenizer

        if load_tokenizer(cdir).get_vocab() != tok.get_vocab():
            raise StageError(f"{cdir}: the critic's tokenizer differs from the actor's; online token weights need the "
                             "same tokens (use critic.backbone: actor) or set rl.use_critic=false")
    remove_outputs(doomed, "rl", log)
    executor = make_executor(cfg) if pool is None else None
    try:
        if executor is not None:
            executor.start()
        with stop_on_sigint(log, "rl") as stop:
            history = train_rl(model, tok, problems, executor, cfg.rl, critic=critic,
                               sft_pairs=sft_pairs(cfg, problems, prompter), prompter=prompter, out_dir=out_dir,
                               resume=resume, progress=progress,
                               extra_config={**flat(cfg.to_dict(), "recipe."), **flat(inputs, "inputs.")},
                               offline_rollouts=pool, should_stop=stop, wandb_project=cfg.log.wandb_project)
    finally:
        if executor is not None:
            executor.close()
    write_json(out_dir / "history.json", history)
    if stop.requested and len(history) < cfg.rl.steps:
        raise TrainingInterrupted("rl", len(history), latest_checkpoint(out_dir))
    final = _export_final(model, tok, out_dir, cfg, "rl", len(history))
    last = history[-1] if history else {}
    log(f"rl: {len(history)} steps ({cfg.rl.mode}, {cfg.rl.algo}); last reward {last.get('reward', float('nan')):+.3f}"
        f" -> {final}")
    return {"steps": len(history), "final": str(final), "mode": cfg.rl.mode, "last": last}


def run_chain(cfg: RecipeConfig, resume: bool = False, progress: bool = True, log: Log = _quiet,
              overwrite: bool = False) -> dict[str, Any]:
    """Everything an RL run needs, in order: sample -> exec -> critic train -> critic score (offline) -> RL.

    The earlier stages keep what is still valid and redo what is stale (the exec stage runs the programs without
    a verdict, the critic is trained again when its inputs changed, stale scores are redone); a samples file drawn
    with other settings or another model is refused. ``resume`` / ``overwrite`` apply to the RL stage's own
    files, which are checked before anything runs."""
    use_critic = cfg.rl.needs_critic
    offline = cfg.rl.mode == "offline"
    check_outputs("rl", [output_dir(cfg.out_dir / RL_DIR, "the RL run")], resume, overwrite)
    report: dict[str, Any] = {}
    save_resolved(cfg, output_file(cfg.out_dir / "config.yaml", "the resolved config"))
    if offline or use_critic:
        samples = cfg.out_dir / SAMPLES
        report["sample"] = run_sample(cfg, resume=True, progress=progress, log=log)
        report["exec"] = run_exec(cfg, samples, progress=progress, log=log)
        if cfg.sampling.greedy_baseline:
            report["exec_baseline"] = run_exec(cfg, cfg.out_dir / BASELINE, progress=progress, log=log)
        if use_critic:
            report["critic_train"] = run_critic_train(cfg, resume=True, progress=progress, log=log, redo_stale=True)
            if offline:
                report["critic_score"] = run_critic_score(cfg, resume=True, progress=progress, log=log)
    report["rl"] = run_rl(cfg, resume=resume, progress=progress, log=log, overwrite=overwrite)
    return report


def repair_actor_path(cfg: RecipeConfig, log: Log = _quiet) -> str:
    """The actor whose failures the repair model learns to fix: ``repair.actor``, else the run's newest model
    (its RL model, else :func:`actor_path`)."""
    if cfg.repair.actor:
        return cfg.repair.actor
    final = cfg.out_dir / RL_DIR / "final"
    if (final / "config.json").is_file():
        return str(final)
    if not cfg.model.path and not (cfg.out_dir / SFT_DIR / "final" / "config.json").is_file():
        raise StageError("no actor for the repair stage: set repair.actor or model.path, or train one first")
    return actor_path(cfg, "repair", log)


def run_repair(cfg: RecipeConfig, out: str | Path | None = None, resume: bool = False, progress: bool = True,
               log: Log = _quiet, overwrite: bool = False) -> dict[str, Any]:
    """Train critic sampling's repair model: sample the actor on the training split, run the example and hidden
    tests, pair every failure with the nearest passing program (ground truth or a passing sample), fine-tune.

    The pairs are written to ``out/pairs.jsonl`` before training, and training checkpoints like SFT's (every
    ``sft_checkpoint_every`` steps and on Ctrl-C, which raises :class:`~coderl.utils.interrupt.TrainingInterrupted`).
    ``resume`` keeps a finished repair model as it is, and continues an interrupted one from its checkpoint and
    its pairs (the actor is not sampled again); checkpoints of another actor or other settings are refused."""
    import random

    from coderl.inference.repair import (
        collect_repair_examples,
        new_repair_model,
        read_pairs,
        train_repair,
        write_pairs,
    )
    from coderl.models.actor import model_fingerprint, save_checkpoint
    from coderl.models.lora import merged
    from coderl.train.checkpoint import Checkpoints, resume_point, write_json
    from coderl.utils.interrupt import TrainingInterrupted, stop_on_sigint
    from coderl.utils.scalars import ScalarLog

    r = cfg.repair
    out_dir = output_dir(out or cfg.out_dir / REPAIR_DIR, "the repair model")
    doomed = check_outputs("repair", [out_dir], resume, overwrite)
    if resume and (out_dir / "summary.json").is_file() and (out_dir / "final" / "config.json").is_file():
        log(f"repair: {out_dir / 'final'} is complete; kept")
        return json.loads((out_dir / "summary.json").read_text())
    actor = repair_actor_path(cfg, log)
    log(f"repair: actor {actor}")
    config = {"repair": asdict(r), "data": asdict(cfg.data), "prompt": asdict(cfg.prompt),
              "execution": asdict(cfg.execution), "inputs.actor": model_fingerprint(actor)}
    pairs_file = out_dir / "pairs.jsonl"
    # An interrupted run's pairs are reused only with its checkpoint, which vouches that they are of this actor
    # and these settings (resume_point refuses others).
    reuse = resume and not doomed and pairs_file.is_file() and resume_point(out_dir, config) is not None
    problems = load_split(cfg)
    if r.max_problems is not None and r.max_problems < len(problems):
        problems = random.Random(r.seed).sample(problems, r.max_problems)
    model, tok = load_actor(cfg, actor)
    remove_outputs(doomed, "repair", log)
    if reuse:
        pairs = read_pairs(pairs_file)
        counts = json.loads((out_dir / "pairs.json").read_text()) if (out_dir / "pairs.json").is_file() else {}
        log(f"repair: {len(pairs)} pairs of the interrupted run, from {pairs_file}")
    else:
        with make_executor(cfg) as ex:
            examples, counts = collect_repair_examples(
                model, tok, problems, ex, r.samples_per_problem, max_new_tokens=r.max_new_tokens or
                cfg.sampling.max_new_tokens, temperature=r.temperature, seed=r.seed,
                prompter=make_prompter(cfg, tok, actor))
        if not examples:
            raise StageError(f"repair: no training pairs ({counts['failures']} failures among {counts['samples']} "
                             "samples had no passing program of the same problem); add ground-truth solutions")
        out_dir.mkdir(parents=True, exist_ok=True)
        write_pairs(pairs_file, examples)
        write_json(out_dir / "pairs.json", counts)
        pairs = [e.pair() for e in examples]
    if r.from_scratch:
        repair = new_repair_model(tok, None, n_positions=r.positions, seed=r.seed)
    elif getattr(model.config, "model_type", None) == "gpt2":
        repair = new_repair_model(tok, model, n_positions=r.positions, seed=r.seed)
    else:  # any other architecture: fine-tune the actor's own weights (sampling is over)
        repair = with_lora(cfg, model, r.seed)
    del model  # the GPT-2 repair model holds a copy: the actor itself need not stay in memory while it trains
    ckpts = Checkpoints(out_dir, config, cfg.sft_checkpoint_every, resume, log=lambda m: log(f"repair: {m}"))
    writer = ScalarLog(out_dir, cfg.log.wandb_project, "repair", cfg.to_dict())
    try:
        with stop_on_sigint(log, "repair") as stop:
            hist = train_repair(repair, tok, pairs, r.train, progress=progress, checkpoints=ckpts, should_stop=stop,
                                on_step=lambda rec: writer.add_scalar("repair/loss", rec["loss"], rec["step"]))
    except ValueError as e:
        raise StageError(f"repair: {e}") from None
    finally:
        writer.close()
    if hist["stopped"]:
        raise TrainingInterrupted("repair", hist["steps"], ckpts.latest())
    info = {"actor": actor, "problems": len(problems), **counts, "steps": hist["steps"],
            "trained_pairs": hist["pairs"], "dropped": hist["dropped"],
            "final_loss": hist["history"][-1]["loss"] if hist["history"] else None}
    final = save_checkpoint(merged(repair), tok, out_dir / "final",
                            extra={"config": cfg.to_dict(), "stage": "repair", **info})
    save_resolved(cfg, out_dir / "config.yaml")
    info["final"] = str(final)
    write_json(out_dir / "summary.json", info)
    log(f"repair: {hist['pairs']} pairs ({hist['dropped']} too long), {hist['steps']} steps -> {final}")
    return info
