"""The actor (policy) model: the demo's tiny GPT-2, loading any causal or seq2seq Hugging Face model, checkpoints.

The same functions serve the demo and real models: a model is a ``transformers`` ``PreTrainedModel`` whose
``config.is_encoder_decoder`` says which family it is, and a tokenizer prepared by
:func:`coderl.models.tokenizer.prepare_tokenizer` (left padding for causal models, right for seq2seq).
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from coderl.models.tokenizer import (
    TOKENIZER_FILES,
    TokenizerLoadError,
    load_tokenizer,
    prepare_tokenizer,
)
from coderl.utils.hub import UNREACHABLE, hub_available, looks_local

if TYPE_CHECKING:
    import torch
    from transformers import GPT2LMHeadModel, PreTrainedModel, PreTrainedTokenizerBase

ModelKind = Literal["auto", "causal", "seq2seq"]

EXTRA_FILE = "coderl.json"
WEIGHT_FILES = (
    "model.safetensors",
    "model.safetensors.index.json",
    "pytorch_model.bin",
    "pytorch_model.bin.index.json",
)


class ModelLoadError(RuntimeError):
    """A model could not be loaded; the message names the path and what is missing or incompatible."""


def is_seq2seq(model: PreTrainedModel) -> bool:
    """True for encoder-decoder models (T5, CodeT5, BART), False for decoder-only (causal) ones."""
    return bool(getattr(model.config, "is_encoder_decoder", False))


def count_parameters(model: torch.nn.Module, trainable_only: bool = False) -> int:
    """Number of distinct parameters (tied weights counted once)."""
    seen: set[int] = set()
    total = 0
    for p in model.parameters():
        if id(p) in seen or (trainable_only and not p.requires_grad):
            continue
        seen.add(id(p))
        total += p.numel()
    return total


def tiny_gpt2(
    tokenizer: PreTrainedTokenizerBase,
    n_layer: int = 4,
    n_embd: int = 96,
    n_head: int = 4,
    n_positions: int = 128,
    seed: int = 0,
    dropout: float = 0.0,
) -> GPT2LMHeadModel:
    """A randomly initialised GPT-2 sized for CPU training (about 0.5M parameters with a 512-token vocabulary).

    The vocabulary size and the pad/eos/bos ids are taken from ``tokenizer``; input and output embeddings are
    tied. ``seed`` makes the initialisation deterministic without touching the global RNG state. The model
    accepts sequences of at most ``n_positions`` tokens (prompt plus completion).
    """
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    if n_embd % n_head:
        raise ValueError(f"n_embd ({n_embd}) must be divisible by n_head ({n_head})")
    eos = tokenizer.eos_token_id
    config = GPT2Config(
        vocab_size=len(tokenizer),
        n_positions=n_positions,
        n_embd=n_embd,
        n_layer=n_layer,
        n_head=n_head,
        resid_pdrop=dropout,
        embd_pdrop=dropout,
        attn_pdrop=dropout,
        bos_token_id=tokenizer.bos_token_id if tokenizer.bos_token_id is not None else eos,
        eos_token_id=eos,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=True,
        # GPT-2's default "gelu_new" is five elementwise kernels; torch's fused GELU is one, and on a CPU that
        # is ~20% of a training step for a model this small.
        activation_function="gelu",
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = GPT2LMHeadModel(config)
    align_generation_config(model, tokenizer)
    return model


def align_generation_config(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase) -> None:
    """Give ``model.generation_config`` the tokenizer's pad id (and eos id when the model has none), and list the
    output rows past the tokenizer's size in its ``suppress_tokens`` (see :func:`undecodable_ids`)."""
    gc = model.generation_config
    if gc.pad_token_id is None:
        gc.pad_token_id = tokenizer.pad_token_id
    if gc.eos_token_id is None and tokenizer.eos_token_id is not None:
        gc.eos_token_id = tokenizer.eos_token_id
    out = model.get_output_embeddings()
    rows = out.weight.shape[0] if out is not None else int(getattr(model.config, "vocab_size", 0) or 0)
    if rows > len(tokenizer):
        # Checkpoints pad their embedding table past the tokenizer (Qwen2.5: 151,936 rows for 151,665 tokens) for
        # fast matrix shapes; those rows are never trained, and a token drawn from one cannot be decoded.
        # suppress_tokens is the field Hugging Face generate honours too, and it is saved with the checkpoint.
        gc.suppress_tokens = sorted(set(gc.suppress_tokens or []) | set(range(len(tokenizer), rows)))


