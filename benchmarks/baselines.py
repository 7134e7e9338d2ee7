"""Trivial baselines every quality report shows beside the judges, and the verdicts against them.

A judge is only worth training if it beats predictors that read no meaning at all:

- ``constant``: always the median of the training labels;
- ``length``: a monotone (isotonic) fit of the label on the response's length in characters
  (:func:`response_length`: ``extra_info["response_chars"]`` when data trimmed for short prompts
  kept the original length there, else ``len(response)``), direction chosen by the data, fitted
  on the training split only.

Use::

    baselines = fit_baselines(train_records, "quality", scale)
    preds = baselines[0].predict_all(test_records)          # one float per record
    entries = baseline_entries(baselines, test_records, "quality", scale)  # report "judges"
    lines = verdicts(labels, scale, {"trained": judge_preds}, baseline_predictions(...))

The untrained base model is a judge like any other (the benchmarks grade it); the baselines
here need no model. Their report entries have the same shape as a judge's (``label``,
``metrics`` from :func:`judgeforge.metrics.compute_metrics` with bootstrap CIs), plus
``"kind": "baseline"``.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from judgeforge.data.schema import PointwiseRecord, Scale
from judgeforge.errors import ConfigError, DataError

__all__ = ["Baseline", "Verdict", "fit_constant", "fit_length", "fit_baselines", "response_length",
           "baseline_predictions", "baseline_entries", "compare", "verdicts",
           "verdict_lines", "BASELINE_KIND"]

BASELINE_KIND = "baseline"


@dataclass(frozen=True)
class Baseline:
    """A fitted trivial predictor: ``predict(record)`` -> a score on the scale."""

    name: str
    """Short name: ``constant`` or ``length``."""
    label: str
    """Column title in reports (``baseline: length``)."""
    description: str
    """How it was fitted, for the report."""
    fn: Callable[[PointwiseRecord], float] = field(repr=False)
    params: dict[str, Any] = field(default_factory=dict)

    def predict(self, record: PointwiseRecord) -> float:
        """The baseline's score for ``record``."""
        return float(self.fn(record))

    def predict_all(self, records: Sequence[PointwiseRecord]) -> list[float]:
        """One score per record."""
        return [self.predict(r) for r in records]

    def describe(self) -> dict[str, Any]:
        """JSON-ready description (name, label, description, fitted parameters)."""
        return {"name": self.name, "label": self.label, "description": self.description,
                "params": self.params}


def _labels(records: Sequence[PointwiseRecord], dimension: str) -> list[int]:
    labels = [r.label[dimension] for r in records if dimension in r.label]
    if not labels:
        raise DataError(f"no training record is labelled for {dimension!r}: cannot fit baselines")
    return labels


def response_length(record: PointwiseRecord) -> float:
    """The response's length in characters before any trimming: ``extra_info["response_chars"]``
    when present (set by code that shortens responses, e.g. the demo), else ``len(response)``."""
    kept = (record.extra_info or {}).get("response_chars")
    if isinstance(kept, (int, float)) and not isinstance(kept, bool) and kept >= 0:
        return float(kept)
    return float(len(record.response))


def fit_constant(train: Sequence[PointwiseRecord], dimension: str) -> Baseline:
    """Always the (lower) median of the training labels on ``dimension``."""
    labels = _labels(train, dimension)
    median = int(statistics.median_low(labels))
    return Baseline("constant", "baseline: constant",
                    f"always {median}, the median of {len(labels)} training labels",
                    lambda _r: median, {"value": median, "n_train": len(labels)})


