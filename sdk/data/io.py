"""Reading and writing pointwise files (Parquet, JSONL), with their :class:`DatasetInfo`.

* Parquet: columns ``input`` (list<struct<role, content>>), ``output`` (struct<content,
  label: struct<dim: int64, ...>>), ``data_source``, and ``id`` / ``extra_info`` when any row has
  them. The DatasetInfo JSON lies in the schema metadata under ``b"judgeforge.info"``. Plain
  pyarrow, ``pandas.read_parquet`` and ``datasets`` read the columns back as lists of dicts and
  dicts. When rows label different dimensions, the label struct holds all of them and a row's
  missing ones read back as null (pandas then shows floats, e.g. ``3.0``): the loader drops the
  nulls and accepts integral floats. ``extra_info`` that Arrow cannot store as a struct (mixed
  types, empty dicts) is stored as JSON text, listed under ``b"judgeforge.json_columns"``
  (and, only if even that fails, e.g. for odd extra message fields, ``input``/``output`` too).
* JSONL: one record a line; the DatasetInfo in a sidecar ``<file>.info.json``.
* Parquet files judgeforge writes carry a sha256 of their records as read back, checked on
  reading; a mismatch is a DataError naming the file (:mod:`judgeforge.data.digest`).

Loading never drops a row silently: a bad row raises :class:`DataError` naming every bad row
and field, or, with ``skip_invalid=True``, is skipped and counted (``LoadResult.skipped``).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from judgeforge.data.digest import DIGEST_KEY, RowsDigest, info_part, rows_digest
from judgeforge.data.schema import DatasetInfo, PointwiseRecord
from judgeforge.data.validate import (
    RawRow,
    RowError,
    ScaleSpec,
    check_labels,
    format_errors,
    infer_info,
    resolve_scales,
    validate_with_info,
)
from judgeforge.errors import ConfigError, DataError, StorageError

__all__ = [
    "INFO_KEY",
    "JSON_COLUMNS_KEY",
    "LoadResult",
    "detect_format",
    "info_sidecar",
    "iter_raw_rows",
    "load_records",
    "read_info",
    "write_records",
]

log = logging.getLogger(__name__)

INFO_KEY = b"judgeforge.info"
JSON_COLUMNS_KEY = b"judgeforge.json_columns"
_COLUMN_ORDER = ("input", "output", "data_source", "id", "extra_info")
_SUFFIXES = {".jsonl": "jsonl", ".ndjson": "jsonl", ".parquet": "parquet", ".pq": "parquet",
             ".csv": "csv", ".json": "json"}
_BATCH = 1024


@dataclass
class LoadResult:
    """What :func:`load_records` read: the good records, the info, and what was skipped."""

    records: list[PointwiseRecord]
    info: DatasetInfo
    errors: list[RowError] = field(default_factory=list)
    skipped: int = 0
    path: Path | None = None

    def __len__(self) -> int:
        return len(self.records)

    def __iter__(self) -> Iterator[PointwiseRecord]:
        return iter(self.records)


def _file_error(path: Path, message: str) -> DataError:
    return DataError(f"{path}: {message}", [RowError(None, None, None, message)])


def detect_format(path: str | os.PathLike[str], fmt: str | None = None) -> str:
    """``jsonl``, ``parquet``, ``csv`` or ``json`` (a JSON list), from ``fmt`` or the suffix."""
    if fmt:
        if fmt not in ("jsonl", "parquet", "csv", "json"):
            raise ConfigError(f"unknown format {fmt!r} (jsonl, parquet, csv or json)")
        return fmt
    suffix = Path(path).suffix.lower()
    if suffix == ".gz":  # gzip-compressed: the format is the inner suffix (rows.json.gz)
        suffix = Path(Path(path).stem).suffix.lower()
    if suffix not in _SUFFIXES:
        raise ConfigError(f"{path}: cannot tell the format from the suffix {suffix!r} "
                          f"(use one of {', '.join(sorted(_SUFFIXES))})")
    return _SUFFIXES[suffix]


def info_sidecar(path: str | os.PathLike[str]) -> Path:
    """Where a JSONL file's DatasetInfo lives: ``<file>.info.json``."""
    p = Path(path)
    return p.with_name(p.name + ".info.json")


