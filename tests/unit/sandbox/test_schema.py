"""Request validation: every error names the field, and read_requests adds the file and the line."""

from __future__ import annotations

import json

import pytest

from coderl.sandbox.schema import Request, RequestError, Result, parse_request, read_requests, validate_tests

ASSERT = {"type": "assert", "asserts": ["assert f(1) == 1"]}
STDIO = {"type": "stdio", "inputs": ["1\n"], "outputs": ["1\n"]}
CALL = {"type": "call", "fn_name": "f", "inputs": [[1]], "outputs": [1]}


def req(**over):
    d = {"id": "a", "program": "def f(x): return x", "tests": ASSERT}
    d.update(over)
    return {k: v for k, v in d.items() if v is not ...}


def field_of(d) -> str | None:
    with pytest.raises(RequestError) as ei:
        parse_request(d)
    assert ei.value.field is None or ei.value.field in str(ei.value)
    return ei.value.field


@pytest.mark.parametrize("tests", [ASSERT, STDIO, CALL, {**ASSERT, "setup": "import math"},
                                   {**CALL, "wrapped": True}], ids=["assert", "stdio", "call", "setup", "wrapped"])
def test_valid_requests(tests):
    r = parse_request(req(tests=tests, timeout=2, checker="apps"))
    assert isinstance(r, Request)
    assert (r.id, r.timeout, r.checker) == ("a", 2.0, "apps")
    assert isinstance(r.timeout, float)
    assert r.n_tests == 1
    assert r.tests is tests


def test_integer_id_becomes_a_string_and_defaults_are_none():
    r = parse_request({"id": 7, "program": "", "tests": STDIO})
    assert r.id == "7" and r.timeout is None and r.checker is None
    assert r.to_dict() == {"id": "7", "program": "", "tests": STDIO}


@pytest.mark.parametrize("d, field", [
    (req(id=...), "id"),
    (req(id=None), "id"),
    (req(id=True), "id"),
    (req(id=1.5), "id"),
    (req(id=["x"]), "id"),
    (req(program=...), "program"),
    (req(program=42), "program"),
    (req(program=None), "program"),
    (req(tests=...), "tests"),
    (req(tests=None), "tests"),
    (req(tests=["assert True"]), "tests"),
    (req(tests={"asserts": ["assert True"]}), "tests.type"),
    (req(tests={"type": 3, "asserts": ["assert True"]}), "tests.type"),
    (req(tests={"type": "pytest", "asserts": ["assert True"]}), "tests.type"),
    (req(tests={"type": "assert"}), "tests.asserts"),
    (req(tests={"type": "assert", "asserts": []}), "tests.asserts"),
    (req(tests={"type": "assert", "asserts": "assert True"}), "tests.asserts"),
    (req(tests={"type": "assert", "asserts": ["assert True", 5]}), "tests.asserts[1]"),
    (req(tests={"type": "assert", "asserts": ["assert True"], "setup": ["x"]}), "tests.setup"),
    (req(tests={"type": "stdio", "outputs": ["1"]}), "tests.inputs"),
    (req(tests={"type": "stdio", "inputs": ["1"]}), "tests.outputs"),
    (req(tests={"type": "stdio", "inputs": [], "outputs": []}), "tests.inputs"),
    (req(tests={"type": "stdio", "inputs": ["1", "2"], "outputs": ["1"]}), "tests.outputs"),
    (req(tests={"type": "stdio", "inputs": ["1", 2], "outputs": ["1", "2"]}), "tests.inputs[1]"),
    (req(tests={"type": "stdio", "inputs": ["1"], "outputs": [1]}), "tests.outputs[0]"),
    (req(tests={"type": "stdio", "inputs": "1", "outputs": ["1"]}), "tests.inputs"),
    (req(tests={"type": "call", "inputs": [[1]], "outputs": [1]}), "tests.fn_name"),
    (req(tests={"type": "call", "fn_name": 3, "inputs": [[1]], "outputs": [1]}), "tests.fn_name"),
    (req(tests={"type": "call", "fn_name": "f", "inputs": [[1], 2], "outputs": [1, 2]}), "tests.inputs[1]"),
    (req(tests={"type": "call", "fn_name": "f", "inputs": [[1]], "outputs": [1], "wrapped": 1}),
     "tests.wrapped"),
    (req(timeout="3"), "timeout"),
    (req(timeout=0), "timeout"),
    (req(timeout=-1.5), "timeout"),
    (req(timeout=True), "timeout"),
    (req(timeout=[3]), "timeout"),
    (req(checker="exact"), "checker"),
    (req(checker=1), "checker"),
], ids=lambda x: x if isinstance(x, str) else None)
def test_invalid_request_names_the_field(d, field):
    assert field_of(d) == field


