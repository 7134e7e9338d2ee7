"""verl's ``data.custom_cls``: the project's pointwise files as verl RL rows.

Wire it with ``data.custom_cls.path=pkg://judgeforge.train.verl.dataset`` and
``data.custom_cls.name=PointwiseJudgeDataset`` (``build_overrides`` does). It imports verl, so
only verl's environment (``.venv-verl``, the Ray workers) imports this module.

Each pointwise record (see :mod:`judgeforge.data.schema`) becomes one verl row, built by
:func:`judgeforge.train.rows.build_rows` (the CPU backend's builder too; same prompt, same label
rules, same balancing)::

    {"prompt": [PromptTemplate.record_messages(record)],          # data.prompt_key
     "data_source": record.data_source,
     "ability": "judge",
     "reward_model": {"style": "rule", "ground_truth": {dim: label, ...}},
     "extra_info": {"index": i, "id": record key, "source_extra": "<record extra_info JSON>",
                    "judgeforge": {"dimensions": {dim: [min, max]}, "reward": name, "k": k}}}

Options come from ``data.judgeforge.*`` (see :data:`judgeforge.train.verl.overrides
.DATASET_OPTIONS_KEY`): ``dimension``, ``scale``, ``reward``, ``k``, ``thinking``,
``use_rubric``, ``use_reference``, ``system_prompt``, ``max_query_chars``, ``max_response_chars``,
``max_reference_chars``, ``balance_labels``, ``overlong``, ``card_dir``, ``base_model``.

The training dataset writes the judge card (:class:`~judgeforge.card.JudgeCard`: the template
its rows were rendered with, the base model, the data fingerprint) to ``card_dir`` (the run's
output folder; ``build_overrides`` sets it); the checkpoint merge copies it into every merged
folder (:func:`judgeforge.train.verl.checkpoints.merge_checkpoint`).

Nothing is dropped silently: invalid records raise :class:`DataError` (from
:func:`judgeforge.data.io.load_records`), and every prompt is measured with the tokenizer's chat
template; prompts longer than ``data.max_prompt_length`` raise :class:`DataError` naming them
(``overlong=error``, the default) or are dropped with a logged count (``overlong=drop``, also
chosen when verl's own ``data.filter_overlong_prompts`` is true). verl's own filter never runs.
"""

from __future__ import annotations

import logging
import statistics
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import DictConfig, ListConfig, OmegaConf
from verl.utils.dataset.rl_dataset import RLHFDataset
from verl.utils.tokenizer import normalize_token_ids

import datasets
from judgeforge.card import JudgeCard, data_fingerprint
from judgeforge.data.io import load_records
from judgeforge.data.schema import DatasetInfo, Scale
from judgeforge.errors import ConfigError, DataError
from judgeforge.prompt import TRAINING_PROMPT_OPTIONS, PromptTemplate
from judgeforge.train.rows import TrainRow, balance, build_rows, training_template

__all__ = ["PointwiseJudgeDataset", "DatasetOptions", "merge_infos"]

log = logging.getLogger(__name__)

_SHOW = 10  # rows named in an over-length report


def _plain(value: Any) -> Any:
    if isinstance(value, (DictConfig, ListConfig)):
        return OmegaConf.to_container(value, resolve=True)
    return value


@dataclass(frozen=True)
class DatasetOptions:
    """The ``data.judgeforge`` options (defaults match ``TrainConfig``). The prompt settings
    (:data:`judgeforge.prompt.TRAINING_PROMPT_OPTIONS`, given flat as ``data.judgeforge.thinking``
    ...) are collected in ``prompt``; an absent one takes :class:`PromptTemplate`'s default."""

    dimension: str | None = None
    scale: str | None = None
    reward: str = "exp_decay"
    k: float = 2.0
    prompt: Mapping[str, Any] = field(default_factory=dict)
    balance_labels: bool = False
    overlong: str = "error"
    card_dir: str | None = None
    base_model: str | None = None

    @classmethod
    def from_data_config(cls, config: Mapping[str, Any]) -> DatasetOptions:
        """Read ``config.judgeforge``; verl's ``filter_overlong_prompts=true`` forces ``drop``."""
        raw = dict(_plain(config.get("judgeforge")) or {})
        prompt = {k: raw.pop(k) for k in TRAINING_PROMPT_OPTIONS if k in raw}
        unknown = set(raw) - (set(cls.__dataclass_fields__) - {"prompt"})
        if unknown:
            raise ConfigError(f"unknown data.judgeforge option(s): {', '.join(sorted(unknown))}")
        if bool(config.get("filter_overlong_prompts", False)):
            raw["overlong"] = "drop"  # verl's own switch, set on purpose: drop, but count
        opts = cls(**raw, prompt=prompt)
        if opts.overlong not in ("error", "drop"):
            raise ConfigError(f"data.judgeforge.overlong must be error or drop, got "
                              f"{opts.overlong!r}")
        return opts

    def template(self, dimensions: dict[str, Scale]) -> PromptTemplate:
        """The prompt template these options describe, for ``dimensions``."""
        return training_template(dimensions, self.prompt)


def merge_infos(infos: list[DatasetInfo]) -> DatasetInfo:
    """One info for several files: the union of dimensions; a scale conflict is an error."""
    dims: dict[str, Scale] = {}
    for info in infos:
        for dim, scale in info.dimensions.items():
            if dim in dims and dims[dim] != scale:
                raise ConfigError(f"dimension {dim!r} has scale {dims[dim]} in one file and "
                                  f"{scale} in another; give data.scale to choose one")
            dims.setdefault(dim, scale)
    name = "+".join(dict.fromkeys(i.name for i in infos)) or "dataset"
    return DatasetInfo(name=name, dimensions=dims)


