"""Records -> training rows, for both backends (the CPU trainer and verl's dataset class).

One set of rules:

- the prompt is :meth:`PromptTemplate.record_messages` (the path every grading surface uses);
- every chosen dimension's label must be inside its scale, and a record must have a label for
  at least one chosen dimension; anything else is a :class:`RowError` naming the row, collected
  and raised together as one :class:`DataError` (never a silent drop);
- label balancing (:func:`balance`): each label of the first dimension equally often, drawn
  round-robin from shuffled pools (with repeats); rows on several scales (a training mix) are
  balanced within each scale group (:func:`row_group`), each group keeping its share of rows;
- what a row says about itself for the reward travels in ``extra_info["judgeforge"]``, a
  :class:`RowSpec` (read back by :func:`read_row_spec` in ``judgeforge.train.reward``).

:class:`TrainRow` is backend-neutral; :meth:`TrainRow.cpu_row` and :meth:`TrainRow.verl_row`
give each backend its columns.
"""

from __future__ import annotations

import json
import random
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypedDict, TypeVar

from judgeforge.data.keys import record_key
from judgeforge.data.schema import PointwiseRecord, Scale
from judgeforge.data.validate import RowError, format_errors
from judgeforge.errors import DataError
from judgeforge.prompt import PromptTemplate

__all__ = ["RowSpec", "TrainRow", "build_rows", "balance", "read_row_spec", "training_template",
           "row_group"]

T = TypeVar("T")


class RowSpec(TypedDict):
    """``extra_info["judgeforge"]``: the row's dimensions (``[min, max]`` each) and reward."""

    dimensions: dict[str, list[int]]
    reward: str
    k: float


def read_row_spec(extra_info: Mapping[str, Any] | None) -> RowSpec | None:
    """The :class:`RowSpec` in a row's ``extra_info`` (None when the row has none)."""
    raw = (extra_info or {}).get("judgeforge")
    if not raw:
        return None
    raw = dict(raw)
    dims = {str(d): [int(r[0]), int(r[1])] for d, r in dict(raw.get("dimensions") or {}).items()}
    k = raw.get("k")
    return RowSpec(dimensions=dims, reward=str(raw.get("reward") or "exp_decay"),
                   k=float(k) if k is not None else 2.0)


def training_template(dimensions: Mapping[str, Scale],
                      prompt: Mapping[str, Any]) -> PromptTemplate:
    """The template for training rows: ``prompt`` holds PromptTemplate settings (the training
    config's ``prompt`` section: thinking, use_rubric, use_reference, system_prompt, limits)."""
    return PromptTemplate.from_settings(dimensions, prompt)


@dataclass(frozen=True)
class TrainRow:
    """One training row, before a backend's column layout."""

    index: int
    id: str
    prompt: list[dict[str, str]]
    labels: dict[str, int]  # the chosen dimensions this record labels
    completion: str  # the SFT target: the answer tags with the labels
    data_source: str
    spec: RowSpec
    source_extra: str | None  # the record's extra_info as JSON, for the record

    @property
    def first_label(self) -> int:
        """The label of the first chosen dimension (-1 when unlabelled): what balancing uses."""
        return self.labels.get(next(iter(self.spec["dimensions"])), -1)

    def extra_info(self) -> dict[str, Any]:
        info: dict[str, Any] = {"index": self.index, "id": self.id, "judgeforge": self.spec}
        if self.source_extra is not None:
            info["source_extra"] = self.source_extra
        return info

    def cpu_row(self) -> dict[str, Any]:
        """The CPU backend's row (one dimension: ``label``/``ground_truth`` are that label)."""
        label = self.first_label
        return {"prompt": self.prompt, "completion": self.completion, "label": label,
                "ground_truth": label, "data_source": self.data_source,
                "extra_info": self.extra_info()}

    def verl_row(self) -> dict[str, Any]:
        """verl's RL row (``reward_model.ground_truth`` holds every chosen dimension, None when
        unlabelled, so Arrow sees one struct)."""
        truth = {d: self.labels.get(d) for d in self.spec["dimensions"]}
        return {"prompt": self.prompt, "data_source": self.data_source, "ability": "judge",
                "reward_model": {"style": "rule", "ground_truth": truth},
                "extra_info": self.extra_info()}