# ---------------------------------------------------------------- reading raw rows


def _iter_jsonl(path: Path) -> Iterator[RawRow]:
    index = 0
    with path.open("rb") as fh:
        for lineno, raw in enumerate(fh, start=1):
            if not raw.strip():
                continue
            try:
                text = raw.decode("utf-8-sig" if lineno == 1 else "utf-8").rstrip("\r\n")
            except UnicodeDecodeError as exc:
                yield RawRow(index, lineno, None,
                             f"not valid UTF-8 (byte {exc.start}: {exc.reason})")
                index += 1
                continue
            try:
                data = json.loads(text)
            except json.JSONDecodeError as exc:
                yield RawRow(index, lineno, None, f"invalid JSON: {exc.msg} (column {exc.colno})")
            except (ValueError, RecursionError) as exc:  # e.g. a 5000-digit integer, deep nesting
                yield RawRow(index, lineno, None, f"invalid JSON: {exc.__class__.__name__}")
            else:
                yield RawRow(index, lineno, data)
            index += 1


def _iter_json_list(path: Path) -> Iterator[RawRow]:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise _file_error(path, f"not valid UTF-8 (byte {exc.start}: {exc.reason})") from exc
    if not text.lstrip().startswith("["):
        yield from _iter_jsonl(path)
        return
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise _file_error(path, f"invalid JSON: {exc.msg} (line {exc.lineno} column "
                                f"{exc.colno})") from exc
    except (ValueError, RecursionError) as exc:
        raise _file_error(path, f"invalid JSON: {exc.__class__.__name__}") from exc
    for i, item in enumerate(data):
        yield RawRow(i, None, item)


def _iter_csv(path: Path) -> Iterator[RawRow]:
    import csv
    import itertools

    # strict: a stray quote is an error naming its row, not a cell that swallows later rows
    try:
        with path.open(newline="", encoding="utf-8-sig") as fh:
            physical: list[str] = []  # the file lines of the record being read

            def lines() -> Iterator[str]:
                for text in fh:
                    physical.append(text)
                    yield text

            reader = csv.reader(lines(), strict=True)
            header = next(reader, None)
            if header is None:
                return
            _check_header(path, header)
            prev_line = reader.line_num
            for index in itertools.count():
                line = prev_line + 1
                physical.clear()
                try:
                    values = next(reader)
                except StopIteration:
                    return
                except csv.Error as exc:
                    raise DataError(
                        f"{path}: row {index} (line {line}): unreadable CSV: {exc} (a stray "
                        f"quote, or a cell over {csv.field_size_limit():,} characters?); rows "
                        "after it cannot be read reliably",
                        [RowError(index, line, None, f"unreadable CSV: {exc}")]) from exc
                prev_line = reader.line_num
                _check_spanning_cell(path, index, line, physical, len(header))
                if len(values) > len(header):
                    yield RawRow(index, line, None,
                                 f"{len(values)} fields but the header has {len(header)}")
                    continue
                values = values + [None] * (len(header) - len(values))  # type: ignore[list-item]
                yield RawRow(index, line, dict(zip(header, values)))
    except UnicodeDecodeError as exc:
        raise _file_error(path, f"not valid UTF-8 (byte {exc.start}: {exc.reason})") from exc
    except csv.Error as exc:
        raise _file_error(path, f"unreadable CSV: {exc}") from exc


