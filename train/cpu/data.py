"""Records -> the rows the CPU backend trains and evaluates on.

A row is a plain dict: ``prompt`` (chat messages built with the project's
:class:`~judgeforge.prompt.PromptTemplate`), ``completion`` (the SFT target ``<score>y</score>``),
``label`` (int), ``ground_truth`` (the label, what ``compute_score`` reads) and ``extra_info``
(``{"judgeforge": {"dimensions": {dim: [min, max]}, "reward": name, "k": k}}``), so TRL hands
the same columns to the reward function that verl hands to ``compute_score``.

The CPU backend trains one dimension at a time: ``data.dimension`` or the data's only one.
"""

from __future__ import annotations

import logging
import random
from collections import Counter, defaultdict
from dataclasses import dataclass
from typing import Any, Sequence

from judgeforge.data.schema import DatasetInfo, PointwiseRecord, Scale
from judgeforge.errors import ConfigError
from judgeforge.prompt import PromptTemplate, build_record_messages

from ..config import TrainConfig

__all__ = ["Dataset", "load_dataset", "make_rows", "balance", "holdout"]

log = logging.getLogger(__name__)


@dataclass
class Dataset:
    """Training and validation rows for one dimension on one scale."""

    train: list[dict[str, Any]]
    val: list[dict[str, Any]]
    dimension: str
    scale: Scale

    def labels(self, split: str = "train") -> list[int]:
        return [r["label"] for r in getattr(self, split)]

    def median_label(self) -> int:
        """The training labels' median (the best constant predictor for MAE)."""
        labels = sorted(self.labels("train"))
        return labels[(len(labels) - 1) // 2]


def _prompt_fields(record: PointwiseRecord, cfg: TrainConfig) -> dict[str, Any]:
    """The record's dict without the rubric/reference the prompt options leave out (long texts
    are cut by the template: ``prompt.max_query_chars``/``max_response_chars``)."""
    data = record.to_dict()
    p = cfg.prompt
    extra = dict(data.get("extra_info") or {})
    if not p.use_rubric:
        extra.pop("rubric", None)
    if not p.use_reference:
        extra.pop("reference", None)
    data["extra_info"] = extra
    return data


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


def make_rows(records: Sequence[PointwiseRecord], cfg: TrainConfig, dimension: str,
              scale: Scale) -> list[dict[str, Any]]:
    """Prompt/label rows for ``dimension``; records without that label are left out."""
    template = PromptTemplate({dimension: scale}, thinking=cfg.prompt.thinking,
                              system_prompt=cfg.prompt.system_prompt,
                              max_query_chars=cfg.prompt.max_query_chars,
                              max_response_chars=cfg.prompt.max_response_chars)
    spec = {"dimensions": {dimension: [scale.min, scale.max]}, "reward": cfg.reward.name,
            "k": cfg.reward.k}
    rows: list[dict[str, Any]] = []
    for rec in records:
        label = rec.label.get(dimension)
        if label is None:
            continue
        if label not in scale:
            raise ConfigError(f"record {rec.id!r}: label {label} is outside the scale {scale}")
        rows.append({
            "prompt": build_record_messages(template, _prompt_fields(rec, cfg)),
            "completion": f"<score>{label}</score>",
            "label": int(label),
            "ground_truth": int(label),
            "data_source": rec.data_source,
            "extra_info": {"judgeforge": spec},
        })
    return rows


def balance(rows: list[dict[str, Any]], n: int, seed: int) -> list[dict[str, Any]]:
    """``n`` rows drawn round-robin over labels (each label equally often, with repeats)."""
    by_label: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        by_label[r["label"]].append(r)
    rng = random.Random(seed)
    pools = {k: [] for k in by_label}
    out: list[dict[str, Any]] = []
    labels = sorted(by_label)
    while len(out) < n:
        for k in labels:
            if not pools[k]:
                pools[k] = list(by_label[k])
                rng.shuffle(pools[k])
            out.append(pools[k].pop())
    out = out[:n]
    rng.shuffle(out)
    return out


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
    ds = Dataset(make_rows(train_records, cfg, dim, scale), make_rows(val_records, cfg, dim,
                                                                           scale), dim, scale)
    if not ds.train or not ds.val:
        raise ConfigError(f"need training and validation rows for {dim!r}: got "
                          f"{len(ds.train)} and {len(ds.val)}")
    log.info("data: %d train rows %s, %d val rows, dimension %s, scale %s", len(ds.train),
             dict(sorted(Counter(ds.labels()).items())), len(ds.val), dim, scale)
    return ds
