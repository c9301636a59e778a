"""The RL training loop, phase by phase as in the paper:

    1 sample problems → 2 generate programs (+ greedy baselines) → 3 execute → 4 critic weights
    → 5 returns and advantages → 6 update (policy gradient + supervised term) → 7 log → 8 checkpoint

``train_rl`` is the whole loop; each phase is a small function below it. Nothing here is specific to the
demo: any causal or seq2seq policy, any problems with executor tests.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from coderl.models.critic import outcome_label, program_token_probs
from coderl.models.generate import Completion, SamplingConfig, generate
from coderl.models.logprobs import completion_logprobs
from coderl.models.precision import Precision, chunks
from coderl.rl.advantages import greedy_baseline_advantages, group_advantages
from coderl.rl.checkpoint import resume_actor, save_training_state
from coderl.rl.config import RLConfig
from coderl.rl.losses import critic_weights, policy_gradient_loss, sft_loss
from coderl.rl.rewards import outcome_rewards
from coderl.sandbox import Executor, Result
from coderl.tasks.problem import Problem
from coderl.tasks.prompt import format_prompt
from coderl.train.sft import encode_pairs
from coderl.utils.progress import ProgressBar
from coderl.utils.scalars import ScalarLog
from coderl.utils.seeding import seeded, stream_seed


@dataclass
class Rollout:
    """One sampled program with everything the update needs."""

    problem: Problem
    prompt_ids: list[int]
    completion_ids: list[int]
    text: str
    outcome: str = ""
    reward: float = 0.0
    baseline: float = 0.0
    token_probs: list[float] | None = None  # critic's per-token probability of the outcome (given offline pools)


def train_rl(policy, tokenizer, problems: Sequence[Problem], executor: Executor, cfg: RLConfig,
             critic=None, sft_pairs: Sequence[tuple[str, str]] = (), out_dir: str | Path | None = None,
             resume: bool = False, progress: bool = True, extra_config: dict[str, Any] | None = None,
             offline_rollouts: Sequence[Rollout] | None = None, rollout_backend=None,
             should_stop: Callable[[], bool] | None = None, wandb_project: str | None = None) -> list[dict]:
    """Fine-tune ``policy`` in place with RL on ``problems``; returns the per-step history.

    ``critic`` (coderl.models.critic.Critic, n_classes 4) weights tokens when ``cfg.algo == "coderl"`` and
    ``cfg.use_critic``. ``sft_pairs`` (prompt text, program) feed the supervised term. With ``out_dir``,
    resumable checkpoints and tensorboard scalars (and wandb ones with ``wandb_project``) go there; ``resume``
    continues from the newest checkpoint, also one of a finished run when ``cfg.steps`` is now larger.
    ``offline_rollouts`` (mode "offline"): a pool already sampled, executed and critic-scored by earlier stages
    (outcome, reward, baseline and ``token_probs`` set), used instead of sampling one here.
    ``rollout_backend`` (e.g. coderl.scale.ray_rollout.RayRollouts) takes over phases 2-3 of online steps: its
    ``rollouts(policy, batch, cfg, seed, executor)`` returns executed rollouts and its ``last_stats`` join the
    step's record; ``executor`` may be any object with ``run(requests)`` (e.g. coderl.scale.RayExecutor).
    ``should_stop()`` is asked after every step; when it says so, a checkpoint is saved and the run returns.

    Every step draws from its own seeded streams (problems, sampling, supervised pairs and dropout masks), so
    two runs of one config are identical and a resumed run continues exactly as the uninterrupted one.
    """
    if cfg.algo == "coderl" and cfg.use_critic and critic is None and offline_rollouts is None:
        raise ValueError("algo='coderl' with use_critic=True needs a trained critic (or set use_critic=False)")
    config = {"rl": cfg.to_dict(), **(extra_config or {})}
    opt = torch.optim.AdamW(policy.parameters(), lr=cfg.lr, weight_decay=0.0)
    history: list[dict] = []
    start = 0
    if resume and out_dir is not None:
        start, history, _ = resume_actor(out_dir, policy, opt, config)
    sft_data = encode_pairs(tokenizer, sft_pairs) if sft_pairs and cfg.sft_weight > 0 else []
    device = next(policy.parameters()).device
    pool = None
    if cfg.mode == "offline":
        pool = (_offline_pool(policy, tokenizer, problems, executor, cfg, critic) if offline_rollouts is None
                else _given_pool(offline_rollouts, cfg))
    amp = Precision(cfg.precision, device)  # one per run: fp16's loss scale persists
    writer = ScalarLog(out_dir, wandb_project, "rl", config) if out_dir is not None else None
    t0 = time.monotonic()
    saved = start
    bar = ProgressBar(cfg.steps, "rl", progress, unit="step", start=start)
    try:
        for step in range(start, cfg.steps):
            if cfg.time_budget_s is not None and time.monotonic() - t0 >= cfg.time_budget_s:
                break
            rng = random.Random(stream_seed(cfg.seed, step))
            t_step = time.monotonic()
            with seeded(stream_seed(cfg.seed, step), device):  # dropout masks (and any other torch draw)
                record = _step(policy, tokenizer, problems, executor, cfg, critic, sft_data, pool, opt, amp, rng,
                               rollout_backend, step)
            record["seconds"] = time.monotonic() - t_step
            if writer is not None:
                log_scalars(writer, record)
            history.append(record)
            bar.update(1, f"reward {record['reward']:+.3f} pass {record['pass_rate']:.2f} "
                          f"loss {record['loss_pg'] + cfg.sft_weight * record['loss_sft']:.4f}",
                       tokens=record["tokens"])
            # 8: checkpoint
            stop = should_stop is not None and should_stop()
            if out_dir is not None and (stop or cfg.checkpoint_every and (step + 1) % cfg.checkpoint_every == 0):
                save_training_state(out_dir, step + 1, policy, tokenizer, opt, config, history)
                saved = step + 1
            if stop:
                break
    finally:
        bar.close()
        if writer is not None:
            writer.close()
    if out_dir is not None and history and saved < len(history):
        save_training_state(out_dir, len(history), policy, tokenizer, opt, config, history)
    policy.eval()
    return history


def _step(policy, tokenizer, problems: Sequence[Problem], executor: Executor, cfg: RLConfig, critic,
          sft_data: list[tuple[list[int], list[int]]], pool: _OfflinePool | None, opt: torch.optim.Optimizer,
          amp: Precision, rng: random.Random, rollout_backend, step: int) -> dict[str, Any]:
    """Phases 1-7 of one step; returns its history record."""
    # 1-5: a batch of rollouts with outcomes, returns, baselines and token weights
    if pool is None:
        batch = sample_problems(problems, cfg.problems_per_step, rng)  # 1
        if rollout_backend is None:
            rollouts = rollout(policy, tokenizer, batch, cfg, seed=rng.randrange(2**31))  # 2
            execute(executor, rollouts)  # 3
        else:  # 2-3 on separate generation workers, execution overlapped with generation
            rollouts = rollout_backend.rollouts(policy, batch, cfg, rng.randrange(2**31), executor)
        if cfg.algo == "coderl":
            add_greedy_baselines(policy, tokenizer, batch, executor, rollouts, cfg)
        weights = token_weights(critic, tokenizer, rollouts, cfg)  # 4
    else:
        rollouts, weights = pool.draw(cfg.problems_per_step * cfg.samples_per_problem, rng)
    adv = advantages(rollouts, cfg)  # 5
    loss_pg, loss_sft = update(policy, opt, tokenizer, rollouts, adv, weights, sft_data, cfg, rng, amp)  # 6
    record = log_step(step + 1, rollouts, adv, loss_pg, loss_sft)  # 7
    record.update(getattr(rollout_backend, "last_stats", None) or {})
    return record


# -- phases -------------------------------------------------------------------------------------------------

def sample_problems(problems: Sequence[Problem], n: int, rng: random.Random) -> list[Problem]:
    """1. Draw ``n`` problems (without replacement when there are enough)."""
    return rng.sample(list(problems), n) if n <= len(problems) else [rng.choice(problems) for _ in range(n)]


def rollout(policy, tokenizer, batch: Sequence[Problem], cfg: RLConfig, seed: int, n: int | None = None,
            greedy: bool = False) -> list[Rollout]:
    """2. Sample ``n`` (default ``cfg.samples_per_problem``) programs per problem; rollouts are grouped by problem."""
    n = 1 if greedy else (n or cfg.samples_per_problem)
    sampling = SamplingConfig(max_new_tokens=cfg.max_new_tokens, temperature=cfg.temperature, top_p=cfg.top_p,
                              greedy=greedy, seed=seed)
    policy.eval()
    with torch.no_grad():
        outs: list[list[Completion]] = generate(policy, tokenizer, [format_prompt(p) for p in batch], n, sampling)
    return [Rollout(p, c.prompt_ids, c.token_ids, c.text) for p, cs in zip(batch, outs, strict=True) for c in cs]


def execute(executor: Executor, rollouts: Sequence[Rollout]) -> list[Result]:
    """3. Run every program against its problem's hidden tests; set outcome and return."""
    reqs = [{"id": str(i), "program": r.problem.program(r.text), "tests": r.problem.tests}
            for i, r in enumerate(rollouts)]
    results = executor.run(reqs)
    for r, res, rew in zip(rollouts, results, outcome_rewards(x.outcome for x in results), strict=True):
        r.outcome, r.reward = res.outcome, rew
    return results


