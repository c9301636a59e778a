"""Online RL with Ray rollouts and Ray execution against the single-process run, on the demo task family.

One SFT model (the demo's recipe: its 0.5M GPT-2 and SFT data, one round of it, --sft-epochs epochs); then, for
each RL seed, the same short grpo run twice from that model: single-process (train_rl with the local Executor)
and on a local Ray instance (RayRollouts: 1 generation worker, 2 micro-batches overlapped with execution;
RayExecutor: 1 actor). "Within noise": the difference of the two arms' means is compared with the seed-to-seed
spread (the standard deviation over seeds of each arm, and the standard error of the difference).

    .venv/bin/python benchmarks/ray_rl.py [--seeds 4] [--steps 10] [--sft-epochs 5]
"""

from __future__ import annotations

import argparse
import copy
import random
import statistics
import sys
import time


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=4)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--sft-epochs", type=float, default=5.0)
    args = ap.parse_args()

    import ray
    import torch

    from coderl.models.actor import tiny_gpt2
    from coderl.models.tokenizer import train_bpe
    from coderl.rl.config import RLConfig
    from coderl.rl.loop import train_rl
    from coderl.sandbox import Executor
    from coderl.sandbox.server import PRELOAD
    from coderl.scale.ray_executor import RayExecutor
    from coderl.scale.ray_rollout import RayRollouts, RolloutWorkerConfig
    from coderl.tasks.family import corpus_text, generate_tasks, sft_records
    from coderl.tasks.prompt import format_prompt
    from coderl.train.sft import SFTConfig, train_sft

    torch.manual_seed(0)
    torch.set_num_threads(1)
    tasks = generate_tasks("train", None, seed=0)
    tok = train_bpe([format_prompt(p) for p in tasks] + [corpus_text(tasks)], vocab_size=512)
    model = tiny_gpt2(tok, n_layer=4, n_embd=96, n_head=4, n_positions=128, seed=0)
    by_id = {p.task_id: p for p in tasks}
    pairs = [(format_prompt(by_id[r.task_id]), r.program) for r in sft_records(tasks, random.Random(0), 0.8, 0.15)]
    t0 = time.perf_counter()
    sft_cfg = SFTConfig(lr=5e-3, batch_size=64, epochs=args.sft_epochs, min_lr_ratio=0.0)
    train_sft(model, tok, pairs, sft_cfg, progress=False)
    print(f"SFT: {len(pairs)} pairs, {time.perf_counter() - t0:.0f}s")
    preload = tuple(m for m in PRELOAD if m != "numpy")

    def cfg(seed: int) -> RLConfig:
        return RLConfig(algo="grpo", steps=args.steps, problems_per_step=16, samples_per_problem=4, lr=1.5e-4,
                        sft_weight=0.5, sft_batch=16, max_new_tokens=48, checkpoint_every=0, seed=seed)

    arms: dict[str, list[list[dict]]] = {"single-process": [], "ray": []}
    walls: dict[str, list[float]] = {"single-process": [], "ray": []}
    with Executor(workers=2, timeout=2.0, preload=preload) as ex:
        for s in range(args.seeds):
            t = time.perf_counter()
            arms["single-process"].append(train_rl(copy.deepcopy(model), tok, tasks, ex, cfg(s), sft_pairs=pairs,
                                                   progress=False))
            walls["single-process"].append(time.perf_counter() - t)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        with RayExecutor(workers=2, cpus_per_actor=1, timeout=2.0, preload=preload) as rex, \
                RayRollouts(model, tok, RolloutWorkerConfig(workers=1, micro_batches=2, threads=1)) as ro:
            for s in range(args.seeds):
                t = time.perf_counter()
                arms["ray"].append(train_rl(copy.deepcopy(model), tok, tasks, rex, cfg(s), sft_pairs=pairs,
                                            progress=False, rollout_backend=ro))
                walls["ray"].append(time.perf_counter() - t)
    finally:
        ray.shutdown()

    print(f"\n{args.seeds} seeds x {args.steps} grpo steps (16 problems x 4 samples per step), from one SFT model")
    print("| metric (mean over steps, per seed) | single-process: per seed | mean ± sd | ray: per seed | mean ± sd | "
          "difference | SE of difference |")
    print("|---|---|---|---|---|---|---|")
    ok = True
    for key in ("reward", "pass_rate"):
        a = [statistics.mean(h[key] for h in run) for run in arms["single-process"]]
        b = [statistics.mean(h[key] for h in run) for run in arms["ray"]]
        sa, sb = (statistics.stdev(x) if len(x) > 1 else float("nan") for x in (a, b))
        se = (sa ** 2 / len(a) + sb ** 2 / len(b)) ** 0.5
        d = statistics.mean(b) - statistics.mean(a)
        ok &= abs(d) <= 2 * se
        print(f"| {key} | {' '.join(f'{x:.3f}' for x in a)} | {statistics.mean(a):.3f} ± {sa:.3f} | "
              f"{' '.join(f'{x:.3f}' for x in b)} | {statistics.mean(b):.3f} ± {sb:.3f} | {d:+.3f} | {se:.3f} |")
    rh = [h for run in arms["ray"] for h in run]
    print(f"\nwall per run: single-process {statistics.mean(walls['single-process']):.1f}s, "
          f"ray {statistics.mean(walls['ray']):.1f}s")
    for k in ("sync_s", "sync_mb", "gen_s", "exec_s", "rollout_s", "overlap_s"):
        print(f"ray per step {k}: median {statistics.median(h[k] for h in rh):.4f}")
    print(f"within noise (|difference| <= 2 SE for both metrics): {ok}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
