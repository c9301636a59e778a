"""A procedural family of small Python function tasks, for training code models from scratch.

Each :class:`Template` is a task type (e.g. "clamp x to the range a..b") with 2-4 phrasings, a signature
``def f(...):``, a reference body and 4 hidden assert tests; its constants vary, giving 100+ distinct tasks
per template. Whether a task is in the 'train' or the held-out 'test' split is a hash of its template
and constants (:func:`split_of`), so the splits are stable and disjoint. Some templates declare a
*habitual bug* (a consistent, plausible mistake the tests catch); :func:`sft_examples` mixes references,
habitual bugs and random bugs (:func:`mutate`) into SFT data. See docs/tasks.md.
"""

from coderl.tasks.family import templates as _templates  # noqa: F401  (registers the templates)
from coderl.tasks.family.bugs import (
    MUTATION_WEIGHTS,
    SFT_KINDS,
    SFTExample,
    SFTRecord,
    corpus_text,
    habit_templates,
    mutate,
    random_bug,
    sft_examples,
    sft_records,
)
from coderl.tasks.family.core import (
    FN_NAME,
    SOURCE,
    SPLITS,
    TEMPLATES,
    TEST_FRACTION,
    Template,
    count_tasks,
    fill,
    generate_tasks,
    load_function,
    local_outcome,
    register,
    split_of,
    template_of,
)

__all__ = [
    "FN_NAME", "MUTATION_WEIGHTS", "SFT_KINDS", "SOURCE", "SPLITS", "TEMPLATES", "TEST_FRACTION", "SFTExample",
    "SFTRecord", "Template", "corpus_text", "count_tasks", "fill", "generate_tasks", "habit_templates",
    "load_function", "local_outcome", "mutate", "random_bug", "register", "sft_examples", "sft_records",
    "split_of", "template_of",
]
