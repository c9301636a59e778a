"""The CodeRL critic: reads problem + program and predicts the execution outcome, per token and pooled.

Architecture: a transformer backbone (a ``GPT2Model`` for the demo, the base model of any causal LM, or, for a
seq2seq model such as CodeT5, its encoder reading the prompt and its decoder reading the program, as in the
paper) gives hidden states (B, L, H); a head ``Linear(H, h) -> tanh -> Linear(h, C)`` turns them into per-token
class logits (B, L, C). The state at a program token has read the prompt and the program up to and including that
token, never a later one: every critic's per-token value is a function of the prefix. The classes are the
executor's outcomes (:data:`OUTCOME_CLASSES`: compile_error, runtime_error, failed_test, passed) or, for the
binary variant, (:data:`BINARY_CLASSES`: not_passed, passed).

Input: ``prompt_ids + program_ids``, right-padded; pooling and the per-token probabilities use only the
program tokens (``program_mask``). Pooling (max or mean over the sequence dimension, per class) covers real
program tokens only -- the original CodeRL max-pooled over padding as well, so a batch's padding changed a
program's score.

When the critic shares the actor's tokenizer, ``program_ids`` are exactly the actor's completion tokens, so
:func:`program_token_probs` returns (B, T) weights aligned with
:func:`coderl.models.logprobs.completion_logprobs` -- CodeRL's per-token weighting of the policy gradient.
"""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import torch
from torch import nn

if TYPE_CHECKING:
    from transformers import PretrainedConfig, PreTrainedModel, PreTrainedTokenizerBase

from coderl.sandbox.schema import OUTCOME_CLASSES  # one class order for rewards and critic labels

BINARY_CLASSES = ("not_passed", "passed")
CRITIC_FILE = "critic.json"
WEIGHTS_FILE = "critic.safetensors"
PoolMode = Literal["max", "mean"]
SEQ2SEQ_PART = "encoder-decoder"  # critic.json's backbone_part of a Seq2SeqBackbone


def outcome_label(outcome: str, n_classes: int = 4) -> int:
    """The class index of an executor outcome (``"passed"``, ``"failed_test"``, ...) for a 4- or 2-class critic."""
    if outcome not in OUTCOME_CLASSES:
        raise ValueError(f"unknown outcome {outcome!r}; expected one of {OUTCOME_CLASSES}")
    if n_classes == 4:
        return OUTCOME_CLASSES.index(outcome)
    if n_classes == 2:
        return int(outcome == "passed")
    raise ValueError(f"n_classes must be 4 or 2, got {n_classes}")


def _accepts(module: nn.Module, arg: str) -> bool:
    import inspect

    return arg in inspect.signature(module.forward).parameters


class Seq2SeqBackbone(nn.Module):
    """A seq2seq model as the critic's backbone (CodeRL's critic on CodeT5): the encoder reads the prompt, the decoder
    reads ``[decoder start] + program``, and the decoder state after each program token is that token's state.

    The encoder alone would read the program bidirectionally, so that a token's value depended on the tokens after
    it; the decoder is causal. Called like a base model on a ``[prompt | program | pads]`` batch, with
    ``program_mask`` saying which tokens are the program (prompt tokens come first in each row, as
    :func:`critic_inputs` lays them out); returns states (B, L, H) at the batch's positions: the decoder's at the
    program tokens, the encoder's at the prompt tokens (which no value or pooling uses)."""

    def __init__(self, encoder: nn.Module, decoder: nn.Module, start_id: int) -> None:
        super().__init__()
        self.encoder, self.decoder, self.start_id = encoder, decoder, int(start_id)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                program_mask: torch.Tensor | None = None) -> Any:
        from transformers.modeling_outputs import BaseModelOutput

        if program_mask is None:
            raise ValueError("a seq2seq critic needs program_mask: its decoder reads the program, its encoder the "
                             "prompt")
        real = attention_mask.bool()
        prog = program_mask.bool() & real
        prompt = real & ~prog
        enc = self.encoder(input_ids=input_ids, attention_mask=prompt.long()).last_hidden_state  # (B, L, H)
        batch, width = input_ids.shape
        lp, lc = prompt.sum(dim=1), prog.sum(dim=1)
        t = torch.arange(max(1, int(lc.max())), device=input_ids.device)[None]  # (1, T)
        valid = t < lc[:, None]  # (B, T)
        where = (lp[:, None] + t).clamp(max=width - 1)
        program = input_ids.gather(1, where).masked_fill(~valid, self.start_id)
        start = torch.full((batch, 1), self.start_id, dtype=input_ids.dtype, device=input_ids.device)
        dec = self.decoder(input_ids=torch.cat([start, program], dim=1),
                           attention_mask=torch.cat([torch.ones_like(start), valid.long()], dim=1),
                           encoder_hidden_states=enc, encoder_attention_mask=prompt.long(),
                           use_cache=False).last_hidden_state[:, 1:]  # (B, T, H): after reading program token t
        states = enc.masked_fill(~prompt[..., None], 0.0)
        spill = torch.zeros_like(states[:, :1])  # the column that padding's positions are scattered into
        pos = torch.where(valid, lp[:, None] + t, width)[..., None].expand(-1, -1, states.shape[-1])
        states = torch.cat([states, spill], dim=1).scatter(1, pos, dec.to(states.dtype))[:, :width]
        return BaseModelOutput(last_hidden_state=states)


