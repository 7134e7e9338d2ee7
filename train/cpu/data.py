"""Records -> the rows the CPU backend trains and evaluates on.

Rows come from :func:`judgeforge.train.rows.build_rows` (shared with verl's dataset class) in
the CPU layout (:meth:`~judgeforge.train.rows.TrainRow.cpu_row`): ``prompt`` (the judge
messages, :meth:`PromptTemplate.record_messages`), ``completion`` (the SFT target
``<score>y</score>``), ``label`` (int), ``ground_truth`` (the label, what ``compute_score``
reads), ``data_source`` and ``extra_info`` (``index``, ``id`` and the typed
``judgeforge`` :class:`~judgeforge.train.rows.RowSpec`), so TRL hands the same columns to the
reward function that verl hands to ``compute_score``.

Each training file is trained on one dimension (``data.dimension`` or the file's only one) on
its own scale, rendered in its rows' prompts: a mix of files on different scales (e.g.
Prometheus 1-5, FeedbackQA 0-3, LAMP-R 1-10) trains one judge on all of them. Without
``data.val_files`` about ``cpu.eval_rows`` validation rows are held out of EACH file (whole
groups: :func:`holdout`); ``data.mix_weights`` sets each file's share of the training rows.
The first file's dimension and scale are the judge's own (its card's, the ones its calibration
maps): :meth:`Dataset.calibration_rows` are the validation rows on that scale, written to
``<output_dir>/val.parquet`` (:meth:`Dataset.write_validation`) so a benchmark can fit the
untrained base's calibration on the very same rows.
"""

from __future__ import annotations

import logging
import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from judgeforge.card import JudgeCard, ScoringSettings, data_fingerprint
from judgeforge.data.schema import DatasetInfo, PointwiseRecord, Scale
from judgeforge.errors import ConfigError
from judgeforge.prompt import PromptTemplate

from ..config import TrainConfig
from ..rows import balance, build_rows, row_group, training_template

__all__ = ["Dataset", "load_dataset", "make_rows", "template_for", "balance", "holdout",
           "VAL_FILE"]

log = logging.getLogger(__name__)

#: The validation rows on the judge's own scale, written beside the trained folders.
VAL_FILE = "val.parquet"


@dataclass
class Part:
    """One training file's records: its dimension and scale, train and validation records."""

    name: str
    dimension: str
    scale: Scale
    info: DatasetInfo
    train: list[PointwiseRecord]
    val: list[PointwiseRecord] = field(default_factory=list)

    def describe(self, train_rows: int) -> dict[str, Any]:
        return {"data": self.name, "dimension": self.dimension,
                "scale": [self.scale.min, self.scale.max], "train_rows": train_rows,
                "val_rows": len(self.val)}


