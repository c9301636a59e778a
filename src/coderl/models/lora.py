"""Optional LoRA adapters on the actor through ``peft`` (extra ``coderl[lora]``).

Only the adapter weights train; checkpoints during training hold the adapter (``adapter_model.safetensors`` +
``adapter_config.json``) and the final model is exported merged, so that it loads with
:func:`coderl.models.actor.load_model` like any other model directory.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch
    from transformers import PreTrainedModel

ADAPTER_CONFIG = "adapter_config.json"


def _peft() -> Any:
    try:
        import peft
    except ImportError:
        raise ValueError("LoRA needs the `peft` package: pip install 'coderl[lora]' (or set model.lora.enabled: "
                         "false)") from None
    return peft


def apply_lora(model: PreTrainedModel, r: int = 8, alpha: int = 16, dropout: float = 0.05,
               target_modules: Sequence[str] | None = None) -> PreTrainedModel:
    """Wrap ``model`` (causal or seq2seq) in a peft ``PeftModel`` with LoRA adapters; only they are trainable.

    ``target_modules=None`` uses peft's default modules for the architecture (GPT-2: ``c_attn``; T5: ``q``,
    ``v``; Llama/Qwen: ``q_proj``, ``v_proj``); for an architecture peft has no default for (StarCoder2), the
    attention's query and value projections found by their usual names. Raises ``ValueError`` with the fix when
    peft is missing or no such layers are found.
    """
    peft = _peft()
    enc_dec = bool(getattr(model.config, "is_encoder_decoder", False))
    cfg = peft.LoraConfig(r=r, lora_alpha=alpha, lora_dropout=dropout,
                          target_modules=list(target_modules) if target_modules else None,
                          task_type=peft.TaskType.SEQ_2_SEQ_LM if enc_dec else peft.TaskType.CAUSAL_LM)
    try:
        return peft.get_peft_model(model, cfg)
    except ValueError as e:
        guess = None if target_modules else _attention_projections(model)
        if guess is None:
            raise ValueError(f"cannot add LoRA adapters to a {model.config.model_type!r} model: {e}; set "
                             "model.lora.target_modules to the names of its linear layers") from None
    # peft knows no default for this architecture (StarCoder2): the attention's query and value projections, the
    # layers its defaults pick for the families it knows, under the names this model gives them
    cfg.target_modules = set(guess)
    return peft.get_peft_model(model, cfg)


# Names of the attention's query and value (or fused qkv) linear layers, as the families name them.
_PROJECTIONS = (("q_proj", "v_proj"), ("query_key_value",), ("c_attn",), ("qkv_proj",), ("q", "v"))


def _attention_projections(model: PreTrainedModel) -> list[str] | None:
    from torch import nn

    names = {n.rsplit(".", 1)[-1] for n, m in model.named_modules() if isinstance(m, nn.Linear)}
    return next((list(group) for group in _PROJECTIONS if names.issuperset(group)), None)


def is_lora(model: Any) -> bool:
    try:
        import peft
    except ImportError:
        return False
    return isinstance(model, peft.PeftModel)


def merged(model: PreTrainedModel) -> PreTrainedModel:
    """A plain ``PreTrainedModel`` with the adapters folded into the weights (a copy; ``model`` is untouched)."""
    if not is_lora(model):
        return model
    return copy.deepcopy(model).merge_and_unload()


def load_adapter_weights(model: PreTrainedModel, ckpt: str | Path) -> bool:
    """Load a LoRA checkpoint's adapter weights into ``model`` (a PeftModel). False when ``ckpt`` holds none."""
    ckpt = Path(ckpt)
    if not (ckpt / ADAPTER_CONFIG).is_file():
        return False
    if not is_lora(model):
        raise ValueError(f"checkpoint {ckpt} holds LoRA adapters but the model has none; enable model.lora")
    from safetensors.torch import load_file

    state: dict[str, torch.Tensor] = {}
    for f in sorted(ckpt.glob("adapter_model*.safetensors")):
        state.update(load_file(str(f)))
    res = _peft().set_peft_model_state_dict(model, state)
    unexpected = list(getattr(res, "unexpected_keys", []) or [])
    if unexpected:
        raise ValueError(f"checkpoint {ckpt} does not match the adapters: unexpected {unexpected[:5]}")
    return True
