"""Prefix scoring, cutting and seed construction for critic sampling's *refine* step (pure functions + one
critic call).

CodeRL (Le et al., 2022, Sec. 3.3, "Critic Sampling"): for a program that passes the example tests, the critic's
token-level prediction ``q_phi(u = passed | W_{1:t}, D)`` is the probability that the program passes given its
prefix ``W_{1:t}``. The prefix up to the best-scoring token is a *seed*; the actor resamples the rest of the
program from it. Here:

* :func:`prefix_pass_probs` gives ``q_t`` for every program token (one pass for a causal critic, whose state at
  token t sees only tokens <= t; one pass per prefix for a bidirectional one);
* :func:`seed_lengths` picks, per program, ``t* = argmax_t q_t`` over the tokens that leave at least
  ``min_resample`` real program tokens to resample (a seed that is the whole program would only repeat it);
* :func:`allocate` splits the round's budget of ``n`` model calls over ``|P|`` seeds, ``n // |P|`` each, the
  remainder to the best-scoring seeds;
* :func:`build_seeds` puts these together.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from coderl.models.critic import Critic


def pass_index(critic: Critic) -> int:
    """Index of the ``passed`` class of a 4-class or binary critic."""
    if "passed" not in critic.class_names:
        raise ValueError(f"the critic has no 'passed' class (classes: {critic.class_names}); critic sampling needs "
                         "the probability of passing")
    return critic.class_names.index("passed")


def seed_lengths(
    probs: torch.Tensor, mask: torch.Tensor, ends_with_eos: torch.Tensor, min_resample: int = 1
) -> tuple[torch.Tensor, torch.Tensor]:
    """Where to cut each program: ``(seed_len (B,), seed_score (B,))``.

    ``probs`` (B, T): the critic's pass probability after each program token (``q_t``); ``mask`` (B, T): 1 on real
    program positions; ``ends_with_eos`` (B,) bool: whether the row's last masked token is eos (not a program
    token: it is never part of a seed and never counts as resampled). A cut after token t (0-based) keeps
    ``t + 1`` tokens; allowed cuts keep at most ``n_real - min_resample`` tokens, ``n_real`` = masked tokens minus
    the eos. ``seed_len[b] = argmax_t q_t + 1`` over the allowed t (the earliest on ties: a shorter seed leaves more
    to resample); ``0`` (an empty seed, i.e. a fresh sample) when no cut is allowed, with ``seed_score`` = NaN.
    """
    if min_resample < 1:
        raise ValueError(f"min_resample must be >= 1, got {min_resample}")
    b, t = probs.shape
    n_real = mask.to(torch.long).sum(dim=1) - ends_with_eos.to(torch.long)  # (B,)
    max_keep = n_real - min_resample  # (B,) the longest allowed seed
    pos = torch.arange(t).unsqueeze(0).expand(b, t)  # (B, T)
    allowed = (pos + 1 <= max_keep.unsqueeze(1)) & mask.to(torch.bool)
    scored = probs.float().masked_fill(~allowed, float("-inf"))
    best = scored.argmax(dim=1)  # first maximum
    has = allowed.any(dim=1)
    lengths = torch.where(has, best + 1, torch.zeros_like(best))
    score = torch.where(has, scored.gather(1, best.unsqueeze(1)).squeeze(1), torch.full((b,), float("nan")))
    return lengths, score


def allocate(n: int, scores: Sequence[float]) -> list[int]:
    """Split ``n`` model calls over seeds with these scores: ``n // k`` each, the remainder one each to the
    best-scoring seeds; with more seeds than calls, the ``n`` best get one. Sums to ``n`` (for ``k >= 1``)."""
    k = len(scores)
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    if k == 0:
        return []
    order = sorted(range(k), key=lambda i: (-_nan_low(scores[i]), i))
    counts = [n // k] * k
    for i in order[: n % k]:
        counts[i] += 1
    return counts


def _nan_low(x: float) -> float:
    return float("-inf") if x != x else float(x)


@dataclass(frozen=True)
class Seed:
    """A refine seed: the first ``len(prefix_ids)`` tokens of candidate ``parent`` and how many continuations to
    sample from it. ``score`` is the critic's pass probability at the cut (NaN for an empty seed)."""

    parent: int
    prefix_ids: list[int]
    score: float
    count: int


