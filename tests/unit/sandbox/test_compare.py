"""Output comparison. Expected results follow the rules stated in the docstrings of compare.py and schema.py."""

from __future__ import annotations

import math

import pytest

from coderl.sandbox.compare import call_match, same_value, stdio_apps, stdio_default, stdio_match

# -- default checker: trailing whitespace per line and trailing blank lines are forgiven, nothing else --------


@pytest.mark.parametrize("output, expected", [
    ("5", "5"),
    ("5\n", "5"),
    ("5", "5\n\n\n"),
    ("1 \n2\t\n\n\n", "1\n2"),
    ("1\r\n2\r\n", "1\n2\n"),
    ("a  \nb", "a\nb   \n"),
    ("", ""),
    ("", "\n\n"),
    ("\n \n\t\n", ""),
])
def test_default_forgives_trailing_whitespace_and_trailing_blank_lines(output, expected):
    assert stdio_default(output, expected)
    assert stdio_default(expected, output)
    assert stdio_match(output, expected, "default")


@pytest.mark.parametrize("output, expected", [
    (" 5", "5"),             # leading whitespace
    ("\n5", "5"),            # leading blank line
    ("1\n\n2", "1\n2"),      # blank line in the middle
    ("1  2", "1 2"),         # inner whitespace
    ("1.0", "1"),            # no number tolerance
    ("1.0000001", "1"),
    ("2 1", "1 2"),          # no token reordering
    ("2\n1", "1\n2"),        # no line reordering
    ("YES", "yes"),          # case matters
    ("5\n5", "5"),           # repeated line
    ("", "5"),
])
def test_default_forgives_nothing_else(output, expected):
    assert not stdio_default(output, expected)
    assert not stdio_match(output, expected, "default")


# -- apps checker -----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("output, expected", [
    ("  5  \n\n", "5"),                  # stripped non-empty lines
    ("\n\n1\n\n2\n", "1\n2"),            # blank lines anywhere
    ("\t1 2 ", "1 2"),
    ("1\r\n2\r\n", "1\n2"),
    ("1.000001", "1"),                   # numbers within allclose tolerance (rtol 1e-5, atol 1e-8)
    ("100000.5", "100001"),              # ... relative to the expected value
    ("0", "0.000000001"),                # ... absolute near zero
    ("1.000001\n2.0000001", "1\n2"),
    ("2 1\n3", "1 2\n3"),                # token order within a line
    ("3\n1 2", "2 1\n3"),                # line order
    ("1\n1\n2", "1\n2"),                 # repeated lines
    ("1 1 2", "1 2"),                    # repeated tokens in a line
    ("0.3333333 2", "0.333 2"),          # tokens rounded to 3 decimals
    ("2.0001 x", "2.0001 x"),
])
def test_apps_lenient_rules(output, expected):
    assert stdio_apps(output, expected)
    assert stdio_match(output, expected, "apps")


@pytest.mark.parametrize("output, expected", [
    ("5", "6"),
    ("YES", "yes"),
    ("1\n2", "1"),                       # a missing line
    ("1 2", "1\n2"),                     # tokens split over lines differently
    ("1.01", "1"),                       # outside tolerance and different at 3 decimals
    ("0.3336 2", "0.333 2"),             # rounds to 0.334
    ("1 2 3", "1 2"),                    # an extra token
    ("", "5"),
    ("5", ""),
])
def test_apps_still_rejects(output, expected):
    assert not stdio_apps(output, expected)
    assert not stdio_match(output, expected, "apps")


def test_number_tolerance_differs_between_checkers():
    assert not stdio_match("1.000001\n", "1\n", "default")
    assert stdio_match("1.000001\n", "1\n", "apps")


@pytest.mark.parametrize("text", ["1\n2 3\n", "  a b  \n\nc", "0.5\n", "x"])
def test_both_checkers_accept_identical_text(text):
    assert stdio_default(text, text)
    assert stdio_apps(text, text)


@pytest.mark.parametrize("text", ["1\r2", "a\x0cb", "x\x1cy", "p\u2028q"], ids=["CR", "FF", "FS", "LS"])
def test_apps_accepts_identical_text_with_unusual_line_breaks(text):
    assert stdio_apps(text, text)


