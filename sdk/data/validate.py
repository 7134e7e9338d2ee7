"""Validation of raw rows into :class:`PointwiseRecord` values, with one error per bad field.

Every problem becomes a :class:`RowError` naming the row (0-based index; for JSONL also the
1-based line number) and the field at fault as a dotted path taken from pydantic's error
location, e.g. ``row 3 (line 4): output.label.helpfulness: 7 is outside the scale 0-4``.
Label ranges are checked against a :class:`DatasetInfo`, never against hard-coded bounds.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from judgeforge.data.schema import DEFAULT_SCALE, DatasetInfo, PointwiseRecord, Scale
from judgeforge.errors import ConfigError, DataError

__all__ = [
    "RawRow",
    "RowError",
    "ScaleSpec",
    "apply_scales",
    "check_labels",
    "coerce_score",
    "duplicate_ids",
    "format_errors",
    "infer_info",
    "lone_surrogate",
    "parse_record",
    "resolve_scales",
    "validate_one",
    "validate_rows",
    "validate_with_info",
]

#: ``"1-5"`` / ``Scale`` (every dimension), or ``{"dim": "1-5"}`` / ``["dim=1-5", "0-4"]``.
ScaleSpec = Scale | str | Mapping[str, Scale | str] | Iterable[str]

_MAX_REPR = 60


@dataclass(frozen=True)
class RowError:
    """One problem in one row. ``index`` is ``None`` for a problem with the whole file."""

    index: int | None
    line: int | None
    field: str | None
    message: str

    def __str__(self) -> str:
        if self.index is None:
            where = f"line {self.line}" if self.line is not None else "file"
        elif self.line is not None:
            where = f"row {self.index} (line {self.line})"
        else:
            where = f"row {self.index}"
        if self.field:
            return f"{where}: {self.field}: {self.message}"
        return f"{where}: {self.message}"


@dataclass(frozen=True)
class RawRow:
    """A row as read from a file: its dict, or why it could not be read (``error``)."""

    index: int
    line: int | None
    data: Any
    error: str | None = None


def format_errors(errors: list[RowError], *, limit: int = 20) -> str:
    """Up to ``limit`` errors, one a line, and a count of the rest."""
    lines = [str(e) for e in errors[:limit]]
    if len(errors) > limit:
        lines.append(f"... and {len(errors) - limit} more")
    return "\n".join(lines)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= _MAX_REPR else text[: _MAX_REPR - 3] + "..."


def _dotted(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if part == "[key]":
            out += "(key)"
        elif isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "(row)"


def _message(err: Mapping[str, Any]) -> str:
    kind = err.get("type", "")
    if kind == "missing":
        return "field required"
    if kind == "extra_forbidden":
        return "unknown field (allowed: input, output, data_source, id, extra_info)"
    msg = str(err.get("msg", "invalid"))
    if msg.startswith("Value error, "):
        return msg[len("Value error, "):]
    if msg.startswith("Input "):
        msg = msg[len("Input "):]
    return f"{msg[:1].lower()}{msg[1:]} (got {_short(err.get('input'))})"


def lone_surrogate(value: Any, path: str = "") -> str | None:
    """The dotted path of the first text in ``value`` (dicts and lists, any depth) that holds a
    lone surrogate such as ``"\\ud800"`` -- text no UTF-8 file, JSON request or tokenizer can
    carry -- else None. Iterative, so deep nesting cannot overflow the stack."""
    stack: list[tuple[str, Any]] = [(path, value)]
    while stack:
        where, item = stack.pop()
        if isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError as exc:
                return f"{where or '(value)'} (character {exc.start})"
        elif isinstance(item, Mapping):
            stack.extend((f"{where}.{k}" if where else str(k), v)
                         for k, v in reversed(list(item.items())))
        elif isinstance(item, (list, tuple)):
            stack.extend((f"{where}[{i}]", v) for i, v in reversed(list(enumerate(item))))
    return None


def parse_record(raw: RawRow) -> PointwiseRecord | list[RowError]:
    """Validate one raw row's structure (not its label ranges)."""
    if raw.error is not None:
        return [RowError(raw.index, raw.line, None, raw.error)]
    if not isinstance(raw.data, Mapping):
        kind = type(raw.data).__name__
        return [RowError(raw.index, raw.line, None, f"expected an object (a dict), got {kind}")]
    bad_text = lone_surrogate(dict(raw.data))
    if bad_text is not None:
        field, _, where = bad_text.partition(" ")
        return [RowError(raw.index, raw.line, field,
                         f"text holds a lone surrogate {where}: not valid Unicode text")]
    try:
        return PointwiseRecord.model_validate(dict(raw.data))
    except ValidationError as exc:
        return [RowError(raw.index, raw.line, _dotted(tuple(e["loc"])), _message(e))
                for e in exc.errors(include_url=False)]
    except RecursionError:
        return [RowError(raw.index, raw.line, None, "value nested too deeply")]


