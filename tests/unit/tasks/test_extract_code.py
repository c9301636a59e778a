"""extract_code: fenced blocks, stray prose, completion vs whole-program conventions."""

from __future__ import annotations

import pytest

from coderl.tasks.extract import extract_code

PROMPT = 'def add(a, b):\n    """Add a and b."""\n'


def test_bare_code_is_unchanged():
    code = "import sys\nn = int(input())\nprint(n * 2)\n"
    assert extract_code(code) == code


def test_first_python_block_wins_over_usage_examples():
    text = ("Here is my solution:\n\n```python\ndef f(x):\n    return x + 1\n```\n\nUsage:\n\n```python\n"
            "print(f(1))\n```\nHope this helps!")
    assert extract_code(text) == "def f(x):\n    return x + 1\n"


def test_block_defining_the_entry_point_is_preferred():
    text = "```python\nimport math\n```\nthen\n```py\ndef area(r):\n    return math.pi * r * r\n```\n"
    assert extract_code(text, entry_point="area") == "def area(r):\n    return math.pi * r * r\n"
    assert extract_code(text) == "import math\n"


def test_non_python_blocks_are_skipped_and_unterminated_fence_runs_to_the_end():
    text = "```bash\npip install x\n```\n```\nx = 1\nprint(x)"
    assert extract_code(text) == "x = 1\nprint(x)\n"
    assert extract_code("~~~~python\n    a = 1\n    b = 2\n~~~~\n") == "a = 1\nb = 2\n"


def test_prose_around_unfenced_code_is_dropped():
    text = "Sure! Here is the program:\n\nn = int(input())\nprint(n + 1)\n\nThis reads n and prints n + 1.\n"
    assert extract_code(text) == "n = int(input())\nprint(n + 1)\n"


def test_prose_inside_code_is_kept_so_the_verdict_is_honest():
    text = "x = 1\nthis is not code\nprint(x)\n"
    assert extract_code(text) == text


@pytest.mark.parametrize("text, expected", [
    ("    return a + b\n", "    return a + b\n"),  # raw continuation: verbatim
    ("```python\nreturn a + b\n```", "    return a + b\n"),  # chat body without indentation
    (PROMPT + "    return a + b\n", "    return a + b\n"),  # the prompt repeated
    ("```python\n" + PROMPT + "    return a + b\n```", "    return a + b\n"),
    ("```python\ndef add(a, b):\n    return a + b\n```", "def add(a, b):\n    return a + b\n"),  # redefinition
])
def test_completion_convention(text, expected):
    out = extract_code(text, completion=True, prompt=PROMPT, entry_point="add")
    assert out == expected
    ns: dict = {}
    exec(PROMPT + out, ns)  # noqa: S102 - the point: prompt + extracted code is a working program
    assert ns["add"](2, 3) == 5


def test_stop_sequences():
    raw = "    return a + b\n\n\nif __name__ == '__main__':\n    print(add(1, 2))\n"
    assert extract_code(raw, completion=True, prompt=PROMPT, stop=["\nif", "\nprint"]) == "    return a + b\n\n"
