"""Pairwise records -> training rows for a pairwise judge (both backends' column layouts).

The prompt is :meth:`judgeforge.pairwise_prompt.PairwisePromptTemplate.record_messages` (the
path the pairwise grader, ``grade``, the endpoint and the benchmark use); the SFT target is
``<verdict>A|B|TIE</verdict>``; the gold verdict is the row's ``ground_truth``. With
``both_orders`` (the default) every pair gives two rows, as stored (``order`` "ab") and swapped
("ba", its gold mirrored), sharing a ``pair`` id: the judge sees each response on both sides,
and a batch holding both can pay J1's consistency credit
(:func:`judgeforge.train.pairwise_score.apply_both_orders`).

What the row says about itself travels in ``extra_info["judgeforge"]`` like a pointwise
:class:`~judgeforge.train.rows.RowSpec`, marked ``"task": "pairwise"``::

    {"task": "pairwise", "reward": "pairwise", "tie_credit": 0.5, "consistency": "strict",
     "pair": "<record id>", "order": "ab"}

:func:`judgeforge.train.reward.compute_score` reads it and scores the row with
:func:`judgeforge.train.pairwise_score.pairwise_score`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypedDict

from judgeforge.data.pairwise import PairwiseRecord
from judgeforge.data.validate import RowError, format_errors
from judgeforge.errors import ConfigError, DataError
from judgeforge.pairwise_prompt import PairwisePromptTemplate
from judgeforge.pairwise_reward import PairwiseReward

__all__ = ["PAIRWISE_TASK", "VERDICT_CODES", "PairwiseRowSpec", "PairwiseTrainRow",
           "build_pairwise_rows", "is_pairwise_row", "read_pairwise_spec", "verdict_completion"]

PAIRWISE_TASK = "pairwise"
#: A verdict as the integer ``label`` column the CPU backend balances on.
VERDICT_CODES = {"a": 0, "b": 1, "tie": 2}
_ANSWER = {"a": "A", "b": "B", "tie": "TIE"}
Consistency = Literal["strict", "mean", "none"]


class PairwiseRowSpec(TypedDict):
    """``extra_info["judgeforge"]`` of a pairwise row."""

    task: str
    reward: str
    tie_credit: float
    consistency: str
    pair: str
    order: str


def read_pairwise_spec(extra_info: Mapping[str, Any] | None) -> PairwiseRowSpec | None:
    """The :class:`PairwiseRowSpec` of a row (None for a row that is not pairwise)."""
    raw = (extra_info or {}).get("judgeforge") if isinstance(extra_info, Mapping) else None
    if not isinstance(raw, Mapping) or raw.get("task") != PAIRWISE_TASK:
        return None
    tie = raw.get("tie_credit")
    return PairwiseRowSpec(task=PAIRWISE_TASK, reward=str(raw.get("reward") or "pairwise"),
                           tie_credit=float(tie) if tie is not None else 0.5,
                           consistency=str(raw.get("consistency") or "strict"),
                           pair=str(raw.get("pair") or ""), order=str(raw.get("order") or "ab"))


def is_pairwise_row(extra_info: Mapping[str, Any] | None) -> bool:
    """Whether a training row's ``extra_info`` marks it as a pairwise row."""
    return read_pairwise_spec(extra_info) is not None


def verdict_completion(verdict: str) -> str:
    """The SFT target for ``verdict``: ``<verdict>A</verdict>`` (B, TIE)."""
    return f"<verdict>{_ANSWER[verdict]}</verdict>"


@dataclass(frozen=True)
class PairwiseTrainRow:
    """One pairwise training row (one order of one pair), before a backend's column layout."""

    index: int
    id: str
    prompt: list[dict[str, str]]
    verdict: str  # the gold verdict in this row's order
    data_source: str
    spec: PairwiseRowSpec
    source_extra: str | None

    @property
    def completion(self) -> str:
        return verdict_completion(self.verdict)

    def extra_info(self) -> dict[str, Any]:
        info: dict[str, Any] = {"index": self.index, "id": self.id, "judgeforge": self.spec}
        if self.source_extra is not None:
            info["source_extra"] = self.source_extra
        return info

    def cpu_row(self) -> dict[str, Any]:
        """The CPU backend's row: ``ground_truth`` is the verdict, ``label`` its code
        (:data:`VERDICT_CODES`: a 0, b 1, tie 2) for label balancing."""
        return {"prompt": self.prompt, "completion": self.completion,
                "label": VERDICT_CODES[self.verdict], "ground_truth": self.verdict,
                "data_source": self.data_source, "extra_info": self.extra_info()}

    def verl_row(self) -> dict[str, Any]:
        """verl's RL row (``reward_model.ground_truth`` is the verdict)."""
        return {"prompt": self.prompt, "data_source": self.data_source, "ability": "judge",
                "reward_model": {"style": "rule", "ground_truth": self.verdict},
                "extra_info": self.extra_info()}


def build_pairwise_rows(
    records: Sequence[PairwiseRecord],
    template: PairwisePromptTemplate | None = None,
    *,
    both_orders: bool = True,
    tie_credit: float = 0.5,
    consistency: Consistency = "strict",
    what: str = "data",
) -> list[PairwiseTrainRow]:
    """Training rows for pairwise ``records`` (two per record with ``both_orders``: as stored,
    then swapped). ``tie_credit`` and ``consistency`` ("strict": J1's credit, "mean", "none")
    travel in each row's spec for the reward. Raises DataError naming every record without an
    id-able identity twice (repeated ids would merge two pairs' orders)."""
    if consistency not in ("strict", "mean", "none"):
        raise ConfigError(f"consistency must be strict, mean or none, got {consistency!r}")
    PairwiseReward(tie_credit=tie_credit)  # a bad tie_credit is a ConfigError now, not mid-run
    template = template or PairwisePromptTemplate()
    seen: dict[str, int] = {}
    errors: list[RowError] = []
    rows: list[PairwiseTrainRow] = []
    for i, rec in enumerate(records):
        pair = rec.id or f"row-{i}"
        if pair in seen:
            errors.append(RowError(i, None, "id", f"{pair!r} repeats the id of row {seen[pair]}"))
            continue
        seen[pair] = i
        extra = (json.dumps(rec.extra_info, ensure_ascii=False, default=str)
                 if rec.extra_info else None)
        orders = [("ab", rec)] + ([("ba", rec.swapped())] if both_orders else [])
        for order, shown in orders:
            spec = PairwiseRowSpec(task=PAIRWISE_TASK, reward="pairwise",
                                   tie_credit=float(tie_credit), consistency=consistency,
                                   pair=pair, order=order)
            rows.append(PairwiseTrainRow(
                index=i, id=f"{pair}:{order}", prompt=template.record_messages(shown),
                verdict=shown.preference, data_source=rec.data_source, spec=spec,
                source_extra=extra))
    if errors:
        raise DataError(f"{what}: {len(errors)} of {len(records)} pairs cannot be trained on:\n"
                        f"{format_errors(errors)}", errors)
    return rows