class Critic(nn.Module):
    """Backbone + per-token classification head.

    ``backbone`` is any module called as ``backbone(input_ids=..., attention_mask=...)`` returning an object with
    ``last_hidden_state`` (B, L, H) -- a transformers base model or encoder; ``backbone_config`` is its config
    (``backbone.config`` when it has one), saved with the critic. ``head_size`` defaults to H. ``seed`` initialises
    the head from its own RNG stream (the global one is left as it was); None draws it from the global RNG.
    """

    def __init__(
        self,
        backbone: nn.Module,
        n_classes: int = 4,
        head_size: int | None = None,
        dropout: float = 0.1,
        class_names: Sequence[str] | None = None,
        backbone_config: PretrainedConfig | None = None,
        backbone_part: str = "model",
        seed: int | None = None,
    ) -> None:
        super().__init__()
        if n_classes < 2:
            raise ValueError(f"n_classes must be >= 2, got {n_classes}")
        config = backbone_config if backbone_config is not None else getattr(backbone, "config", None)
        if config is None:
            raise ValueError("the backbone has no .config; pass backbone_config")
        hidden = int(config.hidden_size)
        if class_names is None:
            class_names = OUTCOME_CLASSES if n_classes == 4 else BINARY_CLASSES if n_classes == 2 else [
                f"class_{i}" for i in range(n_classes)]
        if len(class_names) != n_classes:
            raise ValueError(f"{len(class_names)} class names for {n_classes} classes")
        self.backbone = backbone
        self.backbone_config = config
        self.backbone_part = backbone_part
        self.n_classes = n_classes
        self.class_names = list(class_names)
        self.head_size = head_size or hidden
        self.dropout = dropout
        with torch.random.fork_rng(devices=[], enabled=seed is not None):
            if seed is not None:  # the head's initial weights, so that one config builds one critic
                torch.manual_seed(seed)
            self.head = nn.Sequential(
                nn.Dropout(dropout),
                nn.Linear(hidden, self.head_size),
                nn.Tanh(),
                nn.Dropout(dropout),
                nn.Linear(self.head_size, n_classes),
            )
        self._pass_positions = _accepts(backbone, "position_ids")
        self._pass_use_cache = _accepts(backbone, "use_cache")
        self._pass_program = _accepts(backbone, "program_mask")

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_model(cls, model: PreTrainedModel, n_classes: int = 4, **kwargs: Any) -> Critic:
        """A critic on a *copy* of ``model``'s backbone: the encoder and decoder of a seq2seq model
        (:class:`Seq2SeqBackbone`), the base model of a causal LM (e.g. initialise the critic from the SFT actor, as
        CodeRL initialised it from the pretrained model)."""
        if getattr(model.config, "is_encoder_decoder", False):
            backbone, part = _seq2seq_backbone(model, copy_parts=True), SEQ2SEQ_PART
        else:
            backbone, part = copy.deepcopy(model.base_model), "model"
        return cls(backbone, n_classes, backbone_config=copy.deepcopy(model.config), backbone_part=part, **kwargs)

    @classmethod
    def from_pretrained_backbone(
        cls, path_or_id: str | os.PathLike[str], n_classes: int = 4, dtype: Any = None, **kwargs: Any
    ) -> Critic:
        """A critic whose backbone is loaded from a model directory (a causal LM's base model, or the encoder of a
        seq2seq model such as CodeT5-base, as in the paper). Raises ``ModelLoadError`` naming the path."""
        from transformers import AutoConfig, AutoModel

        from coderl.models.actor import ModelLoadError, quiet_transformers, resolve_dtype
        from coderl.utils.hub import UNREACHABLE, hub_available, looks_local

        offline = ""
        if looks_local(path_or_id):
            p = Path(path_or_id).expanduser()
            if not (p / "config.json").is_file():
                why = "the directory does not exist" if not p.exists() else "it holds no config.json"
                raise ModelLoadError(f"cannot load a critic backbone from {str(p)!r}: {why}")
        elif not hub_available():  # offline mode is now set: the local cache only, no half-minute of retries
            offline = f"it is not a local directory, and {UNREACHABLE}"
        try:
            config = AutoConfig.from_pretrained(os.fspath(path_or_id))
            extra = {} if dtype is None else {"dtype": resolve_dtype(dtype)}
            with quiet_transformers():
                base = AutoModel.from_pretrained(os.fspath(path_or_id), config=config, **extra)
        except Exception as e:  # noqa: BLE001
            raise ModelLoadError(f"cannot load a critic backbone from {os.fspath(path_or_id)!r}: "
                                 f"{offline or f'{type(e).__name__}: {e}'}") from e
        if getattr(config, "is_encoder_decoder", False):
            return cls(_seq2seq_backbone(base), n_classes, backbone_config=config, backbone_part=SEQ2SEQ_PART,
                       **kwargs)
        return cls(base, n_classes, backbone_config=config, backbone_part="model", **kwargs)

    # ------------------------------------------------------------------ forward and pooling
    def hidden_states(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                      program_mask: torch.Tensor | None = None) -> torch.Tensor:
        """The backbone's states (B, L, H) for ``input_ids`` (B, L) with ``attention_mask`` (B, L) (1 = real);
        ``program_mask`` (B, L) marks the program tokens (needed by a seq2seq backbone, ignored by a causal one)."""
        kwargs: dict[str, Any] = {"input_ids": input_ids, "attention_mask": attention_mask}
        if self._pass_positions:  # count real tokens only, whichever side the padding is on
            kwargs["position_ids"] = (attention_mask.long().cumsum(dim=-1) - 1).clamp(min=0)
        if self._pass_use_cache:
            kwargs["use_cache"] = False
        if self._pass_program:
            kwargs["program_mask"] = program_mask
        return self.backbone(**kwargs).last_hidden_state

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                program_mask: torch.Tensor | None = None) -> torch.Tensor:
        """Per-token class logits (B, L, C); arguments as :meth:`hidden_states` (:func:`critic_inputs` makes them)."""
        hidden = self.hidden_states(input_ids, attention_mask, program_mask)
        head_dtype = self.head[1].weight.dtype
        return self.head(hidden.to(head_dtype))

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    # ------------------------------------------------------------------ persistence
    def save(self, path: str | os.PathLike[str], tokenizer: PreTrainedTokenizerBase | None = None) -> Path:
        """Write ``critic.safetensors`` (all weights), ``critic.json`` (head settings, class names), the backbone's
        ``config.json`` and, if given, the tokenizer into directory ``path``. Returns ``path``."""
        from safetensors.torch import save_model

        d = Path(path)
        d.mkdir(parents=True, exist_ok=True)
        save_model(self, str(d / WEIGHTS_FILE))
        self.backbone_config.save_pretrained(d)
        meta = {"format": 1, "n_classes": self.n_classes, "class_names": self.class_names,
                "head_size": self.head_size, "dropout": self.dropout, "backbone_part": self.backbone_part}
        if isinstance(self.backbone, Seq2SeqBackbone):
            meta["decoder_start_id"] = self.backbone.start_id
        (d / CRITIC_FILE).write_text(json.dumps(meta, indent=2) + "\n")
        if tokenizer is not None:
            tokenizer.save_pretrained(d)
        return d

    @classmethod
    def load(cls, path: str | os.PathLike[str], device: str | torch.device | None = None) -> Critic:
        """Load a critic written by :meth:`save` (in eval mode). Raises ``ModelLoadError`` naming the path."""
        from transformers import AutoConfig, AutoModel

        from coderl.models.actor import ModelLoadError, load_weights

        d = Path(path)
        for name in (CRITIC_FILE, WEIGHTS_FILE, "config.json"):
            if not (d / name).is_file():
                why = "the directory does not exist" if not d.exists() else f"it holds no {name}"
                raise ModelLoadError(f"cannot load a critic from {str(d)!r}: {why} (not saved with Critic.save?)")
        meta = json.loads((d / CRITIC_FILE).read_text())
        if meta.get("backbone_part") == "encoder":
            raise ModelLoadError(f"cannot load the critic in {str(d)!r}: it was saved by an earlier coderl whose "
                                 "seq2seq critic read the program with the bidirectional encoder (a token's value "
                                 "depended on later tokens); train it again (coderl critic train --overwrite)")
        try:
            config = AutoConfig.from_pretrained(str(d))
        except Exception as e:  # noqa: BLE001
            raise ModelLoadError(f"cannot load a critic from {str(d)!r}: cannot read its config.json: {e}") from e
        base = AutoModel.from_config(config)
        if meta["backbone_part"] == SEQ2SEQ_PART:
            backbone = Seq2SeqBackbone(base.get_encoder(), base.get_decoder(), meta["decoder_start_id"])
        else:
            backbone = base
        critic = cls(backbone, meta["n_classes"], head_size=meta["head_size"], dropout=meta["dropout"],
                     class_names=meta["class_names"], backbone_config=config, backbone_part=meta["backbone_part"])
        try:
            load_weights(critic, [d / WEIGHTS_FILE], f"cannot load a critic from {str(d)!r}")
        except ValueError as e:
            raise ModelLoadError(str(e)) from None
        if device is not None:
            critic.to(device)
        critic.eval()
        return critic


