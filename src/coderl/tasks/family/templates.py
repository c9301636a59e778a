"""The task templates. To add a task type, append one ``register(Template(...))`` (see docs/tasks.md)."""

from __future__ import annotations

from coderl.tasks.family.core import Template, register

LETTERS = "abcdefghijklmnopqrstuvwxyz"
SEPARATORS = ("-", "+", ",", ";", ":", ".", "/", "|", "*", "_")
FILLS = ("*", ".", "-", "0", "#", "_", "~", "=", "+", "x")
BRACKETS = ("(", ")", "[", "]", "<", ">", "*", "#", "!", "?", "@")
WORDS = ("fizz", "buzz", "bang", "ping", "pong", "zap", "zip", "boom", "bam", "pop")
PAIRS = (("big", "small"), ("high", "low"), ("hot", "cold"), ("up", "down"), ("yes", "no"))

# -- arithmetic ----------------------------------------------------------------------------------------------

register(Template(
    name="affine", category="arithmetic",
    specs=("Return x times {a} plus {b}.", "Multiply x by {a}, then add {b}.", "Compute {a} * x + {b}."),
    signature="def f(x):", body="return x * {a} + {b}",
    consts={"a": range(2, 12), "b": range(1, 16)},
    inputs=lambda a, b: [0, 1, 4, -3],
))

register(Template(
    name="floor_div", category="arithmetic",
    specs=("Add {b} to x, then divide by {a}, rounding down.", "Return x plus {b}, divided by {a} and rounded down.",
           "Integer-divide x + {b} by {a}."),
    signature="def f(x):", body="return (x + {b}) // {a}",
    consts={"a": range(2, 12), "b": range(1, 13)},
    inputs=lambda a, b: [0, 1, 7, 20],
    habit="return (x + {b}) / {a}", habit_kind="/ for //",
))

register(Template(
    name="mod_check", category="arithmetic",
    specs=("Return True if x divided by {a} leaves remainder {b}.", "Check whether x mod {a} is {b}.",
           "Is the remainder of x by {a} equal to {b}? Return a bool."),
    signature="def f(x):", body="return x % {a} == {b}",
    consts={"a": range(2, 17), "b": range(0, 16)}, where=lambda a, b: b < a,
    inputs=lambda a, b: [b, b + a, b + 1, 3 * a + b + 1],
))

register(Template(
    name="square_plus", category="arithmetic",
    specs=("Return x squared plus {a}.", "Square x and add {a}.", "Return the square of x, plus {a}."),
    signature="def f(x):", body="return x * x + {a}",
    consts={"a": range(1, 121)},
    inputs=lambda a: [0, 2, 3, -4],
    habit="return x * 2 + {a}", habit_kind="x * 2 for x * x",
))

register(Template(
    name="abs_diff", category="arithmetic",
    specs=("Return the distance between x and {a}.", "Return the absolute difference of x and {a}.",
           "How far is x from {a}? Return it."),
    signature="def f(x):", body="return abs(x - {a})",
    consts={"a": range(0, 120)},
    inputs=lambda a: [a + 3, a - 2, a, a - 7],
    habit="return x - {a}", habit_kind="missing abs",
))

register(Template(
    name="to_seconds", category="arithmetic",
    specs=("Return x minutes and {a} seconds, in seconds.", "Convert x minutes plus {a} seconds to seconds."),
    signature="def f(x):", body="return x * 60 + {a}",
    consts={"a": range(0, 120)},
    inputs=lambda a: [1, 0, 3, 10],
    habit="return x * 100 + {a}", habit_kind="wrong constant (100 for 60)",
))

register(Template(
    name="weighted", category="arithmetic",
    specs=("Return {a} times x plus {b} times y.", "Compute {a} * x + {b} * y."),
    signature="def f(x, y):", body="return {a} * x + {b} * y",
    consts={"a": range(1, 11), "b": range(1, 13)},
    inputs=lambda a, b: [(1, 0), (0, 1), (2, 3), (-1, 5)],
))

