"""``compute_score`` (verl's contract) as a TRL reward function.

TRL calls ``fn(prompts=..., completions=..., completion_ids=..., **columns)`` where the columns are
the dataset's (``ground_truth``, ``extra_info``, ``data_source``, ...) repeated per generation,
plus ``log_metric`` for extra scalars. The reward is ``compute_score(...)["score"]`` plus
``exact_bonus`` for an exact label; parse rate, accuracy and absolute error are logged as metrics
(``judge/parse_rate``, ``judge/accuracy``, ``judge/mae``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from ..reward import compute_score, compute_score_batch

__all__ = ["make_reward_function", "completion_text"]


def completion_text(completion: Any) -> str:
    """The text of a TRL completion (a string, or conversational ``[{"role", "content"}]``)."""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, Sequence) and completion and isinstance(completion[-1], dict):
        return str(completion[-1].get("content", ""))
    return str(completion)


def make_reward_function(exact_bonus: float = 0.0,
                         both_orders: bool = False) -> Callable[..., list[float]]:
    """A TRL reward function named ``judge_reward`` wrapping :func:`compute_score`
    (``exact_bonus``: a finite number >= 0, else a ConfigError). With ``both_orders`` (a
    pairwise run) the whole TRL batch is scored by :func:`compute_score_batch`: the pairwise
    rows whose two orders are in the batch get J1's both-orders credit."""
    from judgeforge.rewards import check_reward_setting

    exact_bonus = check_reward_setting("exact_bonus", exact_bonus)

    def judge_reward(prompts: Sequence[Any], completions: Sequence[Any],
                     ground_truth: Sequence[Any], extra_info: Sequence[Any] | None = None,
                     data_source: Sequence[str] | None = None, **kwargs: Any) -> list[float]:
        n = len(completions)
        infos = extra_info if extra_info is not None else [None] * n
        sources = data_source if data_source is not None else ["judgeforge"] * n
        rewards: list[float] = []
        parsed = correct = err = 0.0
        texts = [completion_text(c) for c in completions]
        if both_orders:
            results = compute_score_batch(list(sources), texts, list(ground_truth), list(infos))
        else:
            results = [compute_score(src, text, truth, info)
                       for text, truth, info, src in zip(texts, ground_truth, infos, sources)]
        for res in results:
            rewards.append(res["score"] + exact_bonus * res["accuracy"])
            parsed += res["parsed"]
            correct += res["accuracy"]
            err += res["abs_error"]
        log_metric = kwargs.get("log_metric")
        if callable(log_metric) and n:
            log_metric("judge/parse_rate", parsed / n)
            log_metric("judge/accuracy", correct / n)
            log_metric("judge/mae", err / n)
        return rewards

    return judge_reward
