"""A problems JSONL through the one entry point: a file that is not one says how to write one, and a command
with no path/split of its own (generate, train-repair) takes only a problems file or the task family."""

from __future__ import annotations

import json

import pytest

from coderl.tasks import EXPORT_HINT, DataError, load_problem_file_or_family, load_problems, write_problems
from coderl.tasks.family import generate_tasks


def test_a_benchmark_file_given_as_problems_names_its_line_and_says_how_to_export(tmp_path):
    mbpp = tmp_path / "mbpp.jsonl"  # MBPP's own format, not a problems JSONL
    mbpp.write_text(json.dumps({"task_id": 11, "text": "t", "code": "", "test_list": []}) + "\n")
    for load in (load_problems, load_problem_file_or_family):
        with pytest.raises(DataError) as e:
            load(str(mbpp))
        assert str(e.value).startswith(f"{mbpp}:1:") and e.value.line == 1
        assert str(e.value).endswith(f"(not a problems JSONL? {EXPORT_HINT})")


def test_an_empty_file_says_how_to_export(tmp_path):
    empty = tmp_path / "p.jsonl"
    empty.write_text("")
    with pytest.raises(DataError, match="no problems in file .not a problems JSONL"):
        load_problems(str(empty))


@pytest.mark.parametrize("spec, what", [("apps", "no such file"), ("humaneval", "no such file"),
                                        ("nope.jsonl", "no such file"), (".", "is a directory")])
def test_file_or_family_refuses_a_benchmark_name_or_folder_with_the_export_hint(spec, what):
    with pytest.raises(DataError) as e:
        load_problem_file_or_family(spec)
    assert e.value.path == spec and what in str(e.value) and EXPORT_HINT in str(e.value)


def test_file_or_family_reads_a_problems_file_and_the_family(tmp_path, monkeypatch):
    tasks = generate_tasks("test", 3, seed=2)
    assert [p.task_id for p in load_problem_file_or_family("family:test:3", seed=2)] == [p.task_id for p in tasks]
    monkeypatch.chdir(tmp_path)
    write_problems(tasks, "mbpp")  # a file named like a benchmark is the file
    assert [p.task_id for p in load_problem_file_or_family("mbpp")] == [p.task_id for p in tasks]
