"""Reading a converter's source file, plain or gzip-compressed (``.json.gz``, ``.jsonl.gz``).

The shipped suite data (``judgeforge/datasets/``) is compressed; the converters read it through
these two functions so the rest of the data layer keeps reading plain files only.
"""

from __future__ import annotations

import gzip
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from judgeforge.data.io import iter_raw_rows
from judgeforge.data.validate import RawRow, RowError
from judgeforge.errors import DataError

__all__ = ["is_gzip", "iter_source_rows", "load_source_json", "plain_name"]


def is_gzip(path: str | os.PathLike[str]) -> bool:
    """True for a ``.gz`` file name."""
    return Path(path).suffix.lower() == ".gz"


def plain_name(path: str | os.PathLike[str]) -> str:
    """The file name without a ``.gz`` suffix (``test.jsonl.gz`` -> ``test.jsonl``)."""
    name = Path(path).name
    return name[:-3] if name.lower().endswith(".gz") else name


def _read_bytes(path: Path) -> bytes:
    try:
        if is_gzip(path):
            with gzip.open(path, "rb") as fh:
                return fh.read()
        return path.read_bytes()
    except FileNotFoundError:
        raise DataError(f"{path}: no such file",
                        [RowError(None, None, None, "no such file")]) from None
    except (OSError, EOFError) as exc:  # a truncated or corrupt .gz
        raise DataError(f"{path}: cannot read: {exc}",
                        [RowError(None, None, None, f"cannot read: {exc}")]) from None


def load_source_json(path: str | os.PathLike[str]) -> Any:
    """A whole JSON document (e.g. judge-bench's ``{annotations, instances}``), .gz or plain."""
    p = Path(path)
    try:
        return json.loads(_read_bytes(p).decode("utf-8-sig"))
    except UnicodeDecodeError as exc:
        raise DataError(f"{p}: not valid UTF-8 (byte {exc.start})",
                        [RowError(None, None, None, "not valid UTF-8")]) from None
    except (ValueError, RecursionError) as exc:
        raise DataError(f"{p}: invalid JSON: {exc}",
                        [RowError(None, None, None, f"invalid JSON: {exc}")]) from None


def iter_source_rows(path: str | os.PathLike[str]) -> Iterator[RawRow]:
    """The raw rows of a JSON-list or JSONL file, plain or ``.gz`` (read by ``iter_raw_rows``).

    A ``.gz`` file is decompressed to a temporary file with the inner suffix, so row indexes,
    line numbers and errors are exactly those of the plain file.
    """
    p = Path(path)
    if not is_gzip(p):
        yield from iter_raw_rows(p)
        return
    suffix = Path(plain_name(p)).suffix or ".jsonl"
    data = _read_bytes(p)
    with tempfile.TemporaryDirectory(prefix="judgeforge-src-") as tmp:
        plain = Path(tmp) / ("source" + suffix)
        plain.write_bytes(data)
        yield from iter_raw_rows(plain)
