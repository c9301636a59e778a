"""Prefix scoring, cutting and seed construction against hand-built critic outputs."""

import math

import pytest
import torch

from coderl.inference.prefix import allocate, build_seeds, prefix_pass_probs, seed_lengths
from coderl.models.critic import Critic

EOS = 9


def test_cut_at_best_token_excluding_eos_and_last_token():
    # row 0: 4 program tokens + eos; the best allowed score is at t=1 (t=3 is better but would resample nothing)
    probs = torch.tensor([[0.2, 0.7, 0.5, 0.9, 0.95],
                          [0.6, 0.3, 0.6, 0.0, 0.0]])
    mask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]])
    eos = torch.tensor([True, False])
    lengths, score = seed_lengths(probs, mask, eos)
    assert lengths.tolist() == [2, 1]  # row 1: tie 0.6 at t=0 and t=2, t=2 not allowed (last token) -> t=0
    assert score.tolist() == pytest.approx([0.7, 0.6])


def test_min_resample_shortens_the_allowed_seeds():
    probs = torch.tensor([[0.1, 0.2, 0.3, 0.4, 0.5, 0.6]])
    mask = torch.ones(1, 6)
    for m, expect in ((1, 5), (2, 4), (5, 1)):
        assert seed_lengths(probs, mask, torch.tensor([False]), m)[0].item() == expect
    length, score = seed_lengths(probs, mask, torch.tensor([False]), 6)
    assert length.item() == 0 and math.isnan(score.item())  # no allowed cut: an empty seed (a fresh sample)
    with pytest.raises(ValueError, match="min_resample"):
        seed_lengths(probs, mask, torch.tensor([False]), 0)


def test_allocate_splits_budget_and_gives_remainder_to_best():
    assert allocate(8, [0.1, 0.9, 0.5]) == [2, 3, 3]
    assert allocate(8, [0.5]) == [8]
    assert allocate(2, [0.1, 0.9, 0.5, 0.7]) == [0, 1, 0, 1]
    assert allocate(3, [float("nan"), 0.2]) == [1, 2]
    assert allocate(5, []) == []
    assert sum(allocate(13, [0.3] * 5)) == 13


def test_build_seeds_prefixes_and_counts():
    programs = [[1, 2, 3, 4, EOS], [5, 6, 7]]
    probs = torch.tensor([[0.1, 0.2, 0.8, 0.3, 0.9], [0.4, 0.9, 0.95, 0.0, 0.0]])  # right-padded
    mask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]], dtype=torch.float32)
    seeds = build_seeds(programs, probs, mask, EOS, n=5, parents=[10, 11])
    assert [(s.parent, s.prefix_ids, s.count) for s in seeds] == [(10, [1, 2, 3], 2), (11, [5, 6], 3)]
    assert [round(s.score, 2) for s in seeds] == [0.8, 0.9]


class _Head(torch.nn.Module):
    """A hand-built 'backbone': hidden state = one-hot of the token id (causal or, cumulatively, not)."""

    def __init__(self, vocab: int, causal: bool):
        super().__init__()
        from transformers import GPT2Config

        self.config = GPT2Config(vocab_size=vocab, n_embd=vocab, n_positions=32, n_layer=1, n_head=1)
        self.causal = causal

    def forward(self, input_ids, attention_mask):
        h = torch.nn.functional.one_hot(input_ids, self.config.n_embd).float()
        if not self.causal:  # every position sees the sum of the whole (masked) row
            h = (h * attention_mask[..., None]).sum(1, keepdim=True).expand_as(h).clone()
        return type("O", (), {"last_hidden_state": h})()


def _critic(causal: bool) -> Critic:
    c = Critic(_Head(8, causal), n_classes=2, head_size=8, dropout=0.0)
    with torch.no_grad():  # logit of 'passed' = 2 * (token id is 5): only token 5 raises q_t
        c.head[1].weight.copy_(torch.eye(8))
        c.head[1].bias.zero_()
        c.head[4].weight.zero_()
        c.head[4].bias.zero_()
        c.head[4].weight[1, 5] = 2.0 / math.tanh(1.0)
    return c.eval()


def test_prefix_pass_probs_causal_reads_per_token_head():
    critic = _critic(causal=True)
    probs, mask = prefix_pass_probs(critic, [[1], [2, 2]], [[3, 5, 4], [5, 3]], pad_id=0)
    hi, lo = torch.sigmoid(torch.tensor(2.0)).item(), 0.5
    assert mask.tolist() == [[1, 1, 1], [1, 1, 0]]
    assert probs[0].tolist() == pytest.approx([lo, hi, lo])
    assert probs[1, :2].tolist() == pytest.approx([hi, lo])


def test_prefix_pass_probs_bidirectional_never_sees_later_tokens():
    critic = _critic(causal=False)
    probs, _ = prefix_pass_probs(critic, [[1]], [[3, 5, 4]], pad_id=0)
    # the sum-of-row backbone: before token 5 the prefix has no 5; from it on it has one (saturating tanh)
    assert probs[0, 0].item() == pytest.approx(0.5)
    assert probs[0, 1].item() > 0.8 and probs[0, 2].item() > 0.8