def check_labels(record: PointwiseRecord, info: DatasetInfo, *, index: int,
                 line: int | None = None, strict_dimensions: bool = True) -> list[RowError]:
    """Range-check every label against ``info``; unknown dimensions are errors if strict."""
    errors = []
    for dim, value in record.output.label.items():
        field = f"output.label.{dim}"
        scale = info.dimensions.get(dim)
        if scale is None:
            if strict_dimensions:
                known = ", ".join(info.dimensions) or "none"
                errors.append(RowError(index, line, field,
                                       f"unknown dimension (the dataset describes: {known})"))
                continue
            scale = DEFAULT_SCALE
        if value not in scale:
            errors.append(RowError(index, line, field, f"{value} is outside the scale {scale}"))
    return errors


def duplicate_ids(records: Iterable[PointwiseRecord]) -> list[RowError]:
    """One :class:`RowError` per row whose ``id`` an earlier row already has (rows are
    counted from 0 in ``records``' order). A results file keys rows by id, so ids must be
    unique for its results to stay with their rows."""
    first: dict[str, int] = {}
    errors: list[RowError] = []
    for index, record in enumerate(records):
        if record.id is None or record.id == "":
            continue
        if record.id in first:
            errors.append(RowError(index, None, "id",
                                   f"{_short(record.id)} repeats the id of row {first[record.id]}"))
        else:
            first[record.id] = index
    return errors


def coerce_score(value: Any) -> int:
    """An integer score from an int, an integral float (``3.0``) or numeric text (``"3"``).

    Raises ``ValueError`` (with a message fit for a RowError) for anything else: ``3.5``,
    ``True``, ``None``, ``"abc"``, NaN.
    """
    original = value
    if isinstance(value, bool) or value is None:
        raise DataError(f"{_short(value)} is not an integer score")
    if isinstance(value, int):
        return value
    if hasattr(value, "__index__") and not isinstance(value, float):  # numpy integers
        return int(value.__index__())
    if isinstance(value, str):
        text = value.strip()
        try:
            return int(text)
        except ValueError:
            try:
                value = float(text)
            except ValueError:
                raise DataError(f"{_short(value)} is not an integer score") from None
    if isinstance(value, float) and value.is_integer():
        return int(value)
    raise DataError(f"{_short(original)} is not an integer score")


def validate_one(raw: RawRow, info: DatasetInfo) -> PointwiseRecord | list[RowError]:
    """Structure and label ranges of one row against a known ``info`` (converters use this)."""
    result = parse_record(raw)
    if not isinstance(result, PointwiseRecord):
        return result
    errors = check_labels(result, info, index=raw.index, line=raw.line)
    return errors or result


def _as_scale(value: Scale | str) -> Scale:
    return value if isinstance(value, Scale) else Scale.parse(value)


def resolve_scales(spec: ScaleSpec | None) -> tuple[Scale | None, dict[str, Scale]]:
    """Split a scale spec into (scale for every dimension, per-dimension scales).

    ``"1-5"`` -> (1-5, {}); ``["helpfulness=0-4", "1-5"]`` -> (1-5, {"helpfulness": 0-4}).
    Raises ``ValueError`` on malformed text.
    """
    if spec is None:
        return None, {}
    if isinstance(spec, (Scale, str)):
        items: list[Any] = [spec]
    elif isinstance(spec, Mapping):
        return None, {str(k): _as_scale(v) for k, v in spec.items()}
    else:
        items = list(spec)
    default: Scale | None = None
    per_dim: dict[str, Scale] = {}
    for item in items:
        if isinstance(item, Scale):
            default = item
            continue
        dim, sep, text = str(item).partition("=")
        if sep:
            if not dim.strip():
                raise ConfigError(f"scale {item!r}: dimension name is empty")
            per_dim[dim.strip()] = Scale.parse(text)
        else:
            default = Scale.parse(dim)
    return default, per_dim


