"""A converter's whole-document source (e.g. JUDGE-BENCH's ``{annotations, instances}``), plain or
gzip-compressed (``.json.gz``), and file names without ``.gz``.

Row files (JSON lists, JSONL) are read by :func:`judgeforge.data.io.iter_raw_rows`, which reads
``.gz`` too; the shipped suite data (``judgeforge/datasets/``) is compressed.
"""

from __future__ import annotations

import gzip
import json
import os
from pathlib import Path
from typing import Any

from judgeforge.data.validate import RowError
from judgeforge.errors import DataError

__all__ = ["is_gzip", "load_source_json", "plain_name"]


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

