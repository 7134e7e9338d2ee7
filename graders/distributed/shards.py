"""Results of a Ray grading job as Parquet shards: one row per graded input row.

Columns (:data:`RESULT_SCHEMA`): ``row_id`` (the runner's checkpoint key), ``grader``, ``score``
(null when the row has no score), ``reason``, ``error``, ``error_type``, ``parse_status``,
``retryable``, ``raw_output`` (text; JSON text for several outputs), ``prompt_tokens``,
``completion_tokens``, ``latency_s``, ``endpoint`` (the URL that answered), ``run_id``,
``result`` -- the runner's own JSON for the value (:func:`~judgeforge.graders.results.to_dict`),
so :func:`~judgeforge.graders.results.from_dict` gives back exactly what ``GradingRunner``
returns -- and ``row_fp``/``config_fp``, the fingerprints the runner's results file stores.

A rerun reads the key, fingerprint and ``retryable`` columns of every shard (:func:`scan`) and
decides per row exactly as the runner does (:func:`~judgeforge.graders.runner.checkpoint.
resume_decision`): a final value made from the same row content and grading configuration is
skipped; a retryable error (transport failure) or a stale line (a shard written before
fingerprints existed counts as stale) is graded again, and the old line is dropped from its
shard when the run ends (:func:`compact`, an atomic rewrite of each affected shard), so the
output never holds a row twice. A shard that cannot be read (a job killed while writing it) is
renamed ``*.torn`` and its rows are graded again.
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
    "StoredLine",
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
                  "endpoint", "run_id", "result", "row_fp", "config_fp")


def result_schema() -> Any:
    """The Arrow schema every shard has (explicit, so all-null columns keep their type)."""
    import pyarrow as pa

    types = {"score": pa.float64(), "retryable": pa.bool_(), "prompt_tokens": pa.int64(),
             "completion_tokens": pa.int64(), "latency_s": pa.float64()}
    return pa.schema([(c, types.get(c, pa.string())) for c in RESULT_COLUMNS])


def result_row(row_id: str, grader: str, result: Any, *, endpoint: str | None,
               run_id: str, row_fp: str | None = None, config_fp: str | None = None
               ) -> dict[str, Any]:
    """One output row for one grader value (score or error), with the fingerprints it was
    made from."""
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
        "row_fp": row_fp, "config_fp": config_fp,
    }


def results_table(rows: list[dict[str, Any]]) -> Any:
    """Output rows as a ``pyarrow.Table`` with :func:`result_schema`."""
    import pyarrow as pa

    schema = result_schema()
    return pa.table({c: pa.array([r[c] for r in rows], type=schema.field(c).type)
                     for c in RESULT_COLUMNS}, schema=schema)


@dataclass(frozen=True)
class StoredLine:
    """One stored (row, grader) line as a rerun decides on it."""

    row_fp: str | None
    config_fp: str | None
    retryable: bool


@dataclass
class ShardScan:
    """What the output folder already holds (``entries``: the line a rerun decides on per
    (row_id, grader): a final one before a retryable one)."""

    final: set[tuple[str, str]] = field(default_factory=set)
    retryable: set[tuple[str, str]] = field(default_factory=set)
    entries: dict[tuple[str, str], StoredLine] = field(default_factory=dict)
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
    wanted = ["row_id", "grader", "retryable", "row_fp", "config_fp"]
    for path in _shard_files(fs, root):
        try:
            names = set(pq.read_schema(path, filesystem=fs).names)
            table = pq.read_table(path, columns=[c for c in wanted if c in names], filesystem=fs)
            table = _with_columns(table, wanted)
        except (pa.ArrowException, OSError, ValueError) as exc:
            log.warning("%s: unreadable shard (%s); its rows are graded again", path, exc)
            fs.move(path, path + ".torn")
            out.torn.append(path)
            continue
        out.files.append(path)
        out.rows += table.num_rows
        for rid, grader, retry, row_fp, config_fp in zip(
                *(table.column(c).to_pylist() for c in wanted)):
            ident = (rid, grader)
            if retry and ident not in out.final:
                out.retryable.add(ident)
                out.entries[ident] = StoredLine(row_fp, config_fp, True)
            elif not retry:
                out.final.add(ident)
                out.retryable.discard(ident)
                out.entries[ident] = StoredLine(row_fp, config_fp, False)
    return out


def _with_columns(table: Any, names: Iterable[str]) -> Any:
    """``table`` with every column of ``names`` (a missing one, e.g. the fingerprints of a
    shard written before they existed, as nulls of the result schema's type)."""
    import pyarrow as pa

    schema = result_schema()
    for name in names:
        if name not in table.column_names:
            table = table.append_column(name, pa.nulls(table.num_rows,
                                                       type=schema.field(name).type))
    return table


def compact(output: str, *, keep_run: str) -> int:
    """Drop superseded lines: one line per (row_id, grader): the one from ``keep_run``, else a
    score before an error, else the latest shard. Returns how many lines were dropped.

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
            # this run's line first (it regraded the row: a retry or a stale line), then a
            # score before an error, then the latest shard
            rank = (int(run == keep_run), int(score is not None), order)
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
            table = _with_columns(pq.read_table(path, filesystem=fs), RESULT_COLUMNS)
            tables.append(table.select(list(RESULT_COLUMNS)))
        except (pa.ArrowException, OSError, ValueError, KeyError) as exc:
            log.warning("%s: unreadable shard skipped (%s)", path, exc)
    if not tables:
        return result_schema().empty_table()
    return pa.concat_tables([t.cast(result_schema()) for t in tables])


def count_by_type(values: Iterable[str | None]) -> dict[str, int]:
    """``{error_type: n}`` for the failed rows among ``values`` (None = scored)."""
    return dict(Counter(v for v in values if v is not None))
