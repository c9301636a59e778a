"""The RL training loop, phase by phase as in the paper:

    1 sample problems → 2 generate programs (+ greedy baselines) → 3 execute → 4 critic weights
    → 5 returns and advantages → 6 update (policy gradient + supervised term) → 7 log → 8 checkpoint

``train_rl`` is the whole loop; each phase is a small function below it. Nothing here is specific to the
demo: any causal or seq2seq policy, any problems with executor tests. The update is the paper's policy
gradient, or, with ``clip_low``, a clipped surrogate over ``epochs`` × ``minibatches`` optimiser steps (PPO,
DAPO, GSPO); the settings and the named algorithms are in :mod:`coderl.rl.config`.
"""

from __future__ import annotations

import copy
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from coderl.models.critic import (
    outcome_label,
    program_token_distributions,
    program_token_probs,
    score_programs,
    token_values,
)
from coderl.models.generate import Completion, SamplingConfig, generate
from coderl.models.logprobs import completion_logprobs
from coderl.models.tokenizer import encode_pairs
from coderl.rl.advantages import greedy_baseline_advantages, group_advantages
from coderl.rl.config import RLConfig
from coderl.rl.losses import (
    aggregate,
    clipped_surrogate_loss,
    critic_weights,
    kl_estimate,
    overlong_penalty,
    policy_gradient_loss,
    truncated_is_weights,
)
from coderl.rl.rewards import CODERL_RETURNS, outcome_rewards
from coderl.sandbox import Executor, Result
from coderl.sandbox.schema import OUTCOME_CLASSES
from coderl.tasks.problem import Problem
from coderl.tasks.prompt import PLAIN, Prompter
from coderl.train.checkpoint import Checkpoints, TrainingState
from coderl.train.critic import OnlineCritic
from coderl.train.precision import Precision, chunks
from coderl.train.sft import sft_loss
from coderl.utils.progress import ProgressBar
from coderl.utils.scalars import ScalarLog
from coderl.utils.seeding import seeded, stream_seed


@dataclass
class Rollout:
    """One sampled program with everything the update needs."""

    problem: Problem
    prompt_ids: list[int]
    completion_ids: list[int]
    text: str  # what problem.program runs: the decoded completion, or the code taken out of a chat reply
    outcome: str = ""
    reward: float = 0.0
    baseline: float = 0.0
    token_probs: list[float] | None = None  # critic's per-token probability of the outcome (given offline pools)
    finished: bool = True  # ended with eos (False: cut at max_new_tokens)
    sampler_logprobs: list[float] | None = None  # log-probabilities of its tokens under the sampler


