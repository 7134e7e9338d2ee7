"""The reward of a pairwise training row (verl's ``compute_score`` contract), and J1's
both-orders credit over a batch.

:func:`pairwise_score` returns the same keys as the pointwise
:func:`judgeforge.train.reward.compute_score` (verl logs each key as a metric, so a mixed batch
stays rectangular), read for verdicts: ``predicted``/``true`` are the verdict's position
(a 0, tie 0.5, b 1; -1 when unparsed), ``abs_error`` their distance (1 when unparsed),
``accuracy`` the exact verdict, ``within1`` "not the opposite side", ``parsed`` 1/0. The score is
:class:`judgeforge.pairwise_reward.PairwiseReward` (1 right, ``tie_credit`` near miss, 0 wrong,
``min_reward`` for no ``<verdict>`` tag: a parse failure never names a winner).

:func:`apply_both_orders` (verl's batch reward manager through
:func:`judgeforge.train.reward.compute_score_batch`; the CPU trainer can call it on a TRL batch)
pairs the rows of one pair judged in both orders within a batch (the k-th "ab" sample with the
k-th "ba" sample) and pays both :func:`judgeforge.pairwise_reward.both_orders_reward`.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from judgeforge.pairwise_prompt import ParsedVerdict, parse_verdict
from judgeforge.pairwise_reward import PairwiseReward, both_orders_reward, check_verdict

from .pairwise_rows import read_pairwise_spec

__all__ = ["PAIRWISE_SCORE_KEYS", "apply_both_orders", "pairwise_score", "read_verdict"]

PAIRWISE_SCORE_KEYS = ("score", "predicted", "true", "abs_error", "accuracy", "within1", "parsed")
_POSITION = {"a": 0.0, "tie": 0.5, "b": 1.0}


def read_verdict(solution_str: str) -> str | None:
    """The verdict in a judge's text, None for a parse failure."""
    parsed = parse_verdict(solution_str)
    return parsed.preference if isinstance(parsed, ParsedVerdict) else None


def _reward(extra_info: Mapping[str, Any] | None, overrides: Mapping[str, Any]) -> PairwiseReward:
    spec = read_pairwise_spec(extra_info)
    tie = overrides.get("tie_credit", spec["tie_credit"] if spec else 0.5)
    return PairwiseReward(tie_credit=float(tie),
                          min_reward=float(overrides.get("min_reward", 0.0)))


def pairwise_score(solution_str: str, ground_truth: Any,
                   extra_info: Mapping[str, Any] | None = None,
                   **kwargs: Any) -> dict[str, float]:
    """Reward one judge output against the gold verdict (``"a"``, ``"b"``, ``"tie"``); a bad
    gold is a DataError naming ``ground_truth``."""
    gold = check_verdict(ground_truth, "ground_truth")
    reward = _reward(extra_info, kwargs)
    verdict = read_verdict(solution_str)
    if verdict is None:
        return {"score": float(reward.min_reward), "predicted": -1.0, "true": _POSITION[gold],
                "abs_error": 1.0, "accuracy": 0.0, "within1": 0.0, "parsed": 0.0}
    error = abs(_POSITION[verdict] - _POSITION[gold])
    return {"score": reward(verdict, gold), "predicted": _POSITION[verdict],
            "true": _POSITION[gold], "abs_error": error, "accuracy": float(error == 0),
            "within1": float(error < 1), "parsed": 1.0}


def apply_both_orders(scores: list[dict[str, float]], solution_strs: Sequence[str],
                      ground_truths: Sequence[Any],
                      extra_infos: Sequence[Mapping[str, Any] | None],
                      **kwargs: Any) -> list[dict[str, float]]:
    """``scores`` with J1's credit on the pairwise rows whose pair was judged in both orders in
    this batch (rows with ``consistency`` "none", pointwise rows and unmatched rows keep their
    own score). Returns new dicts; the inputs are not changed."""
    out = [dict(s) for s in scores]
    orders: dict[str, dict[str, list[int]]] = defaultdict(lambda: {"ab": [], "ba": []})
    for i, info in enumerate(extra_infos):
        spec = read_pairwise_spec(info)
        if spec is None or spec["consistency"] == "none" or spec["order"] not in ("ab", "ba"):
            continue
        orders[spec["pair"]][spec["order"]].append(i)
    for both in orders.values():
        for i, j in zip(both["ab"], both["ba"]):
            spec = read_pairwise_spec(extra_infos[i])
            mode: Literal["strict", "mean"] = (
                "mean" if spec and spec["consistency"] == "mean" else "strict")
            credit = both_orders_reward(read_verdict(solution_strs[i]),
                                        read_verdict(solution_strs[j]),
                                        check_verdict(ground_truths[i], "ground_truth"),
                                        reward=_reward(extra_infos[i], kwargs), mode=mode)
            out[i]["score"] = out[j]["score"] = float(credit)
    return out
