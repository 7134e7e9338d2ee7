"""Content digests of the record files judgeforge writes, checked when they are read back.

Parquet's page checksums are optional and miss many one-byte changes (issue 23 measured 58 of
5,124 flips that still loaded with changed content), so every file :func:`~judgeforge.data.io.
write_records` writes carries a sha256 of what a reader gets back from it: the dataset info,
then each row as :func:`~judgeforge.data.io.iter_raw_rows` yields it (canonical JSON, in order;
an unreadable row as its error text).

The digest lies in the Parquet file's key-value metadata, under
``b"judgeforge.records_sha256"``. On reading, a digest that differs is a
:class:`~judgeforge.errors.DataError` naming the file; a file from elsewhere (no digest) is read
as it is. JSONL files carry none: they are text that people append to and edit by hand (an edit
would read as damage), and a one-byte change in a JSON line mostly breaks the JSON or the schema,
which the reader reports with the row and line.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from typing import Any

from judgeforge.data.keys import canonical_json
from judgeforge.data.validate import RawRow

__all__ = ["DIGEST_KEY", "RowsDigest", "info_part", "rows_digest"]

DIGEST_KEY = b"judgeforge.records_sha256"


def info_part(info_json: bytes | str | None) -> bytes:
    """The dataset info as the digest covers it: its canonical JSON (b"" when absent or
    unreadable, which then cannot match the digest written with it)."""
    if info_json is None:
        return b""
    try:
        data = json.loads(info_json)
    except (ValueError, RecursionError):
        return b"\x00unreadable"
    return canonical_json(data).encode("utf-8", "surrogatepass")


class RowsDigest:
    """sha256 over the info and each row, fed row by row (a reader checks as it streams)."""

    def __init__(self, info: bytes) -> None:
        self._hash = hashlib.sha256(b"judgeforge-records-v1\n" + info + b"\n")

    def add(self, raw: RawRow) -> None:
        value: Any = raw.data if raw.error is None else {"__unreadable__": raw.error}
        self._hash.update(canonical_json(value).encode("utf-8", "surrogatepass") + b"\n")

    def hexdigest(self) -> str:
        return self._hash.hexdigest()


def rows_digest(info: bytes, rows: Iterable[RawRow]) -> str:
    """The digest of ``rows`` (as a reader yields them) under ``info`` (:func:`info_part`)."""
    digest = RowsDigest(info)
    for raw in rows:
        digest.add(raw)
    return digest.hexdigest()