def train_rl(policy, tokenizer, problems: Sequence[Problem], executor: Executor, cfg: RLConfig,
             critic=None, sft_pairs: Sequence[tuple[str, str]] = (), out_dir: str | Path | None = None,
             resume: bool = False, progress: bool = True, extra_config: dict[str, Any] | None = None,
             offline_rollouts: Sequence[Rollout] | None = None, rollout_backend=None,
             should_stop: Callable[[], bool] | None = None, wandb_project: str | None = None,
             prompter: Prompter = PLAIN) -> list[dict]:
    """Fine-tune ``policy`` in place with RL on ``problems``; returns the per-step history.

    ``critic`` (coderl.models.critic.Critic, n_classes 4) weights tokens when ``cfg.algo == "coderl"`` and
    ``cfg.critic_weighted``. ``sft_pairs`` (prompt text, program) feed the supervised term. With ``out_dir``,
    resumable checkpoints and tensorboard scalars (and wandb ones with ``wandb_project``) go there; ``resume``
    continues from the newest checkpoint, also one of a finished run when ``cfg.steps`` is now larger.
    ``offline_rollouts`` (mode "offline"): a pool already sampled, executed and critic-scored by earlier stages
    (outcome, reward, baseline and ``token_probs`` set), used instead of sampling one here.
    ``rollout_backend`` (e.g. coderl.scale.ray_rollout.RayRollouts) takes over phases 2-3 of online steps: its
    ``rollouts(policy, batch, cfg, seed, executor)`` returns executed rollouts and its ``last_stats`` join the
    step's record; ``executor`` may be any object with ``run(requests)`` (e.g. coderl.scale.RayExecutor).
    ``should_stop()`` is asked after every step; when it says so, a checkpoint is saved and the run returns.
    ``prompter`` puts problems to the policy and takes the programs out of its replies (``sft_pairs`` are expected
    in its format).

    Every step draws from its own seeded streams (problems, sampling, supervised pairs and dropout masks), so
    two runs of one config are identical and a resumed run continues exactly as the uninterrupted one.
    """
    if cfg.needs_critic and critic is None and offline_rollouts is None:
        raise ValueError(f"algo={cfg.algo!r} with use_critic={cfg.use_critic}, critic_online_lr={cfg.critic_online_lr} "
                         "needs a trained critic (or set use_critic=False)")
    if prompter.chat and rollout_backend is not None:
        raise ValueError("a rollout backend samples with the plain prompt format; chat prompts need the local one")
    config = {"rl": cfg.to_dict(), **(extra_config or {})}
    opt = torch.optim.AdamW(policy.parameters(), lr=cfg.lr, weight_decay=0.0)
    online = OnlineCritic(critic, cfg.critic_online_lr, precision=cfg.precision) if cfg.critic_online_lr > 0 else None
    ckpts = (Checkpoints(out_dir, config, cfg.checkpoint_every, resume).attach(policy, tokenizer, opt)
             if out_dir is not None else None)
    state = ckpts.resume() if ckpts is not None else TrainingState()
    if online is not None and state.checkpoint is not None:  # the critic as RL had updated it, not as it was given
        online.load_state_dict(state.extra["online_critic"])
    sft_data = (list(zip(*encode_pairs(tokenizer, [p for p, _ in sft_pairs], [c for _, c in sft_pairs]), strict=True))
                if sft_pairs and cfg.sft_weight > 0 else [])
    device = next(policy.parameters()).device
    pool = None
    if cfg.mode == "offline":
        pool = OfflinePool(sample_offline_pool(policy, tokenizer, problems, executor, cfg, critic, prompter)
                           if offline_rollouts is None else offline_rollouts, cfg)
    amp = Precision(cfg.precision, device)  # one per run: fp16's loss scale persists
    reference = Reference(policy) if cfg.kl_coef > 0 else None
    writer = ScalarLog(out_dir, wandb_project, "rl", config) if out_dir is not None else None
    t0 = time.monotonic()
    bar = ProgressBar(cfg.steps, "rl", progress, unit="step", start=state.step)
    try:
        for step in range(state.step, cfg.steps):
            if cfg.time_budget_s is not None and time.monotonic() - t0 >= cfg.time_budget_s:
                break
            rng = random.Random(stream_seed(cfg.seed, step))
            t_step = time.monotonic()
            with seeded(stream_seed(cfg.seed, step), device):  # dropout masks (and any other torch draw)
                record = _step(policy, tokenizer, problems, executor, cfg, critic, sft_data, pool, opt, amp, rng,
                               rollout_backend, step, reference, online, prompter)
            record["seconds"] = time.monotonic() - t_step
            if writer is not None:
                log_scalars(writer, record)
            state.history.append(record)
            state.step = step + 1
            bar.update(1, f"reward {record['reward']:+.3f} pass {record['pass_rate']:.2f} "
                          f"loss {record['loss_pg'] + cfg.sft_weight * record['loss_sft']:.4f}",
                       tokens=record["tokens"])
            # 8: checkpoint
            stop = should_stop is not None and should_stop()
            if ckpts is not None:
                state.extra = {} if online is None else {"online_critic": online.state_dict()}
                ckpts.after_step(state, stop)
            if stop:
                break
    finally:
        bar.close()
        if writer is not None:
            writer.close()
    if ckpts is not None:
        ckpts.finish(state)
    policy.eval()
    return state.history


