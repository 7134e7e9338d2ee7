"""The pairwise converters' row loop (:func:`convert_pairwise_rows`) and what they share.

Like :func:`judgeforge.data.converters.base.convert_rows` for pointwise records: each raw row
becomes a record dict (or a :class:`~judgeforge.data.converters.base.RowProblem` naming the
field), repeated ids get ``-2``, ``-3``... suffixes, every dict is validated as a
:class:`~judgeforge.data.pairwise.PairwiseRecord`, and a bad row raises a DataError naming it
unless ``skip_invalid`` (then it is left out and counted). Sides of chosen/rejected pairs are
placed by :func:`chosen_side`, a seeded coin per pair, so "a always wins" cannot be learnt.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from judgeforge.data.converters.base import RowProblem
from judgeforge.data.keys import unique_ids
from judgeforge.data.pairwise import PairwiseRecord, Verdict, parse_pairwise
from judgeforge.data.validate import RawRow, RowError, format_errors
from judgeforge.errors import DataError

__all__ = ["PairwiseResult", "chosen_side", "convert_pairwise_rows", "place_pair"]

log = logging.getLogger(__name__)


@dataclass
class PairwiseResult:
    """What a pairwise converter made: the records, the rows it left out and why, and notes
    (e.g. how many values it coerced) for the CLI to print."""

    records: list[PairwiseRecord]
    errors: list[RowError] = field(default_factory=list)
    skipped: int = 0
    total: int = 0
    notes: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.records)

    def __iter__(self) -> Iterator[PairwiseRecord]:
        return iter(self.records)


def chosen_side(seed: int, key: str) -> Verdict:
    """Where the chosen response of pair ``key`` goes: ``"a"`` or ``"b"``, a fair coin seeded by
    ``seed`` and the pair's key (the same pair lands on the same side whatever the row order)."""
    return "a" if random.Random(f"{seed}:{key}").random() < 0.5 else "b"


def place_pair(chosen: str, rejected: str, seed: int, key: str) -> dict[str, Any]:
    """``response_a``, ``response_b`` and ``preference`` with the chosen side from
    :func:`chosen_side`."""
    if chosen_side(seed, key) == "a":
        return {"response_a": chosen, "response_b": rejected, "preference": "a"}
    return {"response_a": rejected, "response_b": chosen, "preference": "b"}


def convert_pairwise_rows(
    rows: Iterable[RawRow],
    convert: Callable[[RawRow], dict[str, Any]],
    *,
    skip_invalid: bool = False,
    source: str = "input",
    notes: list[str] | None = None,
) -> PairwiseResult:
    """``convert`` each raw row to a pairwise record dict, make ids unique, validate, finish.

    Raises DataError naming every row that cannot be converted unless ``skip_invalid``.
    """
    kept: list[tuple[RawRow, dict[str, Any]]] = []
    errors: list[RowError] = []
    total = 0
    for raw in rows:
        total += 1
        try:
            kept.append((raw, convert(raw)))
        except RowProblem as exc:
            errors.append(RowError(raw.index, raw.line, exc.field, str(exc)))
    ids = unique_ids([str(d.get("id") or f"row-{raw.index}") for raw, d in kept])
    records: list[PairwiseRecord] = []
    for (raw, data), rid in zip(kept, ids):
        data["id"] = rid
        result = parse_pairwise(RawRow(raw.index, raw.line, data))
        if isinstance(result, PairwiseRecord):
            records.append(result)
        else:
            errors.extend(result)
    errors.sort(key=lambda e: -1 if e.index is None else e.index)
    bad = len({e.index for e in errors})
    if errors and not skip_invalid:
        raise DataError(f"{source}: {bad} row(s) of {total} cannot be converted:\n"
                        f"{format_errors(errors)}", errors)
    if errors:
        log.warning("%s: skipped %d row(s) of %d that cannot be converted", source, bad, total)
    return PairwiseResult(records, errors, bad, total, list(notes or []))
