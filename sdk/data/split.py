"""Deterministic train/test splits: group-aware (the default everywhere) or row by row.

:func:`group_split` keeps every group of records on one side: a group is the value of
``extra_info[group_key]`` when a key is given, else the text of the record's user turns (its
query), so the four Prometheus responses to one question never straddle train and test. It is
stratified by label as far as whole groups allow.

:func:`stratified_split` splits row by row (scikit-learn's ``train_test_split`` with a fixed
``random_state``); use it only for data whose rows share no query.

The same records, ``seed`` and ``test_size`` always give the same split; both parts keep the
input order. Labels too rare to stratify on (one member) are pooled together.
"""

from __future__ import annotations

import json
import logging
import os
import random
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from judgeforge.data.io import detect_format, load_records, write_records
from judgeforge.data.schema import DatasetInfo, PointwiseRecord
from judgeforge.errors import ConfigError, DataError

__all__ = ["group_of", "group_split", "shared_groups", "split_file", "stratified_split", "strata"]

log = logging.getLogger(__name__)

_MISSING = "<missing>"
_RARE = "<rare>"


def strata(records: Sequence[PointwiseRecord], dimension: str) -> list[str]:
    """One stratum name per record: its label on ``dimension``, rare values pooled."""
    values = [str(r.output.label.get(dimension, _MISSING)) for r in records]
    counts = Counter(values)
    pooled = [v if counts[v] >= 2 else _RARE for v in values]
    rare = pooled.count(_RARE)
    if rare == 1:  # a lone rare row joins the most common stratum
        common = Counter(p for p in pooled if p != _RARE).most_common(1)
        if common:
            pooled = [common[0][0] if p == _RARE else p for p in pooled]
    return pooled


def _check_size(n: int, test_size: float | int) -> None:
    if n < 2:
        raise DataError(f"need at least 2 records to split, got {n}")
    if isinstance(test_size, bool) or not isinstance(test_size, (int, float)):
        raise ConfigError(f"test_size must be a fraction or a count, got {test_size!r}")
    if isinstance(test_size, float) and not 0.0 < test_size < 1.0:
        raise ConfigError(f"a fractional test_size must lie strictly between 0 and 1, "
                          f"got {test_size}")
    if isinstance(test_size, int) and not 0 < test_size < n:
        raise ConfigError(f"test_size {test_size} must be between 1 and {n - 1} rows")


def group_of(record: PointwiseRecord, group_key: str | None = None, *, index: int = 0) -> str:
    """The group of ``record``: ``extra_info[group_key]`` (as text), else its user turns' text.

    ``index`` only names the row in the error raised when ``group_key`` is missing.
    """
    if group_key is None:
        return "\x1e".join(m.content for m in record.input if m.role == "user")
    extra = record.extra_info or {}
    if group_key not in extra:
        raise DataError(f"row {index}{f' (id {record.id})' if record.id else ''}: "
                        f"extra_info has no group key {group_key!r}")
    value = extra[group_key]
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)


def shared_groups(a: Sequence[PointwiseRecord], b: Sequence[PointwiseRecord],
                  group_key: str | None = None) -> set[str]:
    """The groups (see :func:`group_of`) that occur in both ``a`` and ``b`` (empty: no leak)."""
    return ({group_of(r, group_key, index=i) for i, r in enumerate(a)}
            & {group_of(r, group_key, index=i) for i, r in enumerate(b)})


def _test_count(n: int, test_size: float | int) -> int:
    if isinstance(test_size, float):
        return min(n - 1, max(1, round(test_size * n)))
    return test_size