def _step(policy, tokenizer, problems: Sequence[Problem], executor: Executor, cfg: RLConfig, critic,
          sft_data: list[tuple[list[int], list[int]]], pool: OfflinePool | None, opt: torch.optim.Optimizer,
          amp: Precision, rng: random.Random, rollout_backend, step: int, reference: Reference | None = None,
          online: OnlineCritic | None = None, prompter: Prompter = PLAIN) -> dict[str, Any]:
    """Phases 1-7 of one step; returns its history record."""
    # 1-5: a batch of rollouts with outcomes, returns, baselines and token weights
    extra: dict[str, float] = {}
    if pool is None:
        batch, rollouts, gen_stats = generate_and_execute(  # 1-3
            policy, tokenizer, problems, executor, cfg, rng, rollout_backend, critic, prompter)
        extra.update(gen_stats)
        if cfg.algo == "coderl":
            add_greedy_baselines(policy, tokenizer, batch, executor, rollouts, cfg, prompter)
        weights = token_weights(critic, tokenizer, rollouts, cfg)  # 4
        values = critic_values(critic, tokenizer, rollouts) if cfg.algo == "actor-critic" else None
    else:
        (rollouts, weights), values = pool.draw(cfg.problems_per_step * cfg.samples_per_problem, rng), None
    extra.update(shape_returns(policy, tokenizer, rollouts, cfg, reference, amp))  # 5
    adv = advantages(rollouts, cfg, values)
    # 6: update (the policy, then the critic on this step's verdicts: next step's weights and values)
    stats = update(policy, opt, tokenizer, rollouts, adv, weights, sft_data, cfg, rng, amp, reference)
    if online is not None and rollouts:
        stats["critic_loss"] = online.step([r.prompt_ids for r in rollouts], [r.completion_ids for r in rollouts],
                                           [outcome_label(r.outcome, critic.n_classes) for r in rollouts],
                                           tokenizer.pad_token_id)
    record = log_step(step + 1, rollouts, adv, {**stats, **extra})  # 7
    record.update(getattr(rollout_backend, "last_stats", None) or {})
    return record


# -- phases -------------------------------------------------------------------------------------------------

def sample_problems(problems: Sequence[Problem], n: int, rng: random.Random) -> list[Problem]:
    """1. Draw ``n`` problems (without replacement when there are enough)."""
    return rng.sample(list(problems), n) if n <= len(problems) else [rng.choice(problems) for _ in range(n)]


def rollout(policy, tokenizer, batch: Sequence[Problem], cfg: RLConfig, seed: int, n: int | None = None,
            greedy: bool = False, prompter: Prompter = PLAIN) -> list[Rollout]:
    """2. Sample ``n`` (default ``cfg.samples_per_problem``) programs per problem; rollouts are grouped by problem.
    ``prompter`` makes the prompts and takes each program out of its reply."""
    n = 1 if greedy else (n or cfg.samples_per_problem)
    sampling = SamplingConfig(max_new_tokens=cfg.max_new_tokens, temperature=cfg.temperature, top_p=cfg.top_p,
                              greedy=greedy, seed=seed)
    policy.eval()
    with torch.no_grad():
        outs: list[list[Completion]] = generate(policy, tokenizer, [prompter(p) for p in batch], n, sampling,
                                                with_logprobs=True)
    return [Rollout(p, c.prompt_ids, c.token_ids, prompter.completion(p, c.text), finished=c.finished,
                    sampler_logprobs=c.logprobs) for p, cs in zip(batch, outs, strict=True) for c in cs]


