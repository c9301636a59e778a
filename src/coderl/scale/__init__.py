"""Scale-out on existing engines: Ray for execution and rollouts, vLLM for GPU generation, accelerate for
multi-GPU training (see docs/scaling.md).

Nothing here is imported by the single-machine path, and importing this package imports neither ray, vllm nor
accelerate: each module imports its engine inside the functions that need it, and says how to install it when
it is missing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def require(module: str, extra: str):
    """Import ``module`` or fail with a message naming the extra that installs it."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise ImportError(f"{module} is not installed ({e}); install it with `pip install 'coderl[{extra}]'`") from e


BACKENDS = ("local", "ray")


def make_executor(backend: str = "local", *, address: str | None = None, workers: int | None = None,
                  timeout: float = 3.0, memory_mb: int = 2048, output_mb: int | None = None, checker: str = "default",
                  cache: Any = None, name: Callable[[str], str] = str) -> Any:
    """The executor every command and stage uses (not started): ``local``, a :class:`coderl.sandbox.Executor`
    on this machine's cores, or ``ray``, a :class:`coderl.scale.ray_executor.RayExecutor` with sandbox workers
    on every node of the cluster at ``address``. Both run ``run(requests)`` / ``imap(requests)`` the same way.

    Raises ``ValueError`` for what cannot work (an unknown backend or checker, a timeout <= 0, ``address``
    without ``ray``, a result ``cache`` with ``ray``, ray not installed), naming each setting as ``name`` spells
    it: ``--backend`` for a command's flag, ``execution.backend`` for a recipe field."""
    from coderl.sandbox.schema import CHECKERS

    if backend not in BACKENDS:
        raise ValueError(f"{name('backend')} must be one of {', '.join(BACKENDS)}, got {backend!r}")
    if checker not in CHECKERS:
        raise ValueError(f"{name('checker')} must be one of {', '.join(CHECKERS)}, got {checker!r}")
    if not timeout > 0:
        raise ValueError(f"{name('timeout')} must be positive, got {timeout!r}")
    extra = {} if output_mb is None else {"output_mb": output_mb}
    if backend == "local":
        if address is not None:
            raise ValueError(f"{name('address')} needs {name('backend')} ray (the cluster to run on)")
        from coderl.sandbox import Executor

        return Executor(workers=workers, timeout=timeout, memory_mb=memory_mb, checker=checker, cache=cache or False,
                        **extra)
    if cache:
        raise ValueError(f"{name('cache')} works with {name('backend')} local only")
    try:
        from coderl.scale.ray_executor import RayExecutor

        return RayExecutor(address=address, workers=workers, timeout=timeout, memory_mb=memory_mb, checker=checker,
                           **extra)
    except ImportError as e:
        raise ValueError(f"{name('backend')} ray: {e}") from None
