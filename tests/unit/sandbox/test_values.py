"""The value format between the program's process and the judge: what crosses, and what is refused."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from coderl.sandbox import values
from coderl.sandbox.values import MAX_HEX_DIGITS, MAX_SAME_HASH, Malformed, NotPlain, decode_plain, decoder, encode


@pytest.mark.parametrize("value", [
    None, True, False, 0, -7, 2 ** 70, 2 ** 20000, -(2 ** 20000), 1.5, -0.0, math.inf, -math.inf, "", "caf\xe9",
    "\ud800", b"", b"\x00\xff", bytearray(b"ab"), 3 + 4j, [], [1, [2, [3]]], (), (1,), (1, (2, "x")),
    {"a": 1}, {1: 2, (1, 2): [3], None: {"x"}}, set(), {1, 2}, frozenset({(1, 2)}), [{"k": ({1}, b"z")}],
], ids=lambda v: type(v).__name__)
def test_plain_values_round_trip_with_their_exact_types(value):
    back = decode_plain(encode(value))
    assert back == value and type(back) is type(value)
    if isinstance(value, list | tuple) and value:
        assert [type(x) for x in back] == [type(x) for x in value]


def test_nan_round_trips_as_nan_even_nested():
    back = decode_plain(encode([1.0, math.nan, {"x": math.nan}]))
    assert math.isnan(back[1]) and math.isnan(back[2]["x"])
    assert back[1] is not None


def test_numpy_scalars_cross_as_python_scalars():
    back = decode_plain(encode([np.float64(5.0), np.int32(-3), np.bool_(True), np.str_("s")]))
    assert back == [5.0, -3, True, "s"]
    assert [type(x) for x in back] == [float, int, bool, str]


class IntWithEq(int):
    def __eq__(self, other):
        return True

    __hash__ = int.__hash__


@pytest.mark.parametrize("obj", [IntWithEq(3), type("L", (list,), {})(), object(), np.array([1, 2]), print,
                                 [1, object()], {"k": object()}])
def test_anything_else_is_not_plain(obj):
    with pytest.raises(NotPlain):
        encode(obj)


def test_objects_become_handles_when_a_table_is_given():
    table: list[object] = []

    def handle(obj):
        table.append(obj)
        return len(table) - 1

    obj = IntWithEq(3)
    text = encode([1, obj], handle)
    assert table == [obj] and json.loads(text) == [1, {"$h": 0, "t": "IntWithEq"}]
    back = decoder(lambda i, t: ("handle", i, t))(text)
    assert back == [1, ("handle", 0, "IntWithEq")]


def test_nesting_deeper_than_the_limit_becomes_a_handle():
    deep: list = []
    cur = deep
    for _ in range(values.MAX_DEPTH + 5):
        cur.append([])
        cur = cur[0]
    with pytest.raises(NotPlain):
        encode(deep)


@pytest.mark.parametrize("text", [
    "[1, 2",                                   # not JSON
    '{"a": 1}',                                # an untagged object
    '{"$t": 1}',                               # a tag of the wrong shape
    '{"$x": []}',                              # an unknown tag
    '{"$s": [[1]]}',                           # an unhashable set member
    '{"$d": [[[1], 2]]}',                      # an unhashable key
    '{"$d": [[1, 2, 3]]}',                     # not a pair
    '{"$b": "!!!"}',                           # not base64
    '{"$f": "zero"}',
    '{"$c": ["1", 2]}',
    '{"$i": "xyz"}',
    "NaN",                                     # JSON's non-standard constants are not part of the format
    "[Infinity]",
    '{"$h": 0, "t": "X"}',                     # a handle where none may be
    "[" * 100_000 + "]" * 100_000,             # deeper than the parser's stack
    '"\\ud800',                                # an unterminated string
    b"\xff\xfe",                               # not UTF-8
])
def test_malformed_messages_are_refused(text):
    with pytest.raises(Malformed):
        decode_plain(text)


def test_huge_hex_ints_are_refused():
    assert decode_plain('{"$i": "%s"}' % ("f" * MAX_HEX_DIGITS)) == 16 ** MAX_HEX_DIGITS - 1
    with pytest.raises(Malformed):
        decode_plain('{"$i": "%s"}' % ("f" * (MAX_HEX_DIGITS + 1)))


@pytest.mark.parametrize("tag", ["$s", "$fs"])
def test_sets_built_to_collide_in_one_hash_bucket_are_refused(tag):
    p = 2 ** 61 - 1  # ints that differ by a multiple of this share a hash
    colliding = [k * p for k in range(MAX_SAME_HASH + 1)]
    assert len({hash(x) for x in colliding}) == 1
    with pytest.raises(Malformed, match="share one hash"):
        decode_plain(json.dumps({tag: colliding}))
    with pytest.raises(Malformed, match="share one hash"):
        decode_plain(json.dumps({"$d": [[x, 0] for x in colliding]}))
    # as many members that merely happen to collide a little are fine
    assert len(decode_plain(json.dumps({tag: colliding[:MAX_SAME_HASH] + list(range(1, 1000))}))) == MAX_SAME_HASH + 999


def test_lists_built_to_collide_in_one_hash_bucket_are_refused():
    """A list the judge's tests might turn into a set (`set(candidate(x))`): distinct colliding items are
    refused; repeated equal items, strings and ordinary numbers are not."""
    p = 2 ** 61 - 1
    with pytest.raises(Malformed, match="share one hash"):
        decode_plain(json.dumps([k * p for k in range(MAX_SAME_HASH + 1)]))
    with pytest.raises(Malformed, match="share one hash"):
        decode_plain(json.dumps({"$t": [[0, [k * p for k in range(MAX_SAME_HASH + 1)]]]}))  # nested
    for fine in ([0] * 10_000, [p] * 10_000, list(range(10_000)), ["a", "b"] * 5_000, [1.5, -2, True] * 3_000,
                 [k * p for k in range(MAX_SAME_HASH)] + list(range(1, 100))):
        assert decode_plain(json.dumps(fine)) == fine