def generate_and_execute(policy, tokenizer, problems: Sequence[Problem], executor: Executor, cfg: RLConfig,
                         rng: random.Random, rollout_backend=None, critic=None, prompter: Prompter = PLAIN
                         ) -> tuple[list[Problem], list[Rollout], dict[str, float]]:
    """1-3: problems, their executed rollouts (grouped by problem), and the shares of groups dropped and of
    programs the critic filtered out.

    With ``dynamic_sampling`` (DAPO), groups whose programs all got the same return carry no signal for a
    group baseline: they are dropped and more problems drawn, up to ``dynamic_max_rounds`` extra rounds. With
    ``critic_filter``, programs the critic judges unlikely to pass are not executed (:func:`critic_prefilter`)."""
    k, want = cfg.samples_per_problem, cfg.problems_per_step
    kept_batch: list[Problem] = []
    kept: list[Rollout] = []
    drawn = dropped = filtered = generated = 0
    used: set[int] = set()
    for _round in range(1 + (cfg.dynamic_max_rounds if cfg.dynamic_sampling else 0)):
        pool = [p for p in problems if id(p) not in used] or list(problems)
        batch = sample_problems(pool, want - len(kept_batch), rng)  # 1
        used.update(id(p) for p in batch)
        if rollout_backend is None:
            rollouts = rollout(policy, tokenizer, batch, cfg, seed=rng.randrange(2**31), prompter=prompter)  # 2
            to_run = critic_prefilter(critic, tokenizer, rollouts, cfg.critic_filter) if cfg.critic_filter else rollouts
            filtered += len(rollouts) - len(to_run)
            generated += len(rollouts)
            execute(executor, to_run)  # 3
        else:  # 2-3 on separate generation workers, execution overlapped with generation
            rollouts = rollout_backend.rollouts(policy, batch, cfg, rng.randrange(2**31), executor)
        drawn += len(batch)
        for g, p in enumerate(batch):
            group = rollouts[g * k:(g + 1) * k]
            if cfg.dynamic_sampling and len({r.reward for r in group}) == 1:
                dropped += 1
                continue
            kept_batch.append(p)
            kept += group
        if not cfg.dynamic_sampling or len(kept_batch) >= want:
            break
    stats = {"dropped_groups": dropped / max(1, drawn)}
    if cfg.critic_filter:
        stats["critic_filtered"] = filtered / max(1, generated)
    return kept_batch, kept, stats


def critic_prefilter(critic, tokenizer, rollouts: Sequence[Rollout], threshold: float) -> list[Rollout]:
    """2b. The rollouts worth executing: those the critic gives a probability of passing of at least
    ``threshold``. The others get the failing outcome the critic finds most likely, and its return."""
    if not rollouts:
        return []
    probs = score_programs(critic, [r.prompt_ids for r in rollouts], [r.completion_ids for r in rollouts],
                           tokenizer.pad_token_id)
    passed = outcome_label("passed", critic.n_classes)
    names = list(critic.class_names)
    run = []
    for r, p in zip(rollouts, probs, strict=True):
        if float(p[passed]) >= threshold:
            run.append(r)
            continue
        failing = p.clone()
        failing[passed] = -1.0
        cls = names[int(failing.argmax())]
        r.outcome = cls if cls in CODERL_RETURNS else "failed_test"  # a 2-class critic's "failed": a test failed
        r.reward = outcome_rewards([r.outcome])[0]
    return run


def execute(executor: Executor, rollouts: Sequence[Rollout]) -> list[Result]:
    """3. Run every program against its problem's hidden tests; set outcome and return."""
    reqs = [r.problem.request(str(i), r.problem.program(r.text)) for i, r in enumerate(rollouts)]
    results = executor.run(reqs)
    for r, res, rew in zip(rollouts, results, outcome_rewards(x.outcome for x in results), strict=True):
        r.outcome, r.reward = res.outcome, rew
    return results


def add_greedy_baselines(policy, tokenizer, batch: Sequence[Problem], executor: Executor,
                         rollouts: Sequence[Rollout], cfg: RLConfig, prompter: Prompter = PLAIN) -> None:
    """CodeRL's baseline: the return of the greedy program for the same problem."""
    greedy = rollout(policy, tokenizer, batch, cfg, seed=0, greedy=True, prompter=prompter)
    execute(executor, greedy)
    by_id = {id(g.problem): g.reward for g in greedy}
    for r in rollouts:
        r.baseline = by_id[id(r.problem)]


def token_weights(critic, tokenizer, rollouts: Sequence[Rollout], cfg: RLConfig) -> torch.Tensor | None:
    """4. The critic's per-token probability of each program's actual outcome, (B, T) aligned with the
    completion tokens; None when tokens are not weighted."""
    if not cfg.critic_weighted or critic is None or not rollouts:
        return None
    probs, mask = program_token_probs(critic, [r.prompt_ids for r in rollouts], [r.completion_ids for r in rollouts],
                                      [outcome_label(r.outcome, critic.n_classes) for r in rollouts],
                                      tokenizer.pad_token_id)
    return critic_weights(probs, mask, cfg.critic_floor)


