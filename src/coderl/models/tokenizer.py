"""Tokenizers: a byte-level BPE trained from scratch for the demo, and loading any saved Hugging Face tokenizer.

Conventions (see docs/models.md):

* special tokens of the demo tokenizer: ``<|pad|>`` (padding), ``<|endoftext|>`` (eos *and* bos) and ``<|sep|>``
  (separator, free for the prompt format to use);
* encoding adds no special tokens (there is no post-processor): callers append eos to training targets themselves;
* byte-level, so every string (indentation, newlines, tabs, unicode) round-trips exactly through
  ``decode(encode(text))`` -- decoding never "cleans up" spaces;
* padding side is set by :func:`prepare_tokenizer`: left for causal models (generation appends on the right),
  right for encoder-decoder models.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from coderl.utils.hub import UNREACHABLE, hub_available, looks_local

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase, PreTrainedTokenizerFast

PAD_TOKEN = "<|pad|>"
EOS_TOKEN = "<|endoftext|>"
SEP_TOKEN = "<|sep|>"
SPECIAL_TOKENS = (PAD_TOKEN, EOS_TOKEN, SEP_TOKEN)

# Files of which at least one must be present for a directory to hold a loadable tokenizer.
TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "vocab.json",
    "vocab.txt",
    "spiece.model",
    "tokenizer.model",
    "sentencepiece.bpe.model",
)


class TokenizerLoadError(RuntimeError):
    """A tokenizer could not be loaded; the message names the path and what is wrong."""


def train_bpe(texts: Iterable[str], vocab_size: int = 512, min_frequency: int = 2) -> PreTrainedTokenizerFast:
    """Train a byte-level BPE tokenizer on ``texts`` and wrap it as a ``PreTrainedTokenizerFast``.

    ``texts`` is any iterable of documents (a single string is taken as one document).

    The vocabulary holds the 256 byte symbols, the 3 special tokens (ids 0, 1, 2 = pad, eos, sep) and
    ``vocab_size - 259`` merges (fewer if the corpus has fewer merge candidates of ``min_frequency``).
    The returned tokenizer pads on the left (the demo model is causal) and has
    ``pad_token="<|pad|>"``, ``eos_token=bos_token="<|endoftext|>"``, ``sep_token="<|sep|>"``.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    n_base = 256 + len(SPECIAL_TOKENS)
    if vocab_size < n_base:
        raise ValueError(f"vocab_size must be at least {n_base} (256 bytes + {len(SPECIAL_TOKENS)} special tokens)")
    if isinstance(texts, str):  # one corpus string, not an iterable of characters
        texts = [texts]
    backend = Tokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    backend.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    backend.train_from_iterator(texts, trainer=trainer)
    tok = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        pad_token=PAD_TOKEN,
        eos_token=EOS_TOKEN,
        bos_token=EOS_TOKEN,
        sep_token=SEP_TOKEN,
        padding_side="left",
        clean_up_tokenization_spaces=False,
    )
    return tok


def _missing_tokenizer_reason(path: Path) -> str | None:
    if not path.exists():
        return "the directory does not exist"
    if not path.is_dir():
        return "it is not a directory"
    if not any((path / name).is_file() for name in TOKENIZER_FILES):
        return f"it holds no tokenizer files (looked for any of: {', '.join(TOKENIZER_FILES)})"
    return None


def load_tokenizer(path: str | os.PathLike[str], padding_side: str | None = None) -> PreTrainedTokenizerBase:
    """Load a tokenizer saved with ``save_pretrained`` (a local directory, or a hub id through the standard path).

    ``padding_side`` ("left"/"right") overrides the saved one; :func:`prepare_tokenizer` sets the right one for a
    model family. Raises :class:`TokenizerLoadError` naming ``path`` when the directory is missing, holds no
    tokenizer files, or ``AutoTokenizer`` cannot make sense of them.
    """
    from transformers import AutoTokenizer

    if looks_local(path):
        p = Path(path).expanduser()
        reason = _missing_tokenizer_reason(p)
        if reason is not None:
            raise TokenizerLoadError(f"cannot load a tokenizer from {str(p)!r}: {reason}")
        source: str = str(p)
    else:
        source = os.fspath(path)
        online = hub_available()
    kwargs = {} if padding_side is None else {"padding_side": padding_side}
    try:
        tok = AutoTokenizer.from_pretrained(source, **kwargs)
    except Exception as e:  # noqa: BLE001 - AutoTokenizer raises many types; re-raise with the path
        if looks_local(path):
            raise TokenizerLoadError(f"cannot load a tokenizer from {source!r}: {type(e).__name__}: {e}") from e
        if not online:
            raise TokenizerLoadError(f"cannot load a tokenizer from {source!r}: it is not a local directory, and "
                                     f"{UNREACHABLE}") from e
        raise TokenizerLoadError(f"cannot load a tokenizer from {source!r} (not a local directory; tried it as a hub "
                                 f"id): {type(e).__name__}: {e}") from e
    if getattr(tok, "clean_up_tokenization_spaces", False):
        tok.clean_up_tokenization_spaces = False  # it would corrupt code (" ." -> ".")
    return tok


