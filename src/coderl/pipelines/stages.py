"""The recipe's stages as library functions; the CLI commands (sample, critic, train) are thin wrappers.

Every stage reads and writes plain files in the run directory (``RecipeConfig.out``), can run alone, and with
``resume=True`` keeps what an earlier (interrupted) run of it produced. :func:`run_chain` runs the stages an RL
run needs that have not produced their files yet, then RL.

Files (all JSONL files have one record per line; ``line`` always means the line number in ``samples.jsonl``)::

    samples.jsonl            {task_id, completion, sample, completion_ids, finished}   (coderl eval reads it)
    samples.jsonl.meta.json  model, dataset, split and sampling settings (checked on --resume)
    baseline.jsonl           the same for one greedy program per problem
    *.verdicts.jsonl         coderl eval's verdict records {task_id, sample, line, outcome, detail, ...}
    critic/                  the critic (Critic.save) + critic_train.json (statistics)
    scored.jsonl             {line, task_id, sample, outcome, critic_probs, token_probs, aligned}
    sft/, rl/                checkpoints/step-N (resumable), final/ (a model directory), history.json
    repair/                  pairs.jsonl (failed sample + feedback -> passing program), final/, summary.json
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

from coderl.pipelines.recipe import RecipeConfig, save_resolved
from coderl.tasks.problem import DataError, Problem

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


# -- shared helpers ------------------------------------------------------------------------------------------

def resolve_device(name: str) -> str:
    import torch

    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise StageError(f"model.device is {name!r} but no CUDA device is available; use 'auto' or 'cpu'")
    return name


def load_actor(cfg: RecipeConfig, path: str | None = None, for_training: bool = False):
    """``(model, tokenizer)`` of the actor (``path`` or ``model.path``), on its device; LoRA added for training."""
    from coderl.models.actor import load_model

    src = path or cfg.model.path
    if not src:
        raise StageError("no model given: set model.path in the config (or model.path=DIR on the command line)")
    model, tok = load_model(src, kind=cfg.model.kind, dtype=cfg.model.dtype, device=resolve_device(cfg.model.device))
    return (with_lora(cfg, model) if for_training else model), tok


def with_lora(cfg: RecipeConfig, model):
    """``model`` ready for training: wrapped with LoRA adapters when ``model.lora.enabled``, else itself."""
    if not cfg.model.lora.enabled:
        return model
    from coderl.models.lora import apply_lora

    lo = cfg.model.lora
    return apply_lora(model, lo.r, lo.alpha, lo.dropout, lo.target_modules)


def load_split(cfg: RecipeConfig, split: str | None = None) -> list[Problem]:
    from coderl.tasks import load_problems

    d = cfg.data
    return load_problems(d.dataset, d.path, split or d.train_split, d.limit)


def sft_pairs(cfg: RecipeConfig, problems: list[Problem]) -> list[tuple[str, str]]:
    from coderl.tasks.prompt import format_prompt

    k = cfg.data.solutions_per_problem
    return [(format_prompt(p), s) for p in problems for s in p.solutions[:k]]


def make_executor(cfg: RecipeConfig):
    """The executor ``execution`` describes (not started): local sandbox workers, or one per Ray node."""
    e = cfg.execution
    kwargs = {"workers": e.workers, "timeout": e.timeout, "memory_mb": e.memory_mb, "checker": e.checker}
    if e.backend == "ray":
        try:
            from coderl.scale.ray_executor import RayExecutor

            return RayExecutor(address=e.address, **kwargs)
        except ImportError as err:
            raise StageError(f"execution.backend ray: {err}") from None
    from coderl.sandbox import Executor

    return Executor(**kwargs)


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
    with open(tmp, "w", encoding="utf-8") as f:
        for r in records:
            f.write(json.dumps(r) + "\n")
    os.replace(tmp, path)


def _need_file(path: Path, what: str, how: str) -> None:
    if not path.is_file():
        raise StageError(f"{path}: no such file ({what}); {how}")


# -- sample ----------------------------------------------------------------------------------------------------

def run_sample(cfg: RecipeConfig, out: str | Path | None = None, baseline: str | Path | None = None,
               split: str | None = None, model_path: str | None = None, resume: bool = False,
               progress: bool = True, log: Log = _quiet) -> dict[str, Any]:
    """Sample ``sampling.n`` programs per problem (and one greedy baseline) into JSONL files.

    Problems are processed in fixed chunks of ``sampling.problems_per_chunk`` with a seed per chunk, so a resumed
    run (``resume=True``: problems already complete in the file are kept) writes exactly what an uninterrupted one
    would have.
    """
    from coderl.models.generate import SamplingConfig, generate
    from coderl.tasks.prompt import format_prompt
    from coderl.utils.progress import ProgressBar

    s = cfg.sampling
    out = Path(out or cfg.out_dir / SAMPLES)
    base = Path(baseline or cfg.out_dir / BASELINE) if s.greedy_baseline else None
    problems = load_split(cfg, split)
    meta = {"model": model_path or cfg.model.path, "dataset": cfg.data.dataset, "data_path": cfg.data.path,
            "split": split or cfg.data.train_split, "limit": cfg.data.limit, "sampling": asdict(s)}
    meta_path = out.with_name(out.name + ".meta.json")
    chunk = s.problems_per_chunk
    chunks = [problems[i:i + chunk] for i in range(0, len(problems), chunk)]
    first = 0
    kept: dict[Path, list[dict[str, Any]]] = {out: []}
    if base is not None:
        kept[base] = []
    if resume and out.is_file():
        if meta_path.is_file():
            old = json.loads(meta_path.read_text())
            if {k: v for k, v in old.items() if k not in ("complete", "recipe")} != meta:
                raise StageError(f"cannot resume {out}: it was sampled with other settings ({meta_path}); use the "
                                 "same config or another output file")
        counts = {p: _counts(p) for p in kept}
        want = {out: s.n, base: 1}
        while first < len(chunks) and all(counts[p].get(q.task_id, 0) >= want[p] for q in chunks[first] for p in kept):
            first += 1
        done = {q.task_id for c in chunks[:first] for q in c}
        for p in kept:
            kept[p] = [r for _, r in _read_records(p)] if p.is_file() else []
            kept[p] = [r for r in kept[p] if r.get("task_id") in done]
    out.parent.mkdir(parents=True, exist_ok=True)
    meta_path.write_text(json.dumps({**meta, "complete": False}, indent=2) + "\n")
    for p, recs in kept.items():
        _rewrite(p, recs)
    if first:
        log(f"sample: resuming after {sum(len(c) for c in chunks[:first])} finished problems")
    model, tok = load_actor(cfg, model_path)
    files = {p: open(p, "a", encoding="utf-8") for p in kept}
    bar = ProgressBar(len(problems), "sample", progress)
    bar.update(sum(len(c) for c in chunks[:first]))
    n_written = 0
    try:
        for k in range(first, len(chunks)):
            batch = chunks[k]
            prompts = [format_prompt(p) for p in batch]
            seed = s.seed * 1_000_003 + k
            sc = SamplingConfig(max_new_tokens=s.max_new_tokens, temperature=s.temperature, top_p=s.top_p, seed=seed)
            outs = generate(model, tok, prompts, s.n, sc, batch_size=s.batch_size)
            _write(files[out], batch, outs)
            n_written += sum(len(o) for o in outs)
            if base is not None:
                greedy = SamplingConfig(max_new_tokens=s.max_new_tokens, greedy=True)
                _write(files[base], batch, generate(model, tok, prompts, 1, greedy, batch_size=s.batch_size))
            bar.update(len(batch))
    finally:
        bar.close()
        for f in files.values():
            f.close()
    meta_path.write_text(json.dumps({**meta, "complete": True, "recipe": cfg.to_dict()}, indent=2) + "\n")
    return {"problems": len(problems), "samples_written": n_written, "resumed_after": first * chunk, "out": str(out),
            "baseline": str(base) if base else None}


def _counts(path: Path | None) -> dict[str, int]:
    c: dict[str, int] = {}
    if path is not None and path.is_file():
        for _, r in _read_records(path):
            c[r.get("task_id")] = c.get(r.get("task_id"), 0) + 1
    return c


def _write(f, batch: list[Problem], outs) -> None:
    for p, comps in zip(batch, outs, strict=True):
        for j, c in enumerate(comps):
            f.write(json.dumps({"task_id": p.task_id, "completion": c.text, "sample": j,
                                "completion_ids": list(c.token_ids), "finished": c.finished}) + "\n")
    f.flush()


# -- exec ------------------------------------------------------------------------------------------------------

def run_exec(cfg: RecipeConfig, samples: str | Path, verdicts: str | Path | None = None, split: str | None = None,
             resume: bool = True, progress: bool = True, log: Log = _quiet) -> dict[str, Any]:
    """Run every sample against its problem's hidden tests; write ``coderl eval``'s verdict records.

    Uses the evaluator's own code path (``coderl.eval.evaluate.run_samples``), so the chained recipe and
    ``coderl eval --samples samples.jsonl`` label programs identically. With ``resume``, samples that already
    have a verdict are not run again.
    """
    from coderl.eval.evaluate import EvalConfig, run_samples
    from coderl.eval.samples import read_samples
    from coderl.utils.progress import ProgressBar

    samples = Path(samples)
    _need_file(samples, "the samples to execute", "run `coderl sample` first")
    out = Path(verdicts) if verdicts else verdicts_path(samples)
    problems = load_split(cfg, split)
    todo = read_samples(samples, problems)
    done_lines: set[int] = set()
    kept: list[dict[str, Any]] = []
    if resume and out.is_file():
        kept = [r for _, r in _read_records(out)]
        done_lines = {r.get("line") for r in kept}
    _rewrite(out, kept)
    todo = [x for x in todo if x.line not in done_lines]
    e = cfg.execution
    ecfg = EvalConfig(workers=e.workers, timeout=e.timeout, checker=e.checker, memory_mb=e.memory_mb,
                      examples=False, bootstrap=0)
    counts: dict[str, int] = {}
    bar = ProgressBar(len(todo), "exec", progress)
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
    log(f"exec: {len(todo)} programs run, {len(done_lines)} kept from before -> {out}")
    return {"run": len(todo), "kept": len(done_lines), "outcomes": counts, "out": str(out)}


# -- critic ----------------------------------------------------------------------------------------------------

def labelled_samples(samples: Path, verdicts: Path, problems: list[Problem]) -> list[tuple[Problem, dict, dict]]:
    """``(problem, sample record, verdict record)`` for every line of ``samples``, joined on the line number."""
    from coderl.eval.samples import task_aliases

    _need_file(samples, "programs sampled by `coderl sample`", "run `coderl sample` first")
    _need_file(verdicts, "their execution verdicts", f"run `coderl eval --samples {samples} --no-examples` or the "
               "recipe's exec stage first")
    by_line = {r.get("line"): r for _, r in _read_records(verdicts)}
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
        v = by_line.get(line)
        if v is None:
            raise StageError(f"{samples}:{line}: no verdict in {verdicts} for this sample; run the exec stage "
                             "(it resumes where it stopped)")
        out.append((by_id[tid], rec, v))
    if not out:
        raise DataError("no samples in file", path=str(samples))
    return out


def build_critic(cfg: RecipeConfig):
    """``(critic, tokenizer)``: a head on a copy of the actor's backbone, or on a separate model's."""
    from coderl.models.actor import ModelLoadError
    from coderl.models.critic import Critic
    from coderl.models.tokenizer import load_tokenizer, prepare_tokenizer

    c = cfg.critic
    device = resolve_device(cfg.model.device)
    if c.backbone == "actor":
        model, tok = load_actor(cfg)
        critic = Critic.from_model(model, c.n_classes, seed=c.seed)
        del model
    else:
        critic = Critic.from_pretrained_backbone(c.backbone, c.n_classes, seed=c.seed)
        try:
            tok = load_tokenizer(c.backbone)
        except Exception as e:  # noqa: BLE001 - TokenizerLoadError names the path
            raise ModelLoadError(str(e)) from e
        prepare_tokenizer(tok, is_encoder_decoder=critic.backbone_part == "encoder")
    return critic.to(device), tok


def run_critic_train(cfg: RecipeConfig, samples: str | Path | None = None, verdicts: str | Path | None = None,
                     out: str | Path | None = None, resume: bool = False, progress: bool = True,
                     log: Log = _quiet) -> dict[str, Any]:
    """Train the critic on executed samples (+ ground-truth solutions as "passed"); save it to ``out``.

    The critic is checkpointed after every epoch (``out/checkpoints/epoch-N``, the last two kept). ``resume``:
    a critic already completed in ``out`` is kept; an interrupted one continues after its last finished epoch
    (with the same critic settings; a changed setting is refused)."""
    import torch

    from coderl.models.critic import Critic, outcome_label, train_critic
    from coderl.rl.checkpoint import check_same_config, commit_checkpoint, latest_checkpoint, load_training_state
    from coderl.tasks.prompt import format_prompt

    samples = Path(samples or cfg.out_dir / SAMPLES)
    verdicts = Path(verdicts) if verdicts else verdicts_path(samples)
    out = Path(out or cfg.out_dir / CRITIC_DIR)
    stats_file = out / "critic_train.json"
    if resume and stats_file.is_file():
        log(f"critic: {out} is already trained; kept")
        return json.loads(stats_file.read_text())
    c = cfg.critic
    problems = load_split(cfg)
    rows = labelled_samples(samples, verdicts, problems)
    examples = [(format_prompt(p), rec["completion"], outcome_label(v["outcome"], c.n_classes)) for p, rec, v in rows]
    if c.include_solutions:
        passed = outcome_label("passed", c.n_classes)
        seen = {p.task_id: p for p, _, _ in rows}
        examples += [(format_prompt(p), sol, passed) for p in seen.values()
                     for sol in p.solutions[:max(1, cfg.data.solutions_per_problem)]]
    critic, tok = build_critic(cfg)
    settings = {"critic": asdict(c), "examples": len(examples), "backbone_of": cfg.model.path}
    state = None
    if resume and (last := latest_checkpoint(out)) is not None:
        state = load_training_state(last)
        check_same_config(state["settings"], settings, last)
        critic.load_state_dict(Critic.load(last, device=critic.device).state_dict())
        log(f"critic: resuming after epoch {state['epoch']} ({last})")

    def on_epoch(st: dict[str, Any]) -> None:
        def write(d: Path) -> None:
            critic.save(d, tokenizer=tok)
            torch.save({**st, "settings": settings}, d / "trainer_state.pt")

        commit_checkpoint(out, f"epoch-{st['epoch']:03d}", write)

    stats = train_critic(critic, tok, examples, epochs=c.epochs, lr=c.lr, batch_size=c.batch_size, seed=c.seed,
                         progress=progress, pool=c.pool, token_loss_weight=c.token_loss_weight,
                         balance_classes=c.balance_classes, max_length=c.max_length, on_epoch=on_epoch,
                         resume_state=state)
    critic.save(out, tokenizer=tok)
    save_resolved(cfg, out / "recipe.yaml")
    stats = {**stats, "samples": str(samples), "verdicts": str(verdicts), "backbone": c.backbone,
             "resumed_after_epoch": state["epoch"] if state else 0}
    stats_file.write_text(json.dumps(stats, indent=2) + "\n")
    log(f"critic: trained on {stats['examples']} examples, final loss {stats['loss']:.4f} -> {out}")
    return stats


def run_critic_score(cfg: RecipeConfig, critic_dir: str | Path | None = None, samples: str | Path | None = None,
                     verdicts: str | Path | None = None, out: str | Path | None = None, resume: bool = False,
                     progress: bool = True, log: Log = _quiet, batch: int = 64) -> dict[str, Any]:
    """Score executed samples with a trained critic: pooled class probabilities and, at every program token,
    the probability of the program's actual outcome (CodeRL's token weights for offline RL).

    Token weights line up with the actor's sampled tokens only when the critic shares the actor's tokenizer;
    otherwise they are computed on the critic's own tokens and marked ``aligned: false`` (RL then refuses them).
    """
    import torch

    from coderl.models.critic import Critic, outcome_label, program_token_probs, score_programs
    from coderl.models.tokenizer import encode_pairs, load_tokenizer
    from coderl.tasks.prompt import format_prompt
    from coderl.utils.progress import ProgressBar

    samples = Path(samples or cfg.out_dir / SAMPLES)
    verdicts = Path(verdicts) if verdicts else verdicts_path(samples)
    out = Path(out or cfg.out_dir / SCORED)
    critic_dir = Path(critic_dir or cfg.out_dir / CRITIC_DIR)
    rows = labelled_samples(samples, verdicts, load_split(cfg))
    critic = Critic.load(critic_dir, device=resolve_device(cfg.model.device))
    ctok = load_tokenizer(critic_dir)
    if ctok.pad_token_id is None:
        ctok.pad_token = ctok.eos_token
    aligned = same_tokenizer(ctok, cfg.model.path)
    kept = [r for _, r in _read_records(out)] if resume and out.is_file() else []
    _rewrite(out, kept)
    done = {r.get("line") for r in kept}
    todo = [(line_of(rec, v), p, rec, v) for p, rec, v in rows]
    todo = [t for t in todo if t[0] not in done]
    bar = ProgressBar(len(todo), "score", progress)
    try:
        with open(out, "a", encoding="utf-8") as f, torch.no_grad():
            for s in range(0, len(todo), batch):
                part = todo[s:s + batch]
                prompts = [format_prompt(p) for _, p, _, _ in part]
                p_ids, own_ids = encode_pairs(ctok, prompts, [rec["completion"] for _, _, rec, _ in part])
                prog_ids = [list(rec["completion_ids"]) if aligned and "completion_ids" in rec else own
                            for (_, _, rec, _), own in zip(part, own_ids, strict=True)]
                labels = [outcome_label(v["outcome"], critic.n_classes) for _, _, _, v in part]
                pooled = score_programs(critic, p_ids, prog_ids, ctok.pad_token_id, mode=cfg.critic.pool,
                                        max_length=cfg.critic.max_length)
                tp, mask = program_token_probs(critic, p_ids, prog_ids, labels, ctok.pad_token_id,
                                               max_length=cfg.critic.max_length)
                for j, (line, _p, rec, v) in enumerate(part):
                    n = int(mask[j].sum())
                    f.write(json.dumps({
                        "line": line, "task_id": rec["task_id"], "sample": rec.get("sample"), "outcome": v["outcome"],
                        "critic_probs": dict(zip(critic.class_names, [round(x, 6) for x in pooled[j].tolist()],
                                                 strict=True)),
                        "token_probs": [round(x, 6) for x in tp[j, :n].tolist()],
                        "aligned": bool(aligned and "completion_ids" in rec)}) + "\n")
                f.flush()
                bar.update(len(part))
    finally:
        bar.close()
    log(f"critic score: {len(todo)} programs scored ({'aligned with' if aligned else 'NOT aligned with'} the "
        f"actor's tokens) -> {out}")
    return {"scored": len(todo), "kept": len(done), "aligned": aligned, "out": str(out)}


def line_of(rec: dict[str, Any], verdict: dict[str, Any]) -> int:
    return int(verdict["line"])


def flat(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}}`` -> ``{"a.b": 1}``: a resume refusal then names exactly the settings that changed."""
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, dict) and v:
            out.update(flat(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


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
            log: Log = _quiet) -> dict[str, Any]:
    """Supervised fine-tuning on the ground-truth solutions of the training split (CodeRL's warm-up stage)."""
    import torch

    from coderl.rl.checkpoint import (
        check_same_config,
        latest_checkpoint,
        load_training_state,
        save_training_state,
        write_json,
    )
    from coderl.rl.loop import _load_weights
    from coderl.train.sft import train_sft

    out_dir = Path(out or cfg.out_dir / SFT_DIR)
    problems = load_split(cfg)
    pairs = sft_pairs(cfg, problems)
    if not pairs:
        raise StageError(f"no ground-truth solutions in the {cfg.data.train_split!r} split of {cfg.data.dataset!r}: "
                         "nothing to fine-tune on")
    model, tok = load_actor(cfg, for_training=True)
    config = {"sft": asdict(cfg.sft), **flat(cfg.to_dict(), "recipe.")}
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=cfg.sft.lr,
                            weight_decay=cfg.sft.weight_decay)
    start, history = 0, []
    if resume and (ckpt := latest_checkpoint(out_dir)) is not None:
        state = load_training_state(ckpt)
        check_same_config(state["config"], config, ckpt)
        _load_weights(model, ckpt)
        opt.load_state_dict(state["optimizer"])
        start, history = state["step"], state["history"]
        log(f"sft: resuming from {ckpt} (step {start})")
    every = cfg.sft_checkpoint_every

    def on_step(step: int, loss: float) -> None:
        history.append({"step": step, "loss": loss})
        if every and step % every == 0:
            save_training_state(out_dir, step, model, tok, opt, config, history)

    stats = train_sft(model, tok, pairs, cfg.sft, optimizer=opt, progress=progress, on_step=on_step,
                      start_step=start)
    if history and (latest_checkpoint(out_dir) is None or load_training_state(latest_checkpoint(out_dir))["step"]
                    < stats["steps"]):
        save_training_state(out_dir, stats["steps"], model, tok, opt, config, history)
    final = _export_final(model, tok, out_dir, cfg, "sft", stats["steps"])
    write_json(out_dir / "history.json", history)
    log(f"sft: {stats['steps']} steps on {len(pairs)} pairs -> {final}")
    return {"steps": stats["steps"], "pairs": len(pairs), "final": str(final), "resumed_from": start}


