"""Pairwise records -> the rows the CPU backend trains and validates a pairwise judge on.

A training file of pairwise records (:func:`judgeforge.data.pairwise.is_pairwise_file`) trains
a judge that compares two responses. Without ``data.val_files`` about ``cpu.eval_rows`` pairs
are held out by group (``data.group_key``, e.g. ``group``: every pair of one question on one
side; :func:`judgeforge.data.split.group_of` reads pairwise records too). Rows come from
:func:`judgeforge.train.pairwise_rows.build_pairwise_rows` in both orders, in the CPU layout
(``prompt``, ``completion`` = ``<verdict>A</verdict>``, ``label`` = the verdict's code for
balancing, ``ground_truth`` = the verdict, ``extra_info`` with the pairwise spec), rendered by
:class:`~judgeforge.pairwise_prompt.PairwisePromptTemplate` with the ``prompt`` section's
settings (the prompt limits).

GRPO sees the two orders of a pair in one batch (:func:`pairwise_grpo_rows`: pairs shuffled
whole, their two rows adjacent, TRL's sampler not shuffling), so
:func:`judgeforge.train.reward.compute_score_batch` can pay J1's both-orders credit.

The judge card (:meth:`PairwiseDataset.card`) says ``kind: "pairwise"`` and holds the pairwise
prompt and scoring settings, so ``PairwiseGrader.from_card``, ``judgeforge grade`` and
``judgeforge bench preference --model FOLDER`` grade the folder as it was trained. Its
``dimensions`` entry (a card needs one) is the placeholder :data:`CARD_DIMENSION`.
"""

from __future__ import annotations

import logging
import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from judgeforge.card import JudgeCard, PairwiseSettings, data_fingerprint
from judgeforge.data.pairwise import PairwiseRecord, is_pairwise_file, read_pairwise
from judgeforge.data.schema import PointwiseRecord, Scale
from judgeforge.errors import ConfigError
from judgeforge.pairwise_prompt import PairwisePromptTemplate

from ..config import TrainConfig
from ..pairwise_rows import build_pairwise_rows, read_pairwise_spec
from .data import VAL_FILE, Dataset

__all__ = ["PairwiseDataset", "is_pairwise_config", "load_pairwise_dataset",
           "pairwise_grpo_rows", "CARD_DIMENSION", "PAIRWISE_REWARD"]

log = logging.getLogger(__name__)

#: The card's required ``dimensions`` entry for a pairwise judge: the verdict's code
#: (a 0, b 1, tie 2); the judge is read through the card's ``pairwise`` block.
CARD_DIMENSION = {"preference": Scale(min=0, max=2)}
#: ``reward.name`` of a pairwise run (the rows' reward: 1 right, tie credit, 0 wrong).
PAIRWISE_REWARD = "pairwise"


def is_pairwise_config(cfg: TrainConfig) -> bool:
    """Whether ``cfg`` trains a pairwise judge: its training files hold pairwise records (all
    of them; a mix of pairwise and pointwise files is a ConfigError)."""
    files = list(cfg.data.train_files or [])
    kinds = [Path(p).is_file() and is_pairwise_file(p) for p in files]
    if any(kinds) and not all(kinds):
        mixed = ", ".join(f"{p} ({'pairwise' if k else 'pointwise'})" for p, k in zip(files, kinds))
        raise ConfigError(f"data.train_files mixes pairwise and pointwise files ({mixed}); the "
                          "CPU backend trains one kind of judge per run")
    return bool(files) and all(kinds)


@dataclass
class PairwiseDataset(Dataset):
    """Pairwise training and validation rows (both orders of every pair)."""

    pairwise_template: PairwisePromptTemplate = field(default_factory=PairwisePromptTemplate)
    val_pairs: list[PairwiseRecord] = field(default_factory=list)

    def card(self, base_model: str | None, **fields: Any) -> JudgeCard:
        """The pairwise judge card: ``kind: "pairwise"``, the pairwise prompt the rows were
        rendered with, expected-mode scoring in both orders; ``fields`` added."""
        metrics = {"trained_on": self.trained_on, **dict(fields.pop("metrics", None) or {})}
        block = PairwiseSettings.from_template(self.pairwise_template, mode="expected",
                                               both_orders=True)
        return JudgeCard(dimensions=dict(CARD_DIMENSION), kind="pairwise", pairwise=block,
                         base_model=base_model, data_fingerprint=self.fingerprint,
                         metrics=metrics, **fields)

    def calibration_rows(self) -> list[dict[str, Any]]:
        return []  # a pairwise judge has no score calibration

    def write_validation(self, folder: str | Path) -> Path | None:
        """The held-out pairs to ``folder/val.parquet`` (``bench preference --data``)."""
        from judgeforge.data.pairwise import write_pairwise

        if not self.val_pairs:
            return None
        Path(folder).mkdir(parents=True, exist_ok=True)
        return write_pairwise(self.val_pairs, Path(folder) / VAL_FILE)


