"""Prompts and programs longer than the model's context: cut from the start by a stated rule, counted, never a
crash in the middle of a run."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from coderl.models.actor import tiny_gpt2  # noqa: E402
from coderl.models.generate import SamplingConfig, generate_ids, prompt_room  # noqa: E402
from coderl.models.tokenizer import fit_pairs, fit_prompt  # noqa: E402
from coderl.train.sft import SFTConfig, train_sft  # noqa: E402


def test_fit_prompt_keeps_the_end_and_a_leading_bos():
    assert fit_prompt([1, 2, 3], 5) == [1, 2, 3]
    assert fit_prompt([7, 2, 3, 4, 5], 3) == [3, 4, 5]
    assert fit_prompt([7, 2, 3, 4, 5], 3, bos_id=7) == [7, 4, 5]
    with pytest.raises(ValueError, match="no room for the prompt"):
        fit_prompt([7, 2, 3], 1, bos_id=7)


def test_fit_pairs_cuts_prompts_and_drops_what_cannot_fit():
    pairs = [([1, 2], [3, 4]), ([1, 2, 3, 4, 5], [6, 7]), ([1, 2], [3, 4, 5, 6, 7, 8])]
    # limit 6: the first fits; the second's prompt keeps its last 4; the third's target leaves no room
    assert fit_pairs(pairs, 6) == ([([1, 2], [3, 4]), ([2, 3, 4, 5], [6, 7])], 1, 1)
    assert fit_pairs(pairs, None) == ([(list(p), list(c)) for p, c in pairs], 0, 0)


@pytest.fixture(scope="module")
def short_model(bpe):
    return tiny_gpt2(bpe, n_layer=1, n_embd=32, n_head=2, n_positions=24, seed=0)


def test_generation_cuts_a_long_prompt_or_refuses_by_the_setting(short_model, bpe):
    long, short = list(range(5, 45)), [5, 6, 7]  # 40 tokens: more than 24 positions - 8 new tokens
    assert prompt_room(short_model, 8) == 16
    out = generate_ids(short_model, [long, short], SamplingConfig(max_new_tokens=8, seed=0), [bpe.eos_token_id],
                       bpe.pad_token_id)
    assert len(out) == 2 and all(1 <= len(ids) <= 8 for ids, _ in out)
    with pytest.raises(ValueError, match=r"1 prompt\(s\) \(the longest 40 tokens\) plus max_new_tokens \(8\)"):
        generate_ids(short_model, [long, short], SamplingConfig(max_new_tokens=8, overflow="error"),
                     [bpe.eos_token_id], bpe.pad_token_id)


def test_sft_trains_on_pairs_longer_than_the_context_and_counts_them(short_model, bpe):
    import copy

    pairs = [("def f(x):\n" * 12, "    return x\n"), ("# q\n", "    return x\n"), ("# q\n", "x = 1\n" * 30)]
    model = copy.deepcopy(short_model)
    stats = train_sft(model, bpe, pairs, SFTConfig(lr=1e-3, batch_size=2, epochs=1.0, warmup_steps=0),
                      progress=False)
    assert stats["truncated"] == 1 and stats["dropped"] == 1 and stats["steps"] == 1
    with pytest.raises(ValueError, match="every one of the 1 SFT targets is longer"):
        train_sft(model, bpe, pairs[2:], SFTConfig(lr=1e-3, batch_size=2, epochs=1.0), progress=False)


def test_a_completion_records_the_prompt_as_the_model_read_it(short_model, bpe):
    from coderl.models.generate import generate
    from coderl.models.logprobs import completion_logprobs

    (c,), = generate(short_model, bpe, ["# " + "word " * 40], 1, SamplingConfig(max_new_tokens=8, seed=0))
    assert len(c.prompt_ids) == 16  # 24 positions - 8 new tokens
    logp, mask = completion_logprobs(short_model, [c.prompt_ids], [c.token_ids], bpe.pad_token_id)  # RL can score it
    assert mask.sum() == len(c.token_ids) and torch.isfinite(logp).all()