def prepare_tokenizer(tokenizer: PreTrainedTokenizerBase, is_encoder_decoder: bool) -> PreTrainedTokenizerBase:
    """Make ``tokenizer`` follow coderl's conventions for a model family, in place, and return it.

    * causal models: pad on the left, so that a batch of prompts ends in the same column and generation appends
      to all rows at once; encoder-decoder models: pad on the right (the encoder sees the whole prompt at once);
    * a tokenizer without a pad token (GPT-2, many code LMs) gets ``pad_token = eos_token``: padding is always
      marked by attention masks, never recognised by its id, so this is safe;
    * decoding does not clean up tokenization spaces (that would alter code).

    Raises ``ValueError`` when the tokenizer has neither a pad nor an eos token.
    """
    tokenizer.padding_side = "right" if is_encoder_decoder else "left"
    if tokenizer.pad_token_id is None:
        if tokenizer.eos_token is None:
            raise ValueError("the tokenizer has neither a pad token nor an eos token; add one before using it")
        tokenizer.pad_token = tokenizer.eos_token
    if getattr(tokenizer, "clean_up_tokenization_spaces", False):
        tokenizer.clean_up_tokenization_spaces = False
    return tokenizer


def encode_pairs(
    tokenizer: PreTrainedTokenizerBase,
    prompts: Sequence[str],
    completions: Sequence[str],
    add_eos: bool = True,
) -> tuple[list[list[int]], list[list[int]]]:
    """Token ids of (prompt, completion) pairs, the one convention for SFT targets, RL and the critic.

    Prompts are encoded with the tokenizer's own special tokens (as :func:`coderl.models.generate.generate` encodes
    them, e.g. T5's trailing ``</s>``, Llama's leading ``<s>``; none for the demo BPE); completions without any,
    followed by the eos id when ``add_eos`` (what a finished sampled completion ends with). Returns unpadded
    ``(prompt_ids, completion_ids)`` lists, ready for ``completion_logprobs`` and ``critic_inputs``.
    """
    if len(prompts) != len(completions):
        raise ValueError(f"{len(prompts)} prompts but {len(completions)} completions")
    if not prompts:
        return [], []
    p_ids = [list(x) for x in tokenizer(list(prompts))["input_ids"]]
    c_ids = [list(x) for x in tokenizer(list(completions), add_special_tokens=False)["input_ids"]]
    if add_eos:
        if tokenizer.eos_token_id is None:
            raise ValueError("add_eos=True but the tokenizer has no eos token")
        c_ids = [c + [tokenizer.eos_token_id] for c in c_ids]
    return p_ids, c_ids


def fit_prompt(prompt_ids: Sequence[int], room: int, bos_id: int | None = None) -> list[int]:
    """``prompt_ids`` cut to at most ``room`` tokens, for a prompt too long for the model's context: the end is
    kept (where the question meets the answer: the signature, the "ANSWER:" line, the chat template's turn), and
    a leading ``bos_id`` stays first. Raises ``ValueError`` when ``room`` cannot hold a single prompt token."""
    ids = list(prompt_ids)
    if len(ids) <= room:
        return ids
    head = ids[:1] if bos_id is not None and ids and ids[0] == bos_id else []
    if room - len(head) < 1:
        raise ValueError(f"no room for the prompt: the context leaves {room} token(s) for it")
    return head + ids[len(ids) - (room - len(head)):]


def fit_pairs(pairs: Sequence[tuple[Sequence[int], Sequence[int]]], limit: int | None, bos_id: int | None = None
              ) -> tuple[list[tuple[list[int], list[int]]], int, int]:
    """(prompt ids, target ids) pairs made to fit ``limit`` positions (None: all fit): a pair that is too long
    has its prompt cut by :func:`fit_prompt`; one whose target leaves no room for a prompt token is dropped.
    Returns ``(pairs, how many were cut, how many were dropped)``, the pairs in their order."""
    kept: list[tuple[list[int], list[int]]] = []
    cut = dropped = 0
    for p, c in pairs:
        p, c = list(p), list(c)
        if limit is None or len(p) + len(c) <= limit:
            kept.append((p, c))
            continue
        room = limit - len(c)
        if room < 1 + (1 if bos_id is not None and p[:1] == [bos_id] else 0):
            dropped += 1
            continue
        kept.append((fit_prompt(p, room, bos_id), c))
        cut += 1
    return kept, cut, dropped
