"""The architecture matrix: a tiny random model per family users train for code, with its real checkpoint's quirks.

Each is built from its ``transformers`` config class (no downloads) and saved with ``save_pretrained`` next to a
tokenizer trained on the fixture problems, so every stage loads it through ``from_pretrained`` as it would the
real checkpoint. The quirks reproduced at tiny scale:

* an embedding table with more rows than the tokenizer has tokens (Qwen2.5: 151,936 rows for 151,665 tokens;
  DeepSeek-Coder, CodeGen and GPT-NeoX pad too): :data:`EXTRA_ROWS` rows past ``len(tokenizer)``;
* no pad token (Llama, CodeLlama, StarCoder, GPT-NeoX, CodeGen, GPT-2, Mistral);
* a bos distinct from eos, added in front of every encoding (Llama, Mistral, Gemma); T5's trailing ``</s>``;
* a chat template where the real model has one (Qwen2.5-Coder-Instruct, DeepSeek-Coder-Instruct, Gemma);
* untied input/output embeddings (Llama, Mistral, GPT-NeoX, CodeGen) or tied ones (Qwen2.5 small sizes,
  Gemma, StarCoder(2), GPT-2, T5's ``shared.weight``);
* a sliding attention window shorter than a prompt (Mistral, Starcoder2);
* T5's ``decoder_start_token_id`` (the pad id) in ``config.json``, and no ``generation_config.json`` (CodeT5's
  checkpoints predate it).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tiny_models as tm

EXTRA_ROWS = 20
"""Embedding rows past the tokenizer's size (Qwen2.5 has 271; 20 is the same quirk at this scale)."""

CHATML = ("{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
          "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")
TURNS = ("{{ bos_token }}{% for m in messages %}<start_of_turn>{{ m['role'] }}\n{{ m['content'] }}<end_of_turn>\n"
         "{% endfor %}{% if add_generation_prompt %}<start_of_turn>model\n{% endif %}")


@dataclass(frozen=True)
class Arch:
    """One row of the matrix: how its tokenizer and model are made."""

    name: str
    real: str
    """The checkpoints it stands for."""
    eos: str
    bos: str | None = None
    """A bos token distinct from eos (None: the tokenizer has none, or it is eos)."""
    pad: str | None = None
    """None: the tokenizer has no pad token, as the real one."""
    add_bos: bool = False
    add_eos: bool = False
    chat_template: str | None = None
    extra_specials: tuple[str, ...] = ()
    config: dict[str, Any] = field(default_factory=dict)


ARCHS = {a.name: a for a in (
    Arch("llama", "DeepSeek-Coder, CodeLlama", eos="</s>", bos="<s>", add_bos=True, chat_template=CHATML,
         extra_specials=("<|im_start|>", "<|im_end|>"),
         config={"model_type": "llama", "num_key_value_heads": 2, "tie_word_embeddings": False}),
    Arch("qwen2", "Qwen2.5-Coder", eos="<|endoftext|>", pad="<|endoftext|>", chat_template=CHATML,
         extra_specials=("<|im_start|>", "<|im_end|>"),
         config={"model_type": "qwen2", "num_key_value_heads": 2, "tie_word_embeddings": True}),
    Arch("mistral", "Mistral, Codestral (sliding window, untied)", eos="</s>", bos="<s>", add_bos=True,
         config={"model_type": "mistral", "num_key_value_heads": 2, "sliding_window": 16,
                 "tie_word_embeddings": False}),
    Arch("gemma", "Gemma, CodeGemma (tied, scaled embeddings, pad token)", eos="<eos>", bos="<bos>", pad="<pad>",
         add_bos=True, chat_template=TURNS, extra_specials=("<start_of_turn>", "<end_of_turn>"),
         config={"model_type": "gemma", "num_key_value_heads": 1, "head_dim": 16}),
    Arch("starcoder2", "StarCoder2 (sliding window)", eos="<|endoftext|>",
         config={"model_type": "starcoder2", "num_key_value_heads": 2, "sliding_window": 16}),
    Arch("gpt_bigcode", "StarCoder, SantaCoder (multi-query)", eos="<|endoftext|>",
         config={"model_type": "gpt_bigcode", "multi_query": True}),
    Arch("gpt_neox", "Pythia, GPT-NeoX (partial rotary, untied)", eos="<|endoftext|>",
         config={"model_type": "gpt_neox", "rotary_pct": 0.25, "tie_word_embeddings": False}),
    Arch("codegen", "CodeGen", eos="<|endoftext|>",
         config={"model_type": "codegen", "rotary_dim": 8, "tie_word_embeddings": False}),
    Arch("gpt2", "GPT-2, CodeParrot", eos="<|endoftext|>", config={"model_type": "gpt2"}),
    Arch("t5", "CodeT5 (encoder-decoder, decoder_start_token_id)", eos="</s>", pad="<pad>", add_eos=True,
         config={"model_type": "t5"}),
)}

