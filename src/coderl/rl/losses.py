"""Losses as pure tensor functions. Shapes: B sequences, T completion tokens (right-padded), C classes.

The actor-critic objective of CodeRL (Le et al., 2022, Eq. 5-6): for a sampled program W^s = (w_1..w_T),

    L_rl(θ) = - (r(W^s) - r(W^b)) · Σ_t q̂_φ(w_{1:t}) · log p_θ(w_t | w_{1:t-1}, D)

where q̂_φ(w_{1:t}) is the critic's probability, after reading the prefix up to token t, of the outcome W^s
actually had. Tokens the critic links to the outcome get more of the credit or blame. Without critic weights
(q̂ ≡ 1) it is REINFORCE with a baseline. The total loss mixes in cross-entropy on ground-truth programs
(``sft_loss``) so the model keeps what supervised training taught it.
"""

from __future__ import annotations

import torch


def _check(logp: torch.Tensor, mask: torch.Tensor) -> None:
    if logp.dim() != 2 or logp.shape != mask.shape:
        raise ValueError(f"logp and mask must both be (B, T); got {tuple(logp.shape)} and {tuple(mask.shape)}")


def policy_gradient_loss(logp: torch.Tensor, mask: torch.Tensor, advantages: torch.Tensor,
                         token_weights: torch.Tensor | None = None, normalize: str = "sequence") -> torch.Tensor:
    """CodeRL's L_rl (or plain REINFORCE with ``token_weights=None``).

    logp: (B, T) log p_θ of each completion token (with gradient); mask: (B, T) 1.0 for real tokens;
    advantages: (B,) r(W^s) - baseline, no gradient; token_weights: (B, T) critic probabilities q̂, no gradient.

    ``normalize``: "sequence" sums over each program's tokens and averages over the B programs (the paper's
    per-sample objective); "token" divides the total by the number of real tokens in the batch (less sensitive
    to program length).
    """
    _check(logp, mask)
    if advantages.shape != (logp.shape[0],):
        raise ValueError(f"advantages must be (B,) = ({logp.shape[0]},), got {tuple(advantages.shape)}")
    w = mask if token_weights is None else mask * token_weights.detach()
    per_token = -advantages.detach()[:, None] * w * logp
    if normalize == "sequence":
        return per_token.sum() / logp.shape[0]
    if normalize == "token":
        return per_token.sum() / mask.sum().clamp_min(1.0)
    raise ValueError(f"normalize must be 'sequence' or 'token', got {normalize!r}")


def sft_loss(logp: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of target programs: the mean negative log-likelihood over real tokens. (B, T) → scalar."""
    _check(logp, mask)
    return -(logp * mask).sum() / mask.sum().clamp_min(1.0)


def critic_weights(token_probs: torch.Tensor, mask: torch.Tensor, floor: float = 0.0) -> torch.Tensor:
    """Token weights q̂ from the critic's per-token probability of the actual outcome, (B, T) → (B, T).

    ``floor`` keeps every token a minimum share of the credit (0 = the paper's weighting)."""
    _check(token_probs, mask)
    return (floor + (1.0 - floor) * token_probs.detach()) * mask
