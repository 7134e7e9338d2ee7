"""Reward functions for training judges: prediction vs label on an integer scale.

Contract (like TRL's reward functions, but per item): ``fn(predicted, true, scale) -> float``
where ``predicted`` is ``None`` for a parse failure. Every built-in pays its minimum reward for a
parse failure, whatever the label (the seed maps failures to a prediction of 0, which pays full
reward when the label is 0; judgeforge does not).

Labels are checked (:func:`check_label`): an integer (``3``, ``3.0``, ``"3"``) inside the scale.
``3.7``, ``True``, NaN, inf or a label outside the scale is a :class:`~judgeforge.errors.DataError`
(an out-of-scale label would let a parse failure earn more than a valid answer).
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from judgeforge.data.schema import DEFAULT_SCALE, Scale
from judgeforge.data.validate import coerce_score
from judgeforge.errors import ConfigError, DataError

__all__ = ["RewardFunction", "ExpDecayReward", "QuadraticReward", "ExactMatchReward",
           "exp_decay_reward", "quadratic_reward", "exact_match_reward", "get_reward_function",
           "REWARDS", "check_label", "check_reward_setting"]

# Reward settings and the values they may take: (low, high, low is excluded). Every built-in
# pays 1.0 for the exact label, so a parse failure's ``min_reward`` must stay within [0, 1]
# (a failure must never beat an exact answer), ``k`` must decay (k = -2 paid 7.39 for an error of
# 4 against 1.0 for exact), and ``exact_bonus`` may only add. A user function's scale of rewards
# is its own: its ``min_reward`` (a penalty may be negative) need only be finite.
_SETTINGS: dict[str, tuple[float, float, bool]] = {
    "k": (0.0, math.inf, True),
    "min_reward": (0.0, 1.0, False),
    "exact_bonus": (0.0, math.inf, False),
    "user min_reward": (-math.inf, math.inf, False),
}


def check_reward_setting(name: str, value: Any, where: str | None = None) -> float:
    """``value`` as a float when it is a finite number allowed for the reward setting ``name``
    (``k`` > 0, ``min_reward`` in [0, 1], ``exact_bonus`` >= 0, ``user min_reward`` any finite
    number), else a :class:`ConfigError` naming ``where`` (default: the setting)."""
    low, high, open_low = _SETTINGS[name]
    label = where or name
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        if hasattr(value, "item"):  # a numpy scalar
            return check_reward_setting(name, value.item(), where)
        raise ConfigError(f"reward setting {label}: {str(value)[:40]!r} is not a number")
    number = float(value)
    too_low = number <= low if open_low else number < low
    if not math.isfinite(number) or too_low or number > high:
        bounds = [f"{'>' if open_low else '>='} {low:g}"] if math.isfinite(low) else []
        bounds += [f"<= {high:g}"] if math.isfinite(high) else []
        what = " ".join(["a finite number", " and ".join(bounds)]).strip()
        raise ConfigError(f"reward setting {label} must be {what}, got {number}")
    return number


def check_label(value: Any, scale: Scale | None = None, what: str = "label") -> int:
    """``value`` as an integer label, inside ``scale`` when given; else a DataError naming
    ``what`` (``3.7``, ``"3.7"``, ``True``, NaN, inf, ``None``, or outside the scale)."""
    if hasattr(value, "item") and not isinstance(value, (int, float, str)):  # numpy scalar
        value = value.item()
    try:
        label = coerce_score(value)
    except ValueError as exc:
        raise DataError(f"{what}: {exc}") from None
    if scale is not None and label not in scale:
        raise DataError(f"{what}: {label} is outside the scale {scale}")
    return label


class RewardFunction(Protocol):
    """``(predicted or None, true, scale) -> reward``; ``min_reward`` is paid for failures."""

    @property
    def min_reward(self) -> float: ...

    def __call__(self, predicted: int | None, true: int, scale: Scale = DEFAULT_SCALE) -> float: ...


@dataclass(frozen=True)
class ExpDecayReward:
    """``exp(-k * |pred - true| / (max - min))``; in (exp(-k), 1]; failures earn 0."""

    k: float = 2.0
    min_reward: float = 0.0

    def __post_init__(self) -> None:
        check_reward_setting("k", self.k)
        check_reward_setting("min_reward", self.min_reward)

    def __call__(self, predicted: int | None, true: int, scale: Scale = DEFAULT_SCALE) -> float:
        true = check_label(true, scale)
        if predicted is None or predicted not in scale:
            return self.min_reward
        return math.exp(-self.k * abs(predicted - true) / scale.span)


@dataclass(frozen=True)
class QuadraticReward:
    """``1 - (|pred - true| / (max - min))**2``; in [0, 1]; failures earn 0."""

    min_reward: float = 0.0

    def __post_init__(self) -> None:
        check_reward_setting("min_reward", self.min_reward)

    def __call__(self, predicted: int | None, true: int, scale: Scale = DEFAULT_SCALE) -> float:
        true = check_label(true, scale)
        if predicted is None or predicted not in scale:
            return self.min_reward
        return 1.0 - (abs(predicted - true) / scale.span) ** 2


@dataclass(frozen=True)
class ExactMatchReward:
    """1 for the exact label, else 0 (failures too)."""

    min_reward: float = 0.0

    def __post_init__(self) -> None:
        check_reward_setting("min_reward", self.min_reward)

    def __call__(self, predicted: int | None, true: int, scale: Scale = DEFAULT_SCALE) -> float:
        true = check_label(true, scale)
        if predicted is None or predicted not in scale:
            return self.min_reward
        return 1.0 if predicted == true else 0.0


@dataclass(frozen=True)
class _UserReward:
    """Wraps a user function ``fn(predicted, true, scale)``; failures earn ``min_reward``."""

    fn: Callable[..., float]
    min_reward: float = 0.0

    def __post_init__(self) -> None:
        check_reward_setting("user min_reward", self.min_reward, "min_reward")

    def __call__(self, predicted: int | None, true: int, scale: Scale = DEFAULT_SCALE) -> float:
        true = check_label(true, scale)
        if predicted is None or predicted not in scale:
            return self.min_reward
        return float(self.fn(predicted, true, scale))


def exp_decay_reward(predicted: int | None, true: int, scale: Scale = DEFAULT_SCALE,
                     k: float = 2.0) -> float:
    return ExpDecayReward(k=k)(predicted, true, scale)


def quadratic_reward(predicted: int | None, true: int, scale: Scale = DEFAULT_SCALE) -> float:
    return QuadraticReward()(predicted, true, scale)


def exact_match_reward(predicted: int | None, true: int, scale: Scale = DEFAULT_SCALE) -> float:
    return ExactMatchReward()(predicted, true, scale)


REWARDS: dict[str, Callable[..., RewardFunction]] = {
    "exp_decay": ExpDecayReward,
    "quadratic": QuadraticReward,
    "exact": ExactMatchReward,
}


def get_reward_function(name: str = "exp_decay", **params: Any) -> RewardFunction:
    """A built-in by name (``exp_decay``, ``quadratic``, ``exact``) or ``module:function``.

    A user function is called only for parsed, in-range predictions; failures earn
    ``params.get("min_reward", 0.0)``.
    """
    if name in REWARDS:
        return REWARDS[name](**params)
    module, sep, attr = name.partition(":")
    if not sep:
        raise ConfigError(f"unknown reward {name!r}: use one of {sorted(REWARDS)} or "
                          "'module:function'")
    try:
        fn = getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"cannot load reward function {name!r}: {exc}") from exc
    return _UserReward(fn, check_reward_setting("user min_reward", params.get("min_reward", 0.0),
                                                "min_reward"))
