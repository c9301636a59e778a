"""Executor throughput and peak memory: 1,000 programs x 10 tests each.

A third of the programs use assert tests, a third stdio, a third call-based; within each, 80% are correct,
10% give a wrong answer and 10% raise. Runs through the Python API (the CLI adds only its start-up, which
exec_vs_humaneval.py measures). Peak memory is the largest summed RSS of the executor process and all
its descendants (servers and sandboxed children), sampled every 20 ms.

    .venv/bin/python benchmarks/exec_throughput.py [--programs 1000] [--tests 10] [--workers 2]
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import threading
import time

import psutil

from coderl.sandbox import Executor


def make_requests(n: int, n_tests: int, seed: int = 0) -> list[dict]:
    rng = random.Random(seed)
    reqs = []
    for i in range(n):
        kind = ("assert", "stdio", "call")[i % 3]
        roll = rng.random()
        bug = "wrong" if roll < 0.1 else "raise" if roll < 0.2 else None
        k = rng.randint(1, 9)
        xs = [rng.randint(-1000, 1000) for _ in range(n_tests)]
        body = "x * {k} + 1" if bug is None else "x * {k} + 2" if bug == "wrong" else "x // 0"
        body = body.format(k=k)
        if kind == "assert":
            prog = f"def f(x):\n    return {body}\n"
            tests = {"type": "assert", "asserts": [f"assert f({x}) == {x * k + 1}" for x in xs]}
        elif kind == "call":
            prog = f"class Solution:\n    def f(self, x):\n        return {body}\n"
            tests = {"type": "call", "fn_name": "f", "inputs": [[x] for x in xs], "outputs": [x * k + 1 for x in xs]}
        else:
            prog = f"x = int(input())\nprint({body})\n"
            tests = {"type": "stdio", "inputs": [f"{x}\n" for x in xs], "outputs": [f"{x * k + 1}\n" for x in xs]}
        reqs.append({"id": str(i), "program": prog, "tests": tests})
    return reqs


class PeakRSS(threading.Thread):
    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.peak, self.stop = 0, threading.Event()
        self.me = psutil.Process()

    def run(self) -> None:
        while not self.stop.is_set():
            total = 0
            for p in [self.me, *self.me.children(recursive=True)]:
                try:
                    total += p.memory_info().rss
                except psutil.Error:
                    pass
            self.peak = max(self.peak, total)
            time.sleep(0.02)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--programs", type=int, default=1000)
    ap.add_argument("--tests", type=int, default=10)
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()
    reqs = make_requests(args.programs, args.tests)
    mon = PeakRSS()
    mon.start()
    t_start = time.perf_counter()
    with Executor(workers=args.workers, timeout=3.0) as ex:
        t0 = time.perf_counter()
        results = ex.run(reqs)
        t_run = time.perf_counter() - t0
    t_total = time.perf_counter() - t_start
    mon.stop.set()
    mon.join()
    mix: dict[str, int] = {}
    for r in results:
        mix[r.outcome] = mix.get(r.outcome, 0) + 1
    n_tests = args.programs * args.tests
    print(f"{args.programs} programs x {args.tests} tests, {args.workers} workers")
    print(f"outcomes: {mix}")
    print(f"wall: {t_run:.2f}s running ({t_total:.2f}s with pool start/stop)")
    print(f"throughput: {args.programs / t_run:.1f} programs/s, {n_tests / t_run:.0f} tests/s")
    for kind in ("assert", "stdio", "call"):
        secs = [r.seconds for r, q in zip(results, reqs, strict=True) if q["tests"]["type"] == kind]
        print(f"  {kind:6s}: median {statistics.median(secs) * 1000:.1f} ms/program in its worker")
    print(f"peak RSS (executor + servers + children): {mon.peak / 2**20:.0f} MB")
    print(f"machine: {os.cpu_count()} cores, python {sys.version.split()[0]}")


if __name__ == "__main__":
    main()