def add_greedy_baselines(policy, tokenizer, batch: Sequence[Problem], executor: Executor,
                         rollouts: Sequence[Rollout], cfg: RLConfig) -> None:
    """CodeRL's baseline: the return of the greedy program for the same problem."""
    greedy = rollout(policy, tokenizer, batch, cfg, seed=0, greedy=True)
    execute(executor, greedy)
    by_id = {id(g.problem): g.reward for g in greedy}
    for r in rollouts:
        r.baseline = by_id[id(r.problem)]


def token_weights(critic, tokenizer, rollouts: Sequence[Rollout], cfg: RLConfig) -> torch.Tensor | None:
    """4. The critic's per-token probability of each program's actual outcome, (B, T) aligned with the
    completion tokens; None when tokens are not weighted."""
    if cfg.algo != "coderl" or not cfg.use_critic or critic is None:
        return None
    probs, mask = program_token_probs(critic, [r.prompt_ids for r in rollouts], [r.completion_ids for r in rollouts],
                                      [outcome_label(r.outcome, critic.n_classes) for r in rollouts],
                                      tokenizer.pad_token_id)
    return critic_weights(probs, mask, cfg.critic_floor)


def advantages(rollouts: Sequence[Rollout], cfg: RLConfig) -> torch.Tensor:
    """5. (B,) advantages: greedy baseline (coderl) or group baseline (grpo; rollouts grouped by problem)."""
    rewards = torch.tensor([r.reward for r in rollouts])
    if cfg.algo == "coderl":
        return greedy_baseline_advantages(rewards, torch.tensor([r.baseline for r in rollouts]))
    k = cfg.samples_per_problem
    return group_advantages(rewards.view(-1, k), leave_one_out=cfg.leave_one_out,
                            scale_by_std=cfg.group_std).view(-1)