def _template(cfg: TrainConfig) -> PairwisePromptTemplate:
    return PairwisePromptTemplate.from_settings(cfg.prompt.settings())


def _read(paths: Sequence[str]) -> list[PairwiseRecord]:
    out: list[PairwiseRecord] = []
    for p in paths:
        out += read_pairwise(p)
    return out


def _holdout(records: list[PairwiseRecord], n_val: int, seed: int,
             group_key: str | None) -> tuple[list[PairwiseRecord], list[PairwiseRecord]]:
    """(train, val): about ``n_val`` pairs held out, whole groups (no group crosses)."""
    from judgeforge.data.split import group_split

    n_val = max(1, min(n_val, len(records) // 2))
    as_records = cast(list[PointwiseRecord], records)  # group_of reads input and extra_info only
    train, val = group_split(as_records, test_size=n_val, seed=seed, group_key=group_key,
                             stratify=False)
    return cast(list[PairwiseRecord], train), cast(list[PairwiseRecord], val)


def load_pairwise_dataset(cfg: TrainConfig) -> PairwiseDataset:
    """The rows of a pairwise run (module docstring). ``reward.name`` must be ``pairwise``."""
    if cfg.reward.name != PAIRWISE_REWARD:
        raise ConfigError(f"reward.name={cfg.reward.name!r}: a pairwise training file is "
                          f"trained with reward.name={PAIRWISE_REWARD!r}")
    if cfg.grpo.max_steps != 0 and cfg.grpo.train_batch_size % 2:
        raise ConfigError(f"grpo.train_batch_size={cfg.grpo.train_batch_size}: a pairwise run "
                          "needs an even number of prompts per step (both orders of each pair "
                          "in one batch, for the both-orders credit)")
    train = _read(cfg.data.train_files)
    if cfg.data.val_files:
        val = _read(cfg.data.val_files)
    else:
        train, val = _holdout(train, cfg.cpu.eval_rows, cfg.seed, cfg.data.group_key)
    rng = random.Random(cfg.seed)
    if cfg.data.max_train_rows and len(train) > cfg.data.max_train_rows:
        train = rng.sample(train, cfg.data.max_train_rows)
    cap = min(x for x in (cfg.data.max_val_rows, cfg.cpu.eval_rows) if x)
    if len(val) > cap:
        val = rng.sample(val, cap)
    template = _template(cfg)
    train_rows = [r.cpu_row() for r in build_pairwise_rows(train, template,
                                                           what="training data")]
    val_rows = [r.cpu_row() for r in build_pairwise_rows(val, template, what="validation data")]
    if not train_rows or not val_rows:
        raise ConfigError(f"need training and validation pairs: got {len(train)} and "
                          f"{len(val)}")
    name = ", ".join(str(p) for p in cfg.data.train_files)
    trained_on = [{"data": name, "kind": "pairwise", "train_pairs": len(train),
                   "val_pairs": len(val), "train_rows": len(train_rows),
                   "val_rows": len(val_rows)}]
    log.info("pairwise data %s: %d train pairs (%d rows, verdicts %s), %d val pairs", name,
             len(train), len(train_rows), dict(sorted(Counter(r["ground_truth"]
                                                             for r in train_rows).items())),
             len(val))
    dimension, scale = next(iter(CARD_DIMENSION.items()))
    from judgeforge.prompt import PromptTemplate

    return PairwiseDataset(
        train=train_rows, val=val_rows, dimension=dimension, scale=scale,
        template=PromptTemplate.from_settings(dict(CARD_DIMENSION), {}),
        fingerprint=data_fingerprint(train), trained_on=trained_on,
        pairwise_template=template, val_pairs=val)


def pairwise_grpo_rows(rows: Sequence[dict[str, Any]], n_rows: int,
                       seed: int) -> list[dict[str, Any]]:
    """At least ``n_rows`` GRPO rows: whole pairs in a seeded shuffled order (epoch after
    epoch), each pair's rows adjacent ("ab" then "ba"), so an even batch of prompts taken in
    order holds both orders of each of its pairs."""
    pairs: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        spec = read_pairwise_spec(r.get("extra_info"))
        pairs.setdefault(spec["pair"] if spec else str(id(r)), []).append(r)
    def order(row: dict[str, Any]) -> str:
        spec = read_pairwise_spec(row.get("extra_info"))
        return spec["order"] if spec else ""

    groups = [sorted(g, key=order) for g in pairs.values()]
    rng = random.Random(seed)
    out: list[dict[str, Any]] = []
    while len(out) < max(n_rows, 1):
        epoch = list(groups)
        rng.shuffle(epoch)
        out += [r for g in epoch for r in g]
    return out
