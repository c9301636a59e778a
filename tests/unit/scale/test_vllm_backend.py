"""The vLLM backend's pure parts with a fake engine: sampling-parameter mapping and output conversion."""

from __future__ import annotations

import sys
from types import SimpleNamespace

import pytest

from coderl.models.generate import SamplingConfig
from coderl.models.vllm_backend import VLLMGenerator, sampling_params, to_completions


def test_sampling_params_leave_nothing_to_vllm_defaults():
    kw = sampling_params(SamplingConfig(max_new_tokens=12, temperature=0.7, top_p=0.9, seed=5), 4, [2, 9])
    assert kw["n"] == 4 and kw["max_tokens"] == 12 and kw["temperature"] == 0.7 and kw["top_p"] == 0.9
    assert kw["seed"] == 5 and kw["stop_token_ids"] == [2, 9] and kw["top_k"] == -1
    assert kw["repetition_penalty"] == 1.0 and kw["min_p"] == 0.0 and not kw["ignore_eos"]
    greedy = sampling_params(SamplingConfig(max_new_tokens=3, greedy=True, seed=5), 4, [2])
    assert greedy["n"] == 1 and greedy["temperature"] == 0.0 and "seed" not in greedy
    with pytest.raises(ValueError, match="n must be"):
        sampling_params(SamplingConfig(), 0, [2])
    assert sampling_params(SamplingConfig(), 1, [2], 6, suppress=[4, 5])["allowed_token_ids"] == [0, 1, 2, 3]
    with pytest.raises(ValueError, match="vocabulary size"):
        sampling_params(SamplingConfig(), 1, [2], suppress=[4])


def _out(*samples):
    return SimpleNamespace(outputs=[SimpleNamespace(token_ids=ids, finish_reason=fr, stop_reason=sr)
                                    for ids, fr, sr in samples])


def test_outputs_become_completions_with_eos_kept():
    outs = [_out(([5, 6, 2], "stop", 2), ([7], "stop", 2)), _out(([8, 8, 8], "length", None), ([3, 9], "stop", 9))]
    got = to_completions(outs, [[1, 4], [1]], 2, [2, 9], lambda rows: ["|".join(map(str, r)) for r in rows])
    assert [[c.token_ids for c in cs] for cs in got] == [[[5, 6, 2], [7, 2]], [[8, 8, 8], [3, 9]]]
    assert [[c.finished for c in cs] for cs in got] == [[True, True], [False, True]]
    assert [[c.text for c in cs] for cs in got] == [["5|6", "7"], ["8|8|8", "3"]]
    assert got[0][0].prompt_ids == [1, 4] and got[1][1].prompt_ids == [1]
    with pytest.raises(ValueError, match="2 samples for prompt 0, expected 3"):
        to_completions([_out(([5], "length", None), ([6], "length", None))], [[1]], 3, [2], lambda r: [""] * len(r))
    with pytest.raises(ValueError, match="outputs for"):
        to_completions([], [[1]], 1, [2], lambda r: [])


def test_generator_with_a_fake_engine_matches_the_hf_conventions(tiny_causal):
    model, tok = tiny_causal
    seen = {}

    class FakeEngine:
        def generate(self, prompts, params, use_tqdm):
            seen["prompts"], seen["params"] = prompts, params
            return [_out(([10, 11, tok.eos_token_id], "stop", tok.eos_token_id)) for _ in prompts]

    gen = VLLMGenerator(FakeEngine(), tok, [tok.eos_token_id], params_factory=dict)
    out = gen.generate(["def f(x):", "print(1)"], 3, SamplingConfig(max_new_tokens=5, greedy=True))
    assert seen["prompts"] == [{"prompt_token_ids": list(tok(p)["input_ids"]) or [tok.bos_token_id]}
                               for p in ["def f(x):", "print(1)"]]
    assert seen["params"]["n"] == 1 and seen["params"]["max_tokens"] == 5
    assert "allowed_token_ids" not in seen["params"]  # nothing to suppress: vLLM's whole vocabulary
    padded = VLLMGenerator(FakeEngine(), tok, [tok.eos_token_id], params_factory=dict, vocab_size=len(tok) + 3,
                           suppress=[len(tok), len(tok) + 1, len(tok) + 2])
    padded.generate(["x"], 1, SamplingConfig(max_new_tokens=2))
    assert seen["params"]["allowed_token_ids"] == list(range(len(tok)))  # the padded rows are never drawn
    assert len(out) == 2 and all(len(cs) == 3 for cs in out)  # greedy decoded once, repeated n times
    assert out[0][0].text == tok.decode([10, 11], skip_special_tokens=True, clean_up_tokenization_spaces=False)
    assert out[0][0].token_ids[-1] == tok.eos_token_id and out[0][0].finished


def test_missing_vllm_is_a_clear_error(tiny_causal, monkeypatch):
    model, tok = tiny_causal
    monkeypatch.setitem(sys.modules, "vllm", None)  # import vllm -> ImportError
    with pytest.raises(ImportError, match=r"coderl\[vllm\]"):
        VLLMGenerator.from_model(model, tok)
    gen = VLLMGenerator(object(), tok, [tok.eos_token_id])
    with pytest.raises(ImportError, match=r"coderl\[vllm\]"):
        gen.generate(["x"], 1, SamplingConfig())
