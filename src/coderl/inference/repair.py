"""The repair model: a causal LM that reads a problem, a failed program and the executor's feedback on the
example tests, and writes a fixed program.

Input format (:func:`repair_prompt`; the target is the fixed program followed by eos)::

    {format_prompt(problem)}# bug:
    {failed program}
    # {outcome}: {detail}[ line {n}: {source line}][ failed: {first failing example assert}]
    # fix:

``outcome`` is the executor's class (compile_error, runtime_error, failed_test), ``detail`` its detail (the
exception type: ``SyntaxError``, ``NameError``, ``AssertionError``, ``timeout``...), ``line`` the program line the
error was raised on (when the executor reports one) with its text, and for assert tests the first example
assert that did not pass. All of it comes from running the *example* tests, the only ones inference may run.

Training data (:func:`collect_repair_examples`): the actor's samples on training problems that fail the example
tests, each paired with the passing program of the same problem most similar to it (``difflib`` ratio) among
the ground-truth solutions and the samples that pass the hidden tests (training problems' hidden tests may be
run: they are training data). :func:`train_repair` fine-tunes with :func:`coderl.train.sft.train_sft`.
"""

from __future__ import annotations

import difflib
import json
import os
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

    from coderl.sandbox import Executor, Result
    from coderl.tasks.problem import Problem
    from coderl.tasks.prompt import Prompter
    from coderl.train.checkpoint import Checkpoints
    from coderl.train.sft import SFTConfig

BUG_HEADER = "# bug:\n"
FIX_HEADER = "# fix:\n"
REPAIR_POSITIONS = 256
"""Positions of a new repair model: prompt + failed program + feedback + fixed program, about twice an actor's."""


@dataclass(frozen=True)
class Feedback:
    """What the executor said about a program on the example tests."""

    outcome: str
    detail: str = ""
    line: int | None = None
    failed_test: str | None = None

    @classmethod
    def from_result(cls, result: Result, problem: Problem, program: str, tests: dict[str, Any]) -> Feedback:
        """From an executor result on ``tests``; ``program`` is the model's text (line numbers are mapped
        back past the problem's prelude and program prefix)."""
        line = result.error_line
        if line is not None:
            line = line - problem.prelude_lines - problem.program_prefix.count("\n")
            if not 1 <= line <= program.count("\n") + 1:
                line = None
        failed = None
        if tests.get("type") == "assert":
            for verdict, text in zip(result.tests, tests["asserts"], strict=False):
                if verdict != "passed":
                    failed = text
                    break
        return cls(result.outcome, result.detail, line, failed)


def feedback_line(fb: Feedback, program: str) -> str:
    """The one feedback line of the repair input (without the leading ``# `` and the newline)."""
    text = f"{fb.outcome}: {fb.detail}" if fb.detail else fb.outcome
    if fb.line is not None:
        src = program.split("\n")[fb.line - 1].strip()
        text += f" line {fb.line}: {src}"
    if fb.failed_test and fb.outcome == "failed_test":
        text += f" failed: {fb.failed_test}"
    return text.replace("\n", " ")


def repair_prompt(problem: Problem, program: str, fb: Feedback) -> str:
    """The repair model's input for a failed ``program`` (the model's text) of ``problem``."""
    from coderl.tasks.prompt import format_prompt

    return (format_prompt(problem) + BUG_HEADER + program.rstrip("\n") + "\n# " + feedback_line(fb, program) + "\n"
            + FIX_HEADER)


@dataclass(frozen=True)
class RepairExample:
    """One training pair: ``failed`` (model text) with its feedback, and a passing program of the same problem."""

    problem: Problem
    failed: str
    feedback: Feedback
    fixed: str

    def pair(self) -> tuple[str, str]:
        return repair_prompt(self.problem, self.failed, self.feedback), self.fixed


def nearest(program: str, candidates: Sequence[str]) -> str:
    """The candidate most similar to ``program`` (``difflib.SequenceMatcher`` ratio; the first on ties)."""
    if not candidates:
        raise ValueError("no candidates")
    return max(candidates, key=lambda c: difflib.SequenceMatcher(None, program, c).ratio())


