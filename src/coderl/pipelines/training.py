"""The training stages: SFT, RL (offline from the earlier stages' files, or online), the chain of stages an RL
run needs, and the repair model of critic sampling. Each checkpoints through
:class:`coderl.train.checkpoint.Checkpoints` and exports ``final/``."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

from coderl.pipelines.critic import critic_fingerprint, run_critic_score, run_critic_train, score_key
from coderl.pipelines.inputs import (
    actor_path,
    load_actor,
    load_split,
    log_long_prompts,
    log_step_memory,
    make_executor,
    make_prompter,
    resolve_device,
    sft_pairs,
    token_lengths,
    with_lora,
)
from coderl.pipelines.recipe import RecipeConfig, save_resolved
from coderl.pipelines.rundir import (
    BASELINE,
    CRITIC_DIR,
    REPAIR_DIR,
    RL_DIR,
    SAMPLES,
    SCORED,
    SFT_DIR,
    Log,
    StageError,
    check_outputs,
    need_file,
    quiet,
    read_records,
    remove_outputs,
    verdicts_path,
)
from coderl.pipelines.sampling import labelled_samples, run_exec, run_sample
from coderl.tasks.problem import DataError, Problem
from coderl.utils.fingerprint import content_key
from coderl.utils.paths import output_dir, output_file


def _export_final(model, tok, out_dir: Path, cfg: RecipeConfig, stage: str, steps: int) -> Path:
    from coderl.models.actor import save_checkpoint
    from coderl.models.lora import merged

    path = save_checkpoint(merged(model), tok, out_dir / "final",
                           extra={"config": cfg.to_dict(), "stage": stage, "step": steps})
    save_resolved(cfg, out_dir / "config.yaml")
    return path


def run_sft(cfg: RecipeConfig, out: str | Path | None = None, resume: bool = False, progress: bool = True,
            log: Log = quiet, overwrite: bool = False) -> dict[str, Any]:
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
        need_file(baseline[0], "greedy baseline programs", "run `coderl sample` (sampling.greedy_baseline: true "
                   "writes them) or set sampling.greedy_baseline: false for the mean of the samples")
        need_file(baseline[1], "verdicts of the greedy baseline", "run `coderl train --stage rl`, which executes "
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
        need_file(scored, "critic scores of the samples", "run `coderl critic score` (or set rl.use_critic=false)")
        made_by = critic_fingerprint(critic_dir) if critic_dir is not None and critic_dir.is_dir() else ""
        weights = {r["key"]: r for _, r in read_records(scored) if r.get("key") and r.get("critic") == made_by}
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
           log: Log = quiet, samples: str | Path | None = None, verdicts: str | Path | None = None,
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


def run_chain(cfg: RecipeConfig, resume: bool = False, progress: bool = True, log: Log = quiet,
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


def repair_actor_path(cfg: RecipeConfig, log: Log = quiet) -> str:
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
               log: Log = quiet, overwrite: bool = False) -> dict[str, Any]:
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
    from coderl.train.checkpoint import Checkpoints, write_json
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
    ckpts = Checkpoints(out_dir, config, cfg.sft_checkpoint_every, resume, log=lambda m: log(f"repair: {m}"))
    # An interrupted run's pairs are reused only with its checkpoint, which vouches that they are of this actor
    # and these settings (a checkpoint of others is refused here).
    reuse = pairs_file.is_file() and ckpts.found() is not None
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
