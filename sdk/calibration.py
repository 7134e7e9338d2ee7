"""Calibration: a monotone map from a judge's raw score to the label scale.

A judge's expected score (the probability-weighted mean of its score tokens) ranks rows but
often sits in the wrong place on the scale (a small judge pulls every answer toward its favourite
digit). :func:`fit_calibration` fits a non-decreasing piecewise-linear map on held-out rows
(isotonic regression of the label on the raw score); the map travels in the judge card and every
grading surface applies it with :meth:`Calibration.__call__`.

    cal = fit_calibration(raw_scores, labels, low=1, high=5)
    cal(3.4)          # -> the calibrated score, inside [low, high]
    cal.to_dict()     # JSON-ready; Calibration.from_dict(...) reads it back
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from judgeforge.errors import ConfigError, DataError

__all__ = ["Calibration", "fit_calibration"]

_MAX_KNOTS = 100_000  # an isotonic fit has at most one knot per distinct raw score


@dataclass(frozen=True)
class Calibration:
    """A non-decreasing piecewise-linear map ``x -> y`` through the knots, flat outside them.

    ``low``/``high`` bound the output (the scale's ends); ``rows`` is how many rows it was
    fitted on (for the record).
    """

    x: tuple[float, ...]
    y: tuple[float, ...]
    low: float
    high: float
    kind: str = "isotonic"
    rows: int = 0

    def __post_init__(self) -> None:
        if not self.x or len(self.x) != len(self.y):
            raise ConfigError("calibration: x and y must be non-empty and of the same length")
        values = (*self.x, *self.y, self.low, self.high)
        if not all(isinstance(v, (int, float)) and math.isfinite(v) for v in values):
            raise ConfigError("calibration: every knot and bound must be a finite number")
        if any(b < a for a, b in zip(self.x, self.x[1:])):
            raise ConfigError("calibration: x must be non-decreasing")
        if any(b < a for a, b in zip(self.y, self.y[1:])):
            raise ConfigError("calibration: y must be non-decreasing (a monotone map)")
        if self.low > self.high:
            raise ConfigError("calibration: low must not exceed high")

    def __call__(self, value: float) -> float:
        """The calibrated score of ``value`` (clamped to ``[low, high]``)."""
        if not math.isfinite(value):
            raise DataError(f"calibration: cannot map a non-finite score {value!r}")
        xs, ys = self.x, self.y
        if value <= xs[0]:
            out = ys[0]
        elif value >= xs[-1]:
            out = ys[-1]
        else:
            i = bisect.bisect_right(xs, value)
            x0, x1, y0, y1 = xs[i - 1], xs[i], ys[i - 1], ys[i]
            out = y0 if x1 == x0 else y0 + (y1 - y0) * (value - x0) / (x1 - x0)
        return min(self.high, max(self.low, out))

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "x": list(self.x), "y": list(self.y), "low": self.low,
                "high": self.high, "rows": self.rows}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Calibration:
        """Read :meth:`to_dict`'s form; a missing or malformed key is a :class:`ConfigError`."""
        from pydantic import ValidationError

        try:
            return cls.validate_form(data)
        except ValidationError as exc:
            where = ", ".join(".".join(str(p) for p in e["loc"]) + ": " + e["msg"]
                              for e in exc.errors(include_url=False)[:3])
            raise ConfigError(f"calibration: malformed: {where}") from None

    @classmethod
    def validate_form(cls, data: Any) -> Calibration:
        """:meth:`to_dict`'s form checked strictly (numbers are JSON numbers, not text or
        booleans; no unknown keys); a problem is a pydantic ``ValidationError`` naming the key
        (for schemas that embed a calibration: the judge card). The map's own rules (monotone,
        finite) are :class:`ConfigError`."""
        form = _CalibrationForm.model_validate(data)
        return cls(x=tuple(form.x), y=tuple(form.y), low=form.low, high=form.high,
                   kind=form.kind, rows=form.rows)


class _CalibrationForm(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")
    x: list[float] = Field(min_length=1, max_length=_MAX_KNOTS)
    y: list[float] = Field(min_length=1, max_length=_MAX_KNOTS)
    low: float
    high: float
    kind: Literal["isotonic"] = "isotonic"
    rows: int = Field(0, ge=0)


def fit_calibration(raw: Sequence[float], labels: Sequence[float], *, low: float,
                    high: float) -> Calibration:
    """Fit an isotonic (non-decreasing) map of ``labels`` on ``raw`` scores.

    Rows whose raw score is not finite are left out (parse failures have no raw score). At least
    two distinct raw scores are needed; otherwise a :class:`ConfigError` says so.
    """
    if len(raw) != len(labels):
        raise ConfigError(f"calibration: {len(raw)} scores but {len(labels)} labels")
    pairs = sorted((float(r), float(t)) for r, t in zip(raw, labels)
                   if r is not None and math.isfinite(float(r)))
    if len({r for r, _ in pairs}) < 2:
        raise ConfigError("calibration: needs at least two distinct finite raw scores "
                          f"(got {len(pairs)} usable rows)")
    from sklearn.isotonic import IsotonicRegression

    xs = [r for r, _ in pairs]
    model = IsotonicRegression(y_min=low, y_max=high, increasing=True, out_of_bounds="clip")
    fitted = model.fit(xs, [t for _, t in pairs])
    knots_x = [float(v) for v in fitted.X_thresholds_]
    knots_y = [float(v) for v in fitted.y_thresholds_]
    return Calibration(x=tuple(knots_x), y=tuple(knots_y), low=float(low), high=float(high),
                       rows=len(pairs))
