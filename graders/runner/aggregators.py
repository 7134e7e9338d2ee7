"""Aggregators: combine one row's results from several graders into one value.

An aggregator is a callable ``{config_key: result} -> result`` with a ``name`` (OpenJudge's
``__name__``); OpenJudge's own aggregators work in judgeforge's runner too.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from judgeforge.graders.results import GraderError, GraderResult, GraderScore, is_score

__all__ = ["WeightedMean"]


class WeightedMean:
    """Weighted mean of the graders' scores for one row.

    ``weights`` maps config keys to weights (missing keys weigh 0; ``None`` means equal
    weights). Error values are left out unless ``require_all``, which makes any failed
    component an error. ``normalized`` averages ``metadata["normalized_score"]`` (0-1) instead
    of raw scores, for graders on different scales. No score at all is an error, never 0.
    """

    def __init__(self, name: str = "weighted_mean", weights: Mapping[str, float] | None = None,
                 *, normalized: bool = False, require_all: bool = False) -> None:
        self.name = name
        self.weights = dict(weights) if weights else None
        self.normalized = normalized
        self.require_all = require_all

    @property
    def __name__(self) -> str:  # OpenJudge's runner names the aggregate column with this
        return self.name

    def _value(self, result: Any) -> float | None:
        if not is_score(result):
            return None
        if self.normalized:
            value = (getattr(result, "metadata", None) or {}).get("normalized_score")
            return float(value) if isinstance(value, (int, float)) else None
        return float(result.score)

    def __call__(self, results: Mapping[str, Any], **_: Any) -> GraderResult:
        weights = self.weights or {k: 1.0 for k in results}
        total = weighted = 0.0
        components: dict[str, Any] = {}
        failed: list[str] = []
        for key, result in results.items():
            w = float(weights.get(key, 0.0))
            value = self._value(result)
            if value is None:
                failed.append(key)
                components[key] = {"error": str(getattr(result, "error", "no usable score"))}
                continue
            components[key] = {"score": value, "weight": w}
            weighted += w * value
            total += w
        meta = {"weights": weights, "components": components, "normalized": self.normalized}
        if failed and self.require_all:
            return GraderError(name=self.name, error=f"component(s) failed: {', '.join(failed)}",
                               reason="a required component has no score",
                               metadata={**meta, "error_type": "AggregationError",
                                         "retryable": False})
        if total <= 0.0:
            return GraderError(name=self.name, error="no weighted component has a score",
                               reason="nothing to aggregate",
                               metadata={**meta, "error_type": "AggregationError",
                                         "retryable": False})
        parts = ", ".join(f"{k}: {c['score']:.3f} (w={c['weight']:g})"
                          for k, c in components.items() if "score" in c)
        return GraderScore(name=self.name, score=weighted / total,
                           reason=f"weighted mean of {parts}", metadata=meta)
