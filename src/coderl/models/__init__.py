"""Models: tokenizers, the actor (policy), sampling, per-token log-probabilities and the CodeRL critic.

Importing ``coderl.models`` is cheap: torch and transformers are loaded only when one of the names below is
first used, so CLI commands that never touch a model start without them. See docs/models.md.

The sampling function is imported from its module, ``from coderl.models.generate import generate``: the package
attribute ``coderl.models.generate`` is that submodule.
"""

from __future__ import annotations

from coderl.utils.lazy import lazy_exports

_EXPORTS = {
    "train_bpe": "tokenizer",
    "load_tokenizer": "tokenizer",
    "prepare_tokenizer": "tokenizer",
    "encode_pairs": "tokenizer",
    "TokenizerLoadError": "tokenizer",
    "PAD_TOKEN": "tokenizer",
    "EOS_TOKEN": "tokenizer",
    "SEP_TOKEN": "tokenizer",
    "tiny_gpt2": "actor",
    "load_model": "actor",
    "save_checkpoint": "actor",
    "load_extra": "actor",
    "is_seq2seq": "actor",
    "count_parameters": "actor",
    "ModelLoadError": "actor",
    "SamplingConfig": "generate",
    "Completion": "generate",
    "generate_ids": "generate",
    "completion_logprobs": "logprobs",
    "Critic": "critic",
    "tiny_critic": "critic",
    "pooled_logits": "critic",
    "token_probs_of": "critic",
    "program_token_probs": "critic",
    "score_programs": "critic",
    "evaluate_critic": "critic",
    "outcome_label": "critic",
    "OUTCOME_CLASSES": "critic",
    "BINARY_CLASSES": "critic",
}

__all__ = sorted(_EXPORTS)


__getattr__, __dir__ = lazy_exports("coderl.models", _EXPORTS, globals())
