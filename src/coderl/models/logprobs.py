"""Per-token log-probabilities of completions under a model, with gradient (for SFT and policy-gradient losses).

Batch layouts (``B`` rows, ``P`` = longest prompt, ``T`` = longest completion):

* causal models: one sequence per row, ``[pads | prompt | completion | pads]`` of width ``P + T``, the prompt
  left-padded and the completion right-padded so that all completions start in column ``P``; position ids
  count real tokens only (0, 1, ... from the first prompt token), the attention mask hides every pad. The
  logits in columns ``P-1 .. P+T-2`` predict the completion tokens.
* encoder-decoder models: the prompt, right-padded (B, P), goes through the encoder; the decoder gets
  ``[decoder_start] + completion[:-1]`` (teacher forcing), right-padded (B, T).

Either way the result is ``(logp, mask)``, both (B, T), right-padded: ``logp[b, t]`` is
``log p(completion[b][t] | prompt[b], completion[b][:t])`` and ``mask[b, t]`` is 1.0 for real completion tokens,
0.0 for padding (where ``logp`` is 0). Padding does not change the values (up to float rounding).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch
    from transformers import PreTrainedModel


def _accepts(model: torch.nn.Module, arg: str) -> bool:
    import inspect

    return arg in inspect.signature(model.forward).parameters


def token_logprobs(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """``log_softmax(logits)[..., targets]`` without materialising the full log-softmax.

    ``logits`` (B, T, V), ``targets`` (B, T) int64 -> (B, T) float32 (computed in float32 whatever the model's
    dtype, for stable policy-gradient ratios).
    """
    logits = logits.float()
    picked = logits.gather(-1, targets.unsqueeze(-1)).squeeze(-1)
    return picked - logits.logsumexp(dim=-1)


def completion_logprobs(
    model: PreTrainedModel,
    prompt_ids: Sequence[Sequence[int]],
    completion_ids: Sequence[Sequence[int]],
    pad_id: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Log-probabilities (B, T) of each completion token and the (B, T) float mask of real tokens.

    ``prompt_ids[b]`` and ``completion_ids[b]`` are unpadded token id lists (a completion usually ends with the
    eos token, which is scored like any other). Works for causal and encoder-decoder models; runs in the
    model's current mode (train/eval) and keeps the autograd graph, so ``-(logp * mask).sum()`` is an NLL
    loss. Empty completions give all-zero mask rows; causal models need non-empty prompts. The vocabulary is the
    one sampling draws from: rows the model must never produce (:func:`coderl.models.actor.undecodable_ids`, e.g.
    a padded embedding table) get no probability.
    """
    import torch

    from coderl.models.actor import decoder_start_id, undecodable_ids

    suppress = undecodable_ids(model)

    if len(prompt_ids) != len(completion_ids):
        raise ValueError(f"{len(prompt_ids)} prompts but {len(completion_ids)} completions")
    if not prompt_ids:
        raise ValueError("empty batch")
    device = next(model.parameters()).device
    n_rows = len(prompt_ids)
    t_max = max(1, max(len(c) for c in completion_ids))
    targets = torch.full((n_rows, t_max), pad_id, dtype=torch.long)
    mask = torch.zeros((n_rows, t_max), dtype=torch.float32)
    for b, c in enumerate(completion_ids):
        if c:
            targets[b, : len(c)] = torch.tensor(list(c), dtype=torch.long)
            mask[b, : len(c)] = 1.0
    targets, mask = targets.to(device), mask.to(device)

    if getattr(model.config, "is_encoder_decoder", False):
        p_max = max(1, max(len(p) for p in prompt_ids))
        enc = torch.full((n_rows, p_max), pad_id, dtype=torch.long)
        enc_mask = torch.zeros((n_rows, p_max), dtype=torch.long)
        for b, p in enumerate(prompt_ids):
            if p:
                enc[b, : len(p)] = torch.tensor(list(p), dtype=torch.long)
                enc_mask[b, : len(p)] = 1
        start = decoder_start_id(model, pad_id)
        dec_in = torch.cat([torch.full((n_rows, 1), start, dtype=torch.long, device=device), targets[:, :-1]], dim=1)
        dec_mask = torch.cat([torch.ones((n_rows, 1), device=device), mask[:, :-1]], dim=1).long()
        out = model(input_ids=enc.to(device), attention_mask=enc_mask.to(device), decoder_input_ids=dec_in,
                    decoder_attention_mask=dec_mask, use_cache=False)
        logp = token_logprobs(_without(out.logits, suppress), targets)
        return logp * mask, mask

    if any(len(p) == 0 for p in prompt_ids):
        raise ValueError("a causal model needs a non-empty prompt for every row (at least a bos token)")
    longest = max(len(p) + len(c) for p, c in zip(prompt_ids, completion_ids, strict=True))
    limit = next((v for v in (getattr(model.config, n, None) for n in ("n_positions", "max_position_embeddings"))
                  if isinstance(v, int) and v > 0), None)
    if limit is not None and longest > limit:
        raise ValueError(f"a prompt + completion of {longest} tokens exceeds the model's {limit} positions")
    p_max = max(len(p) for p in prompt_ids)
    width = p_max + t_max
    ids = torch.full((n_rows, width), pad_id, dtype=torch.long)
    attn = torch.zeros((n_rows, width), dtype=torch.long)
    for b, (p, c) in enumerate(zip(prompt_ids, completion_ids, strict=True)):
        ids[b, p_max - len(p): p_max] = torch.tensor(list(p), dtype=torch.long)
        attn[b, p_max - len(p): p_max + len(c)] = 1
    ids[:, p_max:] = targets.cpu()
    ids, attn = ids.to(device), attn.to(device)
    position_ids = (attn.cumsum(dim=-1) - 1).clamp(min=0)
    kwargs = {"logits_to_keep": t_max + 1} if _accepts(model, "logits_to_keep") else {}
    out = model(input_ids=ids, attention_mask=attn, position_ids=position_ids, use_cache=False, **kwargs)
    logits = out.logits[:, -(t_max + 1): -1, :]  # (B, T, V): columns P-1 .. P+T-2
    logp = token_logprobs(_without(logits, suppress), targets)
    return logp * mask, mask


def _without(logits: torch.Tensor, ids: list[int]) -> torch.Tensor:
    """``logits`` with the columns ``ids`` at -inf (they take no probability mass)."""
    if not ids:
        return logits
    import torch

    return logits.index_fill(-1, torch.tensor(ids, dtype=torch.long, device=logits.device), float("-inf"))