def update(policy, opt: torch.optim.Optimizer, tokenizer, rollouts: Sequence[Rollout], adv: torch.Tensor,
           weights: torch.Tensor | None, sft_data: list[tuple[list[int], list[int]]], cfg: RLConfig,
           rng: random.Random, amp: Precision | None = None) -> tuple[float, float]:
    """6. One optimiser step on the policy-gradient loss plus ``sft_weight`` × cross-entropy on supervised pairs.

    The batch is split into ``cfg.grad_accum`` micro-batches whose gradients add up to the full batch's (each
    part's loss is scaled by its share of the programs, or of the tokens for ``normalize="token"``)."""
    amp = amp or Precision(cfg.precision, next(policy.parameters()).device)
    policy.train()
    keep = [i for i in range(len(rollouts)) if adv[i] != 0]  # zero-advantage programs carry no gradient
    pad = tokenizer.pad_token_id
    opt.zero_grad(set_to_none=True)
    loss_pg = loss_sft = 0.0
    stepped = False
    n_tok = sum(len(rollouts[i].completion_ids) for i in keep)
    for part in chunks(keep, cfg.grad_accum):
        with amp.autocast():
            logp, mask = completion_logprobs(policy, [rollouts[i].prompt_ids for i in part],
                                             [rollouts[i].completion_ids for i in part], pad)
        w = None if weights is None else weights[part, :logp.shape[1]]
        share = len(part) / len(keep) if cfg.normalize == "sequence" else mask.sum().item() / max(1, n_tok)
        pg = policy_gradient_loss(logp, mask, adv[part], w, cfg.normalize) * share * len(keep) / len(rollouts)
        amp.backward(pg)
        loss_pg += pg.item()
        stepped = True
    if sft_data:
        pairs = [sft_data[rng.randrange(len(sft_data))] for _ in range(cfg.sft_batch)]
        s_tok = sum(len(c) for _, c in pairs)
        for part in chunks(pairs, cfg.grad_accum):
            with amp.autocast():
                logp_s, mask_s = completion_logprobs(policy, [p for p, _ in part], [c for _, c in part], pad)
            s = sft_loss(logp_s, mask_s) * (mask_s.sum().item() / max(1, s_tok))
            amp.backward(cfg.sft_weight * s)
            loss_sft += s.item()
            stepped = True
    if stepped:
        amp.step(opt, policy.parameters(), cfg.grad_clip)
    policy.eval()
    return loss_pg, loss_sft


