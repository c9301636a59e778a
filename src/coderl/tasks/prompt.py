"""The prompt format: one function, used identically when training and when sampling for evaluation.

CodeRL built its training prompt and its test-time prompt in two different places, and they differ by a few
newlines; a model fine-tuned on one and sampled with the other sees a distribution shift it was never trained
on. Here every caller (the trainer, the sampler, ``coderl eval`` tooling, ``coderl data show``) goes through
:func:`format_prompt`, so the two cannot drift apart.

Three conventions, chosen by the problem, never by the caller:

* completion problems (``problem.program_prefix`` set, e.g. HumanEval): the model continues the code, so the
  prompt is the problem's code prompt verbatim;
* whole-program problems (APPS, MBPP): the CodeRL/APPS layout the published CodeRL checkpoints were trained on::

      \\nQUESTION:\\n{statement}\\n{starter code}\\n\\nUse Standard Input format\\n\\nANSWER:\\n

  (``Use Call-Based format`` for function-call and assert tests). The model's answer is the whole program.

* the built-in task family (``source == "family"``), whose tiny from-scratch models have a ~60-token budget:
  the statement as a Python comment, ``# {statement}\n``, and the answer is the whole function.

Few-shot examples are rendered with the same function and followed by their first ground-truth solution.
"""

from __future__ import annotations

from collections.abc import Sequence

from coderl.tasks.problem import Problem

QUESTION_HEADER = "\nQUESTION:\n"
ANSWER_HEADER = "\nANSWER:\n"
STDIN_HINT = "\nUse Standard Input format\n"
CALL_HINT = "\nUse Call-Based format\n"
SHOT_SEPARATOR = "\n\n"
COMMENT_PREFIX = "# "
FAMILY_SOURCE = "family"


def answer_hint(problem: Problem) -> str:
    """Which I/O convention the answer must follow: stdin/stdout programs vs. a function that is called."""
    return STDIN_HINT if problem.test_type == "stdio" and not problem.starter_code else CALL_HINT


def _single(problem: Problem) -> str:
    if problem.completion_style:
        return problem.prompt
    if problem.source == FAMILY_SOURCE:
        return COMMENT_PREFIX + problem.prompt + "\n"
    return QUESTION_HEADER + problem.prompt + "\n" + problem.starter_code + "\n" + answer_hint(problem) + \
        ANSWER_HEADER


def format_prompt(problem: Problem, shots: Sequence[Problem] = ()) -> str:
    """The exact text a model is conditioned on for ``problem``, at training and at inference time.

    ``shots`` are solved problems shown first (e.g. MBPP's standard 3-shot prompt uses the ``prompt`` split's
    tasks 2, 3 and 4); each is rendered by this same function followed by its first solution, so a few-shot
    prompt is just a longer instance of the zero-shot one.
    """
    parts = []
    for shot in shots:
        if not shot.solutions:
            raise ValueError(f"few-shot example {shot.task_id} has no solution to show")
        parts.append(_single(shot) + shot.solutions[0].rstrip("\n") + "\n")
    parts.append(_single(problem))
    return SHOT_SEPARATOR.join(parts)
