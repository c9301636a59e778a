"""The Hugging Face hub, only when it can be reached.

A name that is not a local path is tried as a hub id; on a machine without network, ``huggingface_hub`` retries
each request for about half a minute before saying so. :func:`hub_available` answers once per process from one
quick connection attempt, and switches the hub libraries to offline mode (their local cache only) when it fails,
so a model or dataset that is cached still loads and one that is not fails at once.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path
from urllib.parse import urlparse

_available: bool | None = None


def looks_local(path_or_id: str | os.PathLike[str]) -> bool:
    """Whether ``path_or_id`` names a local path (a model directory, a data file) rather than a hub id (``"name"``
    or ``"org/name"``).

    ``runs/sft/fnal`` (three parts), ``./x``, ``/x``, ``~/x`` are paths; so is ``sft/fnal`` when ``sft`` is a local
    directory: a mistyped path gets "does not exist" at once instead of a round of hub requests."""
    s = os.fspath(path_or_id)
    p = Path(s).expanduser()
    return (
        isinstance(path_or_id, Path)
        or p.exists()
        or s.startswith((".", "/", "~"))
        or s.count("/") > 1
        or "\\" in s
        or (p.parent != Path(".") and p.parent.is_dir())
    )


def _offline_requested() -> bool:
    return any(os.environ.get(v, "").upper() in ("1", "ON", "YES", "TRUE") for v in ("HF_HUB_OFFLINE",
                                                                                    "TRANSFORMERS_OFFLINE"))


def set_offline() -> None:
    """Offline mode for huggingface_hub (which transformers and datasets consult on every request), in this
    process and the ones it starts."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    try:
        import huggingface_hub.constants as hub_constants
    except ImportError:
        return
    hub_constants.HF_HUB_OFFLINE = True
    try:  # datasets keeps its own copy of the flag, read when it is imported
        import datasets.config as ds_config
    except ImportError:
        return
    ds_config.HF_HUB_OFFLINE = True


def hub_available(timeout_s: float = 3.0) -> bool:
    """Whether the hub endpoint (``HF_ENDPOINT``, default huggingface.co) accepts a connection; when it does not
    (or offline mode was asked for), offline mode is set. Checked once per process."""
    global _available
    if _available is None:
        if _offline_requested():
            _available = False
        else:
            url = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co"))
            try:
                socket.create_connection((url.hostname or "huggingface.co",
                                          url.port or (80 if url.scheme == "http" else 443)), timeout=timeout_s).close()
                _available = True
            except OSError:
                _available = False
        if not _available:
            set_offline()
    return _available


UNREACHABLE = "the Hugging Face hub cannot be reached from this machine and it is not in the local cache"