def offline_pool(cfg: RecipeConfig, tok, problems: list[Problem], samples: Path, verdicts: Path,
                 baseline_verdicts: Path | None, scored: Path | None):
    """The RL pool from files: sampled tokens, their outcomes and returns, the greedy baseline's return per
    problem (the mean return of the problem's samples when it has no baseline), and critic token weights."""
    from coderl.rl.loop import Rollout
    from coderl.rl.rewards import outcome_reward
    from coderl.tasks.prompt import format_prompt

    rows = labelled_samples(samples, verdicts, problems)
    base: dict[str, float] = {}
    if baseline_verdicts is not None and baseline_verdicts.is_file():
        base = {r["task_id"]: outcome_reward(r["outcome"]) for _, r in _read_records(baseline_verdicts)}
    weights: dict[int, dict[str, Any]] = {}
    if scored is not None:
        _need_file(scored, "critic scores of the samples", "run `coderl critic score` (or set rl.use_critic=false)")
        weights = {r["line"]: r for _, r in _read_records(scored)}
    by_task: dict[str, list[float]] = {}
    for p, _, v in rows:
        by_task.setdefault(p.task_id, []).append(outcome_reward(v["outcome"]))
    prompt_ids = {}
    rollouts = []
    for p, rec, v in rows:
        if "completion_ids" not in rec:
            raise DataError("missing (offline RL trains on the sampled tokens; sample with `coderl sample`)",
                            field="completion_ids", line=int(v["line"]), path=str(samples))
        if p.task_id not in prompt_ids:
            prompt_ids[p.task_id] = list(tok([format_prompt(p)])["input_ids"][0]) or [tok.eos_token_id]
        r = Rollout(p, prompt_ids[p.task_id], list(rec["completion_ids"]), rec["completion"], v["outcome"],
                    outcome_reward(v["outcome"]))
        r.baseline = base.get(p.task_id, sum(by_task[p.task_id]) / len(by_task[p.task_id]))
        w = weights.get(int(v["line"]))
        if scored is not None:
            if w is None:
                raise StageError(f"{scored}: no critic score for line {v['line']} of {samples}; rerun "
                                 "`coderl critic score --resume`")
            if not w.get("aligned", False):
                raise StageError(f"{scored}: the critic's tokenizer differs from the actor's, so its token weights do "
                                 "not line up with the sampled tokens; use a critic with the actor's tokenizer or "
                                 "set rl.use_critic=false")
            r.token_probs = list(w["token_probs"])
        rollouts.append(r)
    return rollouts