def _seq2seq_backbone(model: PreTrainedModel, copy_parts: bool = False) -> Seq2SeqBackbone:
    from coderl.models.actor import decoder_start_id

    parts = (model.get_encoder(), model.get_decoder())
    if copy_parts:  # one deepcopy of both: embeddings they share (T5's shared.weight) stay one tensor
        parts = copy.deepcopy(parts)
    return Seq2SeqBackbone(*parts, decoder_start_id(model))


def check_reads_tokenizer(critic: Critic, tokenizer: PreTrainedTokenizerBase, what: str = "the critic") -> None:
    """Raise ``ValueError`` naming ``what`` unless the critic has an embedding row for every token of ``tokenizer``
    (the actor's, whose token ids it reads). More rows than tokens is fine: checkpoints pad their tables."""
    rows = getattr(critic.backbone_config, "vocab_size", None)
    if rows is not None and int(rows) < len(tokenizer):
        raise ValueError(f"{what}: its vocabulary ({rows} rows) is smaller than the actor tokenizer's "
                         f"({len(tokenizer)} tokens); the critic must be built on the actor's tokenizer")


def tiny_critic(
    tokenizer: PreTrainedTokenizerBase,
    n_classes: int = 4,
    n_layer: int = 2,
    n_embd: int = 64,
    n_head: int = 4,
    n_positions: int = 256,
    seed: int = 0,
    dropout: float = 0.0,
) -> Critic:
    """A randomly initialised critic on a small ``GPT2Model`` (the demo's; ~0.15M parameters with vocab 512)."""
    from transformers import GPT2Config, GPT2Model

    config = GPT2Config(vocab_size=len(tokenizer), n_positions=n_positions, n_embd=n_embd, n_layer=n_layer,
                        n_head=n_head, resid_pdrop=dropout, embd_pdrop=dropout, attn_pdrop=dropout,
                        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                        pad_token_id=tokenizer.pad_token_id)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return Critic(GPT2Model(config), n_classes=n_classes, dropout=dropout)


