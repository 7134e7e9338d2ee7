"""A preference from any pointwise judge: score both responses, prefer the higher.

    grader = PointwisePreferenceGrader(LLMGrader(model, mode="expected"), margin=0.25)
    result = await grader.aevaluate(query="...", response_a="...", response_b="...")
    result.preference, result.score  # score = score(a) - score(b) on the judge's scale

Both responses are graded by the same :class:`~judgeforge.graders.llm_grader.LLMGrader` (its
prompt, mode and calibration: expected mode is what ``for_judge`` builds by default), at once.
The verdict is :func:`preference_from_diff`: ``tie`` when ``|score(a) - score(b)| <= margin``.
:func:`fit_margin` chooses the margin that maximises macro-F1 (or accuracy) on a dev split's
score differences. If either response gets no score, the comparison is that error (its
``error_type``, ``parse_status`` and ``retryable``), never a winner.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import Any

from judgeforge.errors import ConfigError, DataError
from judgeforge.graders.base import BaseGrader
from judgeforge.graders.pairwise._inputs import pair_input_problem
from judgeforge.graders.results import GraderError, GraderPreference, GraderResult, is_error
from judgeforge.pairwise_prompt import Preference

__all__ = ["PointwisePreferenceGrader", "preference_from_diff", "fit_margin", "MARGIN_METRICS"]

MARGIN_METRICS = ("macro_f1", "accuracy")


def preference_from_diff(diff: float, margin: float = 0.0) -> Preference:
    """``a`` when ``diff = score(a) - score(b) > margin``, ``b`` when ``< -margin``, else tie."""
    if abs(diff) <= margin:
        return "tie"
    return "a" if diff > 0 else "b"


def fit_margin(diffs: Sequence[float | None], labels: Sequence[str], *,
               metric: str = "macro_f1") -> float:
    """The tie margin that maximises ``metric`` (``macro_f1`` or ``accuracy``) of
    :func:`preference_from_diff` on a dev split: candidates are 0 and the midpoints between
    consecutive distinct ``|diff|``; ties between candidates go to the smallest margin. A None
    diff (a failed row) counts as wrong whatever the margin."""
    from judgeforge.metrics import preference_metrics

    if metric not in MARGIN_METRICS:
        raise ConfigError(f"metric must be one of {MARGIN_METRICS}, got {metric!r}")
    if len(diffs) != len(labels):
        raise DataError(f"{len(diffs)} score differences for {len(labels)} labels")
    if not labels:
        raise DataError("fit_margin needs at least one dev row")
    sizes = sorted({abs(d) for d in diffs if d is not None})
    candidates = [0.0] + [(x + y) / 2 for x, y in zip(sizes, sizes[1:])]
    if sizes:
        candidates.append(sizes[-1])
    best, best_value = 0.0, -1.0
    for margin in candidates:
        preds = [None if d is None else preference_from_diff(d, margin) for d in diffs]
        value = preference_metrics(preds, labels, bootstrap=0)[metric] or 0.0
        if value > best_value + 1e-12:
            best, best_value = margin, value
    return float(best)


class PointwisePreferenceGrader(BaseGrader):
    """Compares two responses with a pointwise grader (see the module docstring).

    ``pointwise``: any grader whose ``aevaluate(query=, response=, rubric=, reference=)``
    returns a score. ``margin``: the tie margin on the score scale (0: only equal scores tie).
    """

    def __init__(self, pointwise: Any, *, margin: float = 0.0, name: str | None = None,
                 description: str = "") -> None:
        if margin < 0:
            raise ConfigError(f"margin must be >= 0, got {margin}")
        super().__init__(name or f"{getattr(pointwise, 'name', 'pointwise')}_preference",
                         description)
        self.pointwise = pointwise
        self.margin = float(margin)

    @classmethod
    def for_judge(cls, model: Any, *, mode: str = "expected", margin: float = 0.0,
                  name: str | None = None, **grader_kwargs: Any) -> PointwisePreferenceGrader:
        """An :class:`LLMGrader` on ``model`` (expected mode unless ``mode``) compared."""
        from judgeforge.graders.llm_grader import LLMGrader

        inner = LLMGrader(model, mode=mode, **grader_kwargs)  # type: ignore[arg-type]
        return cls(inner, margin=margin, name=name)

    def fingerprint_data(self) -> dict[str, Any]:
        """The inner grader's fingerprint data plus the margin (stale-result check)."""
        from judgeforge.graders.runner.checkpoint import grader_fingerprint

        return {"name": self.name, "kind": "pointwise_preference", "margin": self.margin,
                "pointwise": grader_fingerprint(self.pointwise)}

    def _error(self, side: str, err: Any, started: float) -> GraderError:
        meta = dict(getattr(err, "metadata", None) or {})
        meta.update(side=side, latency_s=time.perf_counter() - started)
        meta.setdefault("error_type", "GraderError")
        meta.setdefault("retryable", False)
        return GraderError(name=self.name, error=f"response_{side}: {err.error}",
                           reason=f"response {side} got no score: {err.reason}", metadata=meta)

    async def _aevaluate(self, query: Any = None, response_a: Any = None,
                         response_b: Any = None, *, rubric: str | None = None,
                         reference: str | None = None, **_: Any) -> GraderResult:
        started = time.perf_counter()
        problem = pair_input_problem(self.name, query, response_a, response_b, rubric,
                                     reference)
        if problem is not None:
            return problem
        common = {"query": query, "rubric": rubric, "reference": reference}
        ra, rb = await asyncio.gather(self.pointwise.aevaluate(response=response_a, **common),
                                      self.pointwise.aevaluate(response=response_b, **common))
        for side, res in (("a", ra), ("b", rb)):
            if is_error(res):
                return self._error(side, res, started)
        diff = float(ra.score) - float(rb.score)
        tokens = [(r.metadata or {}).get("tokens") or {} for r in (ra, rb)]
        meta = {"scores": {"a": float(ra.score), "b": float(rb.score)}, "margin": self.margin,
                "mode": (ra.metadata or {}).get("mode"), "parse_status": "ok",
                "model": (ra.metadata or {}).get("model", ""),
                "latency_s": time.perf_counter() - started,
                "tokens": {k: sum(int(t.get(k, 0)) for t in tokens)
                           for k in ("prompt", "completion", "total")},
                "raw_output": {"a": (ra.metadata or {}).get("raw_output"),
                               "b": (rb.metadata or {}).get("raw_output")}}
        return GraderPreference(
            name=self.name, preference=preference_from_diff(diff, self.margin), probability=None,
            score=diff, reason=f"pointwise scores: a {ra.score:.3f}, b {rb.score:.3f}",
            metadata=meta)
