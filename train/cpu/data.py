"""Records -> the rows the CPU backend trains and evaluates on.

Rows come from :func:`judgeforge.train.rows.build_rows` (shared with verl's dataset class) in
the CPU layout (:meth:`~judgeforge.train.rows.TrainRow.cpu_row`): ``prompt`` (the judge
messages, :meth:`PromptTemplate.record_messages`), ``completion`` (the SFT target
``<score>y</score>``), ``label`` (int), ``ground_truth`` (the label, what ``compute_score``
reads), ``data_source`` and ``extra_info`` (``index``, ``id`` and the typed
``judgeforge`` :class:`~judgeforge.train.rows.RowSpec`), so TRL hands the same columns to the
reward function that verl hands to ``compute_score``.

The CPU backend trains one dimension at a time: ``data.dimension`` or the data's only one.
"""

from __future__ import annotations

import logging
import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from judgeforge.card import JudgeCard, ScoringSettings, data_fingerprint
from judgeforge.data.schema import DatasetInfo, PointwiseRecord, Scale
from judgeforge.errors import ConfigError
from judgeforge.prompt import PromptTemplate

from ..config import TrainConfig
from ..rows import balance, build_rows, training_template

__all__ = ["Dataset", "load_dataset", "make_rows", "template_for", "balance", "holdout"]

log = logging.getLogger(__name__)


@dataclass
class Dataset:
    """Training and validation rows for one dimension on one scale."""

    train: list[dict[str, Any]]
    val: list[dict[str, Any]]
    dimension: str
    scale: Scale
    template: PromptTemplate
    fingerprint: str | None = None  # of the training records (judgeforge.card.data_fingerprint)

    def card(self, base_model: str | None, **fields: Any) -> JudgeCard:
        """The judge card for a model trained on these rows: the template, the default
        scoring (``expected`` on scales within 0-9, else ``sample``), the base model and the
        data fingerprint; ``fields`` (``calibration``, ``metrics``) are added."""
        mode = "expected" if 0 <= self.scale.min and self.scale.max <= 9 else "sample"
        return JudgeCard.from_template(self.template, scoring=ScoringSettings(mode=mode),
                                       base_model=base_model,
                                       data_fingerprint=self.fingerprint, **fields)

    def labels(self, split: str = "train") -> list[int]:
        return [r["label"] for r in getattr(self, split)]

    def median_label(self) -> int:
        """The training labels' median (the best constant predictor for MAE)."""
        labels = sorted(self.labels("train"))
        return labels[(len(labels) - 1) // 2]


def pick_dimension(cfg: TrainConfig, info: DatasetInfo) -> tuple[str, Scale]:
    """The dimension and scale the CPU backend trains on."""
    names = info.dimension_names
    dim = cfg.data.dimension
    if dim is None:
        if len(names) != 1:
            raise ConfigError(f"the data has dimensions {names}; the CPU backend trains one: "
                              "set data.dimension")
        dim = names[0]
    scale = Scale.parse(cfg.data.scale) if cfg.data.scale else info.scale(dim)
    return dim, scale


def template_for(cfg: TrainConfig, dimension: str, scale: Scale) -> PromptTemplate:
    """The prompt template the CPU backend trains ``dimension`` with (``cfg.prompt``)."""
    return training_template({dimension: scale}, cfg.prompt.model_dump())


def make_rows(records: Sequence[PointwiseRecord], cfg: TrainConfig, dimension: str,
              scale: Scale, what: str = "data") -> list[dict[str, Any]]:
    """Prompt/label rows for ``dimension``; a record without that label or with one outside
    ``scale`` is a row error (:class:`~judgeforge.errors.DataError`), never dropped."""
    rows = build_rows(records, template_for(cfg, dimension, scale), reward=cfg.reward.name,
                      k=cfg.reward.k, what=what)
    return [r.cpu_row() for r in rows]


def holdout(records: Sequence[PointwiseRecord], n_val: int, seed: int, dimension: str,
            group_key: str | None = None) -> tuple[list[PointwiseRecord], list[PointwiseRecord]]:
    """(train, val) with about ``n_val`` validation records, stratified by label on
    ``dimension``; no group (same query, or same ``extra_info[group_key]``) crosses."""
    from judgeforge.data.split import group_split

    n_val = max(1, min(n_val, len(records) // 2))
    return group_split(list(records), test_size=n_val, seed=seed, group_key=group_key,
                       dimension=dimension)


def _load(paths: Sequence[str], cfg: TrainConfig) -> tuple[list[PointwiseRecord], DatasetInfo]:
    from judgeforge.data.io import load_records

    records: list[PointwiseRecord] = []
    info: DatasetInfo | None = None
    for path in paths:
        res = load_records(path, skip_invalid=True, scale=cfg.data.scale)
        if res.skipped:
            log.warning("%s: %d invalid row(s) skipped", path, res.skipped)
        records += res.records
        info = info or res.info
    if info is None:
        raise ConfigError("no data: set data.train_files")
    return records, info


def load_dataset(cfg: TrainConfig, train_records: Sequence[PointwiseRecord] | None = None,
                 val_records: Sequence[PointwiseRecord] | None = None,
                 info: DatasetInfo | None = None) -> Dataset:
    """Rows from ``cfg.data`` files, or from records passed in memory (tests, benchmarks).

    Without validation data, about ``cpu.eval_rows`` training records are held out (stratified,
    whole groups: :func:`holdout`).
    """
    if train_records is None:
        if not cfg.data.train_files:
            raise ConfigError("no training data: set data.train_files")
        train_records, info = _load(cfg.data.train_files, cfg)
        if cfg.data.val_files and val_records is None:
            val_records, _ = _load(cfg.data.val_files, cfg)
    if info is None:
        dims = sorted({d for r in train_records for d in r.label})
        info = DatasetInfo(dimensions={d: Scale.parse(cfg.data.scale) if cfg.data.scale
                                       else Scale() for d in dims})
    dim, scale = pick_dimension(cfg, info)
    train_records = list(train_records)
    if val_records is None:
        train_records, val_records = holdout(train_records, cfg.cpu.eval_rows, cfg.seed, dim,
                                             cfg.data.group_key)
    rng = random.Random(cfg.seed)
    if cfg.data.max_train_rows and len(train_records) > cfg.data.max_train_rows:
        train_records = rng.sample(train_records, cfg.data.max_train_rows)
    val_records = list(val_records)
    cap = min(x for x in (cfg.data.max_val_rows, cfg.cpu.eval_rows) if x)
    if len(val_records) > cap:
        val_records = rng.sample(val_records, cap)
    ds = Dataset(make_rows(train_records, cfg, dim, scale, "training data"),
                 make_rows(val_records, cfg, dim, scale, "validation data"), dim, scale,
                 template_for(cfg, dim, scale), data_fingerprint(train_records))
    if not ds.train or not ds.val:
        raise ConfigError(f"need training and validation rows for {dim!r}: got "
                          f"{len(ds.train)} and {len(ds.val)}")
    log.info("data: %d train rows %s, %d val rows, dimension %s, scale %s", len(ds.train),
             dict(sorted(Counter(ds.labels()).items())), len(ds.val), dim, scale)
    return ds