def fit_length(train: Sequence[PointwiseRecord], dimension: str,
               scale: Scale | None = None) -> Baseline:
    """Isotonic regression of the label on ``len(response)`` (characters), training rows only.

    The direction (longer = better or worse) is the one that fits the training rows best
    (scikit-learn's ``increasing="auto"``); predictions outside the training lengths are
    clipped, and to ``scale`` when given.
    """
    from sklearn.isotonic import IsotonicRegression

    rows = [r for r in train if dimension in r.label]
    labels = _labels(rows, dimension)
    lengths = [response_length(r) for r in rows]
    lo = None if scale is None else float(scale.min)
    hi = None if scale is None else float(scale.max)
    model = IsotonicRegression(increasing="auto", out_of_bounds="clip", y_min=lo, y_max=hi)
    model.fit(lengths, [float(v) for v in labels])
    increasing = bool(model.increasing_)

    def predict(record: PointwiseRecord) -> float:
        return float(model.predict([response_length(record)])[0])

    return Baseline("length", "baseline: length",
                    f"isotonic fit of the label on response length in characters "
                    f"({'longer scores higher' if increasing else 'longer scores lower'}), "
                    f"fitted on {len(labels)} training rows",
                    predict, {"increasing": increasing, "n_train": len(labels),
                              "x_range": [min(lengths), max(lengths)]})


def fit_baselines(train: Sequence[PointwiseRecord], dimension: str,
                  scale: Scale | None = None) -> list[Baseline]:
    """The constant and the length baseline, fitted on the training records ``train``."""
    return [fit_constant(train, dimension), fit_length(train, dimension, scale)]


def baseline_predictions(baselines: Sequence[Baseline],
                         records: Sequence[PointwiseRecord]) -> dict[str, list[float]]:
    """Baseline label -> one prediction per record."""
    return {b.label: b.predict_all(records) for b in baselines}


def baseline_entries(baselines: Sequence[Baseline], records: Sequence[PointwiseRecord],
                     dimension: str, scale: Scale, *, bootstrap: int = 1000,
                     seed: int = 0) -> list[dict[str, Any]]:
    """Report entries shaped like a judge's (``label``, ``target``, ``metrics`` with CIs)."""
    from judgeforge.metrics import compute_metrics

    rows = [r for r in records if dimension in r.label]
    labels = [r.label[dimension] for r in rows]
    sources = [r.data_source for r in rows]
    out = []
    for b in baselines:
        metrics = compute_metrics(b.predict_all(rows), labels, scale, data_sources=sources,
                                  bootstrap=bootstrap, seed=seed)
        out.append({"label": b.label, "target": b.description, "kind": BASELINE_KIND,
                    "baseline": b.describe(), "metrics": metrics,
                    "status_counts": {"ok": len(rows)}, "model_errors": 0, "timings": {}})
    return out


# ---------------------------------------------------------------------------- verdicts

@dataclass(frozen=True)
class Verdict:
    """One judge against one baseline on one metric."""

    judge: str
    baseline: str
    metric: str
    judge_value: float | None
    baseline_value: float | None
    diff: float | None
    """judge - baseline (lower is better for MAE, higher for Spearman)."""
    ci: tuple[float, float] | None
    """Paired bootstrap interval of ``diff`` (same resampled rows for both)."""
    beats: bool
    significant: bool

    @property
    def text(self) -> str:
        # a trivial baseline ("baseline: length") reads "the length baseline"; a judge used as
        # the reference (the calibrated base) reads by its label
        name = (f"the {self.baseline.removeprefix('baseline: ')} baseline"
                if self.baseline.startswith("baseline: ") else f"`{self.baseline}`")
        what = "MAE" if self.metric == "mae" else self.metric.capitalize()
        vals = (f"{_f(self.judge_value)} vs {_f(self.baseline_value)}"
                + (f"; difference {_f(self.diff)} [{_f(self.ci[0])}, {_f(self.ci[1])}]"
                   if self.ci else ""))
        if not self.beats:
            return f"`{self.judge}` does NOT beat {name} on {what} ({vals})"
        sure = "" if self.significant else ", within noise: the interval includes 0"
        return f"`{self.judge}` beats {name} on {what} ({vals}{sure})"

    def to_dict(self) -> dict[str, Any]:
        return {"judge": self.judge, "baseline": self.baseline, "metric": self.metric,
                "judge_value": self.judge_value, "baseline_value": self.baseline_value,
                "diff": self.diff, "ci": list(self.ci) if self.ci else None,
                "beats": self.beats, "significant": self.significant, "text": self.text}


