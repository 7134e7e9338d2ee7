"""Rewards for training a pairwise judge: the verdict (``a``, ``b`` or ``tie``) against the gold.

:class:`PairwiseReward` pays ``correct`` for the gold verdict, ``tie_credit`` for a near miss (a
tie when one side is better, or a side when the gold is a tie: not the wrong side), ``wrong``
for the opposite side, and ``min_reward`` for a parse failure (``None``): a failure never earns
more than any answer (checked when the reward is made). Pure functions, no model, no torch.

:func:`both_orders_reward` is J1's consistency credit (Whitehouse et al., 2025,
arXiv:2505.10320): the judge reads the pair in both orders (``a, b`` and swapped ``b, a``);
``mode="strict"`` pays ``correct`` only when both verdicts are right once the swapped one is
mirrored back, else the worse of the two per-order rewards (so a parse failure in either order
pays ``min_reward`` and position bias earns nothing); ``mode="mean"`` pays the two rewards'
mean.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from judgeforge.errors import ConfigError, DataError

__all__ = ["PairwiseReward", "Verdict", "both_orders_reward", "check_verdict", "pairwise_reward"]

Verdict = Literal["a", "b", "tie"]
_VERDICTS: dict[str, Verdict] = {"a": "a", "b": "b", "tie": "tie"}
_MIRROR: dict[Verdict, Verdict] = {"a": "b", "b": "a", "tie": "tie"}


def check_verdict(value: Any, what: str = "verdict") -> Verdict:
    """``value`` as a verdict (``"a"``, ``"b"``, ``"tie"``, any case and spacing); else a
    :class:`DataError` naming ``what``."""
    if isinstance(value, str):
        verdict = _VERDICTS.get(value.strip().lower())
        if verdict is not None:
            return verdict
    raise DataError(f"{what}: {str(value)[:40]!r} is not a verdict (a, b or tie)")


@dataclass(frozen=True)
class PairwiseReward:
    """The reward of one verdict against the gold (see the module doc); ``None`` is a parse
    failure and earns ``min_reward``."""

    correct: float = 1.0
    tie_credit: float = 0.5
    wrong: float = 0.0
    min_reward: float = 0.0

    def __post_init__(self) -> None:
        values = {"correct": self.correct, "tie_credit": self.tie_credit, "wrong": self.wrong,
                  "min_reward": self.min_reward}
        for name, value in values.items():
            if isinstance(value, bool) or not isinstance(value, (int, float)) \
                    or value != value or value in (float("inf"), float("-inf")):
                raise ConfigError(f"pairwise reward {name} must be a finite number, got {value!r}")
        if not self.min_reward <= self.wrong <= self.tie_credit <= self.correct:
            raise ConfigError(
                "pairwise reward must order min_reward <= wrong <= tie_credit <= correct (a "
                "failure may not beat an answer, nor the wrong side a near miss), got "
                f"{self.min_reward}, {self.wrong}, {self.tie_credit}, {self.correct}")

    def __call__(self, predicted: Verdict | str | None, true: Verdict | str) -> float:
        gold = check_verdict(true, "true verdict")
        if predicted is None:
            return float(self.min_reward)
        verdict = check_verdict(predicted, "predicted verdict")
        if verdict == gold:
            return float(self.correct)
        if "tie" in (verdict, gold):
            return float(self.tie_credit)
        return float(self.wrong)


def pairwise_reward(predicted: Verdict | str | None, true: Verdict | str, *,
                    tie_credit: float = 0.5, min_reward: float = 0.0) -> float:
    """:class:`PairwiseReward` with its defaults (1 right, ``tie_credit`` near miss, 0 wrong,
    ``min_reward`` parse failure)."""
    return PairwiseReward(tie_credit=tie_credit, min_reward=min_reward)(predicted, true)


def both_orders_reward(verdict_ab: Verdict | str | None, verdict_ba: Verdict | str | None,
                       true_ab: Verdict | str, *, reward: PairwiseReward | None = None,
                       mode: Literal["strict", "mean"] = "strict") -> float:
    """J1-style credit for one pair judged in both orders.

    ``verdict_ab`` is the verdict on the pair as stored (``true_ab`` is its gold);
    ``verdict_ba`` the verdict on the swapped pair, in the swapped pair's own terms (its ``a``
    is the stored ``b``); either may be ``None`` (a parse failure).
    """
    fn = reward or PairwiseReward()
    gold = check_verdict(true_ab, "true verdict")
    first = fn(verdict_ab, gold)
    second = fn(verdict_ba, _MIRROR[gold])
    if mode == "mean":
        return (first + second) / 2
    if mode != "strict":
        raise ConfigError(f"both_orders_reward mode must be 'strict' or 'mean', got {mode!r}")
    return float(fn.correct) if first == second == fn.correct else min(first, second)
