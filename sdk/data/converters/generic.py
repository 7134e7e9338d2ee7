"""Any flat table (JSONL, JSON list, CSV, Parquet) -> pointwise records, by a column mapping.

    judgeforge data convert generic answers.csv --out data.parquet \\
        --map query=prompt --map response=answer --label helpfulness=score --scale 0-4

Mapped roles: ``query`` and ``response`` (required), ``system``, ``id``, ``data_source``,
``rubric``, ``reference`` (optional); ``--label DIM=COLUMN`` (or just ``COLUMN``, naming the
dimension after it) for each label. A query cell may also hold a list of chat messages. Labels
may be ints, integral floats or numeric text (CSV); each must lie within its scale.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from judgeforge.data.converters.base import RowProblem, convert_rows, finish_conversion, row_object
from judgeforge.data.io import LoadResult, iter_raw_rows
from judgeforge.data.keys import content_hash, unique_ids
from judgeforge.data.schema import DEFAULT_SCALE, DatasetInfo
from judgeforge.data.validate import (
    RawRow,
    RowError,
    ScaleSpec,
    coerce_score,
    resolve_scales,
)
from judgeforge.errors import ConfigError

__all__ = ["ROLES", "ColumnMapping", "convert_generic"]

#: Roles a column can be mapped to with ``--map ROLE=COLUMN``.
ROLES = ("query", "response", "system", "id", "data_source", "rubric", "reference")


@dataclass
class ColumnMapping:
    """Which source column plays which part of a record."""

    query: str
    response: str
    labels: dict[str, str]  # dimension -> column
    system: str | None = None
    id: str | None = None
    data_source: str | None = None
    rubric: str | None = None
    reference: str | None = None
    extra: tuple[str, ...] = field(default_factory=tuple)  # copied into extra_info

    def __post_init__(self) -> None:
        if not self.labels:
            raise ConfigError("map at least one label column (--label DIM=COLUMN)")

    @classmethod
    def from_specs(cls, maps: Iterable[str], labels: Iterable[str],
                   extra: Iterable[str] = ()) -> ColumnMapping:
        """From CLI specs: ``["query=prompt", ...]`` and ``["helpfulness=score", "stars"]``."""
        roles: dict[str, str] = {}
        for spec in maps:
            role, sep, column = spec.partition("=")
            role, column = role.strip(), column.strip()
            if not sep or not column:
                raise ConfigError(f"--map {spec!r}: expected ROLE=COLUMN")
            if role not in ROLES:
                raise ConfigError(f"--map {spec!r}: unknown role {role!r} ({', '.join(ROLES)})")
            roles[role] = column
        for role in ("query", "response"):
            if role not in roles:
                raise ConfigError(f"map the {role} column: --map {role}=COLUMN")
        dims: dict[str, str] = {}
        for spec in labels:
            dim, sep, column = spec.partition("=")
            dim, column = dim.strip(), (column.strip() if sep else dim.strip())
            if not dim or not column:
                raise ConfigError(f"--label {spec!r}: expected DIMENSION=COLUMN or COLUMN")
            dims[dim] = column
        return cls(labels=dims, extra=tuple(extra), **roles)

    def columns(self) -> dict[str, str]:
        """Column -> what it is mapped to, for messages."""
        out = {getattr(self, r): r for r in ROLES if getattr(self, r)}
        out.update({c: f"label {d}" for d, c in self.labels.items()})
        out.update({c: "extra" for c in self.extra})
        return out


def _text(row: Mapping[str, Any], column: str, role: str) -> str:
    if column not in row:
        raise RowProblem(column, f"column missing (mapped to {role})")
    value = row[column]
    if isinstance(value, str):
        return value
    raise RowProblem(column, f"expected text for {role}, got {type(value).__name__}")


def _messages(row: Mapping[str, Any], mapping: ColumnMapping) -> list[Any]:
    query = row.get(mapping.query)
    if isinstance(query, list):  # already chat messages; validated by the record model
        messages = list(query)
    else:
        messages = [{"role": "user", "content": _text(row, mapping.query, "query")}]
    if mapping.system:
        system = row.get(mapping.system)
        if system is not None and not isinstance(system, str):
            raise RowProblem(mapping.system, f"expected text for system, got "
                                             f"{type(system).__name__}")
        if system:
            messages.insert(0, {"role": "system", "content": system})
    return messages


def _convert_row(raw: RawRow, mapping: ColumnMapping, info: DatasetInfo,
                 default_source: str) -> dict[str, Any]:
    row = row_object(raw)
    messages = _messages(row, mapping)
    response = _text(row, mapping.response, "response")
    label = {}
    for dim, column in mapping.labels.items():
        if column not in row:
            raise RowProblem(column, f"column missing (mapped to label {dim})")
        try:
            score = coerce_score(row[column])
        except ValueError as exc:
            raise RowProblem(column, f"{exc} (label {dim})") from None
        if score not in info.scale(dim):
            raise RowProblem(column, f"{score} is outside the scale {info.scale(dim)} "
                                     f"(label {dim})")
        label[dim] = score
    source = default_source
    if mapping.data_source:
        source = _text(row, mapping.data_source, "data_source")
    rid = row.get(mapping.id) if mapping.id else None
    extra = {}
    for key, col in (("rubric", mapping.rubric), ("reference", mapping.reference)):
        if col and row.get(col) is not None:
            extra[key] = row[col]
    extra.update({c: row[c] for c in mapping.extra if row.get(c) is not None})
    return {"input": messages, "output": {"content": response, "label": label},
            "data_source": source,
            "id": None if rid is None or rid == "" else str(rid),
            "extra_info": extra or None}


def _missing_columns(raws: list[RawRow], mapping: ColumnMapping) -> list[str]:
    rows = [r.data for r in raws if isinstance(r.data, Mapping)]
    if not rows:
        return []
    present = set().union(*(r.keys() for r in rows))
    return [c for c in mapping.columns() if c not in present]


def _assign_ids(kept: list[tuple[RawRow, dict[str, Any]]], errors: list[RowError]) -> list[
        tuple[RawRow, dict[str, Any]]]:
    """Hash ids for rows without one; a repeated given id is an error for the later rows."""
    first: dict[str, int] = {}
    out = []
    for raw, data in kept:
        given = data["id"]
        if given is None:
            digest = content_hash(data["input"], data["output"]["content"], length=16)
            data["id"] = f"{data['data_source']}-{digest}"
        elif given in first:
            errors.append(RowError(raw.index, raw.line, "id",
                                   f"duplicate id {given!r} (first at row {first[given]})"))
            continue
        else:
            first[given] = raw.index
        out.append((raw, data))
    generated = [d["id"] for _, d in out]
    for (_, data), rid in zip(out, unique_ids(generated)):
        data["id"] = rid
    return out


def convert_generic(
    source: str | os.PathLike[str] | Iterable[Mapping[str, Any]],
    mapping: ColumnMapping,
    *,
    scale: ScaleSpec | None = None,
    data_source: str | None = None,
    name: str | None = None,
    skip_invalid: bool = False,
    fmt: str | None = None,
) -> LoadResult:
    """Convert a flat table to records through ``mapping``.

    ``scale``: ``"0-4"`` for every label, or per dimension (``["helpfulness=0-4"]``); default
    0-4. ``data_source`` (when no column is mapped) defaults to the file's stem. Raises
    DataError naming every row that cannot be converted unless ``skip_invalid``; a mapped
    column that no row has is a file-level error.
    """
    try:
        default, per_dim = resolve_scales(scale)
    except ValueError as exc:
        raise ConfigError(f"invalid scale: {exc}") from exc
    if isinstance(source, (str, os.PathLike)):
        raws = list(iter_raw_rows(source, fmt=fmt))
        where, stem = str(source), Path(source).stem
    else:
        raws = [RawRow(i, None, r) for i, r in enumerate(source)]
        where, stem = "rows", "dataset"
    dims = {d: per_dim.get(d, default or DEFAULT_SCALE) for d in mapping.labels}
    info = DatasetInfo(name=name or stem, dimensions=dims, source=where)
    missing = _missing_columns(raws, mapping)
    if missing:
        errors = [RowError(None, None, c, f"column not found (mapped to {mapping.columns()[c]})")
                  for c in missing]
        return finish_conversion([], errors, info, total=len(raws), skip_invalid=False,
                                 source=where)
    return convert_rows(raws, lambda raw: _convert_row(raw, mapping, info, data_source or stem),
                        info, assign_ids=_assign_ids, skip_invalid=skip_invalid, source=where)
