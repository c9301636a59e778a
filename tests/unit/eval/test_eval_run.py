"""run_samples / evaluate through the real sandbox (the session executor from tests/conftest.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from coderl.eval.evaluate import EvalConfig, run_samples, sample_program, summarize
from coderl.eval.samples import Sample
from coderl.tasks.apps import load_apps
from coderl.tasks.humaneval import load_humaneval
from coderl.tasks.mbpp import load_mbpp

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
CFG = EvalConfig(ks=(1, 2), bootstrap=100)


def run(problems, samples, executor, cfg=CFG):
    verdicts = list(run_samples(problems, samples, cfg, executor=executor))
    return verdicts, summarize(problems, verdicts, cfg)


def test_humaneval_canonical_and_stub_subset(executor):
    problems = load_humaneval()[:20]
    samples = [Sample(p.task_id, p.solutions[0], False, i + 1, 0) for i, p in enumerate(problems)]
    samples += [Sample(p.task_id, "    return None\n", False, 100 + i, 1) for i, p in enumerate(problems)]
    verdicts, s = run(problems, samples, executor)
    assert [v.outcome for v in verdicts[:20]] == ["passed"] * 20
    assert not any(v.passed for v in verdicts[20:])
    assert s["pass_at_k"][0]["value"] == 0.5 and s["pass_at_k"][1]["value"] == 1.0
    # canonical solutions pass their docstring examples; stubs fail them
    assert all(v.example_passed for v in verdicts[:20] if v.example_outcome is not None)
    assert s["examples"]["hidden_pass_rate_given_examples_pass"] == 1.0


def test_evalplus_solution_and_dedupe(executor):
    p = load_humaneval(FIXTURES / "humaneval_mini.jsonl")[0]
    whole = p.prompt + p.solutions[0]
    samples = [Sample(p.task_id, whole, True, 1, 0), Sample(p.task_id, p.solutions[0], False, 2, 1),
               Sample(p.task_id, p.solutions[0], False, 3, 2), Sample(p.task_id, "    return a - b\n", False, 4, 3)]
    assert sample_program(p, samples[0]) == sample_program(p, samples[1])
    verdicts, s = run([p], samples, executor)
    assert [v.outcome for v in verdicts] == ["passed", "passed", "passed", "failed_test"]
    assert [v.line for v in verdicts] == [1, 2, 3, 4] and [v.sample for v in verdicts] == [0, 1, 2, 3]
    assert [v.example_outcome for v in verdicts] == ["passed"] * 3 + ["failed_test"]
    nodup = list(run_samples([p], samples, EvalConfig(dedupe=False), executor=executor))
    assert [v.outcome for v in nodup] == [v.outcome for v in verdicts]


def test_extract_option_on_chat_style_output(executor):
    p = load_humaneval(FIXTURES / "humaneval_mini.jsonl")[1]
    chat = "Sure:\n```python\ndef evens(xs):\n    return [x for x in xs if x % 2 == 0]\n```\nDone."
    s = [Sample(p.task_id, chat, False, 1, 0)]
    assert [v.outcome for v in run_samples([p], s, EvalConfig(), executor=executor)] == ["compile_error"]
    assert [v.outcome for v in run_samples([p], s, EvalConfig(extract=True), executor=executor)] == ["passed"]


def test_mbpp_fixture_solutions_pass(executor):
    problems = [p for p in load_mbpp(FIXTURES / "mbpp_mini.jsonl", split="all", challenge_tests=True)
                if not p.tests["fixtures"]]
    samples = [Sample(p.task_id, p.solutions[0], False, i + 1, 0) for i, p in enumerate(problems)]
    verdicts, s = run(problems, samples, executor)
    assert {v.task_id: v.outcome for v in verdicts} == {p.task_id: "passed" for p in problems}


def test_mbpp_test_setup_code_is_visible_to_the_program(executor):
    """MBPP's set-up code runs in the program's process as fixtures, so the program's functions see its names."""
    (p,) = [p for p in load_mbpp(FIXTURES / "mbpp_mini.jsonl") if p.tests["fixtures"]]  # Mbpp/13: PI
    verdicts, _ = run([p], [Sample(p.task_id, p.solutions[0], False, 1, 0)], executor)
    assert verdicts[0].outcome == "passed"


def test_apps_fixture_difficulties_and_error_lines(executor):
    problems = load_apps(FIXTURES / "apps_mini", split="test")
    samples = [Sample(p.task_id, sol, False, 0, j) for p in problems for j, sol in enumerate(p.solutions)]
    samples.append(Sample("APPS/test/0002", "n = int(input())\nprint(1 / 0)\n", False, 0, 1))
    verdicts, s = run(problems, samples, executor)
    got = {(v.task_id, v.sample): (v.outcome, v.detail) for v in verdicts}
    assert got[("APPS/test/0000", 0)] == ("passed", "ok")
    assert got[("APPS/test/0000", 1)] == ("compile_error", "SyntaxError")  # Python 2
    assert got[("APPS/test/0000", 2)][0] == "failed_test"  # one line instead of two
    assert got[("APPS/test/0001", 0)] == ("passed", "ok")  # List[...] annotations: the APPS prelude
    assert got[("APPS/test/0001", 1)][0] in ("failed_test", "runtime_error")
    assert got[("APPS/test/0002", 1)] == ("runtime_error", "ZeroDivisionError")
    zero_div = next(v for v in verdicts if v.detail == "ZeroDivisionError")
    assert zero_div.error_line == 2  # line in the sample, not in prelude + sample
    levels = {r["difficulty"]: r for r in s["by_difficulty"]}
    assert set(levels) == {"introductory", "interview"}
    assert levels["introductory"]["problems"] == 2


@pytest.mark.parametrize("checker", ["default", "apps"])
def test_checker_is_passed_through(executor, checker):
    problems = load_apps(FIXTURES / "apps_mini", split="test")[:1]
    # right numbers, lines in the wrong order: only APPS's lenient checker accepts it
    samples = [Sample(problems[0].task_id, "a, b = map(int, input().split())\nprint(a * b)\nprint(a + b)\n",
                      False, 1, 0)]
    cfg = EvalConfig(checker=checker)
    outcome = [v.outcome for v in run_samples(problems, samples, cfg, executor=executor)][0]
    assert outcome == ("passed" if checker == "apps" else "failed_test")
