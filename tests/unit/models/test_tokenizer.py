"""coderl.models.tokenizer: byte-level BPE training, lossless round trips, special tokens, save/load, errors."""

from __future__ import annotations

import copy

import pytest

from coderl.models.tokenizer import (
    EOS_TOKEN,
    PAD_TOKEN,
    SEP_TOKEN,
    TokenizerLoadError,
    load_tokenizer,
    prepare_tokenizer,
    train_bpe,
)

CODE_SAMPLES = [
    "def f(x):\n    return x + 1\n",
    "def g(xs):\n    total = 0\n    for x in xs:\n        if x % 2 == 0:\n            total += x\n    return total",
    "\n\n\tclass A:\n\t\tpass  \n   \n",  # tabs, blank lines, trailing spaces
    "s = 'héllo wörld ✓'  # unicode\nprint(s[::-1])\r\n",
    "x=[1,2 ,3]\n\n\n\n        y = {'a': (1, 2)}",
    "",
    " leading space and  double  spaces ",
]


def test_vocab_and_special_tokens(bpe):
    assert len(bpe) == 512
    assert bpe.pad_token == PAD_TOKEN and bpe.eos_token == EOS_TOKEN and bpe.bos_token == EOS_TOKEN
    assert bpe.sep_token == SEP_TOKEN
    assert (bpe.pad_token_id, bpe.eos_token_id, bpe.sep_token_id) == (0, 1, 2)
    assert bpe.padding_side == "left"
    # encoding adds no special tokens
    ids = bpe("def f(x):")["input_ids"]
    assert bpe.eos_token_id not in ids and bpe.pad_token_id not in ids


@pytest.mark.parametrize("text", CODE_SAMPLES)
def test_round_trip_is_lossless(bpe, text):
    ids = bpe(text)["input_ids"]
    assert bpe.decode(ids) == text
    assert bpe.decode(ids, skip_special_tokens=True) == text


def test_bpe_compresses_code(bpe, corpus):
    text = corpus[0]
    assert len(bpe(text)["input_ids"]) < len(text.encode()) / 2


def test_special_tokens_are_single_tokens(bpe):
    ids = bpe(f"a{SEP_TOKEN}b{EOS_TOKEN}")["input_ids"]
    assert bpe.sep_token_id in ids and bpe.eos_token_id in ids
    assert bpe.decode(ids, skip_special_tokens=True) == "ab"


def test_single_string_corpus_is_one_document(corpus):
    tok = train_bpe("".join(corpus), vocab_size=300)
    assert len(tok) == 300
    assert tok.decode(tok("def f(x):\n    return x")["input_ids"]) == "def f(x):\n    return x"


def test_vocab_size_too_small():
    with pytest.raises(ValueError, match="vocab_size"):
        train_bpe(["abc"], vocab_size=100)


def test_save_and_load(bpe, tmp_path):
    bpe.save_pretrained(tmp_path / "tok")
    tok = load_tokenizer(tmp_path / "tok")
    assert len(tok) == len(bpe)
    for text in CODE_SAMPLES:
        assert tok(text)["input_ids"] == bpe(text)["input_ids"]
        assert tok.decode(tok(text)["input_ids"]) == text
    assert (tok.pad_token, tok.eos_token, tok.sep_token) == (PAD_TOKEN, EOS_TOKEN, SEP_TOKEN)
    assert tok.padding_side == "left"
    assert load_tokenizer(tmp_path / "tok", padding_side="right").padding_side == "right"


def test_load_errors_name_the_path(tmp_path):
    missing = tmp_path / "nope"
    with pytest.raises(TokenizerLoadError, match="does not exist") as e:
        load_tokenizer(missing)
    assert str(missing) in str(e.value)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(TokenizerLoadError, match="no tokenizer files") as e:
        load_tokenizer(empty)
    assert str(empty) in str(e.value)
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "tokenizer.json").write_text("{not json")
    with pytest.raises(TokenizerLoadError) as e:
        load_tokenizer(broken)
    assert str(broken) in str(e.value)


def test_prepare_tokenizer(bpe):
    tok = copy.deepcopy(bpe)
    assert prepare_tokenizer(tok, is_encoder_decoder=True).padding_side == "right"
    assert prepare_tokenizer(tok, is_encoder_decoder=False).padding_side == "left"
    # a tokenizer without pad token (like GPT-2's) pads with eos
    no_pad = copy.deepcopy(bpe)
    no_pad.pad_token = None
    assert no_pad.pad_token_id is None
    prepare_tokenizer(no_pad, is_encoder_decoder=False)
    assert no_pad.pad_token_id == no_pad.eos_token_id
    batch = no_pad(["a", "abc def"], padding=True)
    assert batch["attention_mask"][0][0] == 0  # left padding, masked


def test_encode_pairs(bpe):
    from coderl.models.tokenizer import encode_pairs

    p, c = encode_pairs(bpe, ["# a\n", "# b\n"], ["return x", "return y"])
    assert p == [bpe("# a\n")["input_ids"], bpe("# b\n")["input_ids"]]
    assert c[0] == bpe("return x")["input_ids"] + [bpe.eos_token_id]
    assert encode_pairs(bpe, ["a"], ["b"], add_eos=False)[1] == [bpe("b")["input_ids"]]
    assert encode_pairs(bpe, [], []) == ([], [])
    with pytest.raises(ValueError):
        encode_pairs(bpe, ["a"], [])