HIDDEN, LAYERS, HEADS, POSITIONS = 64, 2, 4, 512


def tokenizer(arch: Arch, vocab_size: int = 300):
    """A byte-level BPE with ``arch``'s special tokens and encoding conventions, trained on the fixture problems."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    specials = [t for t in (arch.pad, arch.eos, arch.bos) if t is not None]
    specials = list(dict.fromkeys(specials + list(arch.extra_specials)))
    backend = Tokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    backend.decoder = decoders.ByteLevel()
    backend.train_from_iterator(tm.corpus(), trainer=trainers.BpeTrainer(
        vocab_size=vocab_size, min_frequency=2, special_tokens=specials,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False))
    if arch.add_bos:
        bos = [(arch.bos, backend.token_to_id(arch.bos))]
        backend.post_processor = processors.TemplateProcessing(single=f"{arch.bos} $A", pair=f"{arch.bos} $A $B",
                                                               special_tokens=bos)
    elif arch.add_eos:
        eos = [(arch.eos, backend.token_to_id(arch.eos))]
        backend.post_processor = processors.TemplateProcessing(single=f"$A {arch.eos}", pair=f"$A $B {arch.eos}",
                                                               special_tokens=eos)
    kwargs: dict[str, Any] = {"eos_token": arch.eos, "clean_up_tokenization_spaces": False}
    if arch.bos is not None:
        kwargs["bos_token"] = arch.bos
    if arch.pad is not None:
        kwargs["pad_token"] = arch.pad
    if arch.extra_specials:
        kwargs["additional_special_tokens"] = list(arch.extra_specials)
    tok = PreTrainedTokenizerFast(tokenizer_object=backend, **kwargs)
    if arch.chat_template is not None:
        tok.chat_template = arch.chat_template
    return tok


def _config(arch: Arch, tok, rows: int):
    from transformers import AutoConfig

    c = dict(arch.config)
    model_type = c.pop("model_type")
    ids = {"eos_token_id": tok.eos_token_id, "bos_token_id": tok.bos_token_id if tok.bos_token_id is not None
           else tok.eos_token_id, "pad_token_id": tok.pad_token_id}
    if model_type in ("gpt2", "gpt_bigcode"):
        sizes = {"n_embd": HIDDEN, "n_layer": LAYERS, "n_head": HEADS, "n_positions": POSITIONS}
    elif model_type == "codegen":
        sizes = {"n_embd": HIDDEN, "n_layer": LAYERS, "n_head": HEADS, "n_positions": POSITIONS, "n_ctx": POSITIONS}
    elif model_type == "t5":
        sizes = {"d_model": HIDDEN, "d_kv": HIDDEN // HEADS, "d_ff": 2 * HIDDEN, "num_layers": LAYERS,
                 "num_decoder_layers": LAYERS, "num_heads": HEADS, "dropout_rate": 0.0,
                 "decoder_start_token_id": tok.pad_token_id}
    else:
        sizes = {"hidden_size": HIDDEN, "intermediate_size": 2 * HIDDEN, "num_hidden_layers": LAYERS,
                 "num_attention_heads": HEADS, "max_position_embeddings": POSITIONS}
    return AutoConfig.for_model(model_type, vocab_size=rows, **sizes, **ids, **c)


def save(arch_name: str, path: Path, seed: int = 0) -> Path:
    """Save ``arch_name``'s tiny model (``len(tokenizer) + EXTRA_ROWS`` embedding rows) and tokenizer to ``path``."""
    import torch
    from transformers import AutoModelForCausalLM, AutoModelForSeq2SeqLM

    arch = ARCHS[arch_name]
    tok = tokenizer(arch)
    config = _config(arch, tok, len(tok) + EXTRA_ROWS)
    auto = AutoModelForSeq2SeqLM if config.is_encoder_decoder else AutoModelForCausalLM
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = auto.from_config(config)
    model.save_pretrained(path)
    tok.save_pretrained(path)
    if config.is_encoder_decoder:  # CodeT5's checkpoints predate generation_config.json: config.json says it all
        (path / "generation_config.json").unlink()
    return path