def shape_returns(policy, tokenizer, rollouts: Sequence[Rollout], cfg: RLConfig, reference: Reference | None,
                  amp: Precision) -> dict[str, float]:
    """5a. What the returns get besides the outcome: DAPO's overlong penalty, the KL penalty as a reward."""
    out: dict[str, float] = {}
    if cfg.overlong == "penalty" and rollouts:
        pen = overlong_penalty(torch.tensor([len(r.completion_ids) for r in rollouts]),
                               torch.tensor([r.finished for r in rollouts]), cfg.max_new_tokens, cfg.overlong_cache)
        for r, p in zip(rollouts, pen.tolist(), strict=True):
            r.reward += p
        out["overlong_penalty"] = float(pen.mean())
    if reference is not None and cfg.kl_penalty == "reward" and rollouts:
        idx = list(range(len(rollouts)))
        logp, mask = _logprobs(policy, tokenizer, rollouts, idx, amp)
        ref, _ = reference.logprobs(tokenizer, rollouts, idx, amp)
        kl = (kl_estimate(logp, ref, mask, cfg.kl_estimator) * mask).sum(dim=1)
        for r, v in zip(rollouts, kl.tolist(), strict=True):
            r.reward -= cfg.kl_coef * v
        out["kl"] = float(kl.mean())
    return out


def critic_values(critic, tokenizer, rollouts: Sequence[Rollout]) -> torch.Tensor:
    """4b. (B, T) the critic's expected return after each program token (the actor-critic baseline)."""
    if critic.n_classes != len(OUTCOME_CLASSES) or list(critic.class_names) != list(OUTCOME_CLASSES):
        raise ValueError("algo='actor-critic' needs a 4-class critic (its expected return uses the four returns)")
    dist, _, seen = program_token_distributions(critic, [r.prompt_ids for r in rollouts],
                                                [r.completion_ids for r in rollouts], tokenizer.pad_token_id)
    return token_values(dist, seen, [CODERL_RETURNS[c] for c in OUTCOME_CLASSES])


def advantages(rollouts: Sequence[Rollout], cfg: RLConfig, values: torch.Tensor | None = None) -> torch.Tensor:
    """5b. Advantages: (B,) greedy baseline (coderl) or group baseline (grpo; rollouts grouped by problem), or
    (B, T) return minus the critic's value after each token (actor-critic, ``values``); zero for programs cut at
    max_new_tokens with ``overlong="filter"``."""
    rewards = torch.tensor([r.reward for r in rollouts])
    if cfg.algo == "actor-critic":
        if values is None:
            raise ValueError("algo='actor-critic' needs the critic's values")
        mask = torch.zeros_like(values)
        for b, r in enumerate(rollouts):
            mask[b, : len(r.completion_ids)] = 1.0
        adv = (rewards[:, None] - values) * mask
    elif cfg.algo == "coderl":
        adv = greedy_baseline_advantages(rewards, torch.tensor([r.baseline for r in rollouts]))
    else:
        k = cfg.samples_per_problem
        adv = group_advantages(rewards.view(-1, k), leave_one_out=cfg.leave_one_out,
                               scale_by_std=cfg.group_std).view(-1)
    if cfg.overlong == "filter":
        keep = torch.tensor([float(r.finished) for r in rollouts])
        adv = adv * (keep if adv.dim() == 1 else keep[:, None])
    return adv


