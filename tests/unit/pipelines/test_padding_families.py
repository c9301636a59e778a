"""Padding and attention masks of both families, through the saved-model path the recipe uses."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

if importlib.util.find_spec("torch") is None:
    pytest.skip("needs the train extra", allow_module_level=True)

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "integration" / "recipe"))


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    import tiny_models as tm
    import torch

    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("pad")
    tok = tm.tokenizer(vocab_size=300)
    return {"causal": tm.save_gpt2(root / "g", tok, n_positions=256, seed=3), "seq2seq": tm.save_t5(root / "t", tok)}


@pytest.mark.parametrize("family, side", [("causal", "left"), ("seq2seq", "right")])
def test_batch_padding_changes_nothing(saved, family, side):
    import torch

    from coderl.models.actor import load_model
    from coderl.models.generate import SamplingConfig, generate
    from coderl.models.logprobs import completion_logprobs

    model, tok = load_model(saved[family])
    assert tok.padding_side == side and tok.pad_token_id is not None
    short, long = "print(1)", "def f(x):\n    return [y * 2 for y in x if y % 3 == 0] + list(range(10))\n"
    enc = tok([short, long], padding=True)
    assert enc["attention_mask"][0].count(0) == len(enc["input_ids"][1]) - len(tok(short)["input_ids"])
    assert (enc["attention_mask"][0][0] == 0) == (side == "left")
    cfg = SamplingConfig(max_new_tokens=12, greedy=True)
    alone = generate(model, tok, [short], 1, cfg)[0][0]
    batched = generate(model, tok, [short, long], 1, cfg)[0][0]
    assert alone.token_ids == batched.token_ids
    p_ids = [tok(short)["input_ids"], tok(long)["input_ids"]]
    c_ids = [[5, 6, 7], [8, 9, 10, 11, 12, 13]]
    with torch.no_grad():
        lp_alone, _ = completion_logprobs(model, p_ids[:1], c_ids[:1], tok.pad_token_id)
        lp_batch, mask = completion_logprobs(model, p_ids, c_ids, tok.pad_token_id)
    assert torch.allclose(lp_alone[0], lp_batch[0, :3], atol=1e-5) and mask[0].tolist() == [1, 1, 1, 0, 0, 0]