def _row(rec: PointwiseRecord, index: int, template: PromptTemplate,
         spec: RowSpec) -> TrainRow | RowError:
    dims = template.dimensions
    labels: dict[str, int] = {}
    for dim, scale in dims.items():
        value = rec.label.get(dim)
        if value is None:
            continue
        if value not in scale:
            return RowError(index, None, f"output.label.{dim}",
                            f"{value} is outside the scale {scale.min}-{scale.max}"
                            f" (record {record_key(rec)})")
        labels[dim] = int(value)
    if not labels:
        return RowError(index, None, "output.label",
                        f"no label for {', '.join(dims)} (labels: {', '.join(rec.label)})")
    tags = template.tags()
    completion = "\n".join(f"<{tags[d]}>{labels[d]}</{tags[d]}>" for d in dims if d in labels)
    extra = rec.extra_info
    return TrainRow(index=index, id=record_key(rec), prompt=template.record_messages(rec),
                    labels=labels, completion=completion, data_source=rec.data_source,
                    spec=spec, source_extra=json.dumps(extra, ensure_ascii=False, default=str)
                    if extra else None)


def build_rows(records: Sequence[PointwiseRecord], template: PromptTemplate, *,
               reward: str = "exp_decay", k: float = 2.0, what: str = "data") -> list[TrainRow]:
    """Training rows for ``records`` with ``template``'s dimensions and prompt.

    Raises :class:`DataError` listing every bad row (label outside the scale, no label for any
    chosen dimension); ``what`` names the data in the message.
    """
    spec = RowSpec(dimensions={d: [s.min, s.max] for d, s in template.dimensions.items()},
                   reward=reward, k=float(k))
    rows: list[TrainRow] = []
    errors: list[RowError] = []
    for i, rec in enumerate(records):
        row = _row(rec, i, template, spec)
        if isinstance(row, RowError):
            errors.append(row)
        else:
            rows.append(row)
    if errors:
        raise DataError(f"{what}: {len(errors)} of {len(records)} rows cannot be trained on:\n"
                        f"{format_errors(errors)}", errors)
    return rows


def row_group(row: Mapping[str, Any]) -> str:
    """The scale group of a CPU row: its dimensions and scales as text (``quality 1-5``), read
    from ``extra_info["judgeforge"]``; ``""`` for a row without a spec. Rows of one group share
    a prompt scale: validation metrics and label balancing work group by group."""
    spec = read_row_spec(row.get("extra_info") if isinstance(row, Mapping) else None)
    if spec is None:
        return ""
    return ", ".join(f"{d} {lo}-{hi}" for d, (lo, hi) in spec["dimensions"].items())


def balance(rows: Sequence[T], n: int | None, seed: int,
            key: Callable[[T], int] | None = None,
            group: Callable[[T], str] | None = None) -> list[T]:
    """Rows drawn round-robin over labels, each label equally often (with repeats), shuffled.

    ``n`` rows (None: as many as make every label as frequent as the most frequent one);
    ``key`` gives a row's label (default: ``row["label"]``). Rows of several groups (``group``,
    default :func:`row_group`: a training mix on several scales) are balanced within each
    group, and each group keeps its share of the rows (groups are visited by a smooth
    weighted round-robin); one group draws exactly as without groups.
    """
    label_of: Callable[[T], int] = key or (lambda r: r["label"])  # type: ignore[index]
    group_of: Callable[[T], str] = group or (
        lambda r: row_group(r) if isinstance(r, Mapping) else "")
    by_group: dict[str, dict[int, list[T]]] = defaultdict(lambda: defaultdict(list))
    for r in rows:
        by_group[group_of(r)][label_of(r)].append(r)
    if not by_group:
        return []
    if n is None:
        n = sum(len(g) * max(len(v) for v in g.values()) for g in by_group.values())
    rng = random.Random(seed)
    groups = sorted(by_group)
    share = {g: sum(len(v) for v in by_group[g].values()) / len(rows) for g in groups}
    credit = dict.fromkeys(groups, 0.0)
    pools: dict[tuple[str, int], list[T]] = {(g, k): [] for g in groups for k in by_group[g]}
    cycles = {g: sorted(by_group[g]) for g in groups}
    turn = dict.fromkeys(groups, 0)
    out: list[T] = []
    while len(out) < n:
        for g in credit:
            credit[g] += share[g]
        g = max(groups, key=lambda x: credit[x])
        credit[g] -= 1.0
        k = cycles[g][turn[g] % len(cycles[g])]
        turn[g] += 1
        if not pools[g, k]:
            pools[g, k] = list(by_group[g][k])
            rng.shuffle(pools[g, k])
        out.append(pools[g, k].pop())
    out = out[:n]
    rng.shuffle(out)
    return out