def update(policy, opt: torch.optim.Optimizer, tokenizer, rollouts: Sequence[Rollout], adv: torch.Tensor,
           weights: torch.Tensor | None, sft_data: list[tuple[list[int], list[int]]], cfg: RLConfig,
           rng: random.Random, amp: Precision | None = None, reference: Reference | None = None) -> dict[str, float]:
    """6. ``cfg.epochs`` passes of ``cfg.minibatches`` optimiser steps over the batch (one step by default), each
    on the policy loss plus ``sft_weight`` × cross-entropy on supervised pairs (plus the KL term).

    Each step's loss is its part's aggregate over *all* its programs (zero-advantage ones add nothing to the sum
    but count in the denominator), so one step over the whole batch is the whole batch's loss for every
    ``normalize``. A part is further split into ``cfg.grad_accum`` micro-batches whose gradients add up to the
    part's. With importance ratios (``clip_low``) the old log-probabilities are the policy's before the first
    step, and every pass runs without dropout, so that the first step's ratios are exactly 1."""
    amp = amp or Precision(cfg.precision, next(policy.parameters()).device)
    n = len(rollouts)
    kl_loss = reference is not None and cfg.kl_penalty == "loss"
    active = {i for i in range(n) if bool(adv[i].abs().sum() != 0) or kl_loss}  # zero advantage: no gradient
    ordered = sorted(active)
    old = (_logprobs(policy, tokenizer, rollouts, ordered, amp)[0] if ordered and (cfg.uses_ratios or cfg.tis_cap)
           else None)
    ref = reference.logprobs(tokenizer, rollouts, ordered, amp)[0] if ordered and kl_loss else None
    row = {i: r for r, i in enumerate(ordered)}
    sampler = _sampler_logprobs(rollouts, ordered, required=bool(cfg.tis_cap)) if old is not None else None
    stats = {"loss_pg": 0.0, "loss_sft": 0.0, "clip_frac": 0.0, "kl_loss": 0.0}
    if sampler is not None and ordered:  # how far the sampler's numbers are from the trainer's, per token
        real = torch.zeros_like(old)
        for r, i in enumerate(ordered):
            real[r, : len(rollouts[i].completion_ids)] = 1.0
        stats["sampler_mismatch"] = float(((old - sampler).abs() * real).sum() / real.sum().clamp_min(1))
    is_cap = cfg.tis_cap if sampler is not None else None
    order = list(range(n))
    steps = 0
    for _epoch in range(cfg.epochs):
        if cfg.minibatches > 1:
            rng.shuffle(order)
        for part in chunks(order, cfg.minibatches) or [[]]:  # an empty batch still takes the supervised step
            sizes = {"n_sequences": len(part), "n_tokens": float(sum(len(rollouts[i].completion_ids) for i in part)),
                     "constant": cfg.max_new_tokens}
            live = [i for i in part if i in active]

            def part_loss(micro: list[int], sizes: dict[str, Any] = sizes) -> torch.Tensor:
                logp, mask = completion_logprobs(policy, [rollouts[i].prompt_ids for i in micro],
                                                 [rollouts[i].completion_ids for i in micro], tokenizer.pad_token_id)
                t = logp.shape[1]
                rows = [row[i] for i in micro]
                a = adv[micro] if adv.dim() == 1 else adv[micro, :t]
                w = None if weights is None else weights[micro, :t]
                is_w = None if is_cap is None else truncated_is_weights(old[rows, :t], sampler[rows, :t], mask, is_cap)
                if cfg.uses_ratios:
                    loss, clipped = clipped_surrogate_loss(logp, old[rows, :t], mask, a, cfg.clip_low, cfg.clip_high,
                                                           w, cfg.ratio_level, cfg.normalize, is_w, **sizes)
                    stats["clip_frac"] += clipped * len(micro)
                else:
                    ww = is_w if w is None else (w if is_w is None else w * is_w)
                    loss = policy_gradient_loss(logp, mask, a, ww, cfg.normalize, **sizes)
                stats["loss_pg"] += loss.item()
                if ref is not None:
                    kl = aggregate(kl_estimate(logp, ref[rows, :t], mask, cfg.kl_estimator), mask, cfg.normalize,
                                   **sizes)
                    loss = loss + cfg.kl_coef * kl
                    stats["kl_loss"] += kl.item()
                return loss

            opt.zero_grad(set_to_none=True)
            policy.train(not cfg.uses_ratios)
            amp.accumulate(live, cfg.grad_accum, part_loss)
            stats["loss_sft"] += _sft_term(policy, tokenizer, sft_data, cfg, rng, amp)
            if live or sft_data:
                amp.step(opt, policy.parameters(), cfg.grad_clip)
                steps += 1
    policy.eval()
    per_step = max(1, steps)
    stats["clip_frac"] /= max(1, len(active) * cfg.epochs)
    for k in ("loss_pg", "loss_sft", "kl_loss"):
        stats[k] /= per_step
    return stats


