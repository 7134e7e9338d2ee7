"""Pairwise records derived from pointwise labels: two responses to the same query with different
labels on one dimension (the way Prometheus 2 built its Preference Collection).

Records are grouped by the split's own rule, :func:`judgeforge.data.split.group_of` (the query
text, or ``extra_info[group_key]``), and inside a group by their exact input messages: only
responses to the same query are paired. Every two responses in such a set whose labels on
``dimension`` differ by at least ``min_gap`` become one pair (equal labels make no pair); the
higher label is the preferred response. Its side (``a`` or ``b``) is a fair coin seeded with
``seed`` and the two records' keys, so "a always wins" cannot be learnt. ``max_pairs_per_query``
keeps the pairs with the largest label gaps (ties broken by the seeded order).

Each pair keeps its group in ``extra_info["group"]`` (and the two labels, the dimension and the
source ids), so a pairwise split by ``group_key="group"`` keeps the pointwise split's groups, and
pairs derived from a split's train file never hold a test query: both responses of a pair come
from one group, and a group lies wholly on one side of the split. The rubric and reference come
from the records' ``extra_info["rubric"]`` / ``["reference"]`` when the two responses agree on
them.
"""

from __future__ import annotations

import os
import random
from collections.abc import Sequence
from itertools import combinations
from typing import Any

from judgeforge.data.converters.pairwise_base import (
    PairwiseResult,
    chosen_side,
    convert_pairwise_rows,
)
from judgeforge.data.keys import canonical_json
from judgeforge.data.schema import PointwiseRecord
from judgeforge.data.validate import RawRow
from judgeforge.errors import ConfigError

__all__ = ["derive_pairs", "pairs_from_pointwise_file"]


def _shared(a: PointwiseRecord, b: PointwiseRecord, key: str) -> str | None:
    va, vb = (a.extra_info or {}).get(key), (b.extra_info or {}).get(key)
    return va if isinstance(va, str) and va == vb else None


def _pair(a: PointwiseRecord, b: PointwiseRecord, keys: tuple[str, str], group: str,
          dim: str, seed: int) -> dict[str, Any]:
    la, lb = a.label[dim], b.label[dim]
    better, worse = ((a, b), (b, a))[lb > la]
    key_better, key_worse = (keys, keys[::-1])[lb > la]
    side = chosen_side(seed, f"{key_better}|{key_worse}")
    first, second = (better, worse) if side == "a" else (worse, better)
    kfirst, ksecond = (key_better, key_worse) if side == "a" else (key_worse, key_better)
    record: dict[str, Any] = {
        "input": [m.model_dump() for m in a.input],
        "response_a": first.response, "response_b": second.response, "preference": side,
        "data_source": a.data_source, "id": f"{kfirst}~{ksecond}",
        "extra_info": {"group": group, "dimension": dim,
                       "labels": [first.label[dim], second.label[dim]],
                       "source_ids": [kfirst, ksecond]}}
    for field in ("rubric", "reference"):
        value = _shared(a, b, field)
        if value is not None:
            record[field] = value
    return record


def derive_pairs(
    records: Sequence[PointwiseRecord],
    *,
    dimension: str | None = None,
    group_key: str | None = None,
    min_gap: int = 1,
    max_pairs_per_query: int | None = None,
    seed: int = 0,
    source: str = "records",
) -> PairwiseResult:
    """Pairs of differently labelled responses to the same query (see the module doc).

    ``dimension`` defaults to the first record's first label. A record without it takes part
    in no pair (counted in the notes).
    """
    from judgeforge.data.split import group_of

    if min_gap < 1:
        raise ConfigError(f"min_gap must be at least 1 (equal labels make no pair), got {min_gap}")
    if max_pairs_per_query is not None and max_pairs_per_query < 1:
        raise ConfigError(f"max_pairs_per_query must be at least 1, got {max_pairs_per_query}")
    records = list(records)
    dim = dimension or (next(iter(records[0].label)) if records else "")
    sets: dict[tuple[str, str], list[int]] = {}
    unlabelled = 0
    for i, rec in enumerate(records):
        if dim not in rec.label:
            unlabelled += 1
            continue
        group = group_of(rec, group_key, index=i)
        sets.setdefault((group, canonical_json([m.model_dump() for m in rec.input])),
                        []).append(i)
    rows: list[dict[str, Any]] = []
    for (group, _), members in sets.items():
        candidates = [(i, j) for i, j in combinations(members, 2)
                      if abs(records[i].label[dim] - records[j].label[dim]) >= min_gap]
        if max_pairs_per_query is not None and len(candidates) > max_pairs_per_query:
            random.Random(f"{seed}:{group}").shuffle(candidates)
            candidates.sort(key=lambda p: -abs(records[p[0]].label[dim]
                                               - records[p[1]].label[dim]))
            candidates = sorted(candidates[:max_pairs_per_query])
        for i, j in candidates:
            keys = (records[i].id or f"row-{i}", records[j].id or f"row-{j}")
            rows.append(_pair(records[i], records[j], keys, group, dim, seed))
    result = convert_pairwise_rows((RawRow(n, None, r) for n, r in enumerate(rows)),
                                   lambda raw: raw.data, source=source)
    result.notes.append(
        f"{len(result.records)} pair(s) from {len(records)} record(s) in {len(sets)} "
        f"query set(s) on {dim!r} (label gap >= {min_gap}"
        + (f", at most {max_pairs_per_query} per query" if max_pairs_per_query else "")
        + f"; preferred side a {sum(r.preference == 'a' for r in result)}, "
          f"b {sum(r.preference == 'b' for r in result)}, seed {seed})"
        + (f"; {unlabelled} record(s) without {dim!r} left out" if unlabelled else ""))
    return result


def pairs_from_pointwise_file(
    path: str | os.PathLike[str],
    *,
    dimension: str | None = None,
    group_key: str | None = None,
    min_gap: int = 1,
    max_pairs_per_query: int | None = None,
    seed: int = 0,
    skip_invalid: bool = False,
) -> PairwiseResult:
    """:func:`derive_pairs` over a pointwise Parquet/JSONL file (e.g. a split's ``train``)."""
    from judgeforge.data.io import load_records

    loaded = load_records(path, skip_invalid=skip_invalid)
    if dimension is not None and dimension not in loaded.info.dimensions:
        raise ConfigError(f"unknown dimension {dimension!r}; the file has "
                          f"{', '.join(loaded.info.dimensions)}")
    return derive_pairs(loaded.records, dimension=dimension or loaded.info.dimension_names[0],
                        group_key=group_key, min_gap=min_gap,
                        max_pairs_per_query=max_pairs_per_query, seed=seed, source=str(path))


