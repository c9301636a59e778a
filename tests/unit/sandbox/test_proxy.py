"""The judge's stand-ins for what the program raised and returned (no child needed)."""

from __future__ import annotations

import pytest

from coderl.sandbox.proxy import ProgramError, Remote, Untrusted, copy_back, program_exception


@pytest.mark.parametrize("name, cls", [("ValueError", ValueError), ("ZeroDivisionError", ZeroDivisionError),
                                       ("AssertionError", AssertionError), ("KeyError", KeyError)])
def test_builtin_exceptions_come_back_as_themselves(name, cls):
    e = program_exception(name, name, 7)
    assert type(e) is cls and e._coderl == (name, 7)


@pytest.mark.parametrize("name", ["StopIteration", "StopAsyncIteration", "SystemExit", "KeyboardInterrupt",
                                  "GeneratorExit", "MyError", "print", "__import__", 42, None])
def test_anything_else_is_a_program_error(name):
    """StopIteration would end the tests' own iteration (`all(map(f, xs))`); BaseException-only classes would
    escape the tests' `except Exception`; names that are not exception classes are just names."""
    e = program_exception(name, "d", None)
    assert type(e) is ProgramError and e._coderl == ("d", None)


def test_a_detail_that_is_not_a_string_is_replaced():
    assert program_exception("ValueError", ["x"], "3")._coderl == ("error", None)


def test_copy_back_applies_in_place_changes_of_mutable_arguments():
    xs, d, s, b, t = [3, 1, 2], {"a": 1}, {1}, bytearray(b"x"), (1,)
    copy_back([xs, d, s, b, t], [[1, 2, 3], {"b": 2}, {2, 3}, bytearray(b"yz"), None])
    assert (xs, d, s, b, t) == ([1, 2, 3], {"b": 2}, {2, 3}, bytearray(b"yz"), (1,))


@pytest.mark.parametrize("after", [None, "x", [{"not": "a list"}], [(9,)], [None]])
def test_copy_back_ignores_answers_of_another_shape(after):
    xs = [1]
    copy_back([xs], after)
    assert xs == [1]


class FakeRun:
    untrusted = False


@pytest.mark.parametrize("op", [lambda r: r == 1, lambda r: 1 == r, lambda r: r < 2, lambda r: bool(r),
                                lambda r: hash(r), lambda r: r + 1, lambda r: 1 - r, lambda r: abs(r),
                                lambda r: float(r), lambda r: 3 in r, lambda r: r in [1, 2], lambda r: -r,
                                lambda r: round(r), lambda r: f"{r:>3}"])
def test_a_remote_refuses_everything_that_decides_an_assertion(op):
    run = FakeRun()
    r = Remote(run, 0, "Fake")
    with pytest.raises(Untrusted):
        op(r)
    assert run.untrusted


def test_a_remote_cannot_be_probed_for_dunders_or_changed():
    r = Remote(FakeRun(), 0, "Fake")
    with pytest.raises(AttributeError):
        r.__array__  # noqa: B018
    with pytest.raises(Exception, match="setting attributes"):
        r.x = 1
    assert repr(r) == "<Fake object of the program>"
