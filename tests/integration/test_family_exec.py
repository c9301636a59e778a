"""The procedural task family through the real sandboxed executor: references pass, habitual bugs fail,
random bugs give a mix of outcome classes that the in-process prediction matches."""

from __future__ import annotations

import collections
import random

import pytest

from coderl.sandbox import Executor
from coderl.tasks.family import TEMPLATES, generate_tasks, random_bug, sft_records


@pytest.fixture(scope="module")
def executor():
    with Executor(workers=2, timeout=3.0) as ex:
        yield ex


def _reqs(pairs):
    return [{"id": str(i), "program": prog, "tests": p.tests} for i, (p, prog) in enumerate(pairs)]


def test_every_template_reference_passes_its_tests_in_the_sandbox(executor):
    tasks = []
    for split in ("train", "test"):
        for name in TEMPLATES:
            tasks += generate_tasks(split, 2, seed=11, templates=[name])
    results = executor.run(_reqs([(p, p.solutions[0]) for p in tasks]))
    bad = [(p.task_id, r.outcome, r.detail) for p, r in zip(tasks, results, strict=True) if r.outcome != "passed"]
    assert not bad
    assert all(len(r.tests) == 4 for r in results)


def test_every_habitual_bug_fails_at_least_one_test_in_the_sandbox(executor):
    tasks = [p for name in TEMPLATES if TEMPLATES[name].habit
             for p in generate_tasks("train", 3, seed=2, templates=[name])]
    results = executor.run(_reqs([(p, p.metadata["habit"]) for p in tasks]))
    for p, r in zip(tasks, results, strict=True):
        assert r.outcome in ("failed_test", "runtime_error"), (p.task_id, r)
        assert r.pass_fraction < 1.0


def test_random_bugs_give_a_mix_of_outcomes_matching_the_prediction(executor):
    rng = random.Random(0)
    tasks = generate_tasks("train", 240, seed=0)
    bugs = [(p, *random_bug(p.solutions[0], p.tests, rng)) for p in tasks]
    results = executor.run(_reqs([(p, prog) for p, prog, _, _ in bugs]))
    mix = collections.Counter(r.outcome for r in results)
    assert mix["passed"] == 0
    for cls in ("compile_error", "runtime_error", "failed_test"):
        assert mix[cls] >= 0.15 * len(tasks), mix
    disagree = [(p.task_id, prog, predicted, r.outcome)
                for (p, prog, _, predicted), r in zip(bugs, results, strict=True) if r.outcome != predicted]
    assert not disagree


def test_sft_labels_agree_with_the_executor(executor):
    tasks = generate_tasks("train", 160, seed=9)
    recs = sft_records(tasks, random.Random(9), p_habitual=0.5, p_random=0.4)
    results = executor.run(_reqs([(p, r.program) for p, r in zip(tasks, recs, strict=True)]))
    for r, res in zip(recs, results, strict=True):
        assert res.outcome == r.outcome and res.passed == r.is_correct, (r, res)