def collect_repair_examples(
    actor: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    problems: Sequence[Problem],
    executor: Executor,
    samples_per_problem: int = 4,
    max_new_tokens: int = 48,
    temperature: float = 1.0,
    seed: int = 0,
    prompter: Prompter | None = None,
) -> tuple[list[RepairExample], dict[str, int]]:
    """Sample ``samples_per_problem`` programs per training problem and pair each one that fails the example
    tests (the hidden ones when a problem has none) with the nearest passing program of that problem: its
    ground-truth solutions and the samples that pass the hidden tests. Problems with no passing program give no
    pairs. Returns ``(examples, counts)`` with ``counts`` = samples, failures, pairs, problems_without_target.
    ``prompter`` puts the problems to the actor and takes the code out of its replies (default: the plain format);
    the repair model's own prompt stays :func:`repair_prompt`, whatever the actor's format."""
    from coderl.models.generate import SamplingConfig, generate
    from coderl.tasks.prompt import PLAIN

    prompter = prompter or PLAIN
    prompts = [prompter(p) for p in problems]
    replies = generate(actor, tokenizer, prompts, samples_per_problem,
                       SamplingConfig(max_new_tokens=max_new_tokens, temperature=temperature, seed=seed))
    outs = [[prompter.completion(p, c.text) for c in cs] for p, cs in zip(problems, replies, strict=True)]
    reqs = []
    for i, (p, cs) in enumerate(zip(problems, outs, strict=True)):
        for j, c in enumerate(cs):  # the example tests when there are some, else the hidden ones twice
            reqs.append(p.request(f"{i}/{j}/ex", p.program(c), examples=bool(p.example_tests)))
            reqs.append(p.request(f"{i}/{j}/hidden", p.program(c)))
    res = {r.id: r for r in executor.run(reqs)}
    examples: list[RepairExample] = []
    counts = {"samples": 0, "failures": 0, "pairs": 0, "problems_without_target": 0}
    for i, (p, cs) in enumerate(zip(problems, outs, strict=True)):
        passing = list(dict.fromkeys([*p.solutions, *(c for j, c in enumerate(cs) if res[f"{i}/{j}/hidden"].passed)]))
        fails = [(c, res[f"{i}/{j}/ex"]) for j, c in enumerate(cs) if not res[f"{i}/{j}/ex"].passed]
        counts["samples"] += len(cs)
        counts["failures"] += len(fails)
        if fails and not passing:
            counts["problems_without_target"] += 1
            continue
        ex = p.example_tests or p.tests
        for text, r in fails:
            examples.append(RepairExample(p, text, Feedback.from_result(r, p, text, ex), nearest(text, passing)))
    counts["pairs"] = len(examples)
    return examples, counts


def new_repair_model(
    tokenizer: PreTrainedTokenizerBase, actor: PreTrainedModel | None = None, n_positions: int = REPAIR_POSITIONS,
    seed: int = 0, **shape: Any
) -> PreTrainedModel:
    """A GPT-2 repair model with ``n_positions`` positions. With a GPT-2 ``actor`` (the demo's), it has the actor's
    shape and starts from the actor's weights, its position table extended (the new rows keep their random
    initialisation): it already writes programs and only has to learn to read the bug. ``shape`` overrides
    :func:`coderl.models.actor.tiny_gpt2`'s sizes when there is no actor."""
    import copy

    import torch
    from transformers import GPT2LMHeadModel

    from coderl.models.actor import align_generation_config, tiny_gpt2

    if actor is None:
        return tiny_gpt2(tokenizer, n_positions=n_positions, seed=seed, **shape)
    cfg = actor.config
    if getattr(cfg, "model_type", None) != "gpt2":
        raise NotImplementedError(f"initialising a repair model from a {cfg.model_type!r} actor is not implemented "
                                  "(only GPT-2); pass actor=None for a fresh tiny GPT-2, or fine-tune the actor "
                                  "itself with train_repair")
    if cfg.vocab_size < len(tokenizer):
        raise ValueError(f"the actor's vocabulary ({cfg.vocab_size}) is smaller than the tokenizer's "
                         f"({len(tokenizer)})")
    # The actor's own config (its embedding rows, padded past the tokenizer or not, and its activation), only
    # with more positions: its weights must load as they are and compute what they computed in the actor.
    config = copy.deepcopy(cfg)
    config.n_positions = max(n_positions, cfg.n_positions)
    config.resid_pdrop = config.embd_pdrop = config.attn_pdrop = 0.0  # as the repair model always trained
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = GPT2LMHeadModel(config)
    align_generation_config(model, tokenizer)
    state = {k: v for k, v in actor.state_dict().items() if not k.endswith("wpe.weight")}
    model.load_state_dict(state, strict=False)
    with torch.no_grad():
        model.transformer.wpe.weight[: cfg.n_positions] = actor.transformer.wpe.weight
    return model


