"""The pairwise record: a query (chat messages), two responses and which one is better.

    {"input": [{"role": "user", "content": "..."}],
     "response_a": "...", "response_b": "...", "preference": "a",
     "votes": ["a", "a", "tie"], "rubric": null, "reference": null,
     "data_source": "pandalm", "id": "17", "extra_info": {"criterion": "harmless"}}

``preference`` is the gold verdict (the annotators' majority where there are several);
``votes`` the per-annotator verdicts when known. It is as strict as
:class:`~judgeforge.data.schema.PointwiseRecord`: unknown fields, a role outside
:data:`~judgeforge.data.schema.ROLES`, a query without a user turn, a response that is not text
(a JSON boolean, a number) are errors naming the field.

Files: Parquet (columns ``input``, ``response_a``, ``response_b``, ``preference``, then
``votes``, ``rubric``, ``reference``, ``data_source``, ``id``, ``extra_info`` when any row has
them; ``b"judgeforge.kind" = b"pairwise"`` in the schema metadata) or JSONL (one record a line).
Reading goes through :func:`judgeforge.data.io.iter_raw_rows`, so a malformed line, a corrupt
Parquet page, invalid UTF-8 or a lone surrogate is a :class:`~judgeforge.errors.DataError`
naming the row, and a Parquet file changed after judgeforge wrote it fails its records digest
(:mod:`judgeforge.data.digest`), as for pointwise files.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictStr, ValidationError, field_validator

from judgeforge.data.schema import Message, last_user_text, user_turn_problem
from judgeforge.errors import ConfigError, DataError

__all__ = ["PAIRWISE_COLUMNS", "PairwiseRecord", "Verdict", "is_pairwise_file", "mirror",
           "parse_pairwise", "read_pairwise", "write_pairwise"]

log = logging.getLogger(__name__)

Verdict = Literal["a", "b", "tie"]
_MIRROR: dict[str, Verdict] = {"a": "b", "b": "a", "tie": "tie"}
#: The columns that mark a pairwise file (a pointwise file has ``output`` instead).
PAIRWISE_COLUMNS = ("response_a", "response_b")
_COLUMN_ORDER = ("input", "response_a", "response_b", "preference", "votes", "rubric",
                 "reference", "data_source", "id", "extra_info")
KIND_KEY = b"judgeforge.kind"


def mirror(verdict: Verdict) -> Verdict:
    """The same verdict with the two sides swapped: a <-> b, tie stays tie."""
    return _MIRROR[verdict]


class PairwiseRecord(BaseModel):
    """One query with two responses and the gold verdict (``a``, ``b`` or ``tie``)."""

    model_config = ConfigDict(extra="forbid")
    input: list[Message] = Field(min_length=1)
    response_a: StrictStr
    response_b: StrictStr
    preference: Verdict
    votes: list[Verdict] | None = Field(default=None, min_length=1)
    rubric: StrictStr | None = None
    reference: StrictStr | None = None
    data_source: str = Field(default="unknown", min_length=1)
    id: str | None = None
    extra_info: dict[str, Any] = Field(default_factory=dict)

    @field_validator("id", mode="before")
    @classmethod
    def _id_to_str(cls, value: Any) -> Any:
        return str(value) if isinstance(value, int) and not isinstance(value, bool) else value

    @field_validator("extra_info", mode="before")
    @classmethod
    def _null_extra(cls, value: Any) -> Any:
        return {} if value is None else value  # Parquet reads an absent struct back as null

    @field_validator("input", mode="after")
    @classmethod
    def _has_user_turn(cls, value: list[Message]) -> list[Message]:
        problem = user_turn_problem(value)
        if problem:
            raise ValueError(problem)
        return value

    @property
    def query(self) -> str:
        """The last user turn's text (the question both responses answer)."""
        return last_user_text(self.input)

    def swapped(self) -> PairwiseRecord:
        """The same comparison with the sides swapped (preference and votes mirrored)."""
        return self.model_copy(update={
            "response_a": self.response_b, "response_b": self.response_a,
            "preference": mirror(self.preference),
            "votes": None if self.votes is None else [mirror(v) for v in self.votes]})

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready dict form files store (``None`` fields left out)."""
        return self.model_dump(mode="json", exclude_none=True)


# ---------------------------------------------------------------- validation


def parse_pairwise(raw: Any) -> PairwiseRecord | list[Any]:
    """Validate one :class:`~judgeforge.data.validate.RawRow` into a record, or its
    :class:`~judgeforge.data.validate.RowError` list (one per bad field, dotted path)."""
    from judgeforge.data.validate import RowError, _dotted, _message, lone_surrogate

    if raw.error is not None:
        return [RowError(raw.index, raw.line, None, raw.error)]
    if not isinstance(raw.data, Mapping):
        kind = type(raw.data).__name__
        return [RowError(raw.index, raw.line, None, f"expected an object (a dict), got {kind}")]
    bad_text = lone_surrogate(dict(raw.data))
    if bad_text is not None:  # text no UTF-8 file, JSON request or tokenizer can carry
        field, _, where = bad_text.partition(" ")
        return [RowError(raw.index, raw.line, field,
                         f"text holds a lone surrogate {where}: not valid Unicode text")]
    try:
        return PairwiseRecord.model_validate(dict(raw.data))
    except ValidationError as exc:
        errors = []
        for e in exc.errors(include_url=False):
            message = (f"unknown field (allowed: {', '.join(_COLUMN_ORDER)})"
                       if e.get("type") == "extra_forbidden" else _message(e))
            errors.append(RowError(raw.index, raw.line, _dotted(tuple(e["loc"])), message))
        return errors
    except RecursionError:
        return [RowError(raw.index, raw.line, None, "value nested too deeply")]


def _validate(rows: Iterable[Any], where: str, *, skip_invalid: bool
              ) -> list[PairwiseRecord]:
    from judgeforge.data.validate import RowError, duplicate_ids, format_errors

    records: list[PairwiseRecord] = []
    errors: list[RowError] = []
    total = 0
    for raw in rows:
        total += 1
        result = parse_pairwise(raw)
        if isinstance(result, PairwiseRecord):
            records.append(result)
        else:
            errors.extend(result)
    if not errors:
        errors = duplicate_ids(records)  # type: ignore[arg-type]  # reads .id only
    if errors:
        bad = len({e.index for e in errors})
        if not skip_invalid:
            raise DataError(f"{where}: {bad} invalid row(s) of {total}:\n"
                            f"{format_errors(errors)}", errors)
        log.warning("%s: skipped %d invalid row(s) of %d", where, bad, total)
    return records


# ---------------------------------------------------------------- files


def is_pairwise_file(path: str | os.PathLike[str]) -> bool:
    """Whether a Parquet/JSONL file holds pairwise records (it has ``response_a`` and
    ``response_b`` columns, read from the Parquet schema or the first JSONL row)."""
    from judgeforge.data.io import detect_format, iter_raw_rows

    p = Path(path)
    kind = detect_format(p)
    if kind == "parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        try:
            names = set(pq.ParquetFile(p).schema_arrow.names)
        except (pa.ArrowException, OSError, ValueError):
            return False
        return all(c in names for c in PAIRWISE_COLUMNS)
    try:
        for raw in iter_raw_rows(p, fmt=kind):
            return isinstance(raw.data, Mapping) and all(c in raw.data for c in PAIRWISE_COLUMNS)
    except DataError:
        return False
    return False


def read_pairwise(path: str | os.PathLike[str], *, skip_invalid: bool = False
                  ) -> list[PairwiseRecord]:
    """Read and validate a pairwise Parquet or JSONL file (plain or ``.gz``).

    Raises :class:`DataError` naming every bad row and field (and repeated ids) unless
    ``skip_invalid``, which leaves bad rows out with a logged warning.
    """
    from judgeforge.data.io import detect_format, iter_raw_rows

    p = Path(path)
    kind = detect_format(p)
    if kind == "csv":
        raise ConfigError(f"{p}: pairwise records are read from Parquet or JSONL, not CSV "
                          "(convert it with `judgeforge data convert pairs`)")
    return _validate(iter_raw_rows(p, fmt=kind), str(p), skip_invalid=skip_invalid)


def write_pairwise(records: Iterable[PairwiseRecord | Mapping[str, Any]],
                   path: str | os.PathLike[str]) -> Path:
    """Write pairwise records (dicts are validated first) to Parquet or JSONL, atomically.

    A bad dict raises :class:`DataError` naming its row and field and nothing is written.
    """
    from judgeforge.data.io import detect_format
    from judgeforge.data.validate import RawRow

    p = Path(path)
    kind = detect_format(p)
    if kind not in ("parquet", "jsonl"):
        raise ConfigError(f"{p}: records are written as Parquet or JSONL, not {kind}")
    items = list(records)
    recs = _validate((RawRow(i, None, r.to_dict() if isinstance(r, PairwiseRecord) else r)
                      for i, r in enumerate(items)), f"{p}: not written", skip_invalid=False)
    rows = [r.to_dict() for r in recs]
    if kind == "jsonl":
        _write_jsonl(p, rows)
    else:
        _write_parquet(p, rows)
    return p


def _write_jsonl(path: Path, rows: Sequence[dict[str, Any]]) -> None:
    from judgeforge.data.io import _atomic_write, _jsonl_line

    def write(tmp: Path) -> None:
        with tmp.open("w", encoding="utf-8") as fh:
            fh.writelines(_jsonl_line(r) for r in rows)

    _atomic_write(path, write)


def _table(rows: Sequence[dict[str, Any]], json_columns: set[str]) -> Any:
    import pyarrow as pa

    names = [n for n in _COLUMN_ORDER
             if n in ("input", "response_a", "response_b", "preference", "data_source")
             or any(n in r for r in rows)]
    columns = {}
    for name in names:
        values = [r.get(name) for r in rows]
        if name in json_columns:
            values = [None if v is None else json.dumps(v) for v in values]
        # Arrow infers the types (list<struct<role, content>> for input); a column of nulls
        # (no rows) is typed as text
        columns[name] = (pa.array(values) if any(v is not None for v in values)
                         else pa.array(values, pa.string()))
    return pa.table(columns)


def _write_parquet(path: Path, rows: Sequence[dict[str, Any]]) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from judgeforge.data.digest import DIGEST_KEY, info_part, rows_digest
    from judgeforge.data.io import JSON_COLUMNS_KEY, _atomic_write, _decode_batch

    last: Exception | None = None
    # Plain Arrow columns first; JSON text for what Arrow cannot type (mixed extra_info
    # values, extra message fields).
    for tried in (set(), {"extra_info"}, {"extra_info", "input"}):
        json_columns = set(tried)
        try:
            table = _table(rows, json_columns)
            meta = {KIND_KEY: b"pairwise"}
            if json_columns:
                meta[JSON_COLUMNS_KEY] = json.dumps(sorted(json_columns)).encode()
            table = table.replace_schema_metadata(meta)
            # the records digest iter_raw_rows checks on reading (judgeforge.data.digest; no
            # dataset info: it covers the rows alone)
            decoded = (raw for batch in table.to_batches()
                       for raw in _decode_batch(batch, json_columns, 0))
            meta[DIGEST_KEY] = rows_digest(info_part(None), decoded).encode()
            table = table.replace_schema_metadata(meta)
            _atomic_write(path, lambda tmp: pq.write_table(table, tmp))  # noqa: B023 (runs now)
            return
        except (pa.ArrowException, ValueError, TypeError, OverflowError) as exc:
            last = exc
    raise DataError(f"{path}: cannot write Parquet: {last}") from last
