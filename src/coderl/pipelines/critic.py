"""The critic's stages: ``coderl critic train`` (on executed samples, checkpointed, retrained when its inputs
change) and ``coderl critic score`` (CodeRL's per-token weights of every sample, matched by content)."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

from coderl.pipelines.inputs import actor_path, load_actor, load_split, make_prompter, resolve_device, same_tokenizer
from coderl.pipelines.recipe import RecipeConfig, save_resolved
from coderl.pipelines.rundir import (
    CRITIC_DIR,
    SAMPLES,
    SCORED,
    Log,
    StageError,
    check_outputs,
    quiet,
    read_records,
    remove_outputs,
    rewrite_records,
    verdicts_path,
)
from coderl.pipelines.sampling import Labelled, labelled_samples
from coderl.tasks.prompt import Prompter
from coderl.utils.fingerprint import content_key
from coderl.utils.paths import output_dir, output_file


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
                     log: Log = quiet, overwrite: bool = False, redo_stale: bool = False) -> dict[str, Any]:
    """Train the critic on executed samples (+ ground-truth solutions as "passed"); save it to ``out``.

    The critic's inputs (its examples, its settings, its backbone's weights) are fingerprinted. ``resume``: a
    critic already trained on the same inputs is kept (or trained on to a larger ``critic.epochs``), an interrupted
    one continues from its last checkpoint (``out/checkpoints/step-N``: every epoch and on Ctrl-C); one made from
    other inputs is refused, or, with ``redo_stale`` (the chain), trained again."""
    from coderl.models.actor import model_fingerprint
    from coderl.models.critic import outcome_label
    from coderl.train.checkpoint import Checkpoints
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
    ckpts = Checkpoints(out, settings, resume=resume and not doomed, log=lambda m: log(f"critic: {m}"))
    try:
        ckpts.found()
    except ValueError:  # checkpoints of other inputs: refused, or (the chain) started over
        if not redo_stale:
            raise
        log(f"critic: the checkpoints in {out} are of other inputs or settings; starting over")
        doomed = [out]
        ckpts = Checkpoints(out, settings, log=lambda m: log(f"critic: {m}"))
    critic, tok = build_critic(cfg, backbone)
    remove_outputs(doomed, "critic train", log if overwrite else quiet)
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


def critic_prompter(cfg: RecipeConfig, actor: str | None = None, log: Log = quiet) -> Prompter:
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
                     progress: bool = True, log: Log = quiet, batch: int = 64, overwrite: bool = False
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
        for _, r in read_records(out):
            if r.get("key") in wanted and r.get("critic") == made_by and r.get("scoring") == scoring:
                kept.setdefault(r["key"], r)
            else:
                stale += 1
    rewrite_records(out, list(kept.values()))
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