def test_non_object_request():
    with pytest.raises(RequestError, match="JSON object"):
        parse_request(["id", "program"])


def test_validate_tests_with_custom_prefix():
    with pytest.raises(RequestError) as ei:
        validate_tests({"type": "assert"}, "spec.")
    assert ei.value.field == "spec.asserts"


def test_error_message_format():
    e = RequestError("expected a positive number of seconds", field="timeout", line=3, path="r.jsonl")
    assert str(e) == "r.jsonl:3: field 'timeout': expected a positive number of seconds"
    assert (e.field, e.line, e.path, e.reason) == ("timeout", 3, "r.jsonl", "expected a positive number of seconds")
    assert str(RequestError("boom")) == "boom"
    assert isinstance(e, ValueError)


# -- read_requests on files --------------------------------------------------------------------------------------

def write_lines(path, lines):
    path.write_text("".join((ln if isinstance(ln, str) else json.dumps(ln)) + "\n" for ln in lines),
                    encoding="utf-8")
    return str(path)


def good(i):
    return {"id": f"r{i}", "program": "def f(x): return x", "tests": ASSERT}


def test_read_requests_in_order_skipping_blank_lines(tmp_path):
    p = write_lines(tmp_path / "ok.jsonl", [good(1), "", "   ", good(2), good(3)])
    reqs = read_requests(p)
    assert [r.id for r in reqs] == ["r1", "r2", "r3"]


@pytest.mark.parametrize("lines, line, field, words", [
    ([good(1), good(2), "{not json"], 3, None, "not valid JSON"),
    ([good(1), {"id": "x", "program": "", "tests": {"type": "assert"}}], 2, "tests.asserts", "missing"),
    ([good(1), good(2), good(3), {**good(4), "timeout": "fast"}], 4, "timeout", "positive number"),
    ([good(1), "", {**good(1)}], 3, "id", "duplicate id 'r1' (first on line 1)"),
    (["[1, 2]"], 1, None, "JSON object"),
    ([good(1), "", "", '{"id": "z", "program": "", "tests": {"type": "stdio", "inputs": ["1"], "outputs": []}}'],
     4, "tests.outputs", "1 inputs but 0 outputs"),
], ids=["bad-json", "missing-asserts", "timeout-type", "duplicate-id", "not-object", "blank-lines-counted"])
def test_read_requests_errors_name_file_line_and_field(tmp_path, lines, line, field, words):
    p = write_lines(tmp_path / "bad.jsonl", lines)
    with pytest.raises(RequestError) as ei:
        read_requests(p)
    e = ei.value
    assert (e.path, e.line, e.field) == (p, line, field)
    msg = str(e)
    assert msg.startswith(f"{p}:{line}:")
    assert words in msg
    if field is not None:
        assert f"field '{field}'" in msg


def test_read_requests_bad_json_reports_column(tmp_path):
    p = write_lines(tmp_path / "bad.jsonl", [good(1), '{"id": "x",, }'])
    with pytest.raises(RequestError, match=r"bad\.jsonl:2: not valid JSON .*column \d+"):
        read_requests(p)


def test_result_round_trip():
    r = Result("a", "failed_test", "wrong_answer", ["passed", "failed_test"], 0.5, None, 0.01)
    d = r.to_dict()
    assert list(d) == ["id", "outcome", "detail", "tests", "pass_fraction", "error_line", "seconds"]
    assert Result.from_dict({**d, "extra": 1}) == r
    assert not r.passed and Result("b", "passed", "ok").passed
