"""Deterministic train/test split, stratified by one label dimension.

The same records, ``seed`` and ``test_size`` always give the same split (scikit-learn's
``train_test_split`` with a fixed ``random_state``). Both parts keep the input order.
Labels too rare to stratify on (one member) are pooled together; if stratifying is still
impossible (e.g. fewer test rows than label values) the split falls back to an unstratified
shuffle with the same seed, and says so in the log.
"""

from __future__ import annotations

import logging
import os
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from judgeforge.data.io import detect_format, load_records, write_records
from judgeforge.data.schema import DatasetInfo, PointwiseRecord
from judgeforge.errors import ConfigError, DataError

__all__ = ["split_file", "stratified_split", "strata"]

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
) -> tuple[Path, Path]:
    """Split a pointwise file into ``out_dir/train.<ext>`` and ``out_dir/test.<ext>``.

    Both files carry the source's DatasetInfo; ``fmt`` (parquet/jsonl) defaults to the
    source's format. Returns the two paths.
    """
    loaded = load_records(path, info=info, skip_invalid=skip_invalid)
    if dimension is not None and dimension not in loaded.info.dimensions:
        raise ConfigError(f"unknown dimension {dimension!r}; the dataset has "
                          f"{', '.join(loaded.info.dimensions)}")
    kind = fmt or detect_format(path)
    if kind not in ("parquet", "jsonl"):
        kind = "parquet"
    train, test = stratified_split(loaded.records, test_size=test_size, seed=seed,
                                   dimension=dimension or next(iter(loaded.info.dimensions), None))
    out = Path(out_dir)
    return (write_records(out / f"train.{kind}", train, loaded.info),
            write_records(out / f"test.{kind}", test, loaded.info))
