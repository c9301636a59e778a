"""Rows of Hugging Face datasets as users have them: a hub id, a local file of rows (JSONL, a JSON array such as
MBPP's ``sanitized-mbpp.json``, parquet as the hub stores it), or a local copy of a hub repository.

The loaders (APPS, MBPP) turn rows into problems; this module only gets the rows, with errors that name the file,
the dataset and the split.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from coderl.tasks.problem import DataError, iter_jsonl

Rows = list[tuple[int | None, dict[str, Any]]]


def read_row_file(path: str | Path) -> Rows:
    """``(line, row)`` of a local file of rows: ``.parquet``, ``.json`` (an array of rows, or JSON Lines), anything
    else JSON Lines (``.gz`` decompressed). ``line`` is None where a file has no lines (a JSON array, parquet)."""
    p = Path(path)
    if p.name.endswith(".parquet"):
        try:
            import pyarrow.parquet as pq
        except ImportError:
            raise DataError("reading parquet needs pyarrow (pip install 'coderl[data]')", path=str(p)) from None
        try:
            return [(None, r) for r in pq.read_table(p).to_pylist()]
        except Exception as e:  # noqa: BLE001 - pyarrow's errors for a file that is not parquet
            raise DataError(f"not a parquet file ({type(e).__name__}: {e})", path=str(p)) from None
    if p.name.endswith(".json"):
        try:
            data = json.loads(p.read_text(encoding="utf-8"))
        except UnicodeDecodeError as e:
            raise DataError(f"not UTF-8 text ({e.reason})", path=str(p)) from None
        except json.JSONDecodeError:
            return list(iter_jsonl(p))  # JSON Lines under a .json name
        if isinstance(data, dict):  # one row
            data = [data]
        if not isinstance(data, list) or not all(isinstance(r, dict) for r in data):
            raise DataError("expected a JSON array of objects (rows) or JSON Lines", path=str(p))
        return [(None, r) for r in data]
    return list(iter_jsonl(p))


def split_files(folder: Path, split: str, config: str | None = None) -> list[Path]:
    """The files of ``split`` in a local copy of a hub repository: ``{split}.jsonl`` (``.json``, ``.parquet``) or the
    hub's shards ``{split}-00000-of-00001.parquet``; under ``config/`` when the copy has that folder, else anywhere
    below ``folder`` but all in one folder (several configs are an error naming them)."""
    names = (f"{split}.jsonl", f"{split}.jsonl.gz", f"{split}.json", f"{split}.parquet", f"{split}-*.parquet")
    bases = ([folder / config] if config and (folder / config).is_dir() else []) + [folder]
    for base in bases:
        found = sorted({f for n in names for f in base.rglob(n) if f.is_file()})
        if found:
            parents = sorted({str(f.parent.relative_to(folder)) for f in found})
            if len(parents) > 1:
                raise DataError(f"split {split!r} is in several folders ({', '.join(parents)}); give one of them as "
                                "the path", path=str(folder))
            return found
    return []


def local_rows(path: Path, split: str, config: str | None = None) -> Rows | None:
    """Rows of ``split`` from a local file of rows or a local copy of a hub repository (:func:`split_files`, else
    ``datasets.load_dataset`` on a copy with a README or loading script); None when ``path`` holds neither."""
    if path.is_file():
        return read_row_file(path)
    if not path.is_dir():
        return None
    files = split_files(path, split, config)
    if files:
        return [row for f in files for row in read_row_file(f)]
    if (path / "README.md").is_file() or any(path.glob("*.py")):
        return [(None, r) for r in dataset_rows(str(path), split, config)]
    return None


def dataset_rows(source: str, split: str, config: str | None = None, data_files: dict[str, str] | None = None
                 ) -> list[dict[str, Any]]:
    """One split of a dataset through ``datasets.load_dataset``: a hub id (from the local cache when the hub cannot
    be reached) or a local copy of a hub repository. ``data_files`` as load_dataset takes them (then ``source`` is
    the builder, e.g. ``"json"``)."""
    from coderl.utils.hub import UNREACHABLE, hub_available, looks_local

    try:
        import datasets
    except ImportError:
        raise DataError("loading a dataset by name needs the `datasets` package (pip install 'coderl[data]')",
                        path=source) from None
    online = looks_local(source) or hub_available()  # off the hub: offline mode, the local cache only
    args = (source, config) if config else (source,)
    kwargs: dict[str, Any] = {"split": split, **({"data_files": data_files} if data_files else {})}
    try:
        ds = datasets.load_dataset(*args, **kwargs)
    except ValueError as e:
        if "split" in str(e).lower():
            raise DataError(f"no split {split!r} ({e})", path=source) from None
        raise DataError(f"could not load split {split!r} through `datasets` ({type(e).__name__}: {e})",
                        path=source) from None
    except Exception as e:  # noqa: BLE001 - network, hub, cache and format errors all mean: not this way
        why = UNREACHABLE if not online else f"{type(e).__name__}: {e}"
        raise DataError(f"could not load split {split!r} through `datasets`: {why}; download the data and give "
                        "its local path (--path, data.path)", path=source) from None
    return [dict(r) for r in ds]
