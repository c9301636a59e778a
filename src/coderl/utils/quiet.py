"""Library chatter out of the user's output: deprecation notices and advisory warnings of transformers, peft,
torch and the hub libraries say nothing a coderl user can act on, and in a log they bury the progress lines.
``coderl --verbose`` keeps them."""

from __future__ import annotations

import os
import sys
import warnings

LIBRARIES = ("transformers", "peft", "torch", "accelerate", "datasets", "huggingface_hub", "tokenizers")


def quiet_libraries() -> None:
    """Silence library warnings for this process (and, through the environment, the processes it starts)."""
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")  # read when transformers is imported
    os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")  # its fork warning, once per sandbox start
    # Libraries attribute deprecations to their caller (stacklevel), i.e. to coderl's modules: match the category.
    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    pattern = r"^(" + "|".join(LIBRARIES) + r")(\.|$)"
    warnings.filterwarnings("ignore", category=UserWarning, module=pattern)
    if "transformers" in sys.modules:  # already imported: the variable above came too late
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()