register(Template(
    name="sum_upto", category="arithmetic",
    specs=("Return the sum of the integers from {a} to x inclusive.", "Add up every whole number from {a} through x."),
    signature="def f(x):", body="return sum(range({a}, x + 1))",
    consts={"a": range(0, 110)},
    inputs=lambda a: [a, a + 1, a + 4, a - 1],
    habit="return sum(range({a}, x))", habit_kind="off-by-one range end",
))

# -- conditionals ---------------------------------------------------------------------------------------------

register(Template(
    name="clamp", category="conditional",
    specs=("Clamp x to the range {a} to {a + d}.", "Return x limited to lie between {a} and {a + d}.",
           "Return x, but at least {a} and at most {a + d}."),
    signature="def f(x):", body="return min(max(x, {a}), {a + d})",
    consts={"a": range(0, 15), "d": range(1, 11)},
    inputs=lambda a, d: [a - 5, a, a + d + 3, a + 1],
    habit="return max(min(x, {a}), {a + d})", habit_kind="min/max swapped",
))

register(Template(
    name="sign_vs", category="conditional",
    specs=("Return 1 if x > {a}, -1 if x < {a}, else 0.", "Compare x with {a}: 1 if more, -1 if less, else 0."),
    signature="def f(x):", body="if x == {a}:\n    return 0\nreturn 1 if x > {a} else -1",
    consts={"a": range(0, 120)},
    inputs=lambda a: [a + 4, a - 3, a, a + 1],
))

register(Template(
    name="threshold", category="conditional",
    specs=("Return {b} if x is at least {a}, else 0.", "If x >= {a} return {b}, otherwise return 0."),
    signature="def f(x):", body="return {b} if x >= {a} else 0",
    consts={"a": range(0, 20), "b": range(1, 10)},
    inputs=lambda a, b: [a, a - 1, a + 5, 0],
    habit="return {b} if x > {a} else 0", habit_kind="> for >=",
))

register(Template(
    name="min_two", category="conditional",
    specs=("Return the smaller of x and y times {a}.", "Multiply the minimum of x and y by {a}."),
    signature="def f(x, y):", body="return min(x, y) * {a}",
    consts={"a": range(2, 112)},
    inputs=lambda a: [(3, 8), (10, 2), (5, 5), (-1, 4)],
    habit="return max(x, y) * {a}", habit_kind="max for min",
))

register(Template(
    name="between", category="conditional",
    specs=("Return True if x is between {a} and {a + d}, inclusive.", "Is {a} <= x <= {a + d}? Return a bool.",
           "Check that x lies from {a} to {a + d}, both included."),
    signature="def f(x):", body="return {a} <= x <= {a + d}",
    consts={"a": range(0, 15), "d": range(1, 11)},
    inputs=lambda a, d: [a, a + d, a + 1, a + d + 1],
    habit="return {a} < x < {a + d}", habit_kind="< for <=",
))

register(Template(
    name="word_if_div", category="conditional",
    specs=("Return '{w}' if x is divisible by {a}, else return x.", "If {a} divides x, return '{w}'; otherwise x."),
    signature="def f(x):", body="return '{w}' if x % {a} == 0 else x",
    consts={"a": range(2, 14), "w": WORDS},
    inputs=lambda a, w: [a, 3 * a, a + 1, 1],
))

register(Template(
    name="label", category="conditional",
    specs=("Return '{w[0]}' if x is greater than {a}, else '{w[1]}'.",
           "Return '{w[0]}' when x > {a} and '{w[1]}' otherwise."),
    signature="def f(x):", body="return '{w[0]}' if x > {a} else '{w[1]}'",
    consts={"a": range(0, 30), "w": PAIRS},
    inputs=lambda a, w: [a + 1, a, a + 10, a - 3],
))

