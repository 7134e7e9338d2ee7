"""Results of a Ray grading job as Parquet shards: one row per graded input row.

Columns (:data:`RESULT_SCHEMA`): ``row_id`` (the runner's checkpoint key), ``grader``, ``score``
(null when the row has no score), ``reason``, ``error``, ``error_type``, ``parse_status``,
``retryable``, ``raw_output`` (text; JSON text for several outputs), ``prompt_tokens``,
``completion_tokens``, ``latency_s``, ``endpoint`` (the URL that answered), ``run_id`` and
``result`` -- the runner's own JSON for the value (:func:`~judgeforge.graders.results.to_dict`),
so :func:`~judgeforge.graders.results.from_dict` gives back exactly what ``GradingRunner`` returns.

A rerun reads the ``row_id``/``grader``/``retryable`` columns of every shard (:func:`scan`):
rows with a final value are skipped; retryable errors (transport failures) are graded again and
the old line is dropped from its shard when the run ends (:func:`compact`, an atomic rewrite of
each affected shard), so the output never holds a row twice. A shard that cannot be read (a job
killed while writing it) is renamed ``*.torn`` and its rows are graded again.
"""

from __future__ import annotations

import json
import logging
import os
import uuid
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from judgeforge.graders.results import is_error, to_dict

__all__ = [
    "RESULT_COLUMNS",
    "ShardScan",
    "compact",
    "count_by_type",
    "read_results",
    "result_row",
    "result_schema",
    "results_table",
    "scan",
]

log = logging.getLogger(__name__)

RESULT_COLUMNS = ("row_id", "grader", "score", "reason", "error", "error_type", "parse_status",
                  "retryable", "raw_output", "prompt_tokens", "completion_tokens", "latency_s",
                  "endpoint", "run_id", "result")


def result_schema() -> Any:
    """The Arrow schema every shard has (explicit, so all-null columns keep their type)."""
    import pyarrow as pa

    types = {"score": pa.float64(), "retryable": pa.bool_(), "prompt_tokens": pa.int64(),
             "completion_tokens": pa.int64(), "latency_s": pa.float64()}
    return pa.schema([(c, types.get(c, pa.string())) for c in RESULT_COLUMNS])


def result_row(row_id: str, grader: str, result: Any, *, endpoint: str | None,
               run_id: str) -> dict[str, Any]:
    """One output row for one grader value (score or error)."""
    data = to_dict(result)
    meta = data.get("metadata") or {}
    tokens = meta.get("tokens") or {}
    raw = meta.get("raw_output")
    err = is_error(result)
    return {
        "row_id": row_id, "grader": grader,
        "score": None if err else data["score"],
        "reason": data.get("reason", ""),
        "error": data.get("error") if err else None,
        "error_type": (meta.get("error_type") or "Error") if err else None,
        "parse_status": meta.get("parse_status"),
        "retryable": bool(meta.get("retryable", False)) if err else False,
        "raw_output": raw if raw is None or isinstance(raw, str) else json.dumps(raw),
        "prompt_tokens": tokens.get("prompt"), "completion_tokens": tokens.get("completion"),
        "latency_s": meta.get("latency_s"), "endpoint": endpoint, "run_id": run_id,
        "result": json.dumps(data, ensure_ascii=False),
    }


def results_table(rows: list[dict[str, Any]]) -> Any:
    """Output rows as a ``pyarrow.Table`` with :func:`result_schema`."""
    import pyarrow as pa

    schema = result_schema()
    return pa.table({c: pa.array([r[c] for r in rows], type=schema.field(c).type)
                     for c in RESULT_COLUMNS}, schema=schema)


@dataclass
class ShardScan:
    """What the output folder already holds."""

    final: set[tuple[str, str]] = field(default_factory=set)
    retryable: set[tuple[str, str]] = field(default_factory=set)
    files: list[str] = field(default_factory=list)
    torn: list[str] = field(default_factory=list)
    rows: int = 0


def _fs(path: str) -> tuple[Any, str]:
    import pyarrow.fs as pafs

    return pafs.FileSystem.from_uri(path) if "://" in path else (pafs.LocalFileSystem(),
                                                                  os.path.abspath(path))