def group_split(
    records: Sequence[PointwiseRecord],
    *,
    test_size: float | int,
    seed: int = 0,
    group_key: str | None = None,
    stratify: bool = True,
    dimension: str | None = None,
) -> tuple[list[PointwiseRecord], list[PointwiseRecord]]:
    """Split ``records`` into (train, test) so that no group has rows on both sides.

    ``test_size`` is a fraction (0-1) or a row count; the test part gets as close to it as
    whole groups allow. With ``stratify`` the label proportions on ``dimension`` (default: the
    first dimension of the first record) are kept as far as groups allow: groups are visited in
    a seeded random order (groups with the rarest labels first, then larger ones) and one joins
    the test part when that brings the test part's per-label counts (and its size) closer to
    their targets; further passes move single groups in or out while that helps. Deterministic
    for a given ``seed``; both parts keep the input order.
    """
    records = list(records)
    _check_size(len(records), test_size)
    n = len(records)
    members: dict[str, list[int]] = {}
    for i, r in enumerate(records):
        members.setdefault(group_of(r, group_key, index=i), []).append(i)
    if len(members) < 2:
        raise DataError(f"need at least 2 groups to split, got {len(members)} "
                        f"(group key: {group_key or 'the query text'})")
    n_test = _test_count(n, test_size)
    if stratify:
        dim = dimension or next(iter(records[0].output.label))
        labels = strata(records, dim)
    else:
        labels = ["*"] * n
    whole = Counter(labels)
    target = {lab: c * n_test / n for lab, c in whole.items()}

    def cost(counts: Counter[str], size: int) -> float:
        return sum(abs(counts[lab] - t) for lab, t in target.items()) + 0.5 * abs(size - n_test)

    order = list(members)
    random.Random(seed).shuffle(order)
    # Groups holding the rarest labels first (they are the hardest to place), then larger
    # groups first; the sort is stable, so ties keep the seeded order.
    order.sort(key=lambda g: (min(whole[labels[i]] for i in members[g]), -len(members[g])))
    group_counts = {g: Counter(labels[i] for i in members[g]) for g in order}
    counts: Counter[str] = Counter()
    size = 0
    chosen: set[str] = set()
    for _ in range(20):  # greedy first pass, then passes that move single groups either way
        moved = False
        for g in order:
            sign = -1 if g in chosen else 1
            new = counts + group_counts[g] if sign > 0 else counts - group_counts[g]
            new_size = size + sign * len(members[g])
            if 0 < new_size < n and cost(new, new_size) < cost(counts, size) - 1e-9:
                counts, size, moved = new, new_size, True
                chosen.symmetric_difference_update({g})
        if not moved:
            break
    if not chosen:  # every group is larger than the wanted test part: take the smallest
        chosen = {min(order, key=lambda g: len(members[g]))}
    test_idx = sorted(i for g in chosen for i in members[g])
    test_set = set(test_idx)
    log.info("group split: %d groups, %d test rows in %d groups (asked %d), %d train rows",
             len(order), len(test_idx), len(chosen), n_test, n - len(test_idx))
    return ([r for i, r in enumerate(records) if i not in test_set],
            [records[i] for i in test_idx])


def stratified_split(
    records: Sequence[PointwiseRecord],
    *,
    test_size: float | int = 0.2,
    seed: int = 0,
    dimension: str | None = None,
) -> tuple[list[PointwiseRecord], list[PointwiseRecord]]:
    """Split ``records`` into (train, test), stratified by the label on ``dimension``.

    ``test_size`` is a fraction (0-1) or a row count; ``dimension`` defaults to the first
    dimension of the first record. Deterministic for a given ``seed``; order is preserved.
    """
    from sklearn.model_selection import train_test_split

    records = list(records)
    _check_size(len(records), test_size)
    dim = dimension or next(iter(records[0].output.label))
    indices = list(range(len(records)))
    labels = strata(records, dim)
    try:
        train_idx, test_idx = train_test_split(indices, test_size=test_size, random_state=seed,
                                               stratify=labels)
    except ValueError as exc:
        log.warning("cannot stratify by %r (%s); splitting without stratification", dim, exc)
        train_idx, test_idx = train_test_split(indices, test_size=test_size, random_state=seed)
    return [records[i] for i in sorted(train_idx)], [records[i] for i in sorted(test_idx)]


def split_file(
    path: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    *,
    test_size: float | int = 0.2,
    seed: int = 0,
    dimension: str | None = None,
    fmt: str | None = None,
    info: DatasetInfo | None = None,
    skip_invalid: bool = False,
    group_key: str | None = None,
    grouped: bool = True,
) -> tuple[Path, Path]:
    """Split a pointwise file into ``out_dir/train.<ext>`` and ``out_dir/test.<ext>``.

    Group-aware by default (:func:`group_split`: by ``extra_info[group_key]``, else by query
    text); ``grouped=False`` splits row by row. Both files carry the source's DatasetInfo;
    ``fmt`` (parquet/jsonl) defaults to the source's format. Returns the two paths.
    """
    loaded = load_records(path, info=info, skip_invalid=skip_invalid)
    if dimension is not None and dimension not in loaded.info.dimensions:
        raise ConfigError(f"unknown dimension {dimension!r}; the dataset has "
                          f"{', '.join(loaded.info.dimensions)}")
    kind = fmt or detect_format(path)
    if kind not in ("parquet", "jsonl"):
        kind = "parquet"
    dim = dimension or next(iter(loaded.info.dimensions), None)
    if grouped:
        train, test = group_split(loaded.records, test_size=test_size, seed=seed,
                                  group_key=group_key, dimension=dim)
    else:
        train, test = stratified_split(loaded.records, test_size=test_size, seed=seed,
                                       dimension=dim)
    out = Path(out_dir)
    return (write_records(out / f"train.{kind}", train, loaded.info),
            write_records(out / f"test.{kind}", test, loaded.info))