def undecodable_ids(model: PreTrainedModel) -> list[int]:
    """Token ids the model must never produce: its generation config's ``suppress_tokens``, which
    :func:`load_model` fills with the embedding rows past the tokenizer's size. Sampling gives them probability 0
    and log-probabilities are computed over the same restricted vocabulary."""
    gc = getattr(model, "generation_config", None)
    return list(getattr(gc, "suppress_tokens", None) or [])


def decoder_start_id(model: Any, pad_id: int | None = None) -> int:
    """The first decoder input of a seq2seq ``model``: its generation config's ``decoder_start_token_id`` (what
    ``model.generate`` starts from), else its config's, else ``pad_id`` (T5's convention), else the config's pad
    id. Sampling, log-probabilities and the critic all start the decoder from this one id."""
    for source in (getattr(model, "generation_config", None), getattr(model, "config", None)):
        start = getattr(source, "decoder_start_token_id", None)
        if start is not None:
            return int(start)
    fallback = pad_id if pad_id is not None else getattr(getattr(model, "config", None), "pad_token_id", None)
    if fallback is None:
        raise ValueError("the seq2seq model has no decoder_start_token_id and no pad token to start the decoder from")
    return int(fallback)


def resolve_dtype(dtype: Any) -> Any:
    import torch

    if dtype is None or dtype == "auto" or isinstance(dtype, torch.dtype):
        return dtype
    names = {"float32": torch.float32, "fp32": torch.float32, "float16": torch.float16, "fp16": torch.float16,
             "bfloat16": torch.bfloat16, "bf16": torch.bfloat16}
    if dtype not in names:
        raise ValueError(f"unknown dtype {dtype!r}; use one of {sorted(names)} or 'auto'")
    return names[dtype]


def _model_type(config_file: Path) -> str | None:
    try:
        return json.loads(config_file.read_text()).get("model_type")
    except (OSError, ValueError, AttributeError):
        return None


@contextlib.contextmanager
def quiet_transformers() -> Iterator[None]:
    """Silence transformers' progress bars (weight loading/saving) for the duration of the block."""
    from transformers.utils import logging as hf_logging

    was_enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_enabled:
            hf_logging.enable_progress_bar()


def _check_local_dir(p: Path) -> None:
    if not p.exists():
        raise ModelLoadError(f"cannot load a model from {str(p)!r}: the directory does not exist")
    if not p.is_dir():
        raise ModelLoadError(f"cannot load a model from {str(p)!r}: it is not a directory")
    if not (p / "config.json").is_file():
        raise ModelLoadError(f"cannot load a model from {str(p)!r}: it holds no config.json (is it a model directory "
                             "saved with save_pretrained?)")
    if not any((p / name).is_file() for name in WEIGHT_FILES):
        raise ModelLoadError(f"cannot load a model from {str(p)!r}: it holds no weights (looked for any of: "
                             f"{', '.join(WEIGHT_FILES)})")
    if not any((p / name).is_file() for name in TOKENIZER_FILES):
        raise ModelLoadError(f"cannot load a model from {str(p)!r}: it holds no tokenizer files (looked for any "
                             f"of: {', '.join(TOKENIZER_FILES)}); save the tokenizer next to the model")


