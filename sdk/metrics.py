"""Judge quality against human labels, with parse failures kept (never dropped, never 0).

``predictions[i]`` is the judge's score for row ``i`` (an int, a float for the expected mode) or
``None`` for a parse failure. A failure counts as the worst possible error for its label
(``max(label - min, max - label)``) in the headline MAE/RMSE/accuracy, and is excluded from the
``*_parsed`` variants and from correlations (which need both values).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from judgeforge.data.schema import DEFAULT_SCALE, Scale
from judgeforge.errors import DataError

__all__ = ["compute_metrics", "confusion_matrix", "HEADLINE_METRICS"]

HEADLINE_METRICS = ("mae", "mae_parsed", "rmse", "exact_acc", "within1_acc", "pearson",
                    "spearman", "kendall", "qwk", "parse_failure_rate")


def _clean(value: float) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)


def _as_arrays(predictions: Sequence[float | None], labels: Sequence[int],
               scale: Scale) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    if len(predictions) != len(labels):
        raise DataError(f"{len(predictions)} predictions for {len(labels)} labels")
    pred = np.array([np.nan if p is None else float(p) for p in predictions], dtype=float)
    true = np.asarray(labels, dtype=float)
    parsed = ~np.isnan(pred)
    return pred, true, parsed


def _point_metrics(pred: np.ndarray, true: np.ndarray, parsed: np.ndarray,
                   scale: Scale) -> dict[str, float | None]:
    from scipy import stats
    from sklearn.metrics import cohen_kappa_score

    n = len(true)
    if n == 0:
        return {k: None for k in HEADLINE_METRICS} | {"n": 0, "n_parsed": 0}
    worst = np.maximum(true - scale.min, scale.max - true)
    err = np.where(parsed, np.abs(np.nan_to_num(pred) - true), worst)
    rounded = np.where(parsed, np.clip(np.rint(np.nan_to_num(pred)), scale.min, scale.max), np.nan)
    exact = np.where(parsed, rounded == true, False)
    within1 = np.where(parsed, np.abs(np.nan_to_num(rounded) - true) <= 1, False)
    p, t = pred[parsed], true[parsed]
    out: dict[str, float | None] = {
        "n": n,
        "n_parsed": int(parsed.sum()),
        "parse_failure_rate": float(1 - parsed.mean()),
        "mae": float(err.mean()),
        "mae_parsed": float(np.abs(p - t).mean()) if len(p) else None,
        "rmse": float(np.sqrt((err ** 2).mean())),
        "rmse_parsed": float(np.sqrt(((p - t) ** 2).mean())) if len(p) else None,
        "exact_acc": float(exact.mean()),
        "within1_acc": float(within1.mean()),
        "pearson": None, "spearman": None, "kendall": None, "qwk": None,
    }
    if len(p) >= 2 and np.ptp(p) > 0 and np.ptp(t) > 0:
        out["pearson"] = _clean(stats.pearsonr(p, t).statistic)
        out["spearman"] = _clean(stats.spearmanr(p, t).statistic)
        out["kendall"] = _clean(stats.kendalltau(p, t).statistic)
    if len(p) >= 1:
        r = rounded[parsed].astype(int)
        levels = list(range(scale.min, scale.max + 1))
        if len(set(r.tolist()) | set(t.astype(int).tolist())) > 1:
            out["qwk"] = _clean(cohen_kappa_score(t.astype(int), r, labels=levels,
                                                  weights="quadratic"))
    return out


def confusion_matrix(predictions: Sequence[float | None], labels: Sequence[int],
                     scale: Scale = DEFAULT_SCALE) -> dict[str, Any]:
    """Counts[true][pred] over the scale, with a last column ``fail`` for parse failures.

    Float predictions (expected mode) are rounded to the nearest level.
    """
    levels = list(range(scale.min, scale.max + 1))
    matrix = [[0] * (len(levels) + 1) for _ in levels]
    for p, t in zip(predictions, labels):
        row = levels.index(int(t))
        col = len(levels) if p is None else levels.index(int(min(max(round(p), scale.min),
                                                                    scale.max)))
        matrix[row][col] += 1
    return {"levels": levels, "columns": [str(v) for v in levels] + ["fail"], "counts": matrix}


def _bootstrap(pred: np.ndarray, true: np.ndarray, parsed: np.ndarray, scale: Scale,
               n_boot: int, ci: float, seed: int) -> dict[str, list[float | None]]:
    rng = np.random.default_rng(seed)
    keys = ("mae", "mae_parsed", "rmse", "exact_acc", "within1_acc", "pearson", "spearman", "qwk")
    samples: dict[str, list[float]] = {k: [] for k in keys}
    n = len(true)
    for _ in range(n_boot):
        idx = rng.integers(0, n, n)
        m = _point_metrics(pred[idx], true[idx], parsed[idx], scale)
        for k in keys:
            value = m[k]
            if value is not None:
                samples[k].append(value)
    lo, hi = (1 - ci) / 2 * 100, (1 + ci) / 2 * 100
    return {k: ([float(np.percentile(v, lo)), float(np.percentile(v, hi))] if len(v) >= 10
                else [None, None]) for k, v in samples.items()}


def compute_metrics(predictions: Sequence[float | None], labels: Sequence[int],
                    scale: Scale = DEFAULT_SCALE, *, data_sources: Sequence[str] | None = None,
                    bootstrap: int = 1000, ci: float = 0.95, seed: int = 0) -> dict[str, Any]:
    """Every metric judgeforge reports, as a JSON-ready dict.

    Keys: the headline metrics (see module docstring), ``confusion``, ``ci`` (bootstrap
    percentile intervals, ``bootstrap`` resamples at level ``ci``; 0 disables) and
    ``by_data_source`` (headline metrics per source, when ``data_sources`` is given).
    """
    pred, true, parsed = _as_arrays(predictions, labels, scale)
    bad = [int(t) for t in true if int(t) not in scale]
    if bad:
        raise DataError(f"labels outside the scale {scale}: {sorted(set(bad))}")
    out: dict[str, Any] = _point_metrics(pred, true, parsed, scale)
    out["scale"] = [scale.min, scale.max]
    out["confusion"] = confusion_matrix(predictions, labels, scale)
    out["ci_level"] = ci
    out["ci"] = _bootstrap(pred, true, parsed, scale, bootstrap, ci, seed) if bootstrap and len(
        true) >= 2 else {}
    if data_sources is not None:
        if len(data_sources) != len(true):
            raise DataError("data_sources must have one entry per prediction")
        groups: dict[str, list[int]] = {}
        for i, src in enumerate(data_sources):
            groups.setdefault(str(src), []).append(i)
        out["by_data_source"] = {
            src: _point_metrics(pred[idx], true[idx], parsed[idx], scale)
            for src, idx in sorted(groups.items())
        }
    return out


MetricFn = Callable[[Sequence[float | None], Sequence[int]], float]
