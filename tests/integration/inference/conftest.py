"""A tiny tokenizer, actor and critic on a few family tasks (random weights: the algorithm's plumbing, not skill)."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="module")
def family_tasks():
    from coderl.tasks.family import generate_tasks

    return generate_tasks("train", 40, seed=0)


@pytest.fixture(scope="module")
def tiny_tok(family_tasks):
    from coderl.models.tokenizer import train_bpe
    from coderl.tasks.family import corpus_text
    from coderl.tasks.prompt import format_prompt

    return train_bpe([format_prompt(p) for p in family_tasks] + [corpus_text(family_tasks)] * 3, vocab_size=300)
