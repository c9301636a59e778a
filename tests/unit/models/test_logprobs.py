"""coderl.models.logprobs: per-token log-probabilities against a hand computation; padding does not matter."""

from __future__ import annotations

import pytest
import torch

from coderl.models.logprobs import completion_logprobs, token_logprobs

PROMPTS = [[5, 17, 99], [300, 301, 302, 303, 304, 305, 306], [42]]
COMPLETIONS = [[20, 21, 22, 23, 1], [30, 1], [7, 8, 9, 10, 11, 12, 13, 14]]


def hand_causal(model, prompt, completion):
    ids = torch.tensor([prompt + completion])
    with torch.no_grad():
        logp = torch.log_softmax(model(ids).logits[0].float(), dim=-1)
    return torch.stack([logp[len(prompt) - 1 + t, tok] for t, tok in enumerate(completion)])


def hand_seq2seq(model, prompt, completion):
    start = model.config.decoder_start_token_id
    with torch.no_grad():
        dec = torch.tensor([[start] + completion[:-1]])
        logits = model(input_ids=torch.tensor([prompt]), decoder_input_ids=dec).logits
    logp = torch.log_softmax(logits[0].float(), dim=-1)
    return torch.stack([logp[t, tok] for t, tok in enumerate(completion)])


def test_token_logprobs_matches_log_softmax():
    logits = torch.randn(2, 3, 11)
    targets = torch.randint(0, 11, (2, 3))
    ref = torch.log_softmax(logits, -1).gather(-1, targets[..., None])[..., 0]
    assert torch.allclose(token_logprobs(logits, targets), ref, atol=1e-6)


def test_causal_single_sequence_matches_hand_computation(gpt2, bpe):
    with torch.no_grad():
        logp, mask = completion_logprobs(gpt2, PROMPTS[:1], COMPLETIONS[:1], bpe.pad_token_id)
    assert logp.shape == mask.shape == (1, 5)
    assert mask.dtype == torch.float32 and mask.sum() == 5
    assert torch.allclose(logp[0], hand_causal(gpt2, PROMPTS[0], COMPLETIONS[0]), atol=1e-5)


@pytest.mark.parametrize("family", ["causal", "seq2seq"])
def test_padding_does_not_change_values(family, gpt2, t5_pair, bpe):
    model, hand = (gpt2, hand_causal) if family == "causal" else (t5_pair[0], hand_seq2seq)
    with torch.no_grad():
        logp, mask = completion_logprobs(model, PROMPTS, COMPLETIONS, bpe.pad_token_id)
    assert logp.shape == mask.shape == (3, 8)
    for b, c in enumerate(COMPLETIONS):
        assert mask[b].tolist() == [1.0] * len(c) + [0.0] * (8 - len(c))
        assert torch.all(logp[b, len(c):] == 0)
        assert torch.allclose(logp[b, : len(c)], hand(model, PROMPTS[b], c), atol=1e-5)
        with torch.no_grad():
            alone, _ = completion_logprobs(model, [PROMPTS[b]], [c], bpe.pad_token_id)
        assert torch.allclose(logp[b, : len(c)], alone[0], atol=1e-5)


@pytest.mark.parametrize("family", ["causal", "seq2seq"])
def test_gradients_flow(family, bpe, t5_pair):
    import copy

    from coderl.models.actor import tiny_gpt2

    model = tiny_gpt2(bpe, n_layer=1, n_embd=32, n_head=2) if family == "causal" else copy.deepcopy(t5_pair[0])
    model.train()
    logp, mask = completion_logprobs(model, PROMPTS, COMPLETIONS, bpe.pad_token_id)
    assert logp.requires_grad and torch.all(logp[mask.bool()] < 0)
    (-(logp * mask).sum() / mask.sum()).backward()
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)
    assert any(g.abs().sum() > 0 for g in grads)


def test_errors(gpt2, bpe):
    with pytest.raises(ValueError, match="prompts but"):
        completion_logprobs(gpt2, PROMPTS, COMPLETIONS[:2], bpe.pad_token_id)
    with pytest.raises(ValueError, match="non-empty prompt"):
        completion_logprobs(gpt2, [[]], [[1]], bpe.pad_token_id)
    with pytest.raises(ValueError, match="positions"):
        completion_logprobs(gpt2, [[5] * 100], [[6] * 29], bpe.pad_token_id)
    completion_logprobs(gpt2, [[5] * 100, [5]], [[6] * 28, [6] * 120], bpe.pad_token_id)  # each row fits
    logp, mask = completion_logprobs(gpt2, [[5], [6]], [[7], []], bpe.pad_token_id)
    assert mask.tolist() == [[1.0], [0.0]] and logp[1, 0] == 0