def apply_scales(info: DatasetInfo, spec: ScaleSpec | None) -> DatasetInfo:
    """``info`` with the scales of ``spec`` laid over it (a bare scale hits every dimension)."""
    default, per_dim = resolve_scales(spec)
    if default is None and not per_dim:
        return info
    dims = {d: default or s for d, s in info.dimensions.items()}
    dims.update(per_dim)
    return info.model_copy(update={"dimensions": dims})


def infer_info(records: Iterable[PointwiseRecord], *, scale: ScaleSpec | None = None,
               name: str = "dataset") -> DatasetInfo:
    """A DatasetInfo whose dimensions are the labels seen, in first-seen order.

    Each gets the scale given for it in ``scale``, else the bare scale in ``scale``, else 0-4.
    """
    default, per_dim = resolve_scales(scale)
    dims: dict[str, Scale] = {}
    sources: list[str] = []
    for rec in records:
        for dim in rec.output.label:
            if dim not in dims:
                dims[dim] = per_dim.get(dim, default or DEFAULT_SCALE)
        if rec.data_source not in sources:
            sources.append(rec.data_source)
    for dim, sc in per_dim.items():
        dims.setdefault(dim, sc)
    return DatasetInfo(name=name, dimensions=dims, source=", ".join(sources[:5]) or None)


def _as_raw(rows: Iterable[RawRow | Mapping[str, Any] | PointwiseRecord]) -> list[RawRow]:
    out = []
    for i, row in enumerate(rows):
        if isinstance(row, RawRow):
            out.append(row)
        elif isinstance(row, PointwiseRecord):
            out.append(RawRow(i, None, row.to_dict()))
        else:
            out.append(RawRow(i, None, row))
    return out


def validate_with_info(
    rows: Iterable[RawRow | Mapping[str, Any] | PointwiseRecord],
    info: DatasetInfo | None = None,
    *,
    scale: ScaleSpec | None = None,
    name: str = "dataset",
) -> tuple[list[PointwiseRecord], list[RowError], DatasetInfo]:
    """Like :func:`validate_rows`, also returning the DatasetInfo used (given or inferred)."""
    parsed: list[tuple[RawRow, PointwiseRecord]] = []
    errors: list[RowError] = []
    for raw in _as_raw(rows):
        result = parse_record(raw)
        if isinstance(result, PointwiseRecord):
            parsed.append((raw, result))
        else:
            errors.extend(result)
    strict = info is not None
    if info is None:
        info = infer_info((rec for _, rec in parsed), scale=scale, name=name)
    else:
        info = apply_scales(info, scale)
    records = []
    for raw, rec in parsed:
        errs = check_labels(rec, info, index=raw.index, line=raw.line, strict_dimensions=strict)
        if errs:
            errors.extend(errs)
        else:
            records.append(rec)
    errors.sort(key=lambda e: (-1 if e.index is None else e.index))
    return records, errors, info


def validate_rows(
    rows: Iterable[RawRow | Mapping[str, Any] | PointwiseRecord],
    info: DatasetInfo | None = None,
    *,
    scale: ScaleSpec | None = None,
) -> tuple[list[PointwiseRecord], list[RowError]]:
    """Validate ``rows``: (the good records in order, every error found).

    ``rows`` are :class:`RawRow` values (as :func:`judgeforge.data.io.iter_raw_rows` yields),
    plain dicts (numbered from 0) or records. With ``info`` every label dimension must be one it
    describes and lie within its scale; without it the dimensions are inferred from the rows
    (see :func:`infer_info`, ``scale`` sets their scales). A row with any error is left out of
    the records and named, with its field, in the errors.
    """
    records, errors, _ = validate_with_info(rows, info, scale=scale)
    return records, errors
