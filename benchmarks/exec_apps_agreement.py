"""coderl's verdicts on real APPS programs against the verdicts CodeRL recorded for them.

Uses the five problems in ../shared/data/apps-coderl-samples (or --data DIR): every ground-truth solution,
and every sampled program in gen_solutions.json (+ the greedy baseline) whose CodeRL verdict is recorded
("result": -2 compile error, -1 runtime error, false failed test, true passed). Runs each checker (default
and apps) and prints pass counts for the ground truth, the passed/not-passed agreement with CodeRL, and
every disagreement with the program's first lines, so each can be explained in docs/execution.md.

    .venv/bin/python benchmarks/exec_apps_agreement.py [--data DIR] [--timeout 4] [--workers 2]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from coderl.sandbox import Executor
from coderl.tasks.apps import load_problem_dir

CODERL_CLASS = {-2: "compile_error", -1: "runtime_error", False: "failed_test", True: "passed"}


def load(data: Path):
    problems, gt, sampled = {}, [], []
    for d in sorted(p for p in data.iterdir() if p.is_dir()):
        prob = load_problem_dir(d)
        problems[prob.task_id] = prob
        for k, src in enumerate(prob.solutions):
            gt.append((f"{prob.task_id}/gt{k}", prob, src))
        for name in ("gen_solutions.json", "baseline_solutions.json"):
            f = d / name
            if f.is_file():
                for k, rec in enumerate(json.loads(f.read_text())):
                    sampled.append((f"{prob.task_id}/{name.split('_')[0]}{k}", prob, rec["code"], rec["result"]))
    return problems, gt, sampled


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[1].parent / "shared" / "data"
                    / "apps-coderl-samples")
    ap.add_argument("--timeout", type=float, default=4.0)
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()
    if not args.data.is_dir():
        print(f"no APPS sample data at {args.data}", file=sys.stderr)
        return 2
    problems, gt, sampled = load(args.data)
    print(f"{len(problems)} problems: " + ", ".join(f"{t} ({p.tests['type']}, {len(p.tests['inputs'])} tests)"
                                                   for t, p in problems.items()))
    reqs = lambda items: [{"id": i, "program": p.program(src), "tests": p.tests} for i, p, src, *_ in items]  # noqa: E731
    for checker in ("default", "apps"):
        with Executor(workers=args.workers, timeout=args.timeout, checker=checker) as ex:
            gt_res = ex.run(reqs(gt))
            s_res = ex.run(reqs(sampled))
        print(f"\n== checker {checker} ==")
        by_prob: dict[str, list[int]] = {}
        for (rid, p, _src), r in zip(gt, gt_res, strict=True):
            c = by_prob.setdefault(p.task_id, [0, 0])
            c[0] += r.passed
            c[1] += 1
            if not r.passed:
                print(f"  ground truth not passing: {rid}: {r.outcome} ({r.detail}) tests={r.tests}")
        print("ground truth passing: " + ", ".join(f"{t} {a}/{b}" for t, (a, b) in by_prob.items())
              + f"; total {sum(a for a, _ in by_prob.values())}/{len(gt)}")
        agree = 0
        classes_agree = 0
        for (rid, _p, src, rec), r in zip(sampled, s_res, strict=True):
            theirs = rec is True
            if r.passed == theirs:
                agree += 1
            else:
                first = " | ".join(src.strip().splitlines()[:2])[:100]
                print(f"  DISAGREE {rid}: CodeRL {CODERL_CLASS.get(rec, rec)}, coderl {r.outcome} ({r.detail}, "
                      f"tests={r.tests}) :: {first}")
            if CODERL_CLASS.get(rec) != r.outcome and r.passed == theirs:
                print(f"  class differs {rid}: CodeRL {CODERL_CLASS.get(rec, rec)}, coderl {r.outcome} ({r.detail})")
            classes_agree += CODERL_CLASS.get(rec) == r.outcome
        print(f"sampled programs: passed/not-passed agreement {agree}/{len(sampled)} "
              f"({100 * agree / len(sampled):.1f}%); four-class agreement {classes_agree}/{len(sampled)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