def _check_spanning_cell(path: Path, index: int, line: int, physical: list[str],
                         width: int) -> None:
    """A quoted cell running over several file lines, each of which reads as a whole row of
    the header's width on its own (``q1,"a1,3`` / ``q2,a2",4``), is a stray quote merging
    rows: a DataError naming the line. A multi-line text cell (whose lines are not each a
    row: ``q1,"line one`` / ``line two",1``) is read as one cell."""
    if len(physical) < 2 or width < 2:
        return
    if all(text.rstrip("\r\n").count(",") + 1 == width for text in physical):
        end = line + len(physical) - 1
        raise DataError(
            f"{path}: row {index} (line {line}): a quoted cell runs over lines {line}-{end}, "
            f"and each of those lines reads as a whole row of {width} fields: a stray quote "
            "merging rows? (quote the cell's own quotes as \"\")",
            [RowError(index, line, None, f"quoted cell runs over lines {line}-{end}, each a "
                                         "whole row")])


def _check_header(path: Path, header: list[str]) -> None:
    """A CSV header naming a column twice would keep only the last one's cells: an error."""
    seen: dict[str, int] = {}
    for position, name in enumerate(header, 1):
        if name in seen:
            raise DataError(f"{path}: line 1: header: column {name!r} appears twice (columns "
                            f"{seen[name]} and {position})",
                            [RowError(None, 1, "header", f"column {name!r} appears twice")])
        seen[name] = position