def train_repair(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    examples: Sequence[RepairExample | tuple[str, str]],
    cfg: SFTConfig,
    progress: bool = True,
    on_step: Callable[[dict[str, Any]], None] | None = None,
    checkpoints: Checkpoints | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> dict[str, Any]:
    """Fine-tune ``model`` in place to map each example's :func:`repair_prompt` to its fixed program (SFT loss on
    the fixed program's tokens only); ``examples`` are :class:`RepairExample` or their ``(input, target)`` pairs
    (as :func:`read_pairs` gives them back). Pairs too long for the model's positions are dropped (counted in the
    result's ``dropped``): a repair input cut short would lose the program it is to fix. ``on_step``,
    ``checkpoints`` and ``should_stop`` as for :func:`coderl.train.sft.train_sft`. Returns its result plus
    ``pairs`` and ``dropped``."""
    from coderl.models.generate import max_positions
    from coderl.models.tokenizer import encode_pairs
    from coderl.train.sft import train_sft

    if not examples:
        raise ValueError("no repair examples (no failed sample had a passing program of the same problem)")
    pairs = [e if isinstance(e, tuple) else e.pair() for e in examples]
    limit = max_positions(model)
    p_ids, c_ids = encode_pairs(tokenizer, [p for p, _ in pairs], [c for _, c in pairs])
    keep = [i for i in range(len(pairs)) if limit is None or len(p_ids[i]) + len(c_ids[i]) <= limit]
    if not keep:
        raise ValueError(f"every repair pair is longer than the model's {limit} positions")
    hist = train_sft(model, tokenizer, [pairs[i] for i in keep], cfg, progress=progress, on_step=on_step,
                     checkpoints=checkpoints, should_stop=should_stop)
    hist.update(pairs=len(keep), dropped=len(pairs) - len(keep))
    return hist


def write_pairs(path: str | os.PathLike[str], examples: Sequence[RepairExample]) -> None:
    """The training pairs as JSONL ``{task_id, input, target}``: written before training, so they outlive it."""
    with open(path, "w", encoding="utf-8") as f:
        for e in examples:
            f.write(json.dumps({"task_id": e.problem.task_id, "input": repair_prompt(e.problem, e.failed, e.feedback),
                                "target": e.fixed}) + "\n")


def read_pairs(path: str | os.PathLike[str]) -> list[tuple[str, str]]:
    """The ``(input, target)`` pairs of a file :func:`write_pairs` wrote (a bad line is a ``DataError`` naming it)."""
    from coderl.tasks.problem import DataError
    from coderl.utils.jsonl import iter_jsonl

    pairs = []
    for line, r in iter_jsonl(path, DataError):
        for k in ("input", "target"):
            if not isinstance(r.get(k), str):
                raise DataError("missing or not a string", field=k, line=line, path=str(path))
        pairs.append((r["input"], r["target"]))
    return pairs


def shuffle_split(examples: Sequence[RepairExample], holdout: float, seed: int) -> tuple[list, list]:
    """(train, held-out) split of repair examples by problem, so no held-out problem is seen in training."""
    ids = sorted({e.problem.task_id for e in examples})
    random.Random(seed).shuffle(ids)
    held = set(ids[: int(len(ids) * holdout)])
    return ([e for e in examples if e.problem.task_id not in held], [e for e in examples if e.problem.task_id in held])
