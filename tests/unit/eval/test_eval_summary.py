"""summarize(): pass@k with k > n, per-difficulty rows, outcome mix, n@k and example statistics, from
hand-made verdicts (no executor)."""

from __future__ import annotations

import pytest

from coderl.eval.evaluate import EvalConfig, Verdict, summarize
from coderl.eval.passk import n_at_k, pass_at_k
from coderl.tasks.problem import Problem

T = {"type": "assert", "asserts": ["assert True"]}


def verdicts_for(task, difficulty, outcomes, examples=None):
    return [Verdict(task, i, 0, difficulty, o, "ok" if o == "passed" else "x", 1.0 if o == "passed" else 0.0,
                    example_outcome=None if examples is None else examples[i]) for i, o in enumerate(outcomes)]


def test_pass_at_k_k_larger_than_n_and_difficulty_table():
    problems = [Problem("a", "", T, difficulty="easy"), Problem("b", "", T, difficulty="hard"),
                Problem("c", "", T, difficulty="hard"), Problem("d", "", T, difficulty="hard")]
    vs = (verdicts_for("a", "easy", ["passed", "failed_test", "passed", "runtime_error"])
          + verdicts_for("b", "hard", ["compile_error", "passed"])
          + verdicts_for("c", "hard", ["failed_test"] * 4))
    s = summarize(problems, vs, EvalConfig(ks=(1, 3, 10), bootstrap=200))
    assert s["problems_evaluated"] == 3 and s["problems_without_samples"] == 1
    assert s["problems_without_samples_ids"] == ["d"]
    by_k = {e["k"]: e for e in s["pass_at_k"]}
    assert by_k[1]["value"] == pytest.approx((0.5 + 0.5 + 0.0) / 3) and by_k[1]["problems"] == 3
    assert by_k[3]["problems"] == 2 and "1 have fewer than 3 samples" in by_k[3]["note"]
    assert by_k[3]["value"] == pytest.approx((pass_at_k(4, 2, 3) + 0.0) / 2)
    assert by_k[10]["value"] is None and "k=10 exceeds" in by_k[10]["note"]
    assert s["outcomes"]["passed"] == {"count": 3, "fraction": 0.3}
    assert s["outcomes"]["compile_error"]["count"] == 1
    rows = {r["difficulty"]: r for r in s["by_difficulty"]}
    assert rows["easy"]["problems"] == 1 and rows["hard"]["problems"] == 2 and rows["hard"]["samples"] == 6
    assert rows["hard"]["pass_at_k"][0]["value"] == pytest.approx(0.25)
    assert "n_at_k" not in s  # no example tests anywhere


def test_n_at_k_and_example_statistics():
    problems = [Problem("a", "", T, example_tests=T), Problem("b", "", T)]
    vs = (verdicts_for("a", "", ["passed", "failed_test", "failed_test", "passed"],
                       examples=["passed", "passed", "failed_test", "failed_test"])
          + verdicts_for("b", "", ["passed", "failed_test", "failed_test", "failed_test"]))
    s = summarize(problems, vs, EvalConfig(ks=(1, 2, 8), n_submit=(1, 5), bootstrap=0))
    ex = s["examples"]
    assert ex["problems_with_examples"] == 1 and ex["samples_checked"] == 4 and ex["samples_passing_examples"] == 2
    assert ex["hidden_pass_rate_given_examples_pass"] == 0.5
    assert ex["hidden_pass_rate_given_examples_fail"] == 0.5
    entries = {(e["n"], e["k"]): e for e in s["n_at_k"]}
    assert set(entries) == {(1, 1), (1, 2)}  # 5@k needs k >= 5; k = 8 exceeds every problem's samples
    assert "1@8" in s["n_at_k_note"]
    # problem a: 4 samples, 2 pass the examples, 1 of those passes hidden; b is unfiltered (F = N)
    expected = (n_at_k(4, 2, 1, 1, 2) + n_at_k(4, 4, 1, 1, 2)) / 2
    assert entries[(1, 2)]["value"] == pytest.approx(expected)
    assert entries[(1, 2)]["problems_with_examples"] == 1 and entries[(1, 2)]["ci"] is None


def test_no_torch_or_transformers_imported():
    """Scoring must work without the model stack: the eval and task modules never import torch/transformers."""
    import subprocess
    import sys

    code = ("import sys\n"
            "import coderl.eval, coderl.eval.report, coderl.cli.eval_cmd, coderl.cli.data_cmd\n"
            "import coderl.tasks.humaneval, coderl.tasks.mbpp, coderl.tasks.apps, coderl.tasks.prompt\n"
            "import coderl.tasks.extract\n"
            "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'transformers', 'matplotlib'))\n"
            "assert not bad, bad\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
