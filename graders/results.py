"""Grader result values: a score or an error, never an exception and never a silent 0.

Field names and types mirror OpenJudge's ``openjudge.graders.schema.GraderScore`` /
``GraderError`` (``name``, ``reason``, ``metadata``; ``score: float``; ``error: str``), so code
written against one reads the other. Both are pydantic models.

A comparison's verdict is a :class:`GraderPreference` (a score that also carries
``preference`` and ``probability``; its dict form has both keys).

Metadata keys judgeforge's own graders write:

- scores: ``raw_output``, ``parse_status`` (``"ok"``), ``normalized_score`` (0-1 over the
  scale), ``latency_s``, ``tokens`` (``prompt``/``completion``/``total``), ``mode``, ``model``,
  plus mode-specific keys (``distribution``/``argmax`` for ``expected``, ``votes`` for ``vote``).
- errors: ``error_type`` (the exception class or ``"ParseFailure"``/``"MappingError"``),
  ``retryable`` (True for transport failures, which a rerun of a checkpointed batch redoes),
  and for parse failures ``raw_output`` and ``parse_status`` (``no_score``, ``out_of_range``...).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from judgeforge.errors import DataError, UsageError

__all__ = [
    "GraderScore",
    "GraderError",
    "GraderPreference",
    "GraderResult",
    "to_dict",
    "from_dict",
    "is_error",
    "is_score",
]


class _ResultBase(BaseModel):
    """Fields shared by scores and errors (OpenJudge's ``GraderResult``)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(description="The name of the grader")
    reason: str = Field(default="", description="The reason for the result")
    metadata: dict[str, Any] = Field(default_factory=dict,
                                     description="The metadata of the grader result")

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (see :func:`to_dict`)."""
        return to_dict(self)


class GraderScore(_ResultBase):
    """A score with its reason. ``metadata`` carries raw output, parse status, latency, tokens."""

    score: float = Field(description="score")


class GraderError(_ResultBase):
    """An evaluation that produced no score: ``error`` says what went wrong, ``reason`` why."""

    error: str = Field(description="error")

    @property
    def retryable(self) -> bool:
        """True when a rerun may succeed (a transport failure rather than a final verdict)."""
        return bool(self.metadata.get("retryable", False))


class GraderPreference(GraderScore):
    """A comparison's verdict: ``preference`` (``"a"``, ``"b"`` or ``"tie"``), ``probability``
    (how sure the judge is of that verdict, 0-1; None when it gave no probabilities) and
    ``score``, the signed margin (positive favours ``a``): ``P(a) - P(b)`` for a pairwise judge,
    ``score(a) - score(b)`` on the scale for a pointwise judge compared. It is a
    :class:`GraderScore`, so runners, checkpoints and serialisers treat it as one."""

    preference: Literal["a", "b", "tie"] = Field(description="the preferred response, or tie")
    probability: float | None = Field(default=None, description="the verdict's probability")


GraderResult = GraderScore | GraderError


def is_error(result: Any) -> bool:
    """True for an error value (ours or OpenJudge's: anything with an ``error`` attribute)."""
    return getattr(result, "error", None) is not None


def is_score(result: Any) -> bool:
    """True for a score value (ours or OpenJudge's)."""
    return not is_error(result) and isinstance(getattr(result, "score", None), (int, float))


def _jsonable(value: Any) -> Any:
    """Metadata made JSON-safe: NaN/inf become None, unknown objects their ``str``."""
    if value is None or isinstance(value, (str, bool, int)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_jsonable(v) for v in value]
    if hasattr(value, "model_dump"):
        return _jsonable(value.model_dump(mode="json"))
    if hasattr(value, "value") and isinstance(value.value, (str, int)):  # enums
        return value.value
    return str(value)


def to_dict(result: Any) -> dict[str, Any]:
    """Serialise a result (ours, OpenJudge's or any object with the same fields) for JSONL.

    Scores give ``{"name", "score", "reason", "metadata"}``; errors ``{"name", "error",
    "reason", "metadata"}``.
    """
    out: dict[str, Any] = {"name": str(getattr(result, "name", "") or "")}
    if is_error(result):
        out["error"] = str(result.error)
    else:
        score = getattr(result, "score", None)
        if not isinstance(score, (int, float)):
            raise UsageError(f"not a grader score or error: {result!r}")
        out["score"] = float(score)
        if getattr(result, "preference", None) is not None:
            out["preference"] = str(result.preference)
            prob = getattr(result, "probability", None)
            out["probability"] = None if prob is None else _jsonable(float(prob))
    out["reason"] = str(getattr(result, "reason", "") or "")
    out["metadata"] = _jsonable(getattr(result, "metadata", None) or {})
    return out


def from_dict(data: Mapping[str, Any]) -> GraderResult:
    """The inverse of :func:`to_dict`: a dict with ``error`` is a :class:`GraderError`."""
    fields = {k: data[k] for k in ("name", "reason", "metadata") if data.get(k) is not None}
    fields.setdefault("name", "")
    if data.get("error") is not None:
        return GraderError(error=str(data["error"]), **fields)
    if "score" not in data or data["score"] is None:
        raise DataError(f"neither 'score' nor 'error' in {dict(data)!r}")
    if data.get("preference") is not None:
        prob = data.get("probability")
        return GraderPreference(score=float(data["score"]), preference=data["preference"],
                                probability=None if prob is None else float(prob), **fields)
    return GraderScore(score=float(data["score"]), **fields)
