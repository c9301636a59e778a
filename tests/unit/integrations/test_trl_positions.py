"""positions_from_attention_mask: a left-padded batch scored without position ids, as GRPOTrainer scores it, gives
each sequence the log-probabilities it has alone (trl not needed)."""

from __future__ import annotations

import copy

import pytest

from coderl.integrations.trl import positions_from_attention_mask

SEQS = [[5, 9, 12, 7, 3, 8], [4, 6, 2], [11, 3, 5, 9]]


def _left_padded(torch, pad: int):
    n = max(map(len, SEQS))
    ids = torch.tensor([[pad] * (n - len(s)) + s for s in SEQS])
    mask = torch.tensor([[0] * (n - len(s)) + [1] * len(s) for s in SEQS])
    return ids, mask


def _alone(torch, model, i: int):
    with torch.no_grad():
        return torch.log_softmax(model(input_ids=torch.tensor([SEQS[i]])).logits[0], -1)


def _padded(torch, model, pad: int):
    ids, mask = _left_padded(torch, pad)
    with torch.no_grad():  # no position ids, as GRPOTrainer's forward
        return torch.log_softmax(model(input_ids=ids, attention_mask=mask).logits, -1), mask


def test_left_padding_is_scored_at_the_positions_of_the_sequence_alone(tiny):
    torch = pytest.importorskip("torch")
    model, tok = tiny
    patched = positions_from_attention_mask(copy.deepcopy(model)).eval()
    out, mask = _padded(torch, patched, tok.pad_token_id)
    for i, s in enumerate(SEQS):
        assert torch.allclose(out[i, -len(s):], _alone(torch, patched, i), atol=1e-5), i


def test_without_it_a_gpt2_scores_padded_sequences_at_shifted_positions(tiny):
    torch = pytest.importorskip("torch")
    model, tok = tiny
    model = copy.deepcopy(model).eval()
    out, _ = _padded(torch, model, tok.pad_token_id)
    # the shortest sequence has the most padding before it: its tokens sit 3 positions later than alone
    assert not torch.allclose(out[1, -len(SEQS[1]):], _alone(torch, model, 1), atol=1e-3)
