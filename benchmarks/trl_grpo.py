"""coderl's RL loop beside TRL's GRPOTrainer on the demo, at equal wall time (issue 16, item 4).

Both sides start from the *same* SFT model of a `coderl demo` run (``OUT/sft``) and train on the demo's training
tasks with the same settings: 16 prompts per step, 4 completions per prompt, at most 48 new tokens, temperature 1,
the same learning rate (constant, AdamW, gradient clipping at 1.0), group-mean baseline without std scaling,
each program's token losses averaged and then the programs' (TRL's loss_type "grpo", coderl's normalize
"sequence_mean"), one update per batch, no KL, no supervised term. TRL's side is the real integration:
``GRPOTrainer(reward_funcs=[ExecutionReward(...)])`` with coderl's sandboxed executor. Each side trains for the
demo's RL time budget (40 s from its first step; TRL's trainer set-up is reported apart) and is then evaluated
like the demo: pass@1 and pass@5 from 10 samples at temperature 1, and greedy, on the 160 held-out tasks.

TRL is not a dependency of coderl; install it into the environment that runs this (the dev extra has it)::

    for s in 0 1; do .venv/bin/coderl demo --seed $s --out /tmp/demoS$s; done
    .venv/bin/python benchmarks/trl_grpo.py --runs /tmp/demoS0 /tmp/demoS1

A third side, ``trl-positions``, is TRL with one change: the model goes through
``coderl.integrations.trl.positions_from_attention_mask`` first, so that it takes its position ids from the
attention mask when it is given none. GRPOTrainer left-pads prompts and scores completions without position ids,
so a model with learned absolute positions (GPT-2, the demo's) is trained at positions shifted by each prompt's
padding, unlike the positions it sampled at (``generate`` derives them from the mask); rotary models (Llama, Qwen)
are unaffected, a shift cancels in their attention scores. ``--position-check`` prints how far apart the two
log-probabilities are on the SFT model.

The sides run in an order rotated per seed, so that a slow spell of a shared machine does not always fall on the
same side. One JSON line per run, then mean and [min, max] per side.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

from coderl.eval.policy import evaluate_policy
from coderl.integrations.trl import positions_from_attention_mask
from coderl.models.actor import load_model
from coderl.pipelines.demo import DemoConfig
from coderl.rl.config import RLConfig
from coderl.rl.loop import train_rl
from coderl.sandbox import Executor
from coderl.sandbox.server import PRELOAD
from coderl.tasks.family import generate_tasks

SIDES = ("coderl", "trl", "trl-positions")


def matched_rl(demo: DemoConfig, lr: float, seconds: float) -> RLConfig:
    """The demo's RL settings, reduced to what GRPOTrainer also does (no SFT term, no greedy baseline)."""
    return RLConfig.from_dict({**demo.rl.to_dict(), "algo": "grpo", "lr": lr, "sft_weight": 0.0, "group_std": False,
                               "normalize": "sequence_mean", "kl_coef": 0.0, "epochs": 1, "minibatches": 1,
                               "clip_low": 0.0, "checkpoint_every": 0, "steps": 100_000, "time_budget_s": seconds})


def train_coderl(model, tok, tasks, ex: Executor, rl: RLConfig) -> dict:
    t0 = time.monotonic()
    hist = train_rl(model, tok, tasks, ex, rl, progress=False)
    secs = time.monotonic() - t0
    return {"steps": len(hist), "train_s": secs, "tokens": sum(h["tokens"] for h in hist), "setup_s": 0.0}


def position_gap(model, tok, tasks, seed: int) -> dict:
    """Mean |log p(with positions from the mask) - log p(without)| of sampled completions' tokens, left-padded
    prompts as GRPOTrainer builds them."""
    from coderl.tasks.prompt import format_prompt

    side = tok.padding_side
    tok.padding_side = "left"
    try:
        enc = tok([format_prompt(p) for p in tasks[:16]], return_tensors="pt", padding=True)
    finally:
        tok.padding_side = side
    torch.manual_seed(seed)
    model.eval()
    with torch.no_grad():
        out = model.generate(**enc, do_sample=True, max_new_tokens=48, pad_token_id=tok.pad_token_id)
        n = enc["input_ids"].shape[1]
        mask = torch.cat([enc["attention_mask"], (out[:, n:] != tok.pad_token_id).long()], 1)
        comp = mask[:, n:].bool()

        def logp(pos):
            logits = model(input_ids=out, attention_mask=mask, position_ids=pos).logits[:, n - 1:-1]
            return torch.log_softmax(logits.float(), -1).gather(-1, out[:, n:, None])[..., 0][comp]

        gap = (logp((mask.cumsum(-1) - 1).clamp(min=0)) - logp(None)).abs()
    return {"tokens": int(comp.sum()), "mean_abs_logp_gap": round(float(gap.mean()), 4),
            "max_abs_logp_gap": round(float(gap.max()), 3)}


