"""The Ray executor backend on the HumanEval benchmark set, against the local executor, plus the numbers to size
a cluster: the executor's per-core rate and the per-chunk transport + serialization cost of Ray.

Programs: those of benchmarks/exec_vs_humaneval.py (164 canonical solutions, a stub each, two mutants each,
--loops infinite loops). Both backends: 2 sandbox workers, timeout 3 s; Ray: a local instance with 2 CPUs and
one actor. Exits 1 on any verdict that differs (outcome, detail, per-test outcomes, error line).

    .venv/bin/python benchmarks/ray_exec.py [--loops 2]
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import pickle
import statistics
import sys
import time
from pathlib import Path


def humaneval_requests(loops: int) -> list[dict]:
    spec = importlib.util.spec_from_file_location("exec_vs_humaneval", Path(__file__).with_name("exec_vs_humaneval.py"))
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    return [{"id": pid, "program": p["prompt"] + comp,
             "tests": {"type": "assert", "setup": p["test"], "asserts": [f"check({p['entry_point']})"]}}
            for pid, p, comp in bench.build_programs(loops)]


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--loops", type=int, default=2)
    args = ap.parse_args()
    import ray

    from coderl.sandbox import Executor
    from coderl.scale.ray_executor import RayExecutor

    reqs = humaneval_requests(args.loops)
    with Executor(workers=2, timeout=3.0) as ex:
        t = time.perf_counter()
        local = ex.run(reqs)
        t_local = time.perf_counter() - t
        quick = [r for r, res in zip(reqs, local, strict=True) if res.detail != "timeout"]
        t = time.perf_counter()
        ex.run(quick)
        t_quick = time.perf_counter() - t
    t = time.perf_counter()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    t_init = time.perf_counter() - t
    try:
        with RayExecutor(workers=2, timeout=3.0) as rex:
            t_start = time.perf_counter() - t - t_init
            t = time.perf_counter()
            remote = rex.run(reqs)
            t_ray = time.perf_counter() - t
            t = time.perf_counter()
            rex.run(quick)
            t_ray_quick = time.perf_counter() - t
            actor = rex.slots[0].handle
            transport = {}
            for size in (1, 16, 64, 256):
                chunk = [quick[i % len(quick)] for i in range(size)]
                ray.get(actor.echo.remote(chunk))
                times = []
                for _ in range(10):
                    t = time.perf_counter()
                    out = ray.get(actor.echo.remote(chunk))
                    times.append(time.perf_counter() - t)
                transport[size] = (statistics.median(times), len(pickle.dumps(chunk)), len(pickle.dumps(out)))
    finally:
        ray.shutdown()

    def key(r):
        return (r.id, r.outcome, r.detail, r.tests, r.error_line)

    diff = [(key(a), key(b)) for a, b in zip(local, remote, strict=True) if key(a) != key(b)]
    n = len(reqs)
    print(f"programs: {n} ({sum(r.passed for r in local)} pass, {n - len(quick)} time out)")
    print(f"identical verdicts (outcome, detail, tests, error_line), local vs ray: {n - len(diff)}/{n}")
    for a, b in diff[:10]:
        print(f"  DIFFER local={a} ray={b}")
    rate = len(quick) / t_quick / 2
    print(f"local executor: all {t_local:.2f}s; without time-outs ({len(quick)}) {t_quick:.2f}s = "
          f"{len(quick) / t_quick:.1f} programs/s = {rate:.1f} programs/s per core")
    print(f"ray backend (1 actor, 2 workers): ray.init {t_init:.1f}s, actor start {t_start:.1f}s, all {t_ray:.2f}s, "
          f"without time-outs {t_ray_quick:.2f}s = {len(quick) / t_ray_quick:.1f} programs/s")
    print("Ray round trip of a chunk through an actor that runs nothing (echo), median of 10:")
    for size, (sec, b_in, b_out) in transport.items():
        print(f"  chunk {size:4d}: {sec * 1e3:7.2f} ms ({sec / size * 1e3:.3f} ms/program), request bytes "
              f"{b_in:,}, result bytes {b_out:,}; driver-bound ceiling {size / sec:,.0f} programs/s")
    print(f"machine: {os.cpu_count()} cores, python {sys.version.split()[0]}, ray {ray.__version__}")
    return 1 if diff else 0


if __name__ == "__main__":
    sys.exit(main())