def _sft_term(policy, tokenizer, sft_data: list[tuple[list[int], list[int]]], cfg: RLConfig, rng: random.Random,
              amp: Precision) -> float:
    """Backpropagate ``sft_weight`` × the cross-entropy of ``sft_batch`` supervised pairs (in micro-batches)."""
    if not sft_data:
        return 0.0
    pairs = [sft_data[rng.randrange(len(sft_data))] for _ in range(cfg.sft_batch)]
    s_tok = sum(len(c) for _, c in pairs)

    total = 0.0

    def part_loss(part: list[tuple[list[int], list[int]]]) -> torch.Tensor:
        nonlocal total
        logp, mask = completion_logprobs(policy, [p for p, _ in part], [c for _, c in part], tokenizer.pad_token_id)
        s = sft_loss(logp, mask) * (mask.sum().item() / max(1, s_tok))  # token-weighted share of the batch's loss
        total += s.item()
        return cfg.sft_weight * s

    policy.train(not cfg.uses_ratios)
    amp.accumulate(pairs, cfg.grad_accum, part_loss)
    return total


def _logprobs(model, tokenizer, rollouts: Sequence[Rollout], idx: list[int], amp: Precision
              ) -> tuple[torch.Tensor, torch.Tensor]:
    """(len(idx), T) log-probabilities and mask of the programs ``idx``, without gradient and without dropout."""
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), amp.autocast():
            logp, mask = completion_logprobs(model, [rollouts[i].prompt_ids for i in idx],
                                             [rollouts[i].completion_ids for i in idx], tokenizer.pad_token_id)
    finally:
        model.train(was_training)
    return logp.float(), mask


def _sampler_logprobs(rollouts: Sequence[Rollout], idx: list[int], required: bool) -> torch.Tensor | None:
    """(len(idx), T) the sampler's log-probabilities; None when some are missing (an error when ``required``)."""
    t = max(1, max((len(rollouts[i].completion_ids) for i in idx), default=1))
    out = torch.zeros((len(idx), t))
    for r, i in enumerate(idx):
        lp = rollouts[i].sampler_logprobs
        if lp is None or len(lp) != len(rollouts[i].completion_ids):
            if not required:
                return None
            raise ValueError("tis_cap needs the sampler's log-probability of every token; this generation backend did "
                             "not record them (set rl.tis_cap: null)")
        out[r, : len(lp)] = torch.tensor(lp, dtype=torch.float32)
    return out


class Reference:
    """The frozen initial policy of the KL penalty: a copy of the weights, or, for a LoRA model, the same model
    with its adapters switched off (no second copy in memory)."""

    def __init__(self, policy):
        from coderl.models.lora import is_lora

        self._policy = policy
        self._copy = None
        if not is_lora(policy):
            self._copy = copy.deepcopy(policy).eval()
            for p in self._copy.parameters():
                p.requires_grad_(False)

    @property
    def holds_copy(self) -> bool:
        """True when the reference is a second copy of the weights (not for a LoRA policy)."""
        return self._copy is not None

    def logprobs(self, tokenizer, rollouts: Sequence[Rollout], idx: list[int], amp: Precision
                 ) -> tuple[torch.Tensor, torch.Tensor]:
        if self._copy is not None:
            return _logprobs(self._copy, tokenizer, rollouts, idx, amp)
        with self._policy.disable_adapter():
            return _logprobs(self._policy, tokenizer, rollouts, idx, amp)


