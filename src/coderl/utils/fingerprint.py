"""Content fingerprints: what a derived file (verdicts, critic, scores, an RL pool) was made from.

A derived record stores the fingerprint of its inputs and is matched by it, never by position: a samples file
rewritten by another ``coderl sample`` then simply has no verdicts yet, instead of inheriting those of the
programs that used to stand on the same lines.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

_BLOCK = 1 << 20


def content_key(*parts: Any) -> str:
    """A short stable hash of JSON-serialisable ``parts`` (dict key order does not matter)."""
    text = json.dumps(parts, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:24]


_file_cache: dict[tuple[str, int, int], str] = {}


def file_digest(path: str | os.PathLike[str]) -> str:
    """sha256 of a file's bytes; remembered per (path, size, mtime) within the process, so a model's weights are
    read once however often a run asks."""
    p = Path(path)
    st = p.stat()
    key = (str(p.resolve()), st.st_size, st.st_mtime_ns)
    if key not in _file_cache:
        h = hashlib.sha256()
        with open(p, "rb") as f:
            while block := f.read(_BLOCK):
                h.update(block)
        _file_cache[key] = h.hexdigest()
    return _file_cache[key]


def files_key(paths: Iterable[str | os.PathLike[str]]) -> str:
    """One fingerprint of several files' names and contents (``paths`` in any order)."""
    return content_key(sorted((Path(p).name, file_digest(p)) for p in paths))
