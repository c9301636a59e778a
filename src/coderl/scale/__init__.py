"""Scale-out on existing engines: Ray for execution and rollouts, vLLM for GPU generation, accelerate for
multi-GPU training (see docs/scaling.md).

Nothing here is imported by the single-machine path, and importing this package imports neither ray, vllm nor
accelerate: each module imports its engine inside the functions that need it, and says how to install it when
it is missing.
"""

from __future__ import annotations


def require(module: str, extra: str):
    """Import ``module`` or fail with a message naming the extra that installs it."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise ImportError(f"{module} is not installed ({e}); install it with `pip install 'coderl[{extra}]'`") from e