def log_step(step: int, rollouts: Sequence[Rollout], adv: torch.Tensor, loss_pg: float, loss_sft: float
             ) -> dict[str, Any]:
    """7. One history record (the caller adds the step's seconds)."""
    n = len(rollouts)
    mix = {o: sum(r.outcome == o for r in rollouts) / n
           for o in ("compile_error", "runtime_error", "failed_test", "passed")}
    return {"step": step, "reward": sum(r.reward for r in rollouts) / n, "pass_rate": mix["passed"],
            "adv_abs": adv.abs().mean().item(), "loss_pg": loss_pg, "loss_sft": loss_sft,
            "tokens": sum(len(r.completion_ids) for r in rollouts), "outcomes": mix}


def log_scalars(writer: ScalarLog, rec: dict[str, Any]) -> None:
    """A step's record as tensorboard (and wandb) scalars."""
    for k in ("reward", "pass_rate", "adv_abs", "loss_pg", "loss_sft", "seconds"):
        writer.add_scalar(f"rl/{k}", rec[k], rec["step"])
    for o, v in rec["outcomes"].items():
        writer.add_scalar(f"rl/outcome_{o}", v, rec["step"])


# -- helpers ------------------------------------------------------------------------------------------------

class _OfflinePool:
    """The paper's offline setting: programs sampled once from the initial policy, labelled once."""

    def __init__(self, rollouts: list[Rollout], weights: torch.Tensor | None):
        self.rollouts, self.weights = rollouts, weights

    def draw(self, n: int, rng: random.Random) -> tuple[list[Rollout], torch.Tensor | None]:
        idx = rng.sample(range(len(self.rollouts)), min(n, len(self.rollouts)))
        batch = [self.rollouts[i] for i in idx]
        if self.weights is None:
            return batch, None
        t = max(len(r.completion_ids) for r in batch)
        return batch, self.weights[idx, :t]


def _offline_pool(policy, tokenizer, problems: Sequence[Problem], executor: Executor, cfg: RLConfig,
                  critic) -> _OfflinePool:
    if cfg.algo == "grpo":
        raise ValueError("offline mode draws single programs from a fixed pool; use algo='coderl' with it")
    rollouts = rollout(policy, tokenizer, problems, cfg, seed=cfg.seed, n=cfg.offline_samples_per_problem)
    execute(executor, rollouts)
    add_greedy_baselines(policy, tokenizer, problems, executor, rollouts, cfg)
    return _OfflinePool(rollouts, token_weights(critic, tokenizer, rollouts, cfg))


def _given_pool(rollouts: Sequence[Rollout], cfg: RLConfig) -> _OfflinePool:
    """The paper's pipeline: a pool sampled, executed and critic-scored by earlier stages (coderl sample, exec,
    critic score); token weights come from each rollout's ``token_probs``."""
    if not rollouts:
        raise ValueError("offline RL got an empty pool of scored programs")
    if cfg.algo == "grpo":
        raise ValueError("offline mode draws single programs from a fixed pool; use algo='coderl' with it")
    if cfg.algo != "coderl" or not cfg.use_critic:
        return _OfflinePool(list(rollouts), None)
    t = max(1, max(len(r.completion_ids) for r in rollouts))
    probs, mask = torch.ones((len(rollouts), t)), torch.zeros((len(rollouts), t))
    for b, r in enumerate(rollouts):
        if r.token_probs is None or len(r.token_probs) != len(r.completion_ids):
            raise ValueError(f"program {b} of {r.problem.task_id} has no critic weight per token; score the pool "
                             "with the critic first (coderl critic score) or set rl.use_critic=false")
        probs[b, : len(r.token_probs)] = torch.tensor(r.token_probs, dtype=torch.float32)
        mask[b, : len(r.completion_ids)] = 1.0
    return _OfflinePool(list(rollouts), critic_weights(probs, mask, cfg.critic_floor))
