"""The Problem schema and its JSONL reader: round trips, and errors that name the file, line and field."""

from __future__ import annotations

import gzip
import json

import pytest

from coderl.tasks.problem import DataError, Problem, iter_jsonl, read_problems, write_problems

TESTS = {"type": "assert", "asserts": ["assert f() == 1"]}


def test_round_trip(tmp_path):
    p = Problem("t/1", "prompt", TESTS, solutions=["def f():\n    return 1\n"], difficulty="easy", source="x",
                example_tests=TESTS, prelude="import math\n", metadata={"a": 1})
    path = tmp_path / "p.jsonl"
    write_problems([p], path)
    (q,) = read_problems(path)
    assert q == p
    assert q.program("x = 1\n") == "import math\nx = 1\n"
    assert q.prelude_lines == 1


def test_program_prefix_is_the_completion_convention():
    p = Problem("t", "def f():\n", TESTS, program_prefix="def f():\n")
    assert p.completion_style
    assert p.program("    return 1\n") == "def f():\n    return 1\n"
    assert not Problem("t", "text", TESTS).completion_style


@pytest.mark.parametrize("line, field", [
    ({"prompt": "p", "tests": TESTS}, "task_id"),
    ({"task_id": "a", "prompt": 3, "tests": TESTS}, "prompt"),
    ({"task_id": "a", "prompt": "p", "tests": {"type": "assert", "asserts": []}}, "tests.asserts"),
    ({"task_id": "a", "prompt": "p", "tests": TESTS, "solutions": ["ok", 5]}, "solutions[1]"),
    ({"task_id": "a", "prompt": "p", "tests": TESTS, "example_tests": {"type": "stdio"}}, "example_tests.inputs"),
])
def test_malformed_problem_names_line_and_field(tmp_path, line, field):
    path = tmp_path / "bad.jsonl"
    good = {"task_id": "ok", "prompt": "p", "tests": TESTS}
    path.write_text(json.dumps(good) + "\n\n" + json.dumps(line) + "\n")
    with pytest.raises(DataError) as e:
        read_problems(path)
    assert e.value.line == 3 and e.value.field == field and e.value.path == str(path)
    assert str(e.value).startswith(f"{path}:3: field '{field}':")


def test_duplicate_ids_and_bad_json(tmp_path):
    path = tmp_path / "dup.jsonl"
    rec = json.dumps({"task_id": "a", "prompt": "p", "tests": TESTS})
    path.write_text(rec + "\n" + rec + "\n")
    with pytest.raises(DataError, match="duplicate task_id 'a' .first on line 1."):
        read_problems(path)
    path.write_text(rec + "\n{oops\n")
    with pytest.raises(DataError, match=r":2: not valid JSON"):
        read_problems(path)
    path.write_text("[1, 2]\n")
    with pytest.raises(DataError, match=r":1: expected a JSON object"):
        read_problems(path)


def test_iter_jsonl_reads_gzip_and_rejects_bad_utf8(tmp_path):
    gz = tmp_path / "x.jsonl.gz"
    with gzip.open(gz, "wt") as f:
        f.write('{"a": 1}\n\n{"a": 2}\n')
    assert list(iter_jsonl(gz)) == [(1, {"a": 1}), (3, {"a": 2})]
    bad = tmp_path / "bad.jsonl"
    bad.write_bytes(b'{"a": 1}\n{"a": "\xff"}\n')
    with pytest.raises(DataError, match="not UTF-8"):
        list(iter_jsonl(bad))
    with pytest.raises(DataError, match="cannot read"):
        list(iter_jsonl(tmp_path / "missing.jsonl"))


def test_a_problem_makes_its_execution_requests():
    from coderl.sandbox.schema import parse_request

    hidden = {"type": "assert", "asserts": ["assert f() == 1"]}
    examples = {"type": "assert", "asserts": ["assert f() == 1"], "fixtures": "x = 1"}
    p = Problem(task_id="t/1", prompt="p", tests=hidden, example_tests=examples, prelude="import math\n")
    req = p.request("a", p.program("def f():\n    return 1\n"), timeout=2.0, checker=None)
    assert req == {"id": "a", "program": "import math\ndef f():\n    return 1\n", "tests": hidden, "timeout": 2.0}
    assert p.request("b", "pass", examples=True)["tests"] is examples
    assert parse_request(req).timeout == 2.0  # what the executor accepts
    with pytest.raises(ValueError, match="t/2: no example tests"):
        Problem(task_id="t/2", prompt="p", tests=hidden).request("c", "pass", examples=True)