def build_seeds(
    program_ids: Sequence[Sequence[int]],
    probs: torch.Tensor,
    mask: torch.Tensor,
    eos_id: int | None,
    n: int,
    min_resample: int = 1,
    parents: Sequence[int] | None = None,
) -> list[Seed]:
    """Seeds from passing programs: cut each at its best-scoring token and give it its share of ``n`` calls.

    ``program_ids[b]`` are the ids the critic scored (``probs``/``mask`` (B, T) from :func:`prefix_pass_probs`);
    ``parents[b]`` names the candidate (default ``b``). Seeds given no call (more seeds than ``n``) are dropped.
    """
    if len(program_ids) != probs.shape[0]:
        raise ValueError(f"{len(program_ids)} programs but probs for {probs.shape[0]}")
    if not program_ids:
        return []
    eos = torch.tensor([bool(len(p)) and eos_id is not None and p[-1] == eos_id for p in program_ids])
    lengths, scores = seed_lengths(probs, mask, eos, min_resample)
    counts = allocate(n, scores.tolist())
    parents = list(range(len(program_ids))) if parents is None else list(parents)
    return [Seed(parents[b], list(program_ids[b][: int(lengths[b])]), float(scores[b]), counts[b])
            for b in range(len(program_ids)) if counts[b] > 0]


# ---------------------------------------------------------------------- the critic call
def _is_causal(critic: Critic) -> bool:
    """Whether the critic's state at token t ignores tokens after t: probed once (two rows that differ only in
    their last token must have the same backbone states at the first positions) and cached on the critic."""
    cached = getattr(critic, "_coderl_causal", None)
    if cached is not None:
        return bool(cached)
    vocab = int(getattr(critic.backbone_config, "vocab_size", 2) or 2)
    ids = torch.tensor([[1 % vocab, 2 % vocab, 3 % vocab], [1 % vocab, 2 % vocab, 4 % vocab]], device=critic.device)
    program = torch.tensor([[0.0, 1.0, 1.0]] * 2, device=critic.device)  # a one-token prompt, a two-token program
    was = critic.training
    critic.eval()
    try:
        with torch.no_grad():  # the backbone's states, not the head's logits: a head may ignore what differs
            out = critic.hidden_states(ids, torch.ones_like(ids), program)
    finally:
        critic.train(was)
    causal = bool(torch.allclose(out[0, :2], out[1, :2], atol=1e-5))
    critic._coderl_causal = causal  # type: ignore[attr-defined]
    return causal


@torch.no_grad()
def prefix_pass_probs(
    critic: Critic,
    prompt_ids: Sequence[Sequence[int]],
    program_ids: Sequence[Sequence[int]],
    pad_id: int,
    batch_size: int = 64,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``q_t`` = the critic's probability of ``passed`` having read the prompt and program tokens ``<= t``.

    Returns ``(probs, mask)``, both (B, T) right-padded, T = the longest program, on the CPU. A prefix-only critic
    (every critic coderl builds, causal LM or seq2seq) gives every ``q_t`` in one pass (its per-token head output);
    one on a bidirectional backbone of the caller's is run once per prefix so that no ``q_t`` sees later tokens.
    Program tokens beyond the critic's positions get probability 0, so they are never chosen as a cut.
    """
    from coderl.models.critic import critic_max_length, program_token_probs

    k = pass_index(critic)
    limit = critic_max_length(critic, None)
    if _is_causal(critic):
        probs, mask = program_token_probs(critic, prompt_ids, program_ids, [k] * len(program_ids), pad_id,
                                          batch_size=batch_size)
    else:
        t_max = max(1, max((len(c) for c in program_ids), default=1))
        probs, mask = torch.zeros((len(program_ids), t_max)), torch.zeros((len(program_ids), t_max))
        rows_p, rows_c, where = [], [], []
        for b, c in enumerate(program_ids):
            for t in range(len(c)):
                rows_p.append(prompt_ids[b])
                rows_c.append(list(c[: t + 1]))
                where.append((b, t))
        if rows_c:
            pp, _ = program_token_probs(critic, rows_p, rows_c, [k] * len(rows_c), pad_id, batch_size=batch_size)
            for (b, t), row, c in zip(where, pp, rows_c, strict=True):
                probs[b, t] = row[len(c) - 1]
                mask[b, t] = 1.0
    if limit is not None and probs.shape[1] > limit:
        probs[:, limit:] = 0.0  # program_token_probs reports 1 (unweighted) where the critic never looked
    return probs * mask, mask
