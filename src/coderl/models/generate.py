"""Batched sampling of completions with a KV cache: an own decoding loop and Hugging Face ``generate``.

Two backends produce the same result for greedy decoding (a unit test checks it):

* ``"loop"`` (causal models only): left-padded prompts go through one forward pass, then one token per step is
  fed with ``past_key_values`` (a ``DynamicCache``), explicit ``position_ids`` (so that left padding does not
  shift absolute positions) and the growing attention mask. Rows that have produced eos are dropped from the
  batch (and from the cache), so the batch shrinks as sequences finish.
* ``"hf"``: ``model.generate`` with an explicit ``GenerationConfig`` (top-k and repetition penalties switched
  off, whatever the checkpoint's ``generation_config.json`` says) and temperature and top-p applied by the same
  function as the loop's (:func:`sampling_logits`), so both draw from the same distribution.
  Encoder-decoder models (T5, CodeT5) always use this backend.

The default (:data:`DEFAULT_BACKEND`) is the one measured faster for the demo's tiny GPT-2 on CPU; see
``benchmarks/generation_speed.py`` and docs/models.md.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from coderl.models.tokenizer import fit_prompt
from coderl.utils.seeding import seeded

if TYPE_CHECKING:
    import torch
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

Backend = Literal["loop", "hf"]
DEFAULT_BACKEND: Backend = "loop"

# Drop finished rows from the loop's batch once at least this fraction of the rows still in it has finished.
_PRUNE_FRACTION = 0.25


@dataclass
class SamplingConfig:
    """How completions are sampled.

    ``greedy=True`` takes the most likely token at every step (``temperature``, ``top_p`` and ``seed`` are then
    irrelevant; ``temperature=0`` means greedy too). Otherwise tokens are drawn from
    ``softmax(logits / temperature)`` restricted to the smallest set of most likely tokens whose probability
    reaches ``top_p`` (nucleus sampling; ``top_p=1`` keeps all tokens, ``top_p -> 0`` approaches greedy).
    ``seed`` makes sampling reproducible (same model, prompts, ``n`` and batch size give the same completions)
    without disturbing the global RNG; ``None`` draws from torch's global RNG.
    """

    max_new_tokens: int = 64
    temperature: float = 1.0
    top_p: float = 1.0
    greedy: bool = False
    seed: int | None = None
    overflow: str = "truncate"
    """A prompt longer than the model's positions minus ``max_new_tokens``: "truncate" keeps its end (see
    :func:`coderl.models.tokenizer.fit_prompt`; callers count them with :func:`prompt_room`), "error" stops."""

    def __post_init__(self) -> None:
        if self.overflow not in ("truncate", "error"):
            raise ValueError(f"overflow must be 'truncate' or 'error', got {self.overflow!r}")
        if isinstance(self.max_new_tokens, bool) or not isinstance(self.max_new_tokens, int):
            raise TypeError(f"max_new_tokens must be an int, not {type(self.max_new_tokens).__name__}")
        if self.max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be >= 1, got {self.max_new_tokens}")
        if not (self.temperature >= 0.0) or self.temperature == float("inf"):
            raise ValueError(f"temperature must be a finite number >= 0, got {self.temperature}")
        if self.temperature == 0.0:
            self.greedy = True
        if not (0.0 < self.top_p <= 1.0):
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p}")
        if self.seed is not None and (isinstance(self.seed, bool) or not isinstance(self.seed, int)):
            raise TypeError(f"seed must be an int or None, not {type(self.seed).__name__}")


@dataclass(frozen=True)
class Completion:
    """One sampled completion of one prompt.

    ``text``: the decoded completion, without the prompt and without eos/pad (nor other special tokens).
    ``token_ids``: the completion's token ids, including the final eos token when one was generated.
    ``prompt_ids``: the prompt's token ids as the model saw them (unpadded).
    ``finished``: True when the completion ended with eos, False when it was cut at ``max_new_tokens``.
    ``logprobs``: with ``with_logprobs``, the log-probability of each token under the distribution it was drawn
    from (after temperature and top-p; for greedy decoding, the model's own), else None.
    """

    text: str
    token_ids: list[int]
    prompt_ids: list[int]
    finished: bool = field(default=False)
    logprobs: list[float] | None = None


def _device_of(model: torch.nn.Module) -> torch.device:
    return next(model.parameters()).device


def eos_token_ids(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase) -> list[int]:
    """All ids that end a completion: the tokenizer's eos plus those in the model's generation config.

    Chat/code models often list several (e.g. ``<|endoftext|>`` and ``<|im_end|>``).
    """
    ids: list[int] = []
    cands = [tokenizer.eos_token_id]
    gc_eos = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    cands += list(gc_eos) if isinstance(gc_eos, (list, tuple)) else [gc_eos]
    for i in cands:
        if i is not None and int(i) not in ids:
            ids.append(int(i))
    if not ids:
        raise ValueError("neither the tokenizer nor the model's generation config defines an eos token")
    return ids


def max_positions(model: PreTrainedModel) -> int | None:
    """The longest sequence (prompt + completion) a causal model accepts, or None when it has no fixed limit."""
    cfg = model.config
    for name in ("n_positions", "max_position_embeddings"):
        v = getattr(cfg, name, None)
        if isinstance(v, int) and v > 0:
            return v
    return None


def prompt_room(model: PreTrainedModel, max_new_tokens: int) -> int | None:
    """How many prompt tokens a causal model can read before ``max_new_tokens`` new ones (None: no limit, or a
    seq2seq model, whose encoder reads the prompt)."""
    if getattr(model.config, "is_encoder_decoder", False):
        return None
    limit = max_positions(model)
    return None if limit is None else limit - max_new_tokens


def fit_to_context(model: PreTrainedModel, prompt_ids: Sequence[Sequence[int]], cfg: SamplingConfig
                   ) -> list[list[int]]:
    """The prompts as the model will read them: each one longer than :func:`prompt_room` cut from the start
    (``cfg.overflow == "truncate"``) or a ``ValueError`` that counts them (``"error"``)."""
    rows = [list(r) for r in prompt_ids]
    room = prompt_room(model, cfg.max_new_tokens)
    longest = max((len(r) for r in rows), default=0)
    if room is None or longest <= room:
        return rows
    if cfg.overflow == "error" or room < 1:
        over = sum(len(r) > room for r in rows)
        raise ValueError(f"{over} prompt(s) (the longest {longest} tokens) plus max_new_tokens ({cfg.max_new_tokens}) "
                         f"exceed the model's {max_positions(model)} positions; shorten them, lower max_new_tokens, "
                         "or let overflow='truncate' keep their ends")
    bos = getattr(model.config, "bos_token_id", None)
    return [fit_prompt(r, room, bos) for r in rows]


def sampling_logits(logits: torch.Tensor, cfg: SamplingConfig) -> torch.Tensor:
    """The logits (B, V) of the distribution tokens are drawn from: ``logits / temperature`` restricted to the
    top-p nucleus (other tokens -inf); the model's own logits (in float32) for greedy decoding."""
    import torch

    logits = logits.float()
    if cfg.greedy:
        return logits
    if cfg.temperature != 1.0:
        logits = logits / cfg.temperature
    if cfg.top_p < 1.0:
        sorted_logits, order = logits.sort(dim=-1, descending=True)
        probs = sorted_logits.softmax(dim=-1)
        # mass of the strictly more likely tokens; drop a token once that alone reaches top_p (keeps >= 1 token)
        before = probs.cumsum(dim=-1) - probs
        sorted_logits = sorted_logits.masked_fill(before >= cfg.top_p, float("-inf"))
        logits = torch.full_like(logits, float("-inf")).scatter(-1, order, sorted_logits)
    return logits


def chosen_logprobs(logits: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
    """(B,) log-probabilities of ``tokens`` (B,) under ``logits`` (B, V) (sampling logits, see above)."""
    return logits.gather(-1, tokens[:, None]).squeeze(-1) - logits.logsumexp(dim=-1)


def sample_next(logits: torch.Tensor, cfg: SamplingConfig, processed: bool = False) -> torch.Tensor:
    """Pick the next token of each row from ``logits`` (B, V) according to ``cfg``; returns (B,) int64 ids.
    ``processed``: ``logits`` are already :func:`sampling_logits`."""
    import torch

    if cfg.greedy:
        return logits.argmax(dim=-1)
    if not processed:
        logits = sampling_logits(logits, cfg)
    # Inverse-CDF sampling: one uniform number per row and a binary search in the row's cumulative distribution
    # (float64, so a large vocabulary loses no mass); about 20x faster than torch.multinomial for a batch on CPU.
    probs = logits.softmax(dim=-1)
    acc = torch.float32 if probs.device.type == "mps" else torch.float64  # MPS has no float64
    cdf = probs.cumsum(dim=-1, dtype=acc)  # (B, V)
    u = torch.rand((probs.shape[0], 1), dtype=acc, device=probs.device).mul_(cdf[:, -1:])
    return torch.searchsorted(cdf, u, right=True).squeeze(-1).clamp_(max=probs.shape[-1] - 1)


def _pad(rows: Sequence[Sequence[int]], pad_id: int, device: torch.device,
         side: str = "left") -> tuple[torch.Tensor, torch.Tensor]:
    """(input_ids, attention_mask), both (B, L) int64. ``side="left"`` aligns rows on the right (decoder-only
    prompts, so that every row's next token is at the same position); ``"right"`` aligns them on the left."""
    import torch

    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, r in enumerate(rows):
        if r:
            cols = slice(width - len(r), width) if side == "left" else slice(0, len(r))
            ids[i, cols] = torch.tensor(r, dtype=torch.long)
            mask[i, cols] = 1
    return ids.to(device), mask.to(device)


def _cut_at_eos(row: list[int], eos: set[int]) -> tuple[list[int], bool]:
    for i, t in enumerate(row):
        if t in eos:
            return row[: i + 1], True
    return row, False


def _accepts(model: torch.nn.Module, arg: str) -> bool:
    import inspect

    return arg in inspect.signature(model.forward).parameters


Row = tuple[list[int], bool, list[float] | None]  # completion ids incl. eos, finished, sampler log-probabilities


def _loop_batch(
    model: PreTrainedModel, rows: Sequence[Sequence[int]], cfg: SamplingConfig, eos: list[int], pad_id: int,
    with_logprobs: bool = False,
) -> list[Row]:
    """Own decoding loop for a causal model: (completion ids incl. eos, finished, log-probabilities) per row."""
    import torch
    from transformers import DynamicCache

    from coderl.models.actor import undecodable_ids

    device = _device_of(model)
    input_ids, mask = _pad(rows, pad_id, device)  # (B, L)
    n_rows = input_ids.shape[0]
    position_ids = (mask.cumsum(dim=-1) - 1).clamp(min=0)  # (B, L): real tokens at 0..len-1
    eos_t = torch.tensor(eos, dtype=torch.long, device=device)
    out_ids = torch.full((n_rows, cfg.max_new_tokens), pad_id, dtype=torch.long, device=device)
    out_lp = torch.zeros((n_rows, cfg.max_new_tokens), dtype=torch.float32, device=device) if with_logprobs else None
    lengths = torch.full((n_rows,), cfg.max_new_tokens, dtype=torch.long, device=device)
    finished = torch.zeros(n_rows, dtype=torch.bool, device=device)
    active = torch.arange(n_rows, device=device)  # original row index of each row still in the batch
    done_in_batch = torch.zeros(n_rows, dtype=torch.bool, device=device)  # per current batch row
    cache = DynamicCache(config=model.config)
    next_pos = position_ids[:, -1:] + 1  # (B, 1)
    extra = {"logits_to_keep": 1} if _accepts(model, "logits_to_keep") else {}
    # transformers renames past_key_values to cache (5.25 warns, 5.40 drops the old name); older ones lack it
    cache_kw = "cache" if _accepts(model, "cache") else "past_key_values"
    out = model(input_ids=input_ids, attention_mask=mask, position_ids=position_ids, use_cache=True,
                **{cache_kw: cache}, **extra)
    suppress = undecodable_ids(model)
    banned = torch.tensor(suppress, dtype=torch.long, device=device) if suppress else None
    for step in range(cfg.max_new_tokens):
        last = out.logits[:, -1, :]
        if banned is not None:
            last = last.index_fill(-1, banned, float("-inf"))
        logits = sampling_logits(last, cfg)
        tok = sample_next(logits, cfg, processed=True)  # (b,)
        tok = torch.where(done_in_batch, torch.full_like(tok, pad_id), tok)
        out_ids[active, step] = tok
        if out_lp is not None:
            out_lp[active, step] = chosen_logprobs(logits, tok)
        hit = torch.isin(tok, eos_t) & ~done_in_batch
        if bool(hit.any()):
            lengths[active[hit]] = step + 1
            finished[active[hit]] = True
            done_in_batch |= hit
        if step == cfg.max_new_tokens - 1 or bool(done_in_batch.all()):
            break
        n_done = int(done_in_batch.sum())
        if n_done and n_done >= _PRUNE_FRACTION * done_in_batch.numel():
            keep = (~done_in_batch).nonzero().squeeze(-1)
            cache.batch_select_indices(keep)
            active, mask, next_pos, tok = active[keep], mask[keep], next_pos[keep], tok[keep]
            done_in_batch = done_in_batch[keep]
        mask = torch.cat([mask, mask.new_ones((mask.shape[0], 1))], dim=-1)
        out = model(input_ids=tok[:, None], attention_mask=mask, position_ids=next_pos, use_cache=True,
                    **{cache_kw: cache})
        next_pos = next_pos + 1
    ids_list = out_ids.tolist()
    lens = lengths.tolist()
    fin = finished.tolist()
    lps = out_lp.tolist() if out_lp is not None else None
    return [(ids_list[i][: lens[i]], bool(fin[i]), lps[i][: lens[i]] if lps is not None else None)
            for i in range(n_rows)]


class _SamplingProcessor:
    """The sampling distribution of :func:`sampling_logits` as a Hugging Face logits processor (``generate`` is
    then called with temperature 1 and top-p 1, so the two backends draw from the same distribution), which
    also records each drawn token's log-probability: at each step it keeps the final logits, and at the next
    step, which sees the token they produced, takes its log-probability. One (B, V) tensor at a time, instead of
    ``output_scores``' (steps, B, V). Hugging Face appends its own warpers after processors passed in, which is
    why the warping is done here and not left to ``generate``."""

    def __init__(self, cfg: SamplingConfig, start: int, record: bool, suppress: Sequence[int] = ()):
        self.cfg, self.start, self.record = cfg, start, record
        self.suppress = list(suppress)  # also suppressed here: the recorded log-probabilities exclude them too
        self.last, self.out = None, []

    def __call__(self, input_ids, scores):
        import torch

        if self.suppress:
            scores = scores.index_fill(-1, torch.tensor(self.suppress, device=scores.device), float("-inf"))
        logits = sampling_logits(scores, self.cfg)
        if self.record:
            if self.last is not None:
                self.out.append(chosen_logprobs(self.last, input_ids[:, -1]))
            self.last = logits
        return logits.to(scores.dtype)

    def logprobs(self, sequences) -> list[list[float]]:
        import torch

        if self.last is not None and sequences.shape[1] > self.start + len(self.out):
            self.out.append(chosen_logprobs(self.last, sequences[:, self.start + len(self.out)]))
        return torch.stack(self.out, dim=1).tolist() if self.out else [[] for _ in range(sequences.shape[0])]


def _hf_batch(
    model: PreTrainedModel, rows: Sequence[Sequence[int]], cfg: SamplingConfig, eos: list[int], pad_id: int,
    with_logprobs: bool = False,
) -> list[Row]:
    """``model.generate`` for a causal or seq2seq model: (completion ids incl. eos, finished, log-probabilities)
    per row."""
    from transformers import GenerationConfig, LogitsProcessorList

    from coderl.models.actor import decoder_start_id, undecodable_ids

    device = _device_of(model)
    seq2seq = bool(getattr(model.config, "is_encoder_decoder", False))
    input_ids, mask = _pad(rows, pad_id, device, "right" if seq2seq else "left")
    kwargs: dict[str, object] = {
        "max_new_tokens": cfg.max_new_tokens,
        "min_new_tokens": 0,
        "do_sample": not cfg.greedy,
        "num_beams": 1,
        "num_return_sequences": 1,
        "repetition_penalty": 1.0,
        "no_repeat_ngram_size": 0,
        "eos_token_id": eos,
        "pad_token_id": pad_id,
        "use_cache": True,
    }
    if not cfg.greedy:  # temperature and top-p are applied by _SamplingProcessor
        kwargs.update(temperature=1.0, top_p=1.0, top_k=0)
    if seq2seq:
        kwargs["decoder_start_token_id"] = decoder_start_id(model, pad_id)
    suppress = undecodable_ids(model)
    if suppress:
        kwargs["suppress_tokens"] = suppress
    gen_cfg = GenerationConfig(**kwargs)
    start = 1 if seq2seq else input_ids.shape[1]
    proc = _SamplingProcessor(cfg, start, with_logprobs, suppress)
    seqs = model.generate(input_ids=input_ids, attention_mask=mask, generation_config=gen_cfg,
                          logits_processor=LogitsProcessorList([proc]))
    new = seqs[:, start:]
    eos_set = set(eos)
    lps = proc.logprobs(seqs) if with_logprobs else None
    out: list[Row] = []
    for i, r in enumerate(new.tolist()):
        ids, fin = _cut_at_eos(r, eos_set)
        out.append((ids, fin, lps[i][: len(ids)] if lps is not None else None))
    return out


def generate_ids(
    model: PreTrainedModel,
    prompt_ids: Sequence[Sequence[int]],
    cfg: SamplingConfig,
    eos_ids: Sequence[int],
    pad_id: int,
    batch_size: int = 64,
    backend: Backend | None = None,
    with_logprobs: bool = False,
) -> list[tuple[list[int], bool]] | list[Row]:
    """Token-level generation: one ``(completion ids incl. eos, finished)`` per row of ``prompt_ids`` (with
    ``with_logprobs``, ``(ids, finished, log-probabilities of the ids under the sampling distribution)``).

    Rows are processed in batches of ``batch_size``, longest prompts first (less padding); the result is in
    the order of ``prompt_ids``. ``backend`` is ``"loop"``, ``"hf"`` or ``None`` (:data:`DEFAULT_BACKEND`);
    seq2seq models always use ``"hf"``. The model is put in eval mode for the call and restored afterwards.
    """
    import torch

    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    backend = backend or DEFAULT_BACKEND
    if backend not in ("loop", "hf"):
        raise ValueError(f"backend must be 'loop' or 'hf', not {backend!r}")
    seq2seq = bool(getattr(model.config, "is_encoder_decoder", False))
    if seq2seq:
        backend = "hf"
    if not prompt_ids:
        return []
    if not seq2seq:
        if any(len(r) == 0 for r in prompt_ids):
            raise ValueError("a causal model needs a non-empty prompt (at least a bos token)")
        prompt_ids = fit_to_context(model, prompt_ids, cfg)
    step = _loop_batch if backend == "loop" else _hf_batch
    order = sorted(range(len(prompt_ids)), key=lambda i: -len(prompt_ids[i]))
    results: list[Row | None] = [None] * len(prompt_ids)
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode(), seeded(cfg.seed, _device_of(model)):
            for start in range(0, len(order), batch_size):
                idx = order[start: start + batch_size]
                outs = step(model, [prompt_ids[i] for i in idx], cfg, list(eos_ids), pad_id, with_logprobs)
                for i, res in zip(idx, outs, strict=True):
                    results[i] = res
    finally:
        model.train(was_training)
    rows_out = [r for r in results if r is not None]
    return rows_out if with_logprobs else [(r[0], r[1]) for r in rows_out]


def generate(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    prompts: list[str],
    n: int,
    cfg: SamplingConfig,
    batch_size: int = 64,
    backend: Backend | None = None,
    with_logprobs: bool = False,
) -> list[list[Completion]]:
    """Sample ``n`` completions for each prompt: ``result[i][j]`` is the j-th completion of ``prompts[i]``
    (with ``with_logprobs``, each token's log-probability under the sampling distribution too).

    Prompts are tokenized with the tokenizer's defaults (special tokens the model expects, e.g. T5's ``</s>``,
    are added); each completion stops at the first eos (any of :func:`eos_token_ids`) or after
    ``cfg.max_new_tokens`` tokens. Greedy decoding generates once per prompt and repeats it ``n`` times.
    ``batch_size`` counts sequences (prompt x sample) decoded together. See :func:`generate_ids` for backends.
    """
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    if isinstance(prompts, str):
        raise TypeError("prompts must be a list of strings, not a single string")
    if not prompts:
        return []
    pad_id = tokenizer.pad_token_id
    if pad_id is None:
        raise ValueError("the tokenizer has no pad token; prepare it with coderl.models.tokenizer.prepare_tokenizer")
    eos = eos_token_ids(model, tokenizer)
    enc: list[list[int]] = [list(x) for x in tokenizer(list(prompts))["input_ids"]]
    if not getattr(model.config, "is_encoder_decoder", False):
        start = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else eos[0]
        enc = fit_to_context(model, [e if e else [start] for e in enc], cfg)  # recorded as the model read them
    reps = 1 if cfg.greedy else n
    rows = [enc[i] for i in range(len(enc)) for _ in range(reps)]
    outs = generate_ids(model, rows, cfg, eos, pad_id, batch_size=batch_size, backend=backend,
                        with_logprobs=with_logprobs)
    texts = tokenizer.batch_decode([[t for t in o[0] if t not in eos] for o in outs], skip_special_tokens=True,
                                   clean_up_tokenization_spaces=False)
    result: list[list[Completion]] = []
    for i in range(len(enc)):
        comps = []
        for j in range(reps):
            ids, fin, *lps = outs[i * reps + j]
            comps.append(Completion(text=texts[i * reps + j], token_ids=list(ids), prompt_ids=list(enc[i]),
                                    finished=fin, logprobs=list(lps[0]) if lps and lps[0] is not None else None))
        if reps < n:
            comps = comps + [Completion(c.text, list(c.token_ids), list(c.prompt_ids), c.finished, c.logprobs)
                             for c in comps for _ in range(n - 1)]
        result.append(comps)
    return result
