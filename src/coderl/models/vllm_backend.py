"""Optional vLLM generation backend for causal models on a GPU (``pip install 'coderl[vllm]'``).

The default generation path stays :func:`coderl.models.generate.generate` (own KV-cache loop or HF generate);
this backend is chosen by configuration (``RolloutWorkerConfig(generator="vllm")`` in
:mod:`coderl.scale.ray_rollout`, or by building a :class:`VLLMGenerator` directly). It returns the same
:class:`~coderl.models.generate.Completion` records:

* prompts are tokenized by *our* tokenizer and given to vLLM as token ids (``skip_tokenizer_init``), so prompt
  ids are identical to the HF path and the text is decoded the same way (eos removed, special tokens skipped);
* :func:`sampling_params` maps a :class:`SamplingConfig` onto vLLM's ``SamplingParams`` fields with nothing
  left to vLLM's defaults that would change the distribution (top-k, min-p, penalties off);
* ``token_ids`` end with the eos token when the completion stopped on one (vLLM may leave it out).

vllm is imported lazily, on first use; without it a clear ImportError names the extra. The pure parts
(parameter mapping, output conversion) are unit-tested with a fake engine; the engine itself was not run in
this project (no GPU was available; see docs/BENCHMARKS.md).
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Sequence
from typing import Any

from coderl.models.actor import undecodable_ids
from coderl.models.generate import Completion, SamplingConfig, eos_token_ids


def _vllm():
    try:
        import vllm
    except ImportError as e:
        raise ImportError(f"the vLLM generation backend needs vllm ({e}); install it on a GPU machine with "
                          "`pip install 'coderl[vllm]'`, or use the default generator") from e
    return vllm


def sampling_params(cfg: SamplingConfig, n: int, eos_ids: Sequence[int], vocab_size: int | None = None,
                    suppress: Sequence[int] = ()) -> dict[str, Any]:
    """Keyword arguments of ``vllm.SamplingParams`` equivalent to ``cfg`` with ``n`` samples per prompt.
    ``suppress``: ids the model must never produce (the padded embedding rows past the tokenizer,
    :func:`coderl.models.actor.undecodable_ids`); with ``vocab_size`` they become vLLM's ``allowed_token_ids``,
    every other id, as the HF backends give them probability 0."""
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    kw: dict[str, Any] = {
        "n": 1 if cfg.greedy else n,  # greedy decodes once; the caller repeats it, as generate() does
        "max_tokens": cfg.max_new_tokens,
        "min_tokens": 0,
        "temperature": 0.0 if cfg.greedy else cfg.temperature,
        "top_p": 1.0 if cfg.greedy else cfg.top_p,
        "top_k": -1,
        "min_p": 0.0,
        "repetition_penalty": 1.0,
        "presence_penalty": 0.0,
        "frequency_penalty": 0.0,
        "stop_token_ids": [int(i) for i in eos_ids],
        "ignore_eos": False,
        "skip_special_tokens": True,
        "detokenize": False,  # our tokenizer decodes, exactly as on the HF path
    }
    if suppress:
        if vocab_size is None:
            raise ValueError("suppressing ids needs the model's vocabulary size")
        banned = {int(t) for t in suppress}
        kw["allowed_token_ids"] = [t for t in range(vocab_size) if t not in banned]
    if cfg.seed is not None and not cfg.greedy:
        kw["seed"] = cfg.seed
    return kw


def to_completions(outputs: Sequence[Any], prompt_ids: Sequence[Sequence[int]], n: int, eos_ids: Sequence[int],
                   decode: Callable[[list[list[int]]], list[str]]) -> list[list[Completion]]:
    """vLLM ``RequestOutput`` objects (one per prompt, in order) -> ``n`` :class:`Completion` per prompt.

    Each output has ``.outputs``: samples with ``.token_ids``, ``.finish_reason`` ("stop" / "length") and
    ``.stop_reason`` (the stop token id when a stop token ended it). ``decode`` turns lists of ids (eos
    removed) into texts.
    """
    if len(outputs) != len(prompt_ids):
        raise ValueError(f"vLLM returned {len(outputs)} outputs for {len(prompt_ids)} prompts")
    eos = [int(i) for i in eos_ids]
    rows: list[tuple[int, list[int], bool]] = []
    for i, out in enumerate(outputs):
        samples = list(out.outputs)
        if not samples:
            raise ValueError(f"vLLM returned no sample for prompt {i}")
        for s in samples:
            ids = [int(t) for t in s.token_ids]
            finished = s.finish_reason == "stop"
            if finished:
                stop = getattr(s, "stop_reason", None)
                if not ids or ids[-1] not in eos:  # vLLM may drop the stop token; our convention keeps it
                    ids.append(stop if isinstance(stop, int) and stop in eos else eos[0])
            rows.append((i, ids, finished))
    texts = decode([[t for t in ids if t not in eos] for _, ids, _ in rows])
    result: list[list[Completion]] = [[] for _ in prompt_ids]
    for (i, ids, fin), text in zip(rows, texts, strict=True):
        result[i].append(Completion(text=text, token_ids=ids, prompt_ids=list(prompt_ids[i]), finished=fin))
    for i, comps in enumerate(result):
        if len(comps) == 1 and n > 1:  # greedy: one decode, repeated
            comps.extend(Completion(c.text, list(c.token_ids), list(c.prompt_ids), c.finished)
                         for c in comps * (n - 1))
        if len(comps) != n:
            raise ValueError(f"vLLM returned {len(comps)} samples for prompt {i}, expected {n}")
    return result


class VLLMGenerator:
    """Samples completions with a vLLM engine; ``generate`` has the signature of coderl's ``generate``
    without the model.

    ``engine``: a ``vllm.LLM`` (or an object with the same ``generate(prompts, sampling_params, use_tqdm)``
    method, as the tests use). ``params_factory`` builds the sampling-parameter object from the keyword
    arguments of :func:`sampling_params` (default ``vllm.SamplingParams``).
    """

    def __init__(self, engine: Any, tokenizer, eos_ids: Sequence[int],
                 params_factory: Callable[..., Any] | None = None, vocab_size: int | None = None,
                 suppress: Sequence[int] = ()):
        if tokenizer.pad_token_id is None:
            raise ValueError("the tokenizer has no pad token; prepare it with "
                             "coderl.models.tokenizer.prepare_tokenizer")
        self.engine, self.tokenizer, self.eos_ids = engine, tokenizer, [int(i) for i in eos_ids]
        self.params_factory = params_factory
        self.vocab_size, self.suppress = vocab_size, [int(t) for t in suppress]

    @classmethod
    def from_model(cls, model, tokenizer, **llm_kwargs: Any) -> VLLMGenerator:
        """Save ``model`` (a causal HF model) to a temporary directory and serve it with ``vllm.LLM``."""
        if getattr(model.config, "is_encoder_decoder", False):
            raise ValueError("the vLLM backend serves causal models only; use the HF generator for seq2seq models")
        vllm = _vllm()
        path = tempfile.mkdtemp(prefix="coderl-vllm-")
        model.save_pretrained(path)
        engine = vllm.LLM(model=path, skip_tokenizer_init=True, **{"dtype": "auto", "enforce_eager": True,
                                                                   **llm_kwargs})
        return cls(engine, tokenizer, eos_token_ids(model, tokenizer), vocab_size=model.config.vocab_size,
                   suppress=undecodable_ids(model))

    def _encode(self, prompts: list[str]) -> list[list[int]]:
        enc = [list(x) for x in self.tokenizer(list(prompts))["input_ids"]]
        start = self.tokenizer.bos_token_id if self.tokenizer.bos_token_id is not None else self.eos_ids[0]
        return [e if e else [start] for e in enc]

    def generate(self, prompts: list[str], n: int, cfg: SamplingConfig) -> list[list[Completion]]:
        if isinstance(prompts, str):
            raise TypeError("prompts must be a list of strings, not a single string")
        if not prompts:
            return []
        ids = self._encode(prompts)
        factory = self.params_factory or _vllm().SamplingParams
        params = factory(**sampling_params(cfg, n, self.eos_ids, self.vocab_size, self.suppress))
        outputs = self.engine.generate([{"prompt_token_ids": p} for p in ids], params, use_tqdm=False)

        def decode(rows: list[list[int]]) -> list[str]:
            return self.tokenizer.batch_decode(rows, skip_special_tokens=True, clean_up_tokenization_spaces=False)

        return to_completions(outputs, ids, n, self.eos_ids, decode)

    def load_weights(self, state: dict[str, Any]) -> None:
        """Replace the served weights in place (RL weight sync). Uses the engine's ``collective_rpc`` when it has
        one (vLLM >= 0.7), else the single-process model runner; not exercised here (no GPU)."""
        items = list(state.items())
        if hasattr(self.engine, "collective_rpc"):
            def _load(worker, weights=items):
                worker.model_runner.model.load_weights(weights=weights)

            self.engine.collective_rpc(_load)
            return
        runner = self.engine.llm_engine.model_executor.driver_worker.model_runner
        runner.model.load_weights(weights=items)