# -- lists ----------------------------------------------------------------------------------------------------

register(Template(
    name="evens_times", category="list",
    specs=("Return the even items of xs, each multiplied by {a}.",
           "Keep the even numbers in xs and multiply each by {a}."),
    signature="def f(xs):", body="return [x * {a} for x in xs if x % 2 == 0]",
    consts={"a": range(2, 112)},
    inputs=lambda a: [[1, 2, 3, 4], [], [5, 7], [0, -2, 9]],
    habit="return [x * {a} for x in xs if x % 2 == 1]", habit_kind="% 2 == 1 for even",
))

register(Template(
    name="count_greater", category="list",
    specs=("Count the items of xs greater than {a}.", "Return how many numbers in xs exceed {a}."),
    signature="def f(xs):", body="return len([x for x in xs if x > {a}])",
    consts={"a": range(0, 110)},
    inputs=lambda a: [[a, a + 1, a - 1], [a, a], [], [a + 5, a + 9, a - 9]],
    habit="return len([x for x in xs if x >= {a}])", habit_kind=">= for >",
))

register(Template(
    name="cap_list", category="list",
    specs=("Replace every item of xs above {a} with {a}.", "Cap each number in xs at {a}.",
           "Return xs with each item limited to at most {a}."),
    signature="def f(xs):", body="return [min(x, {a}) for x in xs]",
    consts={"a": range(0, 110)},
    inputs=lambda a: [[a - 1, a + 2], [], [a], [a + 7, 0]],
    habit="return [max(x, {a}) for x in xs]", habit_kind="max for min",
))

register(Template(
    name="all_above", category="list",
    specs=("Return True if every item of xs is greater than {a}.", "Are all numbers in xs above {a}? Return a bool."),
    signature="def f(xs):", body="return all(x > {a} for x in xs)",
    consts={"a": range(0, 110)},
    inputs=lambda a: [[a + 1, a + 2], [a + 1, a], [a - 1], [a + 3, a - 5, a + 9]],
    habit="return any(x > {a} for x in xs)", habit_kind="any for all",
))

register(Template(
    name="sum_slice", category="list",
    specs=("Return the sum of xs from index {a} to index {a + d}, inclusive.",
           "Add up the items of xs at indices {a} through {a + d}."),
    signature="def f(xs):", body="return sum(xs[{a}:{a + d + 1}])",
    consts={"a": range(0, 15), "d": range(0, 10)},
    inputs=lambda a, d: [list(range(1, 31)), list(range(30, 0, -1)), [2] * 25, list(range(-10, 20))],
    habit="return sum(xs[{a}:{a + d}])", habit_kind="off-by-one slice end",
))

register(Template(
    name="every_kth", category="list",
    specs=("Return every {a}-th item of xs, starting at index {b}.",
           "Take the items of xs from index {b} on, stepping by {a}."),
    signature="def f(xs):", body="return xs[{b}::{a}]",
    consts={"a": range(2, 8), "b": range(0, 20)},
    inputs=lambda a, b: [list(range(30)), list(range(40, 10, -1)), [], list(range(b + 1))],
))

register(Template(
    name="index_or", category="list",
    specs=("Return the index of {a} in xs, or -1 if it is missing.",
           "Find where {a} first appears in xs; return -1 if absent."),
    signature="def f(xs):", body="return xs.index({a}) if {a} in xs else -1",
    consts={"a": range(0, 110)},
    inputs=lambda a: [[a], [a + 1, a, a], [], [a + 1, a + 2]],
))

register(Template(
    name="max_plus", category="list",
    specs=("Return the largest item of xs plus {a}.", "Add {a} to the maximum of xs."),
    signature="def f(xs):", body="return max(xs) + {a}",
    consts={"a": range(1, 111)},
    inputs=lambda a: [[1, 5, 3], [-2], [7, 7], [0, -9, 4]],
))

