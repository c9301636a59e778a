"""Does the demo's critic learn all four outcome classes? With and without class balancing (issue 16, item 2a).

Takes the SFT model a `coderl demo` run saved (``OUT/sft``), builds the demo's critic data once (programs sampled
from it on train tasks, labelled by the executor, plus the references; the demo's 20% held out), then trains a
critic from the SFT model per seed, once with plain cross-entropy and once weighted by inverse class frequency,
both with the demo's settings (2 epochs, lr 2e-3, batch 64). Prints held-out accuracy, per-class recall, expected
calibration error and Brier score per run, and the mean and range over seeds.

    .venv/bin/coderl demo --out /tmp/demo0
    .venv/bin/python benchmarks/critic_classes.py --sft /tmp/demo0/sft [--seeds 0 1 2] [--workers 2]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import torch

from coderl.models.actor import load_model
from coderl.models.critic import Critic, evaluate_critic
from coderl.pipelines.demo import DemoConfig, demo_critic_data
from coderl.sandbox import Executor
from coderl.sandbox.server import PRELOAD
from coderl.tasks.family import generate_tasks
from coderl.train.critic import train_critic


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sft", required=True, help="the SFT model directory a demo run wrote (OUT/sft)")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()
    torch.manual_seed(0)
    cfg = DemoConfig()
    model, tok = load_model(args.sft)
    tasks = generate_tasks("train", None, seed=cfg.seed)
    t0 = time.monotonic()
    with Executor(workers=args.workers, timeout=2.0, preload=tuple(m for m in PRELOAD if m != "numpy")) as ex:
        train, held = demo_critic_data(model, tok, tasks, ex, cfg)
    names = ["compile_error", "runtime_error", "failed_test", "passed"]
    counts = {n: sum(1 for *_, y in train if y == i) for i, n in enumerate(names)}
    print(f"critic data: {len(train)} train, {len(held)} held out ({time.monotonic() - t0:.0f}s); train classes "
          + ", ".join(f"{n} {c}" for n, c in counts.items()))
    rows: dict[bool, list[dict]] = {False: [], True: []}
    for seed in args.seeds:
        for balance in (False, True):
            critic = Critic.from_model(model, n_classes=4, seed=seed)
            train_critic(critic, tok, train, epochs=cfg.critic.epochs, lr=cfg.critic.lr,
                         batch_size=cfg.critic.batch_size, seed=seed, progress=False, balance_classes=balance)
            m = evaluate_critic(critic, tok, held)
            rows[balance].append(m)
            print(f"seed {seed} balance {balance!s:5}: accuracy {m['accuracy']:.3f}, recall "
                  + " ".join(f"{n.split('_')[0]} {r:.3f}" for n, r in zip(names, m["recall"], strict=True))
                  + f", ECE {m['ece']:.3f}, Brier {m['brier']:.3f}")
    for balance, ms in rows.items():
        def summary(values: list[float]) -> str:
            return f"{statistics.mean(values):.3f} [{min(values):.3f}, {max(values):.3f}]"

        recalls = " ".join(f"{n.split('_')[0]} {summary([m['recall'][i] for m in ms])}" for i, n in enumerate(names))
        print(f"balance {balance!s:5} over {len(ms)} seeds (mean [min, max]): accuracy "
              f"{summary([m['accuracy'] for m in ms])}; recall {recalls}; ECE {summary([m['ece'] for m in ms])}")
    print(f"machine: python {sys.version.split()[0]}, torch {torch.__version__}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