def run_rl(cfg: RecipeConfig, out: str | Path | None = None, resume: bool = False, progress: bool = True,
           log: Log = _quiet, samples: str | Path | None = None, verdicts: str | Path | None = None,
           baseline_verdicts: str | Path | None = None, scored: str | Path | None = None,
           critic_dir: str | Path | None = None) -> dict[str, Any]:
    """RL fine-tuning: offline (``rl.mode: offline``, the paper: a fixed pool from the files of the earlier stages)
    or online (sample, execute and, for ``coderl``, weight by the critic every step)."""
    from coderl.models.critic import Critic
    from coderl.rl.checkpoint import write_json
    from coderl.rl.loop import train_rl

    out_dir = Path(out or cfg.out_dir / RL_DIR)
    problems = load_split(cfg)
    model, tok = load_actor(cfg, for_training=True)
    use_critic = cfg.rl.needs_critic
    critic, pool = None, None
    if cfg.rl.mode == "offline":
        s = Path(samples or cfg.out_dir / SAMPLES)
        b = Path(baseline_verdicts) if baseline_verdicts else verdicts_path(cfg.out_dir / BASELINE)
        sc = Path(scored or cfg.out_dir / SCORED) if use_critic else None
        pool = offline_pool(cfg, tok, problems, s, Path(verdicts) if verdicts else verdicts_path(s), b, sc)
        log(f"rl: offline pool of {len(pool)} programs from {s}")
    elif use_critic:
        cdir = Path(critic_dir or cfg.out_dir / CRITIC_DIR)
        if not (cdir / "critic.json").is_file():
            raise StageError(f"{cdir}: no trained critic (online coderl weights tokens by it); run `coderl critic "
                             "train` or set rl.use_critic=false")
        critic = Critic.load(cdir, device=resolve_device(cfg.model.device))
        from coderl.models.tokenizer import load_tokenizer

        if load_tokenizer(cdir).get_vocab() != tok.get_vocab():
            raise StageError(f"{cdir}: the critic's tokenizer differs from the actor's; online token weights need the "
                             "same tokens (use critic.backbone: actor) or set rl.use_critic=false")
    executor = make_executor(cfg) if pool is None else None
    try:
        if executor is not None:
            executor.start()
        history = train_rl(model, tok, problems, executor, cfg.rl, critic=critic, sft_pairs=sft_pairs(cfg, problems),
                           out_dir=out_dir, resume=resume, progress=progress,
                           extra_config=flat(cfg.to_dict(), "recipe."), offline_rollouts=pool)
    finally:
        if executor is not None:
            executor.close()
    final = _export_final(model, tok, out_dir, cfg, "rl", len(history))
    write_json(out_dir / "history.json", history)
    last = history[-1] if history else {}
    log(f"rl: {len(history)} steps ({cfg.rl.mode}, {cfg.rl.algo}); last reward {last.get('reward', float('nan')):+.3f}"
        f" -> {final}")
    return {"steps": len(history), "final": str(final), "mode": cfg.rl.mode, "last": last}