def _shard_files(fs: Any, root: str) -> list[str]:
    import pyarrow.fs as pafs

    info = fs.get_file_info(root)
    if info.type == pafs.FileType.NotFound:
        return []
    sel = pafs.FileSelector(root, recursive=False)
    return sorted(i.path for i in fs.get_file_info(sel)
                  if i.type == pafs.FileType.File and i.path.endswith(".parquet"))


def scan(output: str) -> ShardScan:
    """Read the keys of every shard in ``output``; rename unreadable shards to ``*.torn``."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    fs, root = _fs(output)
    out = ShardScan()
    for path in _shard_files(fs, root):
        try:
            table = pq.read_table(path, columns=["row_id", "grader", "retryable"], filesystem=fs)
        except (pa.ArrowException, OSError, ValueError) as exc:
            log.warning("%s: unreadable shard (%s); its rows are graded again", path, exc)
            fs.move(path, path + ".torn")
            out.torn.append(path)
            continue
        out.files.append(path)
        out.rows += table.num_rows
        for rid, grader, retry in zip(*(table.column(c).to_pylist() for c in
                                        ("row_id", "grader", "retryable"))):
            ident = (rid, grader)
            if retry and ident not in out.final:
                out.retryable.add(ident)
            else:
                out.final.add(ident)
                out.retryable.discard(ident)
    return out


def compact(output: str, *, keep_run: str) -> int:
    """Drop superseded lines: one line per (row_id, grader), a score before an error, and among
    equals the one from ``keep_run`` or the latest shard. Returns how many lines were dropped.

    Each shard that loses lines is rewritten under a new name and the old one deleted after it;
    a crash in between leaves a duplicate that the next compaction removes.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    fs, root = _fs(output)
    files = _shard_files(fs, root)
    best: dict[tuple[str, str], tuple[tuple[int, int, int], str, int]] = {}
    for order, path in enumerate(files):
        t = pq.read_table(path, columns=["row_id", "grader", "score", "run_id"], filesystem=fs)
        cols = [t.column(c).to_pylist() for c in ("row_id", "grader", "score", "run_id")]
        for i, (rid, grader, score, run) in enumerate(zip(*cols)):
            rank = (int(score is not None), int(run == keep_run), order)
            cur = best.get((rid, grader))
            if cur is None or rank > cur[0]:
                best[(rid, grader)] = (rank, path, i)
    keep: dict[str, set[int]] = {}
    for _, path, i in best.values():
        keep.setdefault(path, set()).add(i)
    dropped = 0
    for path in files:
        n = pq.read_metadata(path, filesystem=fs).num_rows
        kept = keep.get(path, set())
        if len(kept) == n:
            continue
        dropped += n - len(kept)
        if kept:
            table = pq.read_table(path, filesystem=fs)
            mask = [i in kept for i in range(n)]
            new = f"{root}/compacted-{uuid.uuid4().hex[:12]}.parquet"
            tmp = f"{root}/.tmp-{uuid.uuid4().hex[:12]}"
            pq.write_table(table.filter(pa.array(mask)), tmp, filesystem=fs)
            fs.move(tmp, new)
        fs.delete_file(path)
    return dropped


def read_results(output: str) -> Any:
    """Every result row of ``output`` as one ``pyarrow.Table`` (unreadable shards skipped)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    fs, root = _fs(output)
    tables = []
    for path in _shard_files(fs, root):
        try:
            tables.append(pq.read_table(path, filesystem=fs).select(list(RESULT_COLUMNS)))
        except (pa.ArrowException, OSError, ValueError, KeyError) as exc:
            log.warning("%s: unreadable shard skipped (%s)", path, exc)
    if not tables:
        return result_schema().empty_table()
    return pa.concat_tables([t.cast(result_schema()) for t in tables])


def count_by_type(values: Iterable[str | None]) -> dict[str, int]:
    """``{error_type: n}`` for the failed rows among ``values`` (None = scored)."""
    return dict(Counter(v for v in values if v is not None))
