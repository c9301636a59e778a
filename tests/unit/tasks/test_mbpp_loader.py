"""MBPP loader: original JSONL, standard splits and prompt, and the Hugging Face path (with a fake `datasets`)."""

from __future__ import annotations

import json
import sys
import types
from pathlib import Path

import pytest

from coderl.tasks.mbpp import PROMPT_TEMPLATE, few_shot_examples, load_mbpp, split_of
from coderl.tasks.problem import DataError
from coderl.tasks.prompt import format_prompt

FIXTURE = Path(__file__).resolve().parents[2] / "fixtures" / "mbpp_mini.jsonl"


def test_standard_splits():
    assert [split_of(i) for i in (1, 10, 11, 510, 511, 600, 601, 974, 975)] == \
        ["prompt", "prompt", "test", "test", "validation", "validation", "train", "train", None]
    assert [p.task_id for p in load_mbpp(FIXTURE)] == ["Mbpp/11", "Mbpp/12", "Mbpp/13"]
    assert [p.task_id for p in load_mbpp(FIXTURE, split="validation")] == ["Mbpp/511"]
    assert len(load_mbpp(FIXTURE, split="all")) == 8
    with pytest.raises(DataError, match="unknown MBPP split"):
        load_mbpp(FIXTURE, split="dev")


def test_problem_fields_and_standard_prompt():
    p = load_mbpp(FIXTURE)[0]
    tests = ['assert remove_Occ("hello","l") == "heo"', 'assert remove_Occ("abcda","a") == "bcd"',
             'assert remove_Occ("PHP","P") == "H"']
    assert p.tests == {"type": "assert", "fixtures": "", "asserts": tests}
    assert p.example_tests["asserts"] == tests
    assert p.entry_point == "remove_Occ" and p.source == "mbpp" and not p.completion_style
    assert "\r" not in p.solutions[0]
    assert p.prompt == PROMPT_TEMPLATE.format(
        text="Write a python function to remove first and last occurrence of a given character from the string.",
        tests="\n".join(tests))
    assert p.metadata["challenge_tests"] and len(load_mbpp(FIXTURE, challenge_tests=True)[0].tests["asserts"]) == 5
    assert load_mbpp(FIXTURE)[2].tests["fixtures"] == "PI = 3.141592653589793"


def test_three_shot_prompt_uses_prompt_split_tasks():
    shots = few_shot_examples(load_mbpp(FIXTURE, split="prompt"))
    assert [s.task_id for s in shots] == ["Mbpp/2", "Mbpp/3", "Mbpp/4"]
    text = format_prompt(load_mbpp(FIXTURE)[0], shots)
    assert text.count("QUESTION:") == 4 and "similar_elements" in text


def test_malformed_lines_name_line_and_field(tmp_path):
    lines = FIXTURE.read_text().splitlines()
    bad = json.loads(lines[3])
    bad["test_list"] = "assert x"
    path = tmp_path / "m.jsonl"
    path.write_text("\n".join(lines[:3] + [json.dumps(bad)]) + "\n")
    with pytest.raises(DataError) as e:
        load_mbpp(path)
    assert (e.value.line, e.value.field, e.value.path) == (4, "test_list", str(path))
    path.write_text(lines[0] + "\n" + lines[1].replace('"task_id": 3', '"task_id": "3"') + "\n")
    with pytest.raises(DataError) as e:
        load_mbpp(path, split="all")
    assert (e.value.line, e.value.field) == (2, "task_id")


def test_hugging_face_path(monkeypatch):
    """Without a path the loader asks `datasets` for the HF id; exercised offline with a stand-in module."""
    rows = [json.loads(line) for line in FIXTURE.read_text().splitlines()]
    calls = []

    def load_dataset(name, config, split):
        calls.append((name, config, split))
        lo, hi = {"test": (11, 510), "prompt": (1, 10), "validation": (511, 600), "train": (601, 974)}[split]
        return [r for r in rows if lo <= r["task_id"] <= hi]

    monkeypatch.setitem(sys.modules, "datasets", types.SimpleNamespace(load_dataset=load_dataset))
    problems = load_mbpp(split="test")
    assert calls == [("google-research-datasets/mbpp", "full", "test")]
    assert [p.task_id for p in problems] == ["Mbpp/11", "Mbpp/12", "Mbpp/13"]
    assert problems[0].tests["type"] == "assert"
    assert len(load_mbpp(split="all")) == 8

    def offline(*args, **kwargs):
        raise ConnectionError("no network")

    monkeypatch.setitem(sys.modules, "datasets", types.SimpleNamespace(load_dataset=offline))
    with pytest.raises(DataError, match=r"give its local path \(--path, data.path\)"):
        load_mbpp(split="test")


def test_sanitized_layout_is_accepted():
    rec = {"source_file": "x", "task_id": 12, "prompt": "Sort rows by sum.", "code": "def f(m):\n  return m\n",
           "test_imports": ["import math"], "test_list": ["assert f([]) == []"]}
    from coderl.tasks.mbpp import problem_from_record

    p = problem_from_record(rec)
    assert p.tests["fixtures"] == "import math" and p.entry_point == "f" and "Sort rows by sum." in p.prompt
