"""Output comparison. Expected results follow the rules stated in the docstrings of compare.py and schema.py."""

from __future__ import annotations

import math

import pytest

from coderl.sandbox.compare import MAX_LITERAL, call_match, parse_value, stdio_apps, stdio_default, stdio_match

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
    ((1, 2), [1, 2]),
    ([1, 2], (1, 2)),
    ([(1, 2), (3, 4)], [[1, 2], [3, 4]]),
    ({"a": (1, (2,))}, {"a": [1, [2]]}),
    (None, None),
    ("abc", "abc"),
    ([], []),
    ({1, 2}, {2, 1}),
])
def test_call_match_equal_after_tuples_become_lists(value, expected):
    assert call_match(value, expected, wrapped=False)
    assert call_match(value, expected, wrapped=True)


@pytest.mark.parametrize("value, expected", [
    (5, 6),
    ("5", 5),
    ([1, 2], [2, 1]),
    ((1, 2), [1, 2, 3]),
    ({1, 2}, [1, 2]),
    (5, [5]),
    ([5], [[5], [6]]),
    (None, []),
])
def test_call_match_unwrapped_rejects(value, expected):
    assert not call_match(value, expected, wrapped=False)


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


@pytest.mark.parametrize("value, expected", [(3, [3, 4]), ([1], [[1], [2]])])
def test_call_match_wrapped_needs_a_single_element(value, expected):
    assert not call_match(value, expected, wrapped=True)


# -- parsing return values -------------------------------------------------------------------------------------

@pytest.mark.parametrize("literal, value", [
    ("[1, (2, 3)]", [1, (2, 3)]),
    ("{'a': [1.5, None, True]}", {"a": [1.5, None, True]}),
    ("b'x'", b"x"),
    ("(1+2j)", 1 + 2j),
    ("set()", set()),
    ("{1, 2}", {1, 2}),
    ("1e999", math.inf),
    ("-1e999", -math.inf),
    ("'caf\\xe9'", "caf\xe9"),
])
def test_parse_value(literal, value):
    assert parse_value(literal) == value


def test_parse_value_nan():
    assert math.isnan(parse_value("__coderl_nan__"))


@pytest.mark.parametrize("literal", [
    "__import__('os').system('true')",
    "f(1)",
    "x",
    "[1, 2",
    "[" * 100_000 + "]" * 100_000,
    "",
    "lambda: 0",
])
def test_parse_value_rejects_non_literals(literal):
    with pytest.raises(ValueError):
        parse_value(literal)


def test_parse_value_rejects_oversized_literals():
    with pytest.raises(ValueError, match="too large"):
        parse_value("0" * (MAX_LITERAL + 1))