def load_model(
    path_or_id: str | os.PathLike[str],
    kind: ModelKind = "auto",
    dtype: Any = None,
    device: str | torch.device | None = None,
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """Load ``(model, tokenizer)`` from a local model directory (or a hub id, through the standard path).

    ``kind="auto"`` picks ``AutoModelForSeq2SeqLM`` when the config says ``is_encoder_decoder`` and
    ``AutoModelForCausalLM`` otherwise; ``"causal"``/``"seq2seq"`` insist on one family and fail clearly when the
    config is of the other. ``dtype`` is ``None`` (the library default), ``"auto"`` (the checkpoint's), a
    ``torch.dtype`` or a name like ``"bfloat16"``. The tokenizer is prepared for the family (padding side, pad
    token) with :func:`~coderl.models.tokenizer.prepare_tokenizer`. The model is returned in eval mode.

    Raises :class:`ModelLoadError` naming the path for: a missing directory, no ``config.json``, no weights, no
    tokenizer files, an unknown architecture (``model_type``), or a model of the wrong family.
    """
    from transformers import AutoConfig, AutoModelForCausalLM, AutoModelForSeq2SeqLM

    if kind not in ("auto", "causal", "seq2seq"):
        raise ValueError(f"kind must be 'auto', 'causal' or 'seq2seq', not {kind!r}")
    local = looks_local(path_or_id)
    if local:
        p = Path(path_or_id).expanduser()
        _check_local_dir(p)
        source = str(p)
        what = repr(source)
    else:
        source = os.fspath(path_or_id)
        what = f"{source!r} (not a local directory; tried it as a hub id)"
        if not hub_available():
            what = f"{source!r} (not a local directory; tried it as a hub id, but {UNREACHABLE})"
    try:
        config = AutoConfig.from_pretrained(source)
    except Exception as e:  # noqa: BLE001
        msg = str(e)
        if not local and not hub_available():
            raise ModelLoadError(f"cannot load a model from {what}") from e
        if "recognize" in msg or "Unrecognized model" in msg or isinstance(e, KeyError):
            mt = _model_type(Path(source) / "config.json") if local else None
            raise ModelLoadError(f"cannot load a model from {what}: unknown architecture (model_type {mt!r} in "
                                 "config.json is not known to this transformers version)") from e
        raise ModelLoadError(f"cannot load a model from {what}: cannot read its config: {type(e).__name__}: {e}") from e
    enc_dec = bool(getattr(config, "is_encoder_decoder", False))
    if kind == "causal" and enc_dec:
        raise ModelLoadError(f"cannot load {what} as a causal LM: its config ({config.model_type}) is an "
                             "encoder-decoder model; use kind='seq2seq' or 'auto'")
    if kind == "seq2seq" and not enc_dec:
        raise ModelLoadError(f"cannot load {what} as a seq2seq model: its config ({config.model_type}) is not an "
                             "encoder-decoder model; use kind='causal' or 'auto'")
    auto_cls = AutoModelForSeq2SeqLM if enc_dec else AutoModelForCausalLM
    family = "seq2seq (AutoModelForSeq2SeqLM)" if enc_dec else "causal (AutoModelForCausalLM)"
    kwargs: dict[str, Any] = {}
    if dtype is not None:
        kwargs["dtype"] = resolve_dtype(dtype)
    try:
        with quiet_transformers():
            model = auto_cls.from_pretrained(source, config=config, **kwargs)
    except ValueError as e:
        if "Unrecognized configuration class" in str(e):
            raise ModelLoadError(f"cannot load {what} as a {family} model: architecture {config.model_type!r} has no "
                                 f"such head: {e}") from e
        raise ModelLoadError(f"cannot load a model from {what}: {type(e).__name__}: {e}") from e
    except Exception as e:  # noqa: BLE001
        raise ModelLoadError(f"cannot load a model from {what}: {type(e).__name__}: {e}") from e
    try:
        tokenizer = load_tokenizer(source)
    except TokenizerLoadError as e:
        raise ModelLoadError(str(e)) from e
    prepare_tokenizer(tokenizer, is_encoder_decoder=enc_dec)
    align_generation_config(model, tokenizer)
    if device is not None:
        model.to(device)
    model.eval()
    return model, tokenizer


def save_checkpoint(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    path: str | os.PathLike[str],
    extra: dict[str, Any] | None = None,
) -> Path:
    """Write ``model`` (safetensors weights + config), ``tokenizer`` and ``coderl.json`` into directory ``path``.

    ``extra`` (e.g. the resolved run configuration, the step) must be JSON-serialisable; it is written as
    ``coderl.json`` and read back by :func:`load_extra`. Files are written to a temporary sibling directory
    which then replaces ``path``, so a crash mid-save never leaves a half-written checkpoint under ``path``.
    The directory loads back with :func:`load_model`. Returns ``path``.
    """
    import shutil

    dest = Path(path)
    tmp = dest.with_name(dest.name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    with quiet_transformers():
        model.save_pretrained(tmp)  # safetensors is the only format transformers 5 writes
    tokenizer.save_pretrained(tmp)
    (tmp / EXTRA_FILE).write_text(json.dumps(extra or {}, indent=2, sort_keys=True, default=str) + "\n")
    old = dest.with_name(dest.name + ".old")
    if dest.exists():
        if old.exists():
            shutil.rmtree(old)
        dest.rename(old)
    tmp.rename(dest)
    if old.exists():
        shutil.rmtree(old)
    return dest


def tied_parameter_names(module: torch.nn.Module) -> set[str]:
    """Names of the parameters that can be absent from saved weights because they are tied to another one.

    safetensors stores a tensor shared by several names once (T5/CodeT5 keep only ``shared.weight`` for the
    encoder and decoder embeddings and the LM head; GPT-2 only ``transformer.wte.weight``). These are the names
    sharing one parameter object with another name, plus the targets transformers itself ties
    (``get_expanded_tied_weights_keys``) for models whose instance is not tied yet.
    """
    by_id: dict[int, list[str]] = {}
    for name, p in module.named_parameters(remove_duplicate=False):
        by_id.setdefault(id(p), []).append(name)
    names = {n for group in by_id.values() if len(group) > 1 for n in group}
    done: list[str] = []  # outermost transformers models; all_submodels=True covers what is inside them
    for prefix, sub in module.named_modules():
        expand = getattr(sub, "get_expanded_tied_weights_keys", None)
        if not callable(expand) or any(prefix == d or prefix.startswith(d + ".") for d in done):
            continue
        done.append(prefix)
        names |= {f"{prefix}.{k}" if prefix else k for k in expand(all_submodels=True)}
    return names


def load_weights(module: torch.nn.Module, files: list[Path], where: str) -> None:
    """Load safetensors ``files`` into ``module`` as ``from_pretrained`` would: tied parameters stored once are
    re-tied (:func:`tied_parameter_names`) and every other parameter must be present. Raises ``ValueError``
    naming ``where`` when the weights do not match the architecture."""
    from safetensors.torch import load_file

    state: dict[str, Any] = {}
    for f in files:
        state.update(load_file(str(f)))
    if not state:
        raise ValueError(f"{where}: no weights (no .safetensors file)")
    missing, unexpected = module.load_state_dict(state, strict=False)
    tied = tied_parameter_names(module) if missing else set()
    real_missing = sorted(k for k in missing if k not in tied)
    if real_missing or unexpected:
        raise ValueError(f"{where}: the weights do not match the model: missing {real_missing[:5]}, "
                         f"unexpected {sorted(unexpected)[:5]}")
    tie = getattr(module, "tie_weights", None)
    if callable(tie):
        tie()


def load_checkpoint_weights(model: PreTrainedModel, ckpt: str | os.PathLike[str]) -> None:
    """Restore ``model``'s weights from a training checkpoint directory (coderl.train.checkpoint): the LoRA adapters
    of a LoRA run, else the full weights (:func:`load_weights`)."""
    from coderl.models.lora import load_adapter_weights

    ckpt = Path(ckpt)
    if load_adapter_weights(model, ckpt):
        return
    try:
        load_weights(model, sorted(ckpt.glob("*.safetensors")), f"checkpoint {ckpt}")
    except ValueError:
        # save_pretrained writes some architectures' weights under their legacy names (transformers 5 reverts its
        # load-time renamings on save: GPT-NeoX's lm_head is stored as embed_out), and only from_pretrained maps
        # them back; its result is copied into the model in training, which keeps its identity and optimiser.
        try:
            with quiet_transformers():
                fresh, info = type(model).from_pretrained(ckpt, config=model.config, output_loading_info=True,
                                                          dtype=next(model.parameters()).dtype)
        except Exception:  # noqa: BLE001 - the names did not match either way: the first error says which
            fresh, info = None, {}
        if fresh is None or info.get("missing_keys") or info.get("unexpected_keys"):
            raise  # from_pretrained would have initialised what is missing at random: the first error names it
        model.load_state_dict(fresh.state_dict())
        model.tie_weights()


def model_fingerprint(path_or_id: str | os.PathLike[str]) -> str:
    """What derived files record about the model that produced them: a hash of a local model directory's config
    and weight files (LoRA adapter files included), or the hub id as given."""
    from coderl.utils.fingerprint import files_key

    p = Path(path_or_id).expanduser()
    if not p.is_dir():
        return f"hub:{os.fspath(path_or_id)}"
    files = [f for pattern in ("config.json", "*.safetensors", "*.bin", "adapter_config.json")
             for f in sorted(p.glob(pattern)) if f.is_file()]
    return files_key(files)


def load_extra(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The ``extra`` dict written by :func:`save_checkpoint` (``{}`` if the directory has no ``coderl.json``)."""
    f = Path(path) / EXTRA_FILE
    if not f.is_file():
        return {}
    return json.loads(f.read_text())
