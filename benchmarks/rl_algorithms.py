"""The RL algorithms side by side on the demo, at equal wall time (issue 16, item 3).

Each algorithm starts from the *same* SFT model and critic of a `coderl demo` run (``OUT/sft``, ``OUT/critic``),
trains with the demo's RL settings and its own named settings (coderl.rl.config.PRESETS) for the demo's RL time
budget (40 s of training, whatever a step costs: the step limit is raised, ``--steps``, so that the time budget
and not the demo's 80 steps ends every run), and is evaluated like the demo: pass@1 and pass@5 from 10
samples at temperature 1, and the greedy pass rate, on the 160 held-out tasks. The algorithms run one after
another in an order rotated per seed, so that a slow spell of a shared machine does not always fall on the same
one.

``--lrs`` runs every algorithm at every learning rate (the sweep; give one run directory); without it each
algorithm runs at the learning rate named in ``--best`` (``algo=lr`` pairs, from the sweep) or the demo's.
Every run prints one JSON line; the last lines summarise mean and [min, max] per algorithm.

    for s in 0 1 2; do .venv/bin/coderl demo --seed $s --out /tmp/demoS$s; done
    .venv/bin/python benchmarks/rl_algorithms.py --runs /tmp/demoS0 --lrs 5e-5 1.5e-4 4.5e-4     # the sweep
    .venv/bin/python benchmarks/rl_algorithms.py --runs /tmp/demoS0 /tmp/demoS1 /tmp/demoS2 --best grpo=1.5e-4 ...
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch

from coderl.eval.policy import evaluate_policy
from coderl.models.actor import load_model
from coderl.models.critic import Critic
from coderl.pipelines.demo import DemoConfig, demo_sft_data
from coderl.rl.config import PRESETS, RLConfig
from coderl.rl.loop import train_rl
from coderl.sandbox import Executor
from coderl.sandbox.server import PRELOAD
from coderl.tasks.family import generate_tasks


def run_one(run_dir: Path, algo: str, lr: float, ex: Executor, steps: int) -> dict:
    demo = json.loads((run_dir / "config.json").read_text())
    seed = demo["seed"]
    cfg = DemoConfig(seed=seed, algo=algo)
    rl = RLConfig.from_dict({**cfg.rl.to_dict(), "lr": lr, "checkpoint_every": 0, "steps": steps})
    model, tok = load_model(run_dir / "sft")
    critic = Critic.load(run_dir / "critic") if rl.needs_critic else None
    train_tasks = generate_tasks("train", None, seed=seed)
    test_tasks = generate_tasks("test", cfg.eval_tasks, seed=seed)
    _, pairs = demo_sft_data(train_tasks, cfg)
    torch.manual_seed(seed)
    t0 = time.monotonic()
    hist = train_rl(model, tok, train_tasks, ex, rl, critic=critic, sft_pairs=pairs, progress=False)
    train_s = time.monotonic() - t0
    ev = evaluate_policy(model, tok, test_tasks, ex, n=cfg.eval_samples, max_new_tokens=rl.max_new_tokens,
                         seed=seed + 1)
    return {"run": str(run_dir), "seed": seed, "algo": algo, "lr": lr, "steps": len(hist), "train_s": round(train_s, 1),
            "pass@1": ev["pass@1"], "pass@5": ev["pass@5"], "greedy": ev["greedy"],
            "compile_error": ev["outcomes"]["compile_error"]}


def _stat(rs: list[dict], k: str) -> str:
    v = [r[k] for r in rs]
    return f"{statistics.mean(v):.3f} [{min(v):.3f}, {max(v):.3f}]"


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", nargs="+", required=True, help="directories of `coderl demo` runs (one per seed)")
    ap.add_argument("--algos", nargs="+", default=list(PRESETS))
    ap.add_argument("--lrs", nargs="+", type=float, help="sweep these learning rates")
    ap.add_argument("--best", nargs="*", default=[], help="algo=lr pairs chosen by the sweep")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--steps", type=int, default=10_000, help="step limit (high: the 40 s budget ends the runs)")
    args = ap.parse_args()
    best = {a: float(v) for a, v in (x.split("=") for x in args.best)}
    default_lr = DemoConfig().rl.lr
    results = []
    with Executor(workers=args.workers, timeout=2.0, preload=tuple(m for m in PRELOAD if m != "numpy")) as ex:
        for i, run in enumerate(args.runs):
            order = args.algos[i % len(args.algos):] + args.algos[:i % len(args.algos)]
            for algo in order:
                for lr in (args.lrs or [best.get(algo, default_lr)]):
                    r = run_one(Path(run), algo, lr, ex, args.steps)
                    results.append(r)
                    print(json.dumps(r), flush=True)
    groups: dict[tuple[str, float], list[dict]] = {}
    for r in results:
        groups.setdefault((r["algo"], r["lr"]), []).append(r)
    for (algo, lr), rs in sorted(groups.items()):
        print(f"{algo:16s} lr {lr:g}: n={len(rs)} pass@1 {_stat(rs, 'pass@1')} greedy {_stat(rs, 'greedy')} "
              f"pass@5 {_stat(rs, 'pass@5')} steps {statistics.mean(r['steps'] for r in rs):.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
