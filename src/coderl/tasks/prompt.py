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


# -- chat models ----------------------------------------------------------------------------------------------

PROMPT_FORMATS = ("plain", "chat")
DEFAULT_SYSTEM = ("You are an expert Python programmer. Reply with the complete solution in one ```python code "
                  "block.")
CHAT_STDIN_HINT = "Write a complete program that reads standard input and prints the answer."
CHAT_CALL_HINT = "Write the Python function the tests call."
CHAT_COMPLETION_HINT = "Complete the following Python function."


class NoChatTemplate(ValueError):
    """``format: chat`` asked of a tokenizer that has no chat template."""


def chat_request(problem: Problem) -> str:
    """The user message of ``problem`` for a chat model: the task in words, starter code in a fence, the I/O
    convention as a sentence (an instruct model is not trained on the CodeRL layout's ``ANSWER:`` markers)."""
    if problem.completion_style:
        return CHAT_COMPLETION_HINT + "\n```python\n" + problem.prompt.rstrip("\n") + "\n```"
    parts = [problem.prompt.strip()]
    if problem.starter_code:
        parts.append("```python\n" + problem.starter_code.rstrip("\n") + "\n```")
    parts.append(CHAT_STDIN_HINT if answer_hint(problem) == STDIN_HINT else CHAT_CALL_HINT)
    return "\n\n".join(parts)


def chat_messages(problem: Problem, system: str = DEFAULT_SYSTEM) -> list[dict[str, str]]:
    """The conversation that asks a chat model for ``problem``: the system message (none when ``system`` is "")
    and :func:`chat_request` as the user's turn."""
    return ([{"role": "system", "content": system}] if system else []) + \
        [{"role": "user", "content": chat_request(problem)}]


class Prompter:
    """How a problem becomes model input and a model's reply becomes a program: the one place for both.

    ``plain`` (the default; ``tokenizer`` unused): :func:`format_prompt`, and the reply is the completion as it
    stands. ``chat``: the system message and :func:`chat_request` rendered with the tokenizer's chat template
    (ending in the assistant turn's opening), and the reply goes through
    :func:`coderl.tasks.extract.extract_code` (fences, prose around them). SFT targets are then what an instruct
    model says: the solution in a ``python`` fence (the trainer appends eos).
    """

    def __init__(self, fmt: str = "plain", tokenizer=None, system: str = DEFAULT_SYSTEM, where: str = "") -> None:
        if fmt not in PROMPT_FORMATS:
            raise ValueError(f"prompt format must be one of {', '.join(PROMPT_FORMATS)}, got {fmt!r}")
        if fmt == "chat" and not getattr(tokenizer, "chat_template", None):
            raise NoChatTemplate(f"prompt.format is 'chat' but the tokenizer{' of ' + where if where else ''} has no "
                                 "chat template; use prompt.format: plain, or an instruct model's tokenizer")
        self.chat = fmt == "chat"
        self.tokenizer, self.system = tokenizer, system
        # Templates that write bos themselves (Gemma's, Llama 3's) would get a second one from a tokenizer that adds
        # it when encoding the prompt, as every encoder here does (generate, encode_pairs): the template's goes.
        self._drop_bos = self.chat and bool(tokenizer.bos_token) and self._adds_bos()

    def __call__(self, problem: Problem) -> str:
        """The text the model is conditioned on for ``problem``."""
        if not self.chat:
            return format_prompt(problem)
        text = self.tokenizer.apply_chat_template(chat_messages(problem, self.system), tokenize=False,
                                                  add_generation_prompt=True)
        if self._drop_bos and text.startswith(self.tokenizer.bos_token):
            text = text[len(self.tokenizer.bos_token):]
        return text

    def _adds_bos(self) -> bool:
        ids = self.tokenizer("x")["input_ids"]
        return bool(ids) and ids[0] == self.tokenizer.bos_token_id

    def target(self, problem: Problem, solution: str) -> str:
        """The completion a ground-truth ``solution`` is trained as (SFT, the critic's "passed" examples)."""
        if not self.chat:
            return solution
        code = problem.program_prefix + solution if problem.completion_style else solution
        return "```python\n" + code.rstrip("\n") + "\n```"

    def completion(self, problem: Problem, reply: str) -> str:
        """What ``problem.program`` runs for the model's ``reply``: the reply itself (plain), or the code in it."""
        if not self.chat:
            return reply
        from coderl.tasks.extract import extract_code

        return extract_code(reply, completion=problem.completion_style, prompt=problem.prompt,
                            entry_point=problem.entry_point)


PLAIN = Prompter()