register(Template(
    name="scaled_product", category="list",
    specs=("Return {a} times the product of the items of xs.", "Multiply {a} by every number in xs and return it."),
    signature="def f(xs):", body="p = {a}\nfor x in xs:\n    p *= x\nreturn p",
    consts={"a": range(2, 112)},
    inputs=lambda a: [[2, 3], [], [5], [-1, 4, 2]],
))

# -- strings --------------------------------------------------------------------------------------------------

register(Template(
    name="join_copies", category="string",
    specs=("Join {a} copies of s with '{c}' between them.", "Return s repeated {a} times, separated by '{c}'."),
    signature="def f(s):", body="return '{c}'.join([s] * {a})",
    consts={"a": range(2, 12), "c": SEPARATORS},
    inputs=lambda a, c: ["ab", "", "x", "hi!"],
))

register(Template(
    name="wrap", category="string",
    specs=("Put '{p}' before s and '{q}' after it.", "Return s with '{p}' on the left and '{q}' on the right."),
    signature="def f(s):", body="return '{p}' + s + '{q}'",
    consts={"p": BRACKETS, "q": BRACKETS}, where=lambda p, q: p != q,
    inputs=lambda p, q: ["ab", "", "x y", "hello"],
))

register(Template(
    name="trim", category="string",
    specs=("Return s without its first {a} and last {b} characters.",
           "Drop {a} characters from the start of s and {b} from the end."),
    signature="def f(s):", body="return s[{a}:len(s) - {b}]",
    consts={"a": range(0, 10), "b": range(0, 11)}, where=lambda a, b: a + b > 0,
    inputs=lambda a, b: [LETTERS, "hello world, hello!", "", "xyz"],
))

register(Template(
    name="has_count", category="string",
    specs=("Return True if '{c}' appears in s at least {a} times.", "Does s contain '{c}' {a} or more times?"),
    signature="def f(s):", body="return s.count('{c}') >= {a}",
    consts={"c": LETTERS, "a": range(1, 6)},
    inputs=lambda c, a: [c * a, c * (a - 1) + ".", "." + c * (a + 2), "..."],
    habit="return s.count('{c}') > {a}", habit_kind="> for >=",
))

register(Template(
    name="replace_char", category="string",
    specs=("Replace every '{c}' in s with '{d}'.", "Return s with each '{c}' changed to '{d}'."),
    signature="def f(s):", body="return s.replace('{c}', '{d}')",
    consts={"c": LETTERS[:11], "d": LETTERS[:11]}, where=lambda c, d: c != d,
    inputs=lambda c, d: [c + "z" + c, "zzz", "", d + c],
))

register(Template(
    name="starts_with", category="string",
    specs=("Return True if s starts with '{p}'.", "Does s begin with '{p}'? Return a bool."),
    signature="def f(s):", body="return s.startswith('{p}')",
    consts={"p": [x + y for x in LETTERS[:10] for y in LETTERS[:10]]},
    inputs=lambda p: [p + "zz", "zz" + p, p, "z"],
    habit="return s.endswith('{p}')", habit_kind="endswith for startswith",
))

register(Template(
    name="pad_left", category="string",
    specs=("Pad s on the left with '{c}' to length {a}.", "Return s right-aligned in width {a}, filled with '{c}'."),
    signature="def f(s):", body="return s.rjust({a}, '{c}')",
    consts={"a": range(3, 15), "c": FILLS},
    inputs=lambda a, c: ["ab", "", "y" * (a + 2), "xyz"],
    habit="return s.ljust({a}, '{c}')", habit_kind="ljust for rjust",
))

register(Template(
    name="count_vowels", category="string",
    specs=("Return the number of vowels in s plus {a}.", "Count the vowels of s, then add {a}."),
    signature="def f(s):", body="return sum(c in 'aeiou' for c in s) + {a}",
    consts={"a": range(1, 111)},
    inputs=lambda a: ["hello", "", "sky", "aeiou"],
))