def run_chain(cfg: RecipeConfig, resume: bool = False, progress: bool = True, log: Log = _quiet) -> dict[str, Any]:
    """Everything an RL run needs, in order, each stage skipped when its files are already complete:
    sample -> exec -> critic train -> critic score (offline) -> RL. Earlier stages always reuse their files;
    RL itself continues from its last checkpoint only with ``resume``."""
    use_critic = cfg.rl.needs_critic
    offline = cfg.rl.mode == "offline"
    report: dict[str, Any] = {}
    save_resolved(cfg, cfg.out_dir / "config.yaml")
    if offline or use_critic:
        samples = cfg.out_dir / SAMPLES
        report["sample"] = run_sample(cfg, resume=True, progress=progress, log=log)
        report["exec"] = run_exec(cfg, samples, progress=progress, log=log)
        if cfg.sampling.greedy_baseline:
            report["exec_baseline"] = run_exec(cfg, cfg.out_dir / BASELINE, progress=progress, log=log)
        if use_critic:
            report["critic_train"] = run_critic_train(cfg, resume=True, progress=progress, log=log)
            if offline:
                report["critic_score"] = run_critic_score(cfg, resume=True, progress=progress, log=log)
    report["rl"] = run_rl(cfg, resume=resume, progress=progress, log=log)
    return report