# -- call-based values ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("value, expected", [
    (5, 5),
    (5, 5.0),
    (5.0, 5),
    ((1, 2), [1, 2]),
    ([1, 2], (1, 2)),
    ([(1, 2), (3, 4)], [[1, 2], [3, 4]]),
    ({"a": (1, (2,))}, {"a": [1, [2]]}),
    (None, None),
    ("abc", "abc"),
    ([], []),
    ({1, 2}, {2, 1}),
    (True, True),
    (b"x", b"x"),
])
def test_call_match_equal_values(value, expected):
    for checker in ("default", "apps"):
        assert call_match(value, expected, wrapped=False, checker=checker)
        assert call_match(value, expected, wrapped=True, checker=checker)


@pytest.mark.parametrize("value, expected", [
    (5, 6),
    ("5", 5),
    ([1, 2], [2, 1]),
    ((1, 2), [1, 2, 3]),
    ({1, 2}, [1, 2]),
    (5, [5]),
    ([5], [[5], [6]]),
    (None, []),
    (math.nan, math.nan),
    ([math.nan], [None]),             # a NaN is not a missing value
    ({"a": math.nan}, {"a": None}),
    (None, 0),
    ("", None),
    ({"a": 1}, {"a": 1, "b": 2}),
])
def test_call_match_unwrapped_rejects(value, expected):
    for checker in ("default", "apps"):
        assert not call_match(value, expected, wrapped=False, checker=checker)


@pytest.mark.parametrize("value, expected", [(True, 1), (1, True), (False, 0), ([True], [1]), (0.0, False)])
def test_bool_is_not_a_number_by_default_but_is_for_apps(value, expected):
    assert not call_match(value, expected, wrapped=False)
    assert not same_value(value, expected)
    assert call_match(value, expected, wrapped=False, checker="apps")  # Python's ==, as APPS's harness


@pytest.mark.parametrize("value, expected", [
    (5, [5]),
    ([1, 2], [[1, 2]]),
    ((1, 2), [[1, 2]]),
    ("x", ["x"]),
])
def test_call_match_wrapped_accepts_the_only_element(value, expected):
    assert call_match(value, expected, wrapped=True)
    assert not call_match(value, expected, wrapped=False)


@pytest.mark.parametrize("value, expected", [(5, []), (5, [[5]]), (6, [5])])
def test_call_match_wrapped_still_rejects(value, expected):
    assert not call_match(value, expected, wrapped=True)


def test_call_match_wrapped_needs_a_single_element_except_for_apps():
    assert not call_match(3, [3, 4], wrapped=True)
    assert call_match(3, [3, 4], wrapped=True, checker="apps")  # APPS compares with the first element
    assert not call_match([1], [[1], [2]], wrapped=True)


def test_same_value_bounds_recursion():
    deep_a: list = []
    deep_b: list = []
    a, b = deep_a, deep_b
    for _ in range(500):
        a.append([])
        b.append([])
        a, b = a[0], b[0]
    assert not same_value(deep_a, deep_b)  # too deep to be an answer; no RecursionError


# -- output that is large or hostile ---------------------------------------------------------------------------

def test_checkers_read_long_outputs_lazily():
    """A long output that is wrong on its first line is rejected without splitting it all (the checkers
    iterate lines); one that is right is accepted whatever its trailing blank lines."""
    junk = "x\n" * 2_000_000
    assert not stdio_default(junk, "5\n")
    assert not stdio_apps(junk, "5\n")
    assert stdio_default("5" + "\n" * 1_000_000, "5\n")
    assert stdio_apps("5" + " \n" * 1_000_000, "5\n")


def test_apps_token_sets_stop_growing_past_the_expected_size():
    many_distinct = "".join(f"{i}\n" for i in range(200_000))
    assert not stdio_apps(many_distinct, "1\n2\n")
    assert stdio_apps("2\n1\n" * 100_000, "1\n2\n")  # APPS's rule: the set of line-token-sets