def train_trl(model, tok, tasks, ex: Executor, rl: RLConfig, seed: int) -> dict:
    import datasets
    from transformers import TrainerCallback
    from trl import GRPOConfig, GRPOTrainer

    from coderl.integrations.trl import ExecutionReward, dataset_rows

    class Budget(TrainerCallback):
        """Stops training once the time budget has passed, counted from the first step like coderl's loop."""

        def __init__(self) -> None:
            self.t0: float | None = None
            self.t_end = 0.0

        def on_step_begin(self, args, state, control, **kw):
            if self.t0 is None:
                self.t0 = time.monotonic()

        def on_step_end(self, args, state, control, **kw):
            self.t_end = time.monotonic()
            if self.t_end - self.t0 >= rl.time_budget_s:
                control.should_training_stop = True

    tokens = [0]
    reward = ExecutionReward(tasks, executor=ex, extract=False)  # the demo model writes bare code, as evaluated

    def coderl_execution_reward(prompts=None, completions=(), completion_ids=(), **kw):
        tokens[0] += sum(len(c) for c in completion_ids)
        return reward(prompts=prompts, completions=completions, **kw)

    n_out = rl.problems_per_step * rl.samples_per_problem
    with tempfile.TemporaryDirectory() as out:
        args = GRPOConfig(
            output_dir=out, seed=seed, learning_rate=rl.lr, lr_scheduler_type="constant", warmup_steps=0,
            weight_decay=0.0, max_grad_norm=rl.grad_clip, per_device_train_batch_size=n_out,
            gradient_accumulation_steps=1, steps_per_generation=1, num_generations=rl.samples_per_problem,
            max_completion_length=rl.max_new_tokens, temperature=rl.temperature, top_p=rl.top_p, top_k=0,
            beta=0.0, num_iterations=1, scale_rewards="none", loss_type="grpo", max_steps=100_000, bf16=False,
            report_to="none", save_strategy="no", logging_steps=10_000, disable_tqdm=True, use_cpu=True,
            dataloader_num_workers=0)
        budget = Budget()
        t0 = time.monotonic()
        trainer = GRPOTrainer(model=model, reward_funcs=[coderl_execution_reward], args=args,
                              train_dataset=datasets.Dataset.from_list(dataset_rows(tasks)), processing_class=tok,
                              callbacks=[budget])
        setup = time.monotonic() - t0
        trainer.train()
    return {"steps": trainer.state.global_step, "train_s": budget.t_end - (budget.t0 or budget.t_end),
            "tokens": tokens[0], "setup_s": setup}


def run_one(run_dir: Path, side: str, lr: float, seconds: float, ex: Executor) -> dict:
    demo_raw = json.loads((run_dir / "config.json").read_text())
    seed = demo_raw["seed"]
    demo = DemoConfig(seed=seed)
    rl = matched_rl(demo, lr, seconds)
    model, tok = load_model(run_dir / "sft")
    train_tasks = generate_tasks("train", None, seed=seed)
    test_tasks = generate_tasks("test", demo.eval_tasks, seed=seed)
    torch.manual_seed(seed)
    if side == "trl-positions":
        positions_from_attention_mask(model)
    t = train_coderl(model, tok, train_tasks, ex, rl) if side == "coderl" else train_trl(model, tok, train_tasks,
                                                                                           ex, rl, seed)
    model.eval()
    ev = evaluate_policy(model, tok, test_tasks, ex, n=demo.eval_samples, max_new_tokens=rl.max_new_tokens,
                         seed=seed + 1)
    return {"run": str(run_dir), "seed": seed, "side": side, "lr": lr, "steps": t["steps"],
            "train_s": round(t["train_s"], 1), "setup_s": round(t["setup_s"], 1),
            "s_per_step": round(t["train_s"] / max(1, t["steps"]), 3),
            "tokens_per_s": round(t["tokens"] / max(1e-9, t["train_s"]), 1),
            "pass@1": ev["pass@1"], "pass@5": ev["pass@5"], "greedy": ev["greedy"]}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", nargs="+", required=True, help="directories of `coderl demo` runs (one per seed)")
    ap.add_argument("--lr", type=float, default=DemoConfig().rl.lr)
    ap.add_argument("--seconds", type=float, default=DemoConfig().rl.time_budget_s, help="training wall time")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--sides", nargs="+", default=list(SIDES), choices=SIDES)
    ap.add_argument("--position-check", action="store_true", help="only measure the position gap on each SFT model")
    args = ap.parse_args()
    if args.position_check:
        for run in args.runs:
            model, tok = load_model(Path(run) / "sft")
            seed = json.loads((Path(run) / "config.json").read_text())["seed"]
            print(json.dumps({"run": run, **position_gap(model, tok, generate_tasks("train", None, seed=seed), seed)}))
        return 0
    results = []
    with Executor(workers=args.workers, timeout=2.0, preload=tuple(m for m in PRELOAD if m != "numpy")) as ex:
        for i, run in enumerate(args.runs):
            for side in args.sides[i % len(args.sides):] + args.sides[:i % len(args.sides)]:
                r = run_one(Path(run), side, args.lr, args.seconds, ex)
                results.append(r)
                print(json.dumps(r), flush=True)
    for side in args.sides:
        rs = [r for r in results if r["side"] == side]
        stat = {k: (statistics.mean(r[k] for r in rs), min(r[k] for r in rs), max(r[k] for r in rs))
                for k in ("s_per_step", "tokens_per_s", "steps", "pass@1", "greedy")}
        print(f"{side:7s} n={len(rs)} " + " ".join(f"{k} {m:.3f} [{lo:.3f}, {hi:.3f}]"
                                                    for k, (m, lo, hi) in stat.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
