"""How long hostile output takes to judge (issue 13, property 5): the cases that were slow or lost a worker.

* ``invalid-utf8``: one stdio test printing 4 MB of bytes that are not UTF-8;
* ``print-forever``: a program printing in an endless loop on 5 stdio inputs (it meets the output limit);
* ``print-forever-ignoring-errors``: the same, catching the output-limit error and going on;
* ``8mb-per-input``: 8 MB printed on each of 8 stdio inputs (below the 16 MB cap: each is read and compared);
* ``huge-return``: a call test returning a list of 2 million ints.

Each case runs ``--repeats`` times on a fresh 1-worker executor (timeout 3 s); the script prints the median
wall time of the ``run`` call, the verdict, and whether the worker was restarted (declared lost).

    .venv/bin/python benchmarks/exec_hostile_output.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

from coderl.sandbox import Executor

STDIO5 = {"type": "stdio", "inputs": ["1\n"] * 5, "outputs": ["1\n"] * 5}
CASES = {
    "invalid-utf8": ("import os\nfor _ in range(64):\n    os.write(1, bytes(range(128, 256)) * 512)\n",
                     {"type": "stdio", "inputs": ["1\n"], "outputs": ["1\n"]}),
    "print-forever": ("while True:\n    print('x' * 1000)\n", STDIO5),
    "print-forever-ignoring-errors": ("while True:\n    try:\n        print('x' * 1000)\n    except OSError:\n"
                                      "        pass\n", STDIO5),
    "8mb-per-input": ("import sys\nsys.stdout.write(('y' * 1023 + '\\n') * 8192)\n",
                      {"type": "stdio", "inputs": ["1\n"] * 8, "outputs": ["1\n"] * 8}),
    "huge-return": ("def f(x):\n    return list(range(2_000_000))\n",
                    {"type": "call", "fn_name": "f", "inputs": [[1]], "outputs": [[1]]}),
}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    for name, (program, tests) in CASES.items():
        times, verdicts, restarts = [], set(), 0
        for _ in range(args.repeats):
            with Executor(workers=1, timeout=3.0) as ex:
                pid = ex._pool[0].proc.pid
                t0 = time.perf_counter()
                res = ex.run_one(program, tests)
                times.append(time.perf_counter() - t0)
                verdicts.add(f"{res.outcome}/{res.detail}")
                restarts += ex._pool[0].proc is None or ex._pool[0].proc.pid != pid
        print(f"{name:30s} median {statistics.median(times):6.2f}s  (runs {' '.join(f'{t:.2f}' for t in times)})  "
              f"verdicts {sorted(verdicts)}  worker restarts {restarts}")
    print(f"machine: python {sys.version.split()[0]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