def _strip_nones(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _strip_nones(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_strip_nones(v) for v in value]
    return value


def _normalize_parquet_row(row: dict[str, Any], json_columns: set[str],
                           index: int = -1) -> RawRow | dict[str, Any]:
    """Undo the Arrow layout: drop nulls of struct unions, decode JSON-text columns."""
    row = {k: v for k, v in row.items() if not str(k).startswith("__index_level_")}
    for name in json_columns:
        if isinstance(row.get(name), str):
            try:
                row[name] = json.loads(row[name])
            except (ValueError, RecursionError):
                return RawRow(index, None, None, f"{name}: stored JSON text is invalid")
    out = row.get("output")
    if isinstance(out, dict) and isinstance(out.get("label"), dict):
        out["label"] = {k: v for k, v in out["label"].items() if v is not None}
    if isinstance(row.get("extra_info"), dict) and "extra_info" not in json_columns:
        row["extra_info"] = _strip_nones(row["extra_info"])
    if isinstance(row.get("input"), list):
        row["input"] = [
            {k: v for k, v in m.items() if v is not None or k in ("role", "content")}
            if isinstance(m, dict) else m
            for m in row["input"]
        ]
    return row


def _parquet_file(path: Path) -> Any:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        return pq.ParquetFile(path)
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise _file_error(path, f"unreadable Parquet file: {exc}") from exc


def _iter_parquet(path: Path) -> Iterator[RawRow]:
    import pyarrow as pa

    pf = _parquet_file(path)
    meta = pf.schema_arrow.metadata or {}
    try:
        json_columns = set(json.loads(meta.get(JSON_COLUMNS_KEY, b"[]")))
    except ValueError:
        json_columns = set()
    index = 0
    try:
        for batch in pf.iter_batches(batch_size=_BATCH):
            for raw in _decode_batch(batch, json_columns, index):
                yield raw
                index += 1
    except (pa.ArrowException, OSError, ValueError, OverflowError) as exc:
        raise _file_error(path, f"unreadable Parquet data after row {index}: {exc}") from exc
    expected = pf.metadata.num_rows
    if index != expected:  # a corrupted page can decode as fewer rows without an Arrow error
        raise _file_error(path, f"corrupted Parquet data: the footer says {expected} row(s) but "
                                f"{index} could be read")


def _decode_batch(batch: Any, json_columns: set[str], start: int) -> Iterator[RawRow]:
    """The rows of one Arrow record batch as a reader of our Parquet files sees them."""
    for index, row in enumerate(_batch_rows(batch), start):
        if isinstance(row, str):
            yield RawRow(index, None, None, row)
        else:
            norm = _normalize_parquet_row(row, json_columns, index)
            yield norm if isinstance(norm, RawRow) else RawRow(index, None, norm)


def _batch_rows(batch: Any) -> list[dict[str, Any] | str]:
    """A record batch as dicts; a row whose values Python cannot hold becomes an error text."""
    import pyarrow as pa

    # KeyError: a map with a repeated key ("strict" refuses to keep one value silently)
    errors = (pa.ArrowException, ValueError, OverflowError, KeyError)
    try:
        return batch.to_pylist(maps_as_pydicts="strict")
    except errors:
        pass
    rows: list[dict[str, Any] | str] = []
    for i in range(batch.num_rows):
        try:
            rows.append(batch.slice(i, 1).to_pylist(maps_as_pydicts="strict")[0])
        except errors as exc:  # e.g. a timestamp outside Python's datetime range
            reason = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
            rows.append(f"a value cannot be read: {reason}")
    return rows


def iter_raw_rows(path: str | os.PathLike[str], *, fmt: str | None = None) -> Iterator[RawRow]:
    """Yield every row of a JSONL, JSON-list, CSV or Parquet file as a :class:`RawRow`.

    Rows are numbered from 0 (blank JSONL lines are not rows); JSONL and CSV rows also carry
    their 1-based line number. A line that is not valid JSON or UTF-8 becomes a RawRow with
    ``error`` set, not an exception. A file that cannot be read at all raises DataError.
    """
    p = Path(path)
    kind = detect_format(p, fmt)
    if not p.is_file():
        raise _file_error(p, "no such file" if not p.exists() else "not a regular file")
    readers = {"jsonl": _iter_jsonl, "json": _iter_json_list, "csv": _iter_csv,
               "parquet": _iter_parquet}
    if p.suffix.lower() == ".gz":
        yield from _iter_gunzipped(p, readers[kind])
        return
    expected, info = _stored_digest(p, kind)
    try:
        if expected is None:
            yield from readers[kind](p)
        else:
            digest = RowsDigest(info)
            for raw in readers[kind](p):
                digest.add(raw)
                yield raw
            if digest.hexdigest() != expected:
                raise _file_error(p, "content digest mismatch: the records differ from what "
                                     "judgeforge wrote (the file was changed or damaged after "
                                     "writing)")
    except PermissionError as exc:
        raise _file_error(p, f"cannot read: {exc.strerror}") from exc


def _stored_digest(path: Path, kind: str) -> tuple[str | None, bytes]:
    """The records digest judgeforge wrote with ``path`` (None for a file from elsewhere) and
    the info part it covers (:mod:`judgeforge.data.digest`)."""
    if kind == "parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        try:
            meta = pq.read_schema(path).metadata or {}
        except (pa.ArrowException, OSError, ValueError):
            return None, b""  # the reader reports the unreadable file itself
        value = meta.get(DIGEST_KEY)
        return (value.decode("ascii", "replace") if value else None), info_part(meta.get(INFO_KEY))
    return None, b""  # JSONL is plain text that people edit and append to: no digest


def _iter_gunzipped(path: Path, reader: Any) -> Iterator[RawRow]:
    """The rows of a gzip-compressed file, read from a decompressed temporary copy."""
    import gzip
    import shutil
    import tempfile

    with tempfile.TemporaryDirectory(prefix="judgeforge-gz-") as tmp:
        plain = Path(tmp) / path.stem
        try:
            with gzip.open(path, "rb") as src, plain.open("wb") as dst:
                shutil.copyfileobj(src, dst)
        except (OSError, EOFError) as exc:  # gzip.BadGzipFile is an OSError
            raise _file_error(path, f"cannot decompress: {exc}") from exc
        yield from reader(plain)


# ---------------------------------------------------------------- info


def read_info(path: str | os.PathLike[str], *, fmt: str | None = None) -> DatasetInfo | None:
    """The DatasetInfo stored with a file (Parquet metadata or JSONL sidecar), or None."""
    p = Path(path)
    kind = detect_format(p, fmt)
    raw: bytes | str | None = None
    if kind == "parquet":
        if not p.is_file():
            return None
        meta = _parquet_file(p).schema_arrow.metadata or {}
        raw = meta.get(INFO_KEY)
    else:
        side = info_sidecar(p)
        if side.is_file():
            raw = side.read_bytes()
    if raw is None:
        return None
    try:
        return DatasetInfo.model_validate_json(raw)
    except ValidationError as exc:
        where = "Parquet metadata" if kind == "parquet" else str(info_sidecar(p))
        raise _file_error(p, f"invalid dataset info in {where}: {exc.errors()[0]['msg']}") from exc


# ---------------------------------------------------------------- loading


def load_records(
    path: str | os.PathLike[str],
    *,
    info: DatasetInfo | None = None,
    skip_invalid: bool = False,
    scale: ScaleSpec | None = None,
    fmt: str | None = None,
) -> LoadResult:
    """Read and validate a pointwise Parquet or JSONL file.

    The DatasetInfo is ``info`` if given, else the one stored with the file, else inferred from
    the labels (0-4 scales unless ``scale`` says otherwise, e.g. ``"1-5"`` or
    ``["helpfulness=0-4"]``); ``scale`` also overrides the scales of a given or stored info.
    Raises :class:`DataError` carrying every :class:`RowError` unless ``skip_invalid``, in which
    case bad rows are left out, counted in ``skipped`` and listed in ``errors`` (and a warning
    is logged). A file that cannot be read at all raises DataError either way.
    """
    p = Path(path)
    kind = detect_format(p, fmt)
    if kind == "csv":
        raise ConfigError(f"{p}: CSV holds flat columns, not records; convert it with "
                          "`judgeforge data convert generic`")
    try:
        resolve_scales(scale)
    except ValueError as exc:
        raise ConfigError(f"invalid scale: {exc}") from exc
    if info is None:
        info = read_info(p, fmt=kind)
    raws = list(iter_raw_rows(p, fmt=kind))
    records, errors, used = validate_with_info(raws, info, scale=scale, name=p.stem)
    bad = len({e.index for e in errors})
    if errors and not skip_invalid:
        raise DataError(f"{p}: {bad} invalid row(s) of {len(raws)}:\n{format_errors(errors)}",
                        errors)
    if errors:
        log.warning("%s: skipped %d invalid row(s) of %d", p, bad, len(raws))
    return LoadResult(records, used, errors, bad, p)


# ---------------------------------------------------------------- writing


def _atomic_write(path: Path, write: Any) -> None:
    """``write(tmp)`` then rename ``tmp`` to ``path``; a failure (disk full, a folder at
    ``path``, no permission) is a :class:`~judgeforge.errors.StorageError` naming the file, and
    leaves neither a partial file nor the temporary one."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    if path.is_dir():
        raise StorageError(f"{path}: cannot write the file (it is a folder); nothing was written")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write(tmp)
        os.replace(tmp, path)
    except StorageError:
        raise
    except OSError as exc:  # pyarrow's ArrowIOError is an OSError too
        why = exc.strerror or str(exc)
        raise StorageError(f"{path}: cannot write the file ({why}); nothing was written") \
            from exc
    finally:
        try:
            tmp.unlink(missing_ok=True)
        except OSError:
            pass


def _jsonl_line(row: dict[str, Any]) -> str:
    text = json.dumps(row, ensure_ascii=False)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates: escape them, JSON allows that
        text = json.dumps(row, ensure_ascii=True)
    return text + "\n"


def _write_jsonl(path: Path, rows: list[dict[str, Any]], info: DatasetInfo) -> None:
    def write(tmp: Path) -> None:
        with tmp.open("w", encoding="utf-8") as fh:
            fh.writelines(_jsonl_line(r) for r in rows)

    _atomic_write(path, write)
    _atomic_write(info_sidecar(path),
                  lambda tmp: tmp.write_text(info.model_dump_json(indent=2), encoding="utf-8"))


def _empty_table(info: DatasetInfo) -> Any:
    import pyarrow as pa

    message = pa.struct([("role", pa.string()), ("content", pa.string())])
    label = (pa.struct([(d, pa.int64()) for d in info.dimensions]) if info.dimensions
             else pa.map_(pa.string(), pa.int64()))
    schema = pa.schema([("input", pa.list_(message)),
                        ("output", pa.struct([("content", pa.string()), ("label", label)])),
                        ("data_source", pa.string())])
    return schema.empty_table()


def _table(rows: list[dict[str, Any]], info: DatasetInfo, json_columns: set[str]) -> Any:
    import pyarrow as pa

    if not rows:
        return _empty_table(info)
    names = [n for n in _COLUMN_ORDER if any(n in r for r in rows)]
    columns = {}
    for name in names:
        values = [r.get(name) for r in rows]
        if name in json_columns:
            values = [None if v is None else json.dumps(v) for v in values]
        columns[name] = pa.array(values)
    return pa.table(columns)


def _write_parquet(path: Path, rows: list[dict[str, Any]], info: DatasetInfo) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    last: Exception | None = None
    # Plain Arrow columns first; JSON text for what Arrow cannot type (rare, see module doc).
    for json_columns in (set(), {"extra_info"}, {"extra_info", "input", "output"}):
        try:
            table = _table(rows, info, json_columns)
            meta = {INFO_KEY: info.model_dump_json().encode()}
            if json_columns:
                meta[JSON_COLUMNS_KEY] = json.dumps(sorted(json_columns)).encode()
            table = table.replace_schema_metadata(meta)
            decoded = (raw for batch in table.to_batches()
                       for raw in _decode_batch(batch, json_columns, 0))
            meta[DIGEST_KEY] = rows_digest(info_part(meta[INFO_KEY]), decoded).encode()
            table = table.replace_schema_metadata(meta)
            _atomic_write(path, lambda tmp: pq.write_table(table, tmp))  # noqa: B023 (runs now)
            return
        except (pa.ArrowException, ValueError, TypeError, OverflowError) as exc:
            last = exc
    raise DataError(f"{path}: cannot write Parquet: {last}") from last


def write_records(
    path: str | os.PathLike[str],
    records: Iterable[PointwiseRecord | Mapping[str, Any]],
    info: DatasetInfo | None = None,
    *,
    fmt: str | None = None,
) -> Path:
    """Write records (validated first) and their info to Parquet or JSONL; returns the path.

    Without ``info`` it is inferred from the labels (0-4 scales). Every label must lie within
    its scale; otherwise DataError names each bad row and nothing is written. The write is
    atomic (a temporary file renamed into place).
    """
    p = Path(path)
    kind = detect_format(p, fmt)
    if kind not in ("parquet", "jsonl"):
        raise ConfigError(f"{p}: records are written as Parquet or JSONL, not {kind}")
    items = list(records)
    dicts = [r for r in items if not isinstance(r, PointwiseRecord)]
    if dicts:
        recs, errors, _ = validate_with_info(
            [RawRow(i, None, r.to_dict() if isinstance(r, PointwiseRecord) else r)
             for i, r in enumerate(items)], info)
        if errors:
            raise DataError(f"{p}: not written, {len({e.index for e in errors})} invalid "
                            f"row(s):\n{format_errors(errors)}", errors)
    else:
        recs = items  # type: ignore[assignment]
    if info is None:
        info = infer_info(recs, name=p.stem)
    errors = [e for i, r in enumerate(recs) for e in check_labels(r, info, index=i)]
    if errors:
        raise DataError(f"{p}: not written, labels outside the dataset's scales:\n"
                        f"{format_errors(errors)}", errors)
    rows = [r.to_dict() for r in recs]
    if kind == "jsonl":
        _write_jsonl(p, rows, info)
    else:
        _write_parquet(p, rows, info)
    return p
