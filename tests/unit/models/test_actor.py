"""coderl.models.actor: the tiny GPT-2, checkpoints (save -> load gives identical logits), load errors."""

from __future__ import annotations

import json
import shutil

import pytest
import torch

from coderl.models.actor import (
    ModelLoadError,
    count_parameters,
    is_seq2seq,
    load_extra,
    load_model,
    save_checkpoint,
    tiny_gpt2,
)


def test_tiny_gpt2_size_and_ids(gpt2, bpe):
    n = count_parameters(gpt2)
    print(f"tiny_gpt2 parameters (vocab {len(bpe)}): {n:,}")  # 508,992 at the defaults
    assert 450_000 <= n <= 550_000
    assert gpt2.config.vocab_size == len(bpe) == 512
    assert gpt2.config.eos_token_id == bpe.eos_token_id and gpt2.config.pad_token_id == bpe.pad_token_id
    assert gpt2.lm_head.weight is gpt2.transformer.wte.weight  # tied, counted once
    assert not is_seq2seq(gpt2)


def test_tiny_gpt2_seed_is_deterministic_and_local(bpe):
    state = torch.random.get_rng_state()
    a, b, c = (tiny_gpt2(bpe, n_layer=1, n_embd=32, n_head=2, seed=s) for s in (3, 3, 4))
    assert torch.equal(torch.random.get_rng_state(), state)  # global RNG untouched
    assert torch.equal(a.transformer.h[0].attn.c_attn.weight, b.transformer.h[0].attn.c_attn.weight)
    assert not torch.equal(a.transformer.h[0].attn.c_attn.weight, c.transformer.h[0].attn.c_attn.weight)
    with pytest.raises(ValueError, match="divisible"):
        tiny_gpt2(bpe, n_embd=30, n_head=4)


def test_checkpoint_round_trip_gives_identical_logits(gpt2, bpe, tmp_path):
    extra = {"config": {"lr": 0.001, "algo": "coderl"}, "step": 7}
    out = save_checkpoint(gpt2, bpe, tmp_path / "ckpt", extra=extra)
    files = {p.name for p in out.iterdir()}
    assert {"model.safetensors", "config.json", "coderl.json", "tokenizer.json"} <= files
    assert not any(f.endswith(".bin") for f in files)
    assert load_extra(out) == extra
    model, tok = load_model(out)
    assert type(model).__name__ == "GPT2LMHeadModel" and not model.training
    assert tok.padding_side == "left" and tok.pad_token_id == bpe.pad_token_id
    ids = torch.tensor([[5, 17, 99, 300, 7], [1, 2, 3, 4, 5]])
    with torch.no_grad():
        assert torch.equal(gpt2(ids).logits, model(ids).logits)
    # overwriting an existing checkpoint replaces it
    save_checkpoint(model, tok, out, extra={"step": 8})
    assert load_extra(out) == {"step": 8}
    assert not (tmp_path / "ckpt.tmp").exists() and not (tmp_path / "ckpt.old").exists()


def test_seq2seq_round_trip(t5_pair, tmp_path):
    t5, tok = t5_pair
    save_checkpoint(t5, tok, tmp_path / "t5")
    model, tok2 = load_model(tmp_path / "t5")
    assert is_seq2seq(model) and type(model).__name__ == "T5ForConditionalGeneration"
    assert tok2.padding_side == "right"
    ids = torch.tensor([[5, 6, 7, 1]])
    dec = torch.tensor([[0, 9, 10]])
    with torch.no_grad():
        assert torch.equal(t5(input_ids=ids, decoder_input_ids=dec).logits,
                           model(input_ids=ids, decoder_input_ids=dec).logits)
    with pytest.raises(ModelLoadError, match="encoder-decoder"):
        load_model(tmp_path / "t5", kind="causal")
    m2, _ = load_model(tmp_path / "t5", kind="seq2seq")
    assert is_seq2seq(m2)


def test_dtype(gpt2, bpe, tmp_path):
    save_checkpoint(gpt2, bpe, tmp_path / "c")
    model, _ = load_model(tmp_path / "c", dtype="bfloat16")
    assert next(model.parameters()).dtype == torch.bfloat16
    with pytest.raises(ValueError, match="unknown dtype"):
        load_model(tmp_path / "c", dtype="float8")


