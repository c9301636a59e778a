"""Critic sampling vs plain sampling at the same number of model calls, on the demo's models and task family.

For each demo output directory (``coderl demo --out DIR --seed S``; it holds ``sft/``, ``final/`` and
``critic/``): train a repair model on failed/passing pairs from train-split tasks, then on the demo's held-out
test tasks run plain sampling (``n * rounds`` samples) and critic sampling (``rounds`` rounds of ``n`` model
calls), both ranked by example tests + critic score, and judge on the hidden tests:

* ``1@k``: the top-ranked candidate per problem passes the hidden tests (k = the budget);
* ``pass@1``: the mean hidden pass rate of all candidates (plain: the unbiased pass@1 of its samples);
* ``pass@budget``: some candidate passes (an oracle's upper bound on 1@k).

Usage::

    .venv/bin/python benchmarks/critic_sampling.py /tmp/wt6-demo-s0 /tmp/wt6-demo-s1 --actor final
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path


def _judge(results, problems, ex) -> dict[str, float]:
    by_id = {p.task_id: p for p in problems}
    reqs, owners = [], []
    for i, r in enumerate(results):
        p = by_id[r.task_id]
        for j, c in enumerate(r.candidates):
            reqs.append({"id": f"{i}/{j}", "program": p.program(c.text), "tests": p.tests})
            owners.append((i, j))
    ok = {o: res.passed for o, res in zip(owners, ex.run(reqs), strict=True)}
    n = len(results)
    one = sum(ok[(i, 0)] for i in range(n)) / n
    mean = sum(sum(ok[(i, j)] for j in range(len(r.candidates))) / len(r.candidates)
               for i, r in enumerate(results)) / n
    any_ = sum(any(ok[(i, j)] for j in range(len(r.candidates))) for i, r in enumerate(results)) / n
    by_origin: dict[str, list[int]] = {}
    for (i, j), v in ok.items():
        by_origin.setdefault(results[i].candidates[j].origin, []).append(int(v))
    return {"1@k": one, "pass@1": mean, "pass@budget": any_,
            "hidden_pass_by_origin": {k: round(sum(v) / len(v), 3) for k, v in by_origin.items()}}


def run_one(demo: Path, args) -> dict:
    import torch

    from coderl.inference import CriticSamplingConfig, critic_sample, plain_sample
    from coderl.inference.repair import collect_repair_examples, new_repair_model, train_repair
    from coderl.models.actor import load_model
    from coderl.models.critic import Critic
    from coderl.sandbox import Executor
    from coderl.sandbox.server import PRELOAD
    from coderl.tasks.family import generate_tasks
    from coderl.train.sft import SFTConfig

    seed = json.loads((demo / "config.json").read_text())["seed"]
    torch.manual_seed(seed)
    actor, tok = load_model(demo / args.actor)
    critic = Critic.load(demo / "critic")
    test = generate_tasks("test", args.tasks, seed=seed)
    train = generate_tasks("train", None, seed=seed)
    import random

    train = random.Random(seed + 101).sample(train, min(args.repair_problems, len(train)))
    cfg = CriticSamplingConfig(n=args.n, rounds=args.rounds, top_m=args.top_m, max_new_tokens=48, seed=seed + 5)
    out: dict = {"demo": str(demo), "seed": seed, "actor": args.actor, "config": cfg.to_dict(), "tasks": len(test)}
    with Executor(workers=args.workers, timeout=2.0, preload=tuple(m for m in PRELOAD if m != "numpy")) as ex:
        t0 = time.perf_counter()
        examples, counts = collect_repair_examples(actor, tok, train, ex, args.repair_samples, seed=seed + 7)
        repair = new_repair_model(tok, actor, seed=seed)
        hist = train_repair(repair, tok, examples, SFTConfig(lr=args.repair_lr, batch_size=64,
                                                             epochs=args.repair_epochs, seed=seed), progress=False)
        out["repair"] = {**counts, "steps": hist["steps"], "final_loss": round(hist["loss"][-1], 4),
                         "dropped": hist["dropped"], "seconds": round(time.perf_counter() - t0, 1)}
        print(f"[{demo.name}] repair model: {counts}, loss {hist['loss'][-1]:.3f}", flush=True)
        base, bstats = plain_sample(actor, tok, test, ex, cfg, critic=critic)
        out["plain"] = {**_judge(base, test, ex), **bstats}
        cs, cstats = critic_sample(actor, tok, critic, test, ex, cfg, repair_model=repair, progress=False)
        out["critic_sampling"] = {**_judge(cs, test, ex), **cstats}
        if args.ablation:
            cfg_nr = CriticSamplingConfig(**{**cfg.to_dict(), "repair": False})
            cs2, s2 = critic_sample(actor, tok, critic, test, ex, cfg_nr, progress=False)
            out["refine_only"] = {**_judge(cs2, test, ex), **s2}
            cfg_nf = CriticSamplingConfig(**{**cfg.to_dict(), "refine": False})
            cs3, s3 = critic_sample(actor, tok, critic, test, ex, cfg_nf, repair_model=repair, progress=False)
            out["repair_only"] = {**_judge(cs3, test, ex), **s3}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("demos", nargs="+", type=Path, help="coderl demo output directories (one per seed)")
    ap.add_argument("--actor", default="final", choices=("sft", "final"), help="SFT or RL (final) actor")
    ap.add_argument("--tasks", type=int, default=160, help="held-out test tasks (the demo evaluates 160)")
    ap.add_argument("--n", type=int, default=8)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--top-m", type=int, default=2)
    ap.add_argument("--repair-problems", type=int, default=800)
    ap.add_argument("--repair-samples", type=int, default=4)
    ap.add_argument("--repair-epochs", type=float, default=4.0)
    ap.add_argument("--repair-lr", type=float, default=2e-3)
    ap.add_argument("--workers", type=int, default=None)
    ap.add_argument("--ablation", action="store_true", help="also refine only and repair only")
    ap.add_argument("--json", type=Path, default=None, help="write all figures here")
    args = ap.parse_args()
    rows = [run_one(d, args) for d in args.demos]
    print("| seed | actor | budget | method | 1@k | pass@1 | pass@budget | model calls/problem | generated tokens |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        for m in ("plain", "critic_sampling", "refine_only", "repair_only"):
            if m in r:
                f = r[m]
                print(f"| {r['seed']} | {r['actor']} | {r['config']['n'] * r['config']['rounds']} | {m} | "
                      f"{f['1@k']:.3f} | {f['pass@1']:.3f} | {f['pass@budget']:.3f} | "
                      f"{f['model_calls_per_problem']:.0f} | {f['generated_tokens']} |")
    for r in rows:
        print(f"seed {r['seed']}: round actions {r['critic_sampling']['round_actions']}, hidden pass rate by origin "
              f"{r['critic_sampling']['hidden_pass_by_origin']}, repair data {r['repair']}")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main()