def repair_actor_path(cfg: RecipeConfig) -> str:
    """The actor whose failures the repair model learns to fix: ``repair.actor``, else the run's newest model."""
    if cfg.repair.actor:
        return cfg.repair.actor
    for stage in (RL_DIR, SFT_DIR):
        final = cfg.out_dir / stage / "final"
        if (final / "config.json").is_file():
            return str(final)
    if not cfg.model.path:
        raise StageError("no actor for the repair stage: set repair.actor or model.path, or train one first")
    return cfg.model.path


def run_repair(cfg: RecipeConfig, out: str | Path | None = None, resume: bool = False, progress: bool = True,
               log: Log = _quiet) -> dict[str, Any]:
    """Train critic sampling's repair model: sample the actor on the training split, run the example and hidden
    tests, pair every failure with the nearest passing program (ground truth or a passing sample), fine-tune.
    With ``resume`` a finished repair model is kept as it is."""
    import random

    from coderl.inference.repair import collect_repair_examples, new_repair_model, train_repair, write_pairs
    from coderl.models.actor import save_checkpoint
    from coderl.models.lora import merged
    from coderl.rl.checkpoint import write_json

    r = cfg.repair
    out_dir = Path(out or cfg.out_dir / REPAIR_DIR)
    if resume and (out_dir / "summary.json").is_file() and (out_dir / "final" / "config.json").is_file():
        log(f"repair: {out_dir / 'final'} is complete; kept")
        return json.loads((out_dir / "summary.json").read_text())
    actor_path = repair_actor_path(cfg)
    log(f"repair: actor {actor_path}")
    problems = load_split(cfg)
    if r.max_problems is not None and r.max_problems < len(problems):
        problems = random.Random(r.seed).sample(problems, r.max_problems)
    model, tok = load_actor(cfg, actor_path)
    with make_executor(cfg) as ex:
        examples, counts = collect_repair_examples(
            model, tok, problems, ex, r.samples_per_problem, max_new_tokens=r.max_new_tokens or
            cfg.sampling.max_new_tokens, temperature=r.temperature, seed=r.seed)
    if not examples:
        raise StageError(f"repair: no training pairs ({counts['failures']} failures among {counts['samples']} "
                         "samples had no passing program of the same problem); add ground-truth solutions")
    out_dir.mkdir(parents=True, exist_ok=True)
    write_pairs(out_dir / "pairs.jsonl", examples)
    if r.from_scratch:
        repair = new_repair_model(tok, None, n_positions=r.positions, seed=r.seed)
    elif getattr(model.config, "model_type", None) == "gpt2":
        repair = new_repair_model(tok, model, n_positions=r.positions, seed=r.seed)
    else:  # any other architecture: fine-tune the actor's own weights (sampling is over)
        repair = with_lora(cfg, model)
    del model  # the GPT-2 repair model holds a copy: the actor itself need not stay in memory while it trains
    try:
        hist = train_repair(repair, tok, examples, r.train, progress=progress)
    except ValueError as e:
        raise StageError(f"repair: {e}") from None
    info = {"actor": actor_path, "problems": len(problems), **counts, "steps": hist["steps"],
            "trained_pairs": hist["pairs"], "dropped": hist["dropped"],
            "final_loss": hist["loss"][-1] if hist["loss"] else None}
    final = save_checkpoint(merged(repair), tok, out_dir / "final",
                            extra={"config": cfg.to_dict(), "stage": "repair", **info})
    save_resolved(cfg, out_dir / "config.yaml")
    info["final"] = str(final)
    write_json(out_dir / "summary.json", info)
    log(f"repair: {hist['pairs']} pairs ({hist['dropped']} too long), {hist['steps']} steps -> {final}")
    return info