# ---------------------------------------------------------------------- pure tensor functions
def pooled_logits(token_logits: torch.Tensor, mask: torch.Tensor, mode: PoolMode = "max") -> torch.Tensor:
    """Pool per-token logits (B, L, C) over the real tokens of ``mask`` (B, L) into (B, C).

    ``"max"`` takes, per class, the maximum over the masked tokens; ``"mean"`` their average. Tokens outside the
    mask (padding, the prompt) never influence the result; a row without any masked token pools to zeros.
    """
    if mode not in ("max", "mean"):
        raise ValueError(f"mode must be 'max' or 'mean', not {mode!r}")
    m = mask.to(torch.bool).unsqueeze(-1)  # (B, L, 1)
    any_real = m.any(dim=1)  # (B, 1)
    if mode == "max":
        pooled = token_logits.masked_fill(~m, float("-inf")).amax(dim=1)
        return torch.where(any_real, pooled, torch.zeros_like(pooled))
    summed = token_logits.masked_fill(~m, 0.0).sum(dim=1)
    return summed / m.sum(dim=1).clamp(min=1).to(token_logits.dtype)


def token_probs_of(token_logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Probability of the given class at every token: ``softmax(token_logits)[b, t, labels[b]]``.

    ``token_logits`` (B, L, C); ``labels`` (B,) one class per sequence (or (B, L) per token) -> (B, L).
    """
    probs = token_logits.float().softmax(dim=-1)
    if labels.dim() == 1:
        labels = labels[:, None].expand(-1, token_logits.shape[1])
    return probs.gather(-1, labels.long().unsqueeze(-1)).squeeze(-1)


def critic_inputs(
    prompt_ids: Sequence[Sequence[int]],
    program_ids: Sequence[Sequence[int]],
    pad_id: int,
    max_length: int | None = None,
    device: torch.device | str | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Right-padded ``[prompt | program | pads]`` batch: ``(input_ids, attention_mask, program_mask)``, all (B, L).

    ``program_mask`` is 1 on program tokens only. Rows longer than ``max_length`` lose prompt tokens from the
    left first (the program is what is judged), then program tokens from the end.
    """
    rows, progs = [], []
    for p, c in zip(prompt_ids, program_ids, strict=True):
        p, c = list(p), list(c)
        if max_length is not None and len(p) + len(c) > max_length:
            c = c[:max_length]
            p = p[len(p) - (max_length - len(c)):] if max_length > len(c) else []
        rows.append(p + c)
        progs.append((len(p), len(c)))
    width = max(1, max(len(r) for r in rows))
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    attn = torch.zeros((len(rows), width), dtype=torch.long)
    pmask = torch.zeros((len(rows), width), dtype=torch.float32)
    for b, (r, (lp, lc)) in enumerate(zip(rows, progs, strict=True)):
        if r:
            ids[b, : len(r)] = torch.tensor(r, dtype=torch.long)
            attn[b, : len(r)] = 1
        pmask[b, lp: lp + lc] = 1.0
    if device is not None:
        ids, attn, pmask = ids.to(device), attn.to(device), pmask.to(device)
    return ids, attn, pmask


def encode_examples(
    tokenizer: PreTrainedTokenizerBase, prompts: Sequence[str], programs: Sequence[str], add_eos: bool = True
) -> tuple[list[list[int]], list[list[int]]]:
    """Token ids of critic inputs from text, by :func:`coderl.models.tokenizer.encode_pairs`: prompts as the actor
    sees them, programs without special tokens plus eos (as a finished actor completion ends)."""
    from coderl.models.tokenizer import encode_pairs

    return encode_pairs(tokenizer, prompts, programs, add_eos=add_eos)


def critic_max_length(critic: Critic, max_length: int | None = None) -> int | None:
    """The longest input the critic reads: ``max_length`` when given, else its backbone's number of positions
    (None when the backbone's config names none)."""
    if max_length is not None:
        return max_length
    cfg = critic.backbone_config
    for name in ("n_positions", "max_position_embeddings"):
        v = getattr(cfg, name, None)
        if isinstance(v, int) and v > 0:
            return v
    return None


# ---------------------------------------------------------------------- scoring
@torch.no_grad()
def score_programs(
    critic: Critic,
    prompt_ids: Sequence[Sequence[int]],
    program_ids: Sequence[Sequence[int]],
    pad_id: int,
    batch_size: int = 64,
    mode: PoolMode = "max",
    max_length: int | None = None,
) -> torch.Tensor:
    """Pooled class probabilities (N, C) of N programs (eval mode, no gradient), on the CPU."""
    was = critic.training
    critic.eval()
    out = []
    try:
        for s in range(0, len(prompt_ids), batch_size):
            ids, attn, pm = critic_inputs(prompt_ids[s: s + batch_size], program_ids[s: s + batch_size], pad_id,
                                          critic_max_length(critic, max_length), critic.device)
            out.append(pooled_logits(critic(ids, attn, pm), pm, mode).float().softmax(-1).cpu())
    finally:
        critic.train(was)
    return torch.cat(out) if out else torch.zeros((0, critic.n_classes))


@torch.no_grad()
def program_token_distributions(
    critic: Critic,
    prompt_ids: Sequence[Sequence[int]],
    program_ids: Sequence[Sequence[int]],
    pad_id: int,
    batch_size: int = 64,
    max_length: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The critic's class probabilities after reading each program token.

    Returns ``(dist, mask, seen)``: ``dist`` (B, T, C), ``mask`` and ``seen`` (B, T) right-padded with T = the
    longest program, aligned token for token with ``completion_logprobs(model, prompt_ids, program_ids, ...)``;
    ``seen`` is 0 for program tokens cut by ``max_length`` (their ``dist`` is uniform) and for padding. Eval mode,
    no gradient, on the CPU.
    """
    n_cls = critic.n_classes
    t_max = max(1, max(len(c) for c in program_ids)) if program_ids else 1
    dist = torch.full((len(program_ids), t_max, n_cls), 1.0 / n_cls)
    mask = torch.zeros((len(program_ids), t_max))
    seen = torch.zeros((len(program_ids), t_max))
    for b, c in enumerate(program_ids):
        mask[b, : len(c)] = 1.0
    was = critic.training
    critic.eval()
    try:
        with torch.no_grad():
            for s in range(0, len(prompt_ids), batch_size):
                ps, cs = prompt_ids[s: s + batch_size], program_ids[s: s + batch_size]
                ids, attn, pm = critic_inputs(ps, cs, pad_id, critic_max_length(critic, max_length), critic.device)
                probs = critic(ids, attn, pm).float().softmax(-1).cpu()
                pm = pm.cpu()
                for j in range(len(cs)):
                    pos = pm[j].nonzero().squeeze(-1)
                    dist[s + j, : len(pos)] = probs[j, pos]
                    seen[s + j, : len(pos)] = 1.0
    finally:
        critic.train(was)
    return dist, mask, seen


def program_token_probs(
    critic: Critic,
    prompt_ids: Sequence[Sequence[int]],
    program_ids: Sequence[Sequence[int]],
    labels: Sequence[int] | torch.Tensor,
    pad_id: int,
    batch_size: int = 64,
    max_length: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The critic's probability of each program's actual outcome ``labels[b]`` at each program token.

    Returns ``(probs, mask)``, both (B, T), aligned as in :func:`program_token_distributions`; program tokens
    the critic did not see (cut by ``max_length``) and padding get probability 1, i.e. unweighted.
    """
    dist, mask, seen = program_token_distributions(critic, prompt_ids, program_ids, pad_id, batch_size, max_length)
    labels_t = torch.as_tensor(labels, dtype=torch.long)
    probs = dist.gather(-1, labels_t[:, None, None].expand(-1, dist.shape[1], 1)).squeeze(-1)
    return probs * seen + (1 - seen), mask


def token_values(dist: torch.Tensor, seen: torch.Tensor, class_returns: Sequence[float]) -> torch.Tensor:
    """(B, T) the critic's expected return after each token, Σ_c p_c(t) · R(c): a per-token baseline. A token the
    critic did not see takes the value of the last one it saw (0 when it saw none)."""
    if dist.shape[-1] != len(class_returns):
        raise ValueError(f"{len(class_returns)} class returns for a {dist.shape[-1]}-class critic")
    v = dist @ torch.tensor(list(class_returns), dtype=dist.dtype)
    out = torch.zeros_like(v)
    for b in range(v.shape[0]):
        n = int(seen[b].sum())
        out[b, :n] = v[b, :n]
        if 0 < n < v.shape[1]:
            out[b, n:] = v[b, n - 1]
    return out


# ---------------------------------------------------------------------- training and evaluation
def critic_loss(critic: Critic, prompt_ids: Sequence[Sequence[int]], program_ids: Sequence[Sequence[int]],
                labels: Sequence[int], pad_id: int, max_len: int | None = None, pool: PoolMode = "max",
                weight: torch.Tensor | None = None, token_loss_weight: float = 0.0) -> torch.Tensor:
    """The critic's training loss on one batch: ``CE(pooled_logits(program tokens), label)`` (class ``weight``
    optional) plus ``token_loss_weight`` × the mean per-token CE of every program token against its label."""
    ids, attn, pm = critic_inputs(prompt_ids, program_ids, pad_id, max_len, critic.device)
    y = torch.tensor(list(labels), dtype=torch.long, device=critic.device)
    tl = critic(ids, attn, pm).float()
    loss = nn.functional.cross_entropy(pooled_logits(tl, pm, pool), y, weight=weight)
    if token_loss_weight > 0:
        per_tok = nn.functional.cross_entropy(tl.transpose(1, 2), y[:, None].expand(-1, tl.shape[1]), weight=weight,
                                              reduction="none")
        loss = loss + token_loss_weight * (per_tok * pm).sum() / pm.sum().clamp(min=1)
    return loss


def classification_metrics(probs: torch.Tensor, labels: Sequence[int], n_bins: int = 10) -> dict[str, Any]:
    """How well class probabilities ``probs`` (N, C) predict ``labels`` (N): a pure function.

    * ``accuracy``; ``confusion[i][j]``, examples of true class i predicted as j;
    * ``recall[c]`` = confusion[c][c] / examples of class c, ``precision[c]`` = confusion[c][c] / predictions of
      c (NaN where there are none): a critic that never predicts a class has recall 0 on it, whatever its accuracy;
    * ``ece``: expected calibration error of the top class (Guo et al., 2017): Σ_b (n_b / N) |accuracy_b -
      confidence_b| over ``n_bins`` equal-width confidence bins;
    * ``brier``: mean over examples of Σ_c (p_c - 1[c = y])².
    """
    n, n_cls = probs.shape
    labels_t = torch.as_tensor(list(labels), dtype=torch.long)
    conf, pred = probs.max(dim=-1)
    confusion = [[0] * n_cls for _ in range(n_cls)]
    for y, p in zip(labels_t.tolist(), pred.tolist(), strict=True):
        confusion[y][p] += 1
    nan = float("nan")
    recall = [confusion[c][c] / sum(confusion[c]) if sum(confusion[c]) else nan for c in range(n_cls)]
    col = [sum(confusion[r][c] for r in range(n_cls)) for c in range(n_cls)]
    precision = [confusion[c][c] / col[c] if col[c] else nan for c in range(n_cls)]
    correct = (pred == labels_t).float()
    bins = torch.clamp((conf * n_bins).long(), max=n_bins - 1)
    ece = 0.0
    for b in range(n_bins):
        in_bin = bins == b
        if in_bin.any():
            ece += float(in_bin.float().mean() * (correct[in_bin].mean() - conf[in_bin].mean()).abs())
    onehot = torch.nn.functional.one_hot(labels_t, n_cls).float()
    return {"accuracy": float(correct.mean()) if n else nan, "confusion": confusion, "recall": recall,
            "precision": precision, "ece": ece if n else nan,
            "brier": float(((probs.float() - onehot) ** 2).sum(dim=-1).mean()) if n else nan, "n": n}


def evaluate_critic(
    critic: Critic,
    tokenizer: PreTrainedTokenizerBase,
    examples: Sequence[tuple[str, str, int]],
    batch_size: int = 64,
    pool: PoolMode = "max",
    max_length: int | None = None,
) -> dict[str, Any]:
    """:func:`classification_metrics` of the pooled prediction on ``(prompt, program, label)`` examples, with
    ``class_names`` (accuracy and the rest are NaN for no examples)."""
    if not examples:
        empty = torch.zeros((0, critic.n_classes))
        return {**classification_metrics(empty, []), "class_names": critic.class_names}
    p_ids, c_ids = encode_examples(tokenizer, [e[0] for e in examples], [e[1] for e in examples])
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    probs = score_programs(critic, p_ids, c_ids, pad_id, batch_size, pool, max_length)
    return {**classification_metrics(probs, [int(e[2]) for e in examples]), "class_names": critic.class_names}