def log_step(step: int, rollouts: Sequence[Rollout], adv: torch.Tensor, stats: dict[str, float]) -> dict[str, Any]:
    """7. One history record (the caller adds the step's seconds): returns, pass rate, outcome mix, tokens, and the
    update's statistics (losses; with ratios the share of clipped tokens; the KL; the sampler/trainer mismatch; the
    shares of groups dropped and of programs filtered)."""
    n = max(1, len(rollouts))
    mix = {o: sum(r.outcome == o for r in rollouts) / n
           for o in ("compile_error", "runtime_error", "failed_test", "passed")}
    return {"step": step, "reward": sum(r.reward for r in rollouts) / n, "pass_rate": mix["passed"],
            "adv_abs": adv.abs().mean().item() if len(adv) else 0.0, **stats,
            "tokens": sum(len(r.completion_ids) for r in rollouts), "outcomes": mix}


def log_scalars(writer: ScalarLog, rec: dict[str, Any]) -> None:
    """A step's record as tensorboard (and wandb) scalars: every number in it, and the outcome mix."""
    for k, v in rec.items():
        if isinstance(v, float | int) and k != "step":
            writer.add_scalar(f"rl/{k}", v, rec["step"])
    for o, v in rec["outcomes"].items():
        writer.add_scalar(f"rl/outcome_{o}", v, rec["step"])


# -- helpers ------------------------------------------------------------------------------------------------

class OfflinePool:
    """The paper's offline setting: programs sampled once from the initial policy and labelled once (outcome,
    reward, baseline and, for token weights, the critic's ``token_probs``), from which every step draws its batch.

    The one place a pool is made, whichever way its programs came: sampled here (:func:`sample_offline_pool`), or
    read from the files of the recipe's earlier stages (``coderl.pipelines``: samples, verdicts, critic scores)."""

    def __init__(self, rollouts: Sequence[Rollout], cfg: RLConfig):
        if not rollouts:
            raise ValueError("offline RL got an empty pool of scored programs")
        self.rollouts, self.weights = list(rollouts), None
        if not cfg.critic_weighted:
            return
        t = max(1, max(len(r.completion_ids) for r in rollouts))
        probs, mask = torch.ones((len(rollouts), t)), torch.zeros((len(rollouts), t))
        for b, r in enumerate(rollouts):
            if r.token_probs is None or len(r.token_probs) != len(r.completion_ids):
                raise ValueError(f"program {b} of {r.problem.task_id} has no critic weight per token; score the pool "
                                 "with the critic first (coderl critic score) or set rl.use_critic=false")
            probs[b, : len(r.token_probs)] = torch.tensor(r.token_probs, dtype=torch.float32)
            mask[b, : len(r.completion_ids)] = 1.0
        self.weights = critic_weights(probs, mask, cfg.critic_floor)

    def __len__(self) -> int:
        return len(self.rollouts)

    def draw(self, n: int, rng: random.Random) -> tuple[list[Rollout], torch.Tensor | None]:
        idx = rng.sample(range(len(self.rollouts)), min(n, len(self.rollouts)))
        batch = [self.rollouts[i] for i in idx]
        if self.weights is None:
            return batch, None
        t = max(len(r.completion_ids) for r in batch)
        return batch, self.weights[idx, :t]


def sample_offline_pool(policy, tokenizer, problems: Sequence[Problem], executor: Executor, cfg: RLConfig,
                        critic=None, prompter: Prompter = PLAIN) -> list[Rollout]:
    """An offline pool's programs, made in-process: ``cfg.offline_samples_per_problem`` samples of every problem,
    executed, each with its problem's greedy program's return as baseline and, with ``cfg.critic_weighted``, the
    critic's per-token probability of its outcome."""
    rollouts = rollout(policy, tokenizer, problems, cfg, seed=cfg.seed, n=cfg.offline_samples_per_problem,
                       prompter=prompter)
    execute(executor, rollouts)
    add_greedy_baselines(policy, tokenizer, problems, executor, rollouts, cfg, prompter)
    if cfg.critic_weighted and critic is not None and rollouts:
        probs, mask = program_token_probs(critic, [r.prompt_ids for r in rollouts],
                                          [r.completion_ids for r in rollouts],
                                          [outcome_label(r.outcome, critic.n_classes) for r in rollouts],
                                          tokenizer.pad_token_id)
        for b, r in enumerate(rollouts):
            r.token_probs = probs[b, : int(mask[b].sum())].tolist()
    return rollouts
