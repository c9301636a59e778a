"""Reading JSONL input files (requests, problems, samples) with errors that name the file and the line."""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any


def iter_jsonl(path: str | Path, error: type[Exception]) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield ``(line number, object)`` for every non-blank line of a JSONL file (``.gz`` is decompressed).

    Every way a line can be unusable (unreadable file, bad UTF-8, bad JSON, not an object) raises
    ``error(reason, line=..., path=...)`` (a :class:`coderl.sandbox.RequestError` or a subclass), so callers
    only have to check fields.
    """
    path = str(path)
    if Path(path).is_dir():
        raise error("is a directory, expected a JSONL file", path=path)
    try:
        f = gzip.open(path, "rt", encoding="utf-8") if path.endswith(".gz") else open(path, encoding="utf-8")
    except OSError as e:
        raise error(f"cannot read ({e.strerror or e})", path=path) from None
    lineno = 0
    with f:
        try:
            for lineno, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    d = json.loads(line)
                except json.JSONDecodeError as e:
                    raise error(f"not valid JSON ({e.msg} at column {e.colno})", line=lineno, path=path) from None
                if not isinstance(d, dict):
                    raise error(f"expected a JSON object, got {type(d).__name__}", line=lineno, path=path)
                yield lineno, d
        except UnicodeDecodeError as e:
            raise error(f"not UTF-8 text ({e.reason})", line=lineno + 1, path=path) from None
        except (OSError, EOFError) as e:  # a truncated or corrupt .gz
            raise error(f"cannot read ({e})", line=lineno + 1, path=path) from None