def test_load_errors_are_clear(small_gpt2, bpe, tmp_path):
    good = save_checkpoint(small_gpt2, bpe, tmp_path / "good")

    def broken(name: str, drop: tuple[str, ...] = ()):
        d = tmp_path / name
        shutil.copytree(good, d)
        for f in drop:
            (d / f).unlink()
        return d

    cases = [
        (tmp_path / "missing", "does not exist"),
        (broken("noconfig", ("config.json",)), "no config.json"),
        (broken("noweights", ("model.safetensors",)), "no weights"),
        (broken("notok", ("tokenizer.json", "tokenizer_config.json")), "no tokenizer files"),
    ]
    unknown = broken("unknown")
    cfg = json.loads((unknown / "config.json").read_text())
    cfg["model_type"] = "no-such-arch"
    (unknown / "config.json").write_text(json.dumps(cfg))
    cases.append((unknown, "unknown architecture.*no-such-arch"))
    for path, msg in cases:
        with pytest.raises(ModelLoadError, match=msg) as e:
            load_model(path)
        assert str(path) in str(e.value)
    with pytest.raises(ModelLoadError, match="not an encoder-decoder"):
        load_model(good, kind="seq2seq")
    with pytest.raises(ValueError, match="kind"):
        load_model(good, kind="encoder")  # type: ignore[arg-type]


@pytest.mark.parametrize("which", ["gpt2", "t5"])
def test_checkpoint_weights_load_into_a_model_and_are_re_tied(which, gpt2, t5_pair, bpe, tmp_path):
    """Tied weights are stored once (T5: shared.weight for both embeddings and the LM head; GPT-2: wte for the
    head); loading a training checkpoint re-ties them instead of calling them missing. A weight that is missing
    and tied to nothing is still an error naming it."""
    import copy

    from safetensors.torch import load_file, save_file

    from coderl.models.actor import load_checkpoint_weights, tied_parameter_names

    model, tok = (copy.deepcopy(gpt2), bpe) if which == "gpt2" else (copy.deepcopy(t5_pair[0]), t5_pair[1])
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.5)
    save_checkpoint(model, tok, tmp_path / "ckpt")
    stored = set(load_file(str(tmp_path / "ckpt" / "model.safetensors")))
    tied = tied_parameter_names(model)
    assert tied - stored  # some tied names are not in the file
    fresh = gpt2 if which == "gpt2" else t5_pair[0]
    fresh = copy.deepcopy(fresh)
    load_checkpoint_weights(fresh, tmp_path / "ckpt")
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), fresh.state_dict().values(),
                                                 strict=True))
    def sharing(m) -> set[frozenset[str]]:
        groups: dict[int, set[str]] = {}
        for name, p in m.named_parameters(remove_duplicate=False):
            groups.setdefault(id(p), set()).add(name)
        return {frozenset(g) for g in groups.values() if len(g) > 1}

    assert sharing(fresh) == sharing(model) != set()  # the tied names still share one tensor
    state = load_file(str(tmp_path / "ckpt" / "model.safetensors"))
    lost = next(k for k in state if k not in tied)
    del state[lost]
    save_file(state, str(tmp_path / "ckpt" / "model.safetensors"))
    with pytest.raises(ValueError, match=f"missing \\['{lost}'\\]"):
        load_checkpoint_weights(copy.deepcopy(fresh), tmp_path / "ckpt")


def test_checkpoint_weights_saved_under_legacy_names_load_and_a_missing_one_is_named(bpe, tmp_path):
    """transformers saves GPT-NeoX's head under its legacy name (embed_out): a training checkpoint still loads into
    the model being trained, and a weight missing from it is an error naming it, never a random initialisation."""
    from safetensors.torch import load_file, save_file
    from transformers import GPTNeoXConfig, GPTNeoXForCausalLM

    from coderl.models.actor import load_checkpoint_weights

    cfg = GPTNeoXConfig(vocab_size=len(bpe), hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=64, tie_word_embeddings=False)
    torch.manual_seed(0)
    trained, fresh = GPTNeoXForCausalLM(cfg), GPTNeoXForCausalLM(cfg)
    save_checkpoint(trained, bpe, tmp_path / "ckpt")
    stored = load_file(str(tmp_path / "ckpt" / "model.safetensors"))
    assert "embed_out.weight" in stored and "lm_head.weight" not in stored  # the quirk this is about
    load_checkpoint_weights(fresh, tmp_path / "ckpt")
    assert all(torch.equal(a, b) for a, b in zip(trained.state_dict().values(), fresh.state_dict().values(),
                                                 strict=True))
    lost = next(k for k in stored if k.endswith("dense_h_to_4h.weight"))
    del stored[lost]
    save_file(stored, str(tmp_path / "ckpt" / "model.safetensors"))
    with pytest.raises(ValueError, match="dense_h_to_4h"):
        load_checkpoint_weights(GPTNeoXForCausalLM(cfg), tmp_path / "ckpt")
