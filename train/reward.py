"""verl's reward contract: ``compute_score(data_source, solution_str, ground_truth, extra_info)``.

Wire it with ``reward.custom_reward_function.path=pkg://judgeforge.train.reward`` and
``reward.custom_reward_function.name=compute_score`` (verl 0.9; the seed page's top-level
``custom_reward_function.*`` keys are silently ignored there). TRL's CPU backend uses the same
function. It never imports torch.

The returned dict has the same keys on every call (verl logs each key as a metric):
``score`` (the reward), ``predicted`` (mean predicted score, -1 when unparsed), ``true`` (mean
label), ``abs_error`` (the worst possible error when unparsed), ``accuracy`` (exact match),
``within1``, ``parsed`` (1/0).

What the row says about itself travels in ``extra_info["judgeforge"]``, a
:class:`~judgeforge.train.rows.RowSpec` written by :func:`judgeforge.train.rows.build_rows`
(both backends): ``{"dimensions": {"helpfulness": [0, 4]}, "reward": "exp_decay", "k": 2.0}``.
Keyword arguments (verl's ``reward_kwargs``) override it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from judgeforge.data.schema import DEFAULT_SCALE, Scale
from judgeforge.parsing import ParsedScore, parse_score
from judgeforge.rewards import check_label, check_reward_setting, get_reward_function
from judgeforge.train.pairwise_rows import is_pairwise_row
from judgeforge.train.pairwise_score import apply_both_orders, pairwise_score
from judgeforge.train.rows import read_row_spec

__all__ = ["compute_score", "compute_score_batch", "row_spec", "REWARD_KEYS"]

REWARD_KEYS = ("score", "predicted", "true", "abs_error", "accuracy", "within1", "parsed")


def _labels(ground_truth: Any) -> dict[str, int]:
    if isinstance(ground_truth, str):
        try:
            ground_truth = json.loads(ground_truth)
        except json.JSONDecodeError:
            pass  # a bare number as text ("3"): check_label reads it
    if isinstance(ground_truth, Mapping):
        return {str(k): check_label(v, what=f"ground_truth.{k}")
                for k, v in ground_truth.items() if v is not None}
    return {"score": check_label(ground_truth, what="ground_truth")}


def row_spec(extra_info: Mapping[str, Any] | None, labels: Mapping[str, int],
             overrides: Mapping[str, Any]) -> tuple[dict[str, Scale], str, dict[str, Any]]:
    """(dimension -> scale, reward name, reward params) for one row."""
    found = read_row_spec(extra_info)
    spec: dict[str, Any] = dict(found) if found is not None else {}
    spec.update({k: v for k, v in overrides.items() if k in ("dimensions", "reward", "k")})
    dims_raw = spec.get("dimensions")
    if dims_raw:
        dims = {str(d): Scale(min=int(r[0]), max=int(r[1])) for d, r in dict(dims_raw).items()}
    else:
        dims = {d: DEFAULT_SCALE for d in labels}
    reward = str(spec.get("reward") or "exp_decay")
    params: dict[str, Any] = {}
    if reward == "exp_decay" and spec.get("k") is not None:
        where = "k (keyword)" if "k" in overrides else "k (extra_info['judgeforge'])"
        params["k"] = check_reward_setting("k", spec["k"], where)
    return dims, reward, params


def compute_score(data_source: str, solution_str: str, ground_truth: Any,
                  extra_info: Mapping[str, Any] | None = None, **kwargs: Any) -> dict[str, float]:
    """Reward one judge output against its label(s); see the module docstring. A pairwise row
    (``extra_info["judgeforge"]["task"] == "pairwise"``) is scored on its verdict by
    :func:`judgeforge.train.pairwise_score.pairwise_score` (same keys)."""
    if is_pairwise_row(extra_info):
        return pairwise_score(solution_str, ground_truth, extra_info, **kwargs)
    labels = _labels(ground_truth)
    dims, reward_name, params = row_spec(extra_info, labels, kwargs)
    if list(labels) == ["score"] and len(dims) == 1 and "score" not in dims:
        labels = {next(iter(dims)): labels["score"]}  # a bare number labels the one dimension
    dims = {d: s for d, s in dims.items() if d in labels} or dims
    labels = {d: check_label(v, dims.get(d), f"ground_truth.{d}") for d, v in labels.items()}
    reward_fn = get_reward_function(reward_name, **params)
    parsed = parse_score(solution_str, dimensions=dims)
    trues = [labels[d] for d in dims if d in labels]
    true_mean = sum(trues) / len(trues) if trues else -1.0
    if not isinstance(parsed, ParsedScore) or not trues:
        worst = [max(labels[d] - s.min, s.max - labels[d]) for d, s in dims.items() if d in labels]
        return {"score": float(reward_fn.min_reward), "predicted": -1.0, "true": float(true_mean),
                "abs_error": float(sum(worst) / len(worst)) if worst else 0.0,
                "accuracy": 0.0, "within1": 0.0, "parsed": 0.0}
    rewards, errors = [], []
    for dim, scale in dims.items():
        pred, true = parsed.scores[dim], labels[dim]
        rewards.append(reward_fn(pred, true, scale))
        errors.append(abs(pred - true))
    preds = [parsed.scores[d] for d in dims]
    return {
        "score": float(sum(rewards) / len(rewards)),
        "predicted": float(sum(preds) / len(preds)),
        "true": float(true_mean),
        "abs_error": float(sum(errors) / len(errors)),
        "accuracy": float(all(e == 0 for e in errors)),
        "within1": float(all(e <= 1 for e in errors)),
        "parsed": 1.0,
    }


def compute_score_batch(data_sources: Sequence[str], solution_strs: Sequence[str],
                        ground_truths: Sequence[Any],
                        extra_infos: Sequence[Mapping[str, Any] | None] | None = None,
                        **kwargs: Any) -> list[dict[str, float]]:
    """verl's batch reward manager contract (``reward.reward_manager.name=batch``,
    ``reward.custom_reward_function.name=compute_score_batch``): every row scored by
    :func:`compute_score`, then J1's both-orders credit for the pairwise rows whose two orders
    are in the batch (:func:`judgeforge.train.pairwise_score.apply_both_orders`)."""
    infos = list(extra_infos) if extra_infos is not None else [None] * len(solution_strs)
    scores = [compute_score(src, text, truth, info, **kwargs)
              for src, text, truth, info in zip(data_sources, solution_strs, ground_truths, infos)]
    return apply_both_orders(scores, solution_strs, ground_truths, infos, **kwargs)