@dataclass
class Dataset:
    """Training and validation rows; ``dimension``/``scale`` are the judge's own (the first
    file's), ``trained_on`` lists every file's dimension, scale and row counts."""

    train: list[dict[str, Any]]
    val: list[dict[str, Any]]
    dimension: str
    scale: Scale
    template: PromptTemplate
    fingerprint: str | None = None  # of the training records (judgeforge.card.data_fingerprint)
    trained_on: list[dict[str, Any]] = field(default_factory=list)
    val_records: list[PointwiseRecord] = field(default_factory=list)  # on the judge's scale
    info: DatasetInfo | None = None

    @property
    def mixed(self) -> bool:
        """True when the rows are on more than one (dimension, scale)."""
        return len({row_group(r) for r in (*self.train, *self.val)}) > 1

    def card(self, base_model: str | None, **fields: Any) -> JudgeCard:
        """The judge card for a model trained on these rows: the template, the default
        scoring (``expected`` on scales within 0-9, else ``sample``), the base model, the
        data fingerprint and, in ``metrics["trained_on"]``, every file's dimension, scale and
        row counts; ``fields`` (``calibration``, more ``metrics``) are added."""
        mode = "expected" if 0 <= self.scale.min and self.scale.max <= 9 else "sample"
        metrics = {"trained_on": self.trained_on, **dict(fields.pop("metrics", None) or {})}
        return JudgeCard.from_template(self.template, scoring=ScoringSettings(mode=mode),
                                       base_model=base_model,
                                       data_fingerprint=self.fingerprint, metrics=metrics,
                                       **fields)

    def labels(self, split: str = "train") -> list[int]:
        return [r["label"] for r in getattr(self, split)]

    def median_label(self) -> int:
        """The training labels' median (the best constant predictor for MAE)."""
        labels = sorted(self.labels("train"))
        return labels[(len(labels) - 1) // 2]

    def calibration_rows(self) -> list[dict[str, Any]]:
        """The validation rows on the judge's own dimension and scale: what its calibration is
        fitted on (all of ``val`` unless the data is a mix)."""
        own = row_group({"extra_info": {"judgeforge": {"dimensions": {
            self.dimension: [self.scale.min, self.scale.max]}}}})
        return [r for r in self.val if row_group(r) == own]

    def write_validation(self, folder: str | Path) -> Path | None:
        """Write :meth:`calibration_rows`' records to ``folder/val.parquet`` (``bench quality
        --calibration-data``); None when the rows were passed without records."""
        from judgeforge.data.io import write_records

        if not self.val_records:
            return None
        info = DatasetInfo(
            name=f"{self.info.name if self.info else 'dataset'}-validation",
            dimensions={self.dimension: self.scale},
            source=self.info.source if self.info else None,
            license=self.info.license if self.info else None,
            description="validation rows held out of the training data (whole groups): the "
                        "judge's best checkpoint and calibration were chosen and fitted on them")
        Path(folder).mkdir(parents=True, exist_ok=True)
        return Path(write_records(Path(folder) / VAL_FILE, self.val_records, info))


def pick_dimension(cfg: TrainConfig, info: DatasetInfo, what: str = "the data") -> tuple[str,
                                                                                       Scale]:
    """The dimension and scale the CPU backend trains on in one file."""
    names = info.dimension_names
    dim = cfg.data.dimension
    if dim is None:
        if len(names) != 1:
            raise ConfigError(f"{what} has dimensions {names}; the CPU backend trains one: "
                              "set data.dimension")
        dim = names[0]
    elif names and dim not in names:
        raise ConfigError(f"data.dimension={dim!r} is not in {what} (it has {names})")
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


def _load_file(path: str, cfg: TrainConfig) -> tuple[list[PointwiseRecord], DatasetInfo]:
    from judgeforge.data.io import load_records

    res = load_records(path, skip_invalid=True, scale=cfg.data.scale)
    if res.skipped:
        log.warning("%s: %d invalid row(s) skipped", path, res.skipped)
    return list(res.records), res.info


def _group_key(records: Sequence[PointwiseRecord], key: str | None, name: str) -> str | None:
    """The group key of one file: ``data.group_key`` as given, or for a comma list
    (``idx,pair,question``: one key per set of a mix) the first key every record of the file
    carries, else None (rows sharing their query text form a group; logged)."""
    if key is None or "," not in key:
        return key
    for k in (x.strip() for x in key.split(",")):
        if k and all(k in (r.extra_info or {}) for r in records):
            return k
    log.info("%s: no row carries all of extra_info[%s]: its validation hold-out groups rows by "
             "query text", name, key)
    return None


def _mixed(parts: Sequence[Part], weights: Sequence[float] | None,
           rng: random.Random) -> list[list[PointwiseRecord]]:
    """Each part's training records, resampled to ``weights`` (shares of the total; repeats
    only where a part has too few records); as they are without weights."""
    if weights is None:
        return [p.train for p in parts]
    if len(weights) != len(parts):
        raise ConfigError(f"data.mix_weights has {len(weights)} weight(s) for {len(parts)} "
                          "training file(s): give one per file, in data.train_files order")
    if any(w < 0 for w in weights) or not sum(weights):
        raise ConfigError(f"data.mix_weights must be >= 0 with a positive sum, got "
                          f"{list(weights)}")
    total = sum(len(p.train) for p in parts)
    out = []
    for p, w in zip(parts, weights):
        want = round(total * w / sum(weights))
        if want <= len(p.train):
            out.append(rng.sample(p.train, want))
        else:
            out.append(list(p.train) + rng.choices(p.train, k=want - len(p.train)))
    return out


def _parts_from_files(cfg: TrainConfig) -> list[Part]:
    paths = cfg.data.train_files
    parts = []
    for path in paths:
        records, info = _load_file(path, cfg)
        dim, scale = pick_dimension(cfg, info, str(path))
        parts.append(Part(str(path), dim, scale, info, records))
    if cfg.data.val_files:
        for path in cfg.data.val_files:
            records, info = _load_file(path, cfg)
            dim, scale = pick_dimension(cfg, info, str(path))
            match = [p for p in parts if (p.dimension, p.scale) == (dim, scale)]
            if not match:
                raise ConfigError(f"validation file {path} is on {dim} {scale}, which no "
                                  "training file is on")
            match[0].val += records
    else:
        for p in parts:
            key = _group_key(p.train, cfg.data.group_key, p.name)
            p.train, p.val = holdout(p.train, cfg.cpu.eval_rows, cfg.seed, p.dimension, key)
    return parts


def load_dataset(cfg: TrainConfig, train_records: Sequence[PointwiseRecord] | None = None,
                 val_records: Sequence[PointwiseRecord] | None = None,
                 info: DatasetInfo | None = None) -> Dataset:
    """Rows from ``cfg.data`` files, or from records passed in memory (tests, benchmarks).

    Without validation data, about ``cpu.eval_rows`` records of each training file are held out
    (stratified, whole groups: :func:`holdout`); ``cpu.eval_rows`` (and ``data.max_val_rows``)
    caps each file's validation rows.
    """
    if train_records is None:
        if not cfg.data.train_files:
            raise ConfigError("no training data: set data.train_files")
        parts = _parts_from_files(cfg)
    else:
        if info is None:
            dims = sorted({d for r in train_records for d in r.label})
            info = DatasetInfo(dimensions={d: Scale.parse(cfg.data.scale) if cfg.data.scale
                                           else Scale() for d in dims})
        dim, scale = pick_dimension(cfg, info)
        part = Part("records passed in", dim, scale, info, list(train_records))
        if val_records is None:
            part.train, part.val = holdout(part.train, cfg.cpu.eval_rows, cfg.seed, dim,
                                           _group_key(part.train, cfg.data.group_key, part.name))
        else:
            part.val = list(val_records)
        parts = [part]
    rng = random.Random(cfg.seed)
    trains = _mixed(parts, cfg.data.mix_weights, rng)
    tagged = [(i, r) for i, recs in enumerate(trains) for r in recs]
    if cfg.data.max_train_rows and len(tagged) > cfg.data.max_train_rows:
        tagged = rng.sample(tagged, cfg.data.max_train_rows)
    cap = min(x for x in (cfg.data.max_val_rows, cfg.cpu.eval_rows) if x)
    for p in parts:
        if len(p.val) > cap:
            p.val = rng.sample(p.val, cap)
    train_rows: list[dict[str, Any]] = []
    val_rows: list[dict[str, Any]] = []
    trained_on = []
    for i, p in enumerate(parts):
        mine = [r for j, r in tagged if j == i]
        where = "" if len(parts) == 1 else f" ({p.name})"
        train_rows += make_rows(mine, cfg, p.dimension, p.scale, f"training data{where}")
        val_rows += make_rows(p.val, cfg, p.dimension, p.scale, f"validation data{where}")
        trained_on.append(p.describe(len(mine)))
    if len(parts) > 1:  # rows of one file after another: mixed for training, like one file
        order = list(range(len(train_rows)))
        random.Random(cfg.seed).shuffle(order)
        train_rows = [train_rows[j] for j in order]
    own = parts[0]
    ds = Dataset(train_rows, val_rows, own.dimension, own.scale,
                 template_for(cfg, own.dimension, own.scale),
                 data_fingerprint([r for _, r in tagged]), trained_on, list(own.val), own.info)
    if not ds.train or not ds.val:
        raise ConfigError(f"need training and validation rows: got {len(ds.train)} and "
                          f"{len(ds.val)}")
    for t in trained_on:
        log.info("data %s: %d train rows, %d val rows, dimension %s, scale %d-%d", t["data"],
                 t["train_rows"], t["val_rows"], t["dimension"], *t["scale"])
    log.info("data: %d train rows %s, %d val rows", len(ds.train),
             dict(sorted(Counter(ds.labels()).items())), len(ds.val))
    return ds
