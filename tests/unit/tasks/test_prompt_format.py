"""The one prompt format, shared by training and inference."""

from __future__ import annotations

from coderl.tasks.problem import Problem
from coderl.tasks.prompt import format_prompt

STDIO = {"type": "stdio", "inputs": ["1\n"], "outputs": ["1\n"]}
CALL = {"type": "call", "fn_name": "f", "inputs": [[1]], "outputs": [1]}


def test_whole_program_layout_is_coderl_training_layout():
    p = Problem("a", "Add two numbers.", STDIO)
    assert format_prompt(p) == "\nQUESTION:\nAdd two numbers.\n\n\nUse Standard Input format\n\nANSWER:\n"
    q = Problem("b", "Write f.", CALL, starter_code="def f(x):\n    ")
    assert format_prompt(q) == "\nQUESTION:\nWrite f.\ndef f(x):\n    \n\nUse Call-Based format\n\nANSWER:\n"


def test_completion_problems_are_verbatim():
    p = Problem("h", "def f():\n    \"\"\"doc\"\"\"\n", {"type": "assert", "asserts": ["check(f)"]},
                program_prefix="def f():\n    \"\"\"doc\"\"\"\n")
    assert format_prompt(p) == p.prompt


def test_few_shot_is_the_same_format_repeated():
    shot = Problem("s", "Print 1.", STDIO, solutions=["print(1)\n"])
    p = Problem("a", "Print 2.", STDIO)
    text = format_prompt(p, [shot])
    assert text == format_prompt(shot) + "print(1)\n" + "\n\n" + format_prompt(p)
    assert text.endswith(format_prompt(p))