def _chosen(info: DatasetInfo, dimension: str | None) -> dict[str, Scale]:
    if dimension is None:
        return dict(info.dimensions)
    if dimension not in info.dimensions:
        known = ", ".join(info.dimensions) or "none"
        raise ConfigError(f"data.dimension={dimension!r} is not in the data (it has: {known})")
    return {dimension: info.dimensions[dimension]}


def _report(message: str) -> None:
    log.info(message)
    print(f"[judgeforge] {message}", flush=True)


class PointwiseJudgeDataset(RLHFDataset):
    """verl's RLHFDataset reading judgeforge's pointwise Parquet/JSONL files."""

    def _is_train(self) -> bool:
        train = _plain(self.config.get("train_files")) or []
        train = [train] if isinstance(train, str) else list(train)
        return [str(f) for f in self.original_data_files] == [str(f) for f in train]

    def _read_files_and_tokenize(self) -> None:
        opts = DatasetOptions.from_data_config(self.config)
        loaded = [load_records(path, scale=opts.scale) for path in self.data_files]
        info = merge_infos([res.info for res in loaded])
        template = opts.template(_chosen(info, opts.dimension))
        records = [rec for res in loaded for rec in res.records]
        rows: list[TrainRow] = build_rows(records, template, reward=opts.reward, k=opts.k,
                                          what=", ".join(map(str, self.data_files)))
        if not rows:
            raise DataError(f"no rows in {', '.join(map(str, self.data_files))}")
        if opts.card_dir and "://" not in opts.card_dir and self._is_train():
            card = JudgeCard.from_template(template, base_model=opts.base_model,
                                           data_fingerprint=data_fingerprint(records))
            Path(opts.card_dir).mkdir(parents=True, exist_ok=True)
            _report(f"judge card -> {card.write(opts.card_dir)}")
        total = len(rows)
        if 0 < self.max_samples < total:
            if self.shuffle:
                rng = np.random.default_rng(*((self.seed,) if self.seed is not None else ()))
                keep = sorted(rng.choice(total, size=self.max_samples, replace=False).tolist())  # type: ignore[attr-defined]
            else:
                keep = list(range(self.max_samples))
            rows = [rows[i] for i in keep]
            _report(f"kept {len(rows)} of {total} rows (max_samples)")
        if opts.balance_labels and self._is_train():
            before = dict(sorted(Counter(r.first_label for r in rows).items()))
            rows = balance(rows, None, int(self.seed or 0), key=lambda r: r.first_label)
            _report(f"balanced labels of {next(iter(template.dimensions))!r}: {before} -> "
                    f"{len(rows) // len(before)} each ({len(rows)} rows)")
        self.dataframe = datasets.Dataset.from_list([r.verl_row() for r in rows])
        dims = ", ".join(f"{d} {s}" for d, s in template.dimensions.items())
        _report(f"{len(rows)} rows from {len(self.data_files)} file(s); dimensions: {dims}; "
                f"reward {opts.reward}")
        self.dataframe = self.maybe_filter_out_long_prompts(self.dataframe)

    def prompt_lengths(self, dataframe: datasets.Dataset) -> list[int]:
        """Token count of every row's prompt, as the rollout will see it (chat template)."""
        kwargs = dict(_plain(self.apply_chat_template_kwargs) or {})
        for key in ("tokenize", "return_dict", "return_tensors"):
            kwargs.pop(key, None)
        texts = [self.tokenizer.apply_chat_template(p, add_generation_prompt=True, tokenize=False,
                                                    **kwargs)
                 for p in dataframe[self.prompt_key]]
        ids = self.tokenizer(texts, add_special_tokens=False)["input_ids"]
        return [len(normalize_token_ids(x)) for x in ids]

    def maybe_filter_out_long_prompts(self, dataframe: datasets.Dataset = None) -> datasets.Dataset:
        """Measure every prompt; report (``error``) or drop with a count (``drop``) long ones."""
        if self.prompt_key not in dataframe.column_names:
            raise DataError(f"the dataset has no {self.prompt_key!r} column (data.prompt_key); "
                            f"verl would drop every row")
        opts = DatasetOptions.from_data_config(self.config)
        lengths = self.prompt_lengths(dataframe)
        limit = int(self.max_prompt_length)
        long_rows = [i for i, n in enumerate(lengths) if n > limit]
        if lengths:
            _report(f"prompt tokens: min {min(lengths)}, median {int(statistics.median(lengths))}, "
                    f"max {max(lengths)}; limit {limit}; over the limit: {len(long_rows)}")
        if not long_rows:
            return dataframe
        ids = dataframe.select(long_rows[:_SHOW])["extra_info"]
        shown = ", ".join(f"row {i} ({x['id']}): {lengths[i]} tokens"
                          for i, x in zip(long_rows, ids))
        more = f" and {len(long_rows) - _SHOW} more" if len(long_rows) > _SHOW else ""
        what = (f"{len(long_rows)} of {len(lengths)} prompts are longer than "
                f"data.max_prompt_length={limit} tokens: {shown}{more}")
        if opts.overlong == "error":
            raise DataError(f"{what}. Raise grpo.max_prompt_length, shorten the data, or set "
                            f"data.judgeforge.overlong=drop to drop them (counted in the log)")
        log.warning("dropping %s", what)
        print(f"[judgeforge] WARNING: dropping {what}", flush=True)
        keep = sorted(set(range(len(lengths))) - set(long_rows))
        _report(f"kept {len(keep)} rows, dropped {len(long_rows)} over-long rows")
        return dataframe.select(keep)