def _f(v: float | None) -> str:
    return "-" if v is None else f"{v:.3f}"


def _errors(pred: Sequence[float | None], labels: Sequence[int], scale: Scale) -> Any:
    import numpy as np

    true = np.asarray(labels, dtype=float)
    worst = np.maximum(true - scale.min, scale.max - true)
    p = np.array([np.nan if v is None else float(v) for v in pred], dtype=float)
    return np.where(np.isnan(p), worst, np.abs(np.nan_to_num(p) - true))


def _spearman(pred: Any, true: Any) -> float | None:
    import numpy as np
    from scipy import stats

    ok = ~np.isnan(pred)
    if ok.sum() < 3 or np.ptp(pred[ok]) == 0 or np.ptp(true[ok]) == 0:
        return None
    return float(stats.spearmanr(pred[ok], true[ok]).statistic)


def compare(judge: Sequence[float | None], baseline: Sequence[float | None],
            labels: Sequence[int], scale: Scale, *, metric: str = "mae",
            bootstrap: int = 1000, seed: int = 0) -> tuple[float | None, float | None,
                                                            tuple[float, float] | None]:
    """(judge value, baseline value, paired-bootstrap 95% interval of judge - baseline).

    ``metric`` is ``mae`` (failures = worst error, as in the reports) or ``spearman``
    (parsed rows; None when either side is constant).
    """
    import numpy as np

    true = np.asarray(labels, dtype=float)
    jp = np.array([np.nan if v is None else float(v) for v in judge], dtype=float)
    bp = np.array([np.nan if v is None else float(v) for v in baseline], dtype=float)
    if metric == "mae":
        je, be = _errors(judge, labels, scale), _errors(baseline, labels, scale)

        def value(idx: Any) -> tuple[float | None, float | None]:
            return float(je[idx].mean()), float(be[idx].mean())
    elif metric == "spearman":
        def value(idx: Any) -> tuple[float | None, float | None]:
            return _spearman(jp[idx], true[idx]), _spearman(bp[idx], true[idx])
    else:
        raise ConfigError(f"metric must be mae or spearman, got {metric!r}")
    n = len(true)
    jv, bv = value(np.arange(n))
    if jv is None or bv is None or not bootstrap or n < 2:
        return jv, bv, None
    rng = np.random.default_rng(seed)
    diffs = []
    for _ in range(bootstrap):
        a, b = value(rng.integers(0, n, n))
        if a is not None and b is not None:
            diffs.append(a - b)
    if len(diffs) < 10:
        return jv, bv, None
    return jv, bv, (float(np.percentile(diffs, 2.5)), float(np.percentile(diffs, 97.5)))


def verdicts(labels: Sequence[int], scale: Scale, judges: Mapping[str, Sequence[float | None]],
             baselines: Mapping[str, Sequence[float | None]], *, bootstrap: int = 1000,
             seed: int = 0) -> list[Verdict]:
    """Every judge against every baseline: on MAE always, on Spearman where the baseline has
    one (the constant baseline has none)."""
    out = []
    for jname, jpred in judges.items():
        for bname, bpred in baselines.items():
            for metric in ("mae", "spearman"):
                jv, bv, ci = compare(jpred, bpred, labels, scale, metric=metric,
                                     bootstrap=bootstrap, seed=seed)
                if bv is None:
                    continue
                diff = None if jv is None else jv - bv
                sign = -1.0 if metric == "mae" else 1.0
                beats = diff is not None and sign * diff > 0
                significant = beats and ci is not None and (
                    ci[1] < 0 if metric == "mae" else ci[0] > 0)
                out.append(Verdict(jname, bname, metric, jv, bv, diff, ci, beats, significant))
    return out


def verdict_lines(found: Sequence[Verdict | Mapping[str, Any]]) -> list[str]:
    """Markdown bullet lines, the failures first."""
    texts = [(v.beats, v.text) if isinstance(v, Verdict) else (bool(v.get("beats")),
                                                                 str(v.get("text")))
             for v in found]
    return [f"- {t}" for beats, t in sorted(texts, key=lambda x: x[0])]
