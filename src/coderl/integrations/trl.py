"""A TRL-compatible reward function backed by coderl's sandboxed executor.

TRL's ``GRPOTrainer(reward_funcs=[...])`` calls each plain-function reward as
``reward_func(prompts=[...], completions=[...], completion_ids=[...], trainer_state=..., **columns)``, where
``columns`` are the dataset's other columns with one value per completion (a prompt's row repeated for each of
its generations), and expects one float (or None) per completion. Completions are strings, or lists of chat
messages for conversational datasets. :class:`ExecutionReward` runs each completion against its problem's hidden
tests and returns CodeRL's return for the outcome (-1 compile error, -0.6 runtime error, -0.3 failed test,
+1 passed) or any other table. trl itself is not needed to use or test it::

    from coderl.integrations.trl import ExecutionReward, dataset_rows
    from coderl.tasks import load_problems

    problems = load_problems("mbpp", "mbpp.jsonl", "train")
    reward = ExecutionReward(problems)
    train_dataset = datasets.Dataset.from_list(dataset_rows(problems))      # columns: prompt, task_id
    trainer = GRPOTrainer(model=..., reward_funcs=[reward], train_dataset=train_dataset, args=GRPOConfig(...))

Models with learned absolute position embeddings (GPT-2, GPT-BigCode as in StarCoder 1) need
:func:`positions_from_attention_mask` first: GRPOTrainer left-pads prompts and scores completions
without position ids, so such a model is trained at positions shifted by each prompt's padding, not the ones it
sampled at. Rotary models (Llama, Qwen, Mistral, StarCoder2) do not: a shift cancels in their attention scores.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from coderl.rl.rewards import CODERL_RETURNS
from coderl.tasks.problem import Problem


def dataset_rows(problems: Sequence[Problem], conversational: bool = False,
                 system: str | None = None) -> list[dict[str, Any]]:
    """``{"prompt", "task_id"}`` rows for a TRL dataset whose rewards come from here: coderl's plain prompt text, or
    with ``conversational`` the chat messages of the recipe's ``prompt.format: chat``
    (:func:`coderl.tasks.prompt.chat_messages`; ``system``: None = its default system message, "" = none), which
    TRL renders with the model's chat template; the reward then takes the code out of the replies."""
    from coderl.tasks.prompt import DEFAULT_SYSTEM, chat_messages, format_prompt

    if conversational:
        sys_msg = DEFAULT_SYSTEM if system is None else system
        return [{"prompt": chat_messages(p, sys_msg), "task_id": p.task_id} for p in problems]
    return [{"prompt": format_prompt(p), "task_id": p.task_id} for p in problems]


def positions_from_attention_mask(model: Any) -> Any:
    """Make ``model``'s backbone (``model.base_model``) take its position ids from the attention mask whenever it
    is called without them, so that a left-padded prompt's first real token is at position 0 in every forward
    pass, as in ``generate``. Returns ``model``, patched in place. The backbone rather than the LM head model,
    because TRL's fused log-probability head calls the backbone directly."""
    import functools

    backbone = model.base_model
    forward = backbone.forward

    @functools.wraps(forward)
    def with_positions(input_ids: Any = None, *args: Any, attention_mask: Any = None, position_ids: Any = None,
                       **kw: Any) -> Any:
        if position_ids is None and attention_mask is not None:
            n = (input_ids if input_ids is not None else kw["inputs_embeds"]).shape[1]
            position_ids = (attention_mask.long().cumsum(-1) - 1).clamp(min=0)[:, -n:]
        return forward(input_ids, *args, attention_mask=attention_mask, position_ids=position_ids, **kw)

    backbone.forward = with_positions
    return model


def _text(completion: Any) -> str:
    """A completion as text: a string, or the content of the last message of a conversational completion."""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, Sequence) and completion and isinstance(completion[-1], Mapping):
        content = completion[-1].get("content", "")
        if isinstance(content, list):  # multimodal-style content parts
            return "".join(part.get("text", "") for part in content if isinstance(part, Mapping))
        return str(content)
    raise TypeError(f"a completion must be a string or a list of chat messages, not {type(completion).__name__}")


class ExecutionReward:
    """Reward function for TRL trainers: execution outcome -> return, per completion.

    ``problems`` are the problems the dataset's ``id_column`` (default ``task_id``) refers to. ``extract`` passes
    each completion through :func:`coderl.tasks.extract.extract_code` first (Markdown fences, prose around the
    code), which chat models need. ``executor``: a started :class:`coderl.sandbox.Executor` to share; by default
    one is created on first use (``workers``, ``timeout``, ``checker``) and closed by :meth:`close`.
    """

    def __init__(self, problems: Sequence[Problem], returns: Mapping[str, float] = CODERL_RETURNS,
                 extract: bool = True, id_column: str = "task_id", executor: Any = None,
                 workers: int | None = None, timeout: float = 4.0, checker: str = "default") -> None:
        self.problems = {p.task_id: p for p in problems}
        self.returns = dict(returns)
        self.extract, self.id_column = extract, id_column
        self._executor, self._own = executor, executor is None
        self._settings = {"workers": workers, "timeout": timeout, "checker": checker}
        self.__name__ = "coderl_execution_reward"  # TRL logs each reward under its function's __name__

    def program(self, task_id: str, completion: Any) -> str:
        """The program run for ``completion`` of problem ``task_id``."""
        from coderl.tasks.extract import extract_code

        p = self.problems.get(task_id)
        if p is None:
            raise KeyError(f"unknown task id {task_id!r}: not among the {len(self.problems)} problems given to "
                           "ExecutionReward")
        text = _text(completion)
        if self.extract:
            text = extract_code(text, completion=p.completion_style, prompt=p.prompt, entry_point=p.entry_point)
        return p.program(text)

    def __call__(self, prompts: Sequence[Any] | None = None, completions: Sequence[Any] = (), **kwargs: Any
                 ) -> list[float]:
        ids = kwargs.get(self.id_column)
        if ids is None:
            raise ValueError(f"the reward needs the dataset column {self.id_column!r} (one problem id per row); got "
                             f"columns {sorted(kwargs)}")
        if len(ids) != len(completions):
            raise ValueError(f"{len(completions)} completions but {len(ids)} values of {self.id_column!r}")
        reqs = []
        for i, (tid, c) in enumerate(zip(ids, completions, strict=True)):
            program = self.program(str(tid), c)  # first: it names an unknown task id
            reqs.append(self.problems[str(tid)].request(str(i), program))
        results = self._ex().run(reqs)
        return [float(self.returns[r.outcome]) for r in results]

    def _ex(self) -> Any:
        if self._executor is None:
            from coderl.sandbox import Executor

            self._executor = Executor(**self._settings)
            self._executor.start()
        return self._executor

    def close(self) -> None:
        """Stop the executor this reward started (a shared one is left to its owner)."""
        if self._own and self._executor is not None:
            self._executor.close()
            self._executor = None

    def __enter__(self) -> ExecutionReward:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
