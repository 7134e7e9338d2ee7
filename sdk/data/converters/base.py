"""The converter framework: one row loop (:func:`convert_rows`) that every converter uses.

A converter turns each raw row into a record dict (raising :class:`RowProblem` for a row it
cannot convert); the loop fixes the ids, validates each record and names every bad row.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from judgeforge.data.io import LoadResult, iter_raw_rows
from judgeforge.data.keys import unique_ids
from judgeforge.data.schema import DatasetInfo, PointwiseRecord, Scale
from judgeforge.data.validate import RawRow, RowError, coerce_score, format_errors, validate_one
from judgeforge.errors import ConfigError, DataError

__all__ = ["Converted", "RowProblem", "convert_rows", "finish_conversion", "merge_results",
           "row_object", "scores_in_scale", "source_rows"]

log = logging.getLogger(__name__)


def finish_conversion(
    records: list[PointwiseRecord],
    errors: list[RowError],
    info: DatasetInfo,
    *,
    total: int,
    skip_invalid: bool = False,
    source: str = "input",
) -> LoadResult:
    """A converter's result: raise DataError naming every bad row unless ``skip_invalid``."""
    errors = sorted(errors, key=lambda e: (-1 if e.index is None else e.index))
    bad = len({e.index for e in errors})
    if errors and not skip_invalid:
        raise DataError(f"{source}: {bad} row(s) of {total} cannot be converted:\n"
                        f"{format_errors(errors)}", errors)
    if errors:
        log.warning("%s: skipped %d row(s) of %d that cannot be converted", source, bad, total)
    return LoadResult(records, info, errors, bad, None)


#: A raw row with the record dict a converter made of it.
Converted = tuple[RawRow, dict[str, Any]]


class RowProblem(ValueError):
    """A row a converter cannot turn into a record: the ``field`` at fault (or None) and why."""

    def __init__(self, field: str | None, message: str) -> None:
        self.field = field
        super().__init__(message)


def _number_repeated_ids(kept: list[Converted], errors: list[RowError]) -> list[Converted]:
    """Make the rows' ids unique with ``-2``, ``-3``... suffixes (:func:`convert_rows`' default)."""
    for (_, data), rid in zip(kept, unique_ids([d["id"] for _, d in kept])):
        data["id"] = rid
    return kept


def convert_rows(
    rows: Iterable[RawRow],
    convert: Callable[[RawRow], dict[str, Any]],
    info: DatasetInfo,
    *,
    assign_ids: Callable[[list[Converted], list[RowError]], list[Converted]] = (
        _number_repeated_ids),
    skip_invalid: bool = False,
    source: str = "input",
) -> LoadResult:
    """A converter's loop: ``convert`` each row to a record dict, fix the ids, validate, finish.

    ``convert`` raises :class:`RowProblem` for a row it cannot convert; ``assign_ids`` sets the
    converted rows' ids (it may report rows as errors and leave them out); each remaining dict
    is validated against ``info``. Every problem is a :class:`RowError`, handled by
    :func:`finish_conversion` (``total`` is the number of rows read).
    """
    kept: list[Converted] = []
    errors: list[RowError] = []
    total = 0
    for raw in rows:
        total += 1
        try:
            kept.append((raw, convert(raw)))
        except RowProblem as exc:
            errors.append(RowError(raw.index, raw.line, exc.field, str(exc)))
    records: list[PointwiseRecord] = []
    for raw, data in assign_ids(kept, errors):
        result = validate_one(RawRow(raw.index, raw.line, data), info)
        if isinstance(result, PointwiseRecord):
            records.append(result)
        else:
            errors.extend(result)
    return finish_conversion(records, errors, info, total=total, skip_invalid=skip_invalid,
                             source=source)


def merge_results(results: list[LoadResult]) -> LoadResult:
    """Several converted files of one dataset as one result: records in order, the first
    file's info, every error and skipped count (e.g. the four FeedbackQA test files)."""
    if not results:
        raise ConfigError("merge_results needs at least one result")
    return LoadResult([r for res in results for r in res.records], results[0].info,
                      [e for res in results for e in res.errors],
                      sum(res.skipped for res in results))


def source_rows(source: str | os.PathLike[str] | Iterable[Mapping[str, Any]]
                ) -> tuple[Iterable[RawRow], str, bool]:
    """A converter's input as raw rows: ``(rows, where, is_file)`` for a file (JSON list or
    JSONL, plain or ``.gz``) or already parsed rows (``where`` is then ``"rows"``)."""
    if isinstance(source, (str, os.PathLike)):
        return iter_raw_rows(source), str(source), True
    return (RawRow(i, None, r) for i, r in enumerate(source)), "rows", False


def scores_in_scale(values: Any, field: str, scale: Scale) -> list[int]:
    """A non-empty list of integer scores within ``scale``; RowProblem naming ``field[i]``."""
    if not isinstance(values, (list, tuple)) or not values:
        raise RowProblem(field, "expected a non-empty list of scores")
    scores = []
    for i, v in enumerate(values):
        try:
            score = coerce_score(v)
        except ValueError as exc:
            raise RowProblem(f"{field}[{i}]", str(exc)) from None
        if score not in scale:
            raise RowProblem(f"{field}[{i}]", f"{score} is outside the scale {scale}")
        scores.append(score)
    return scores


def row_object(raw: RawRow) -> Mapping[str, Any]:
    """The raw row's JSON object; RowProblem for a row that could not be read or is no object."""
    if raw.error is not None:
        raise RowProblem(None, raw.error)
    if not isinstance(raw.data, Mapping):
        raise RowProblem(None, f"expected an object, got {type(raw.data).__name__}")
    return raw.data
