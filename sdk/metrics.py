"""Judge quality against human labels, with parse failures kept (never dropped, never 0).

``predictions[i]`` is the judge's score for row ``i`` (an int, a float for the expected mode) or
``None`` for a parse failure. A failure counts as the worst possible error for its label
(``max(label - min, max - label)``) in the headline MAE/RMSE/accuracy, and is excluded from the
``*_parsed`` variants and from correlations (which need both values).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from judgeforge.data.schema import DEFAULT_SCALE, Scale
from judgeforge.errors import DataError

__all__ = ["compute_metrics", "confusion_matrix", "bootstrap_ci", "preference_metrics",
           "preference_difference", "HEADLINE_METRICS", "PREFERENCE_METRICS"]

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


def bootstrap_ci(statistics: Callable[[Any], Mapping[str, float | None]], n: int, *,
                 n_boot: int = 1000, ci: float = 0.95, seed: int = 0
                 ) -> dict[str, list[float | None]]:
    """Percentile intervals of ``statistics(idx)`` over ``n_boot`` resamples of ``range(n)``.

    ``statistics`` gets the resampled row indices and returns named values (None: undefined
    for that resample, left out). A key with fewer than 10 defined values gets
    ``[None, None]``. The one bootstrap of judgeforge's metrics (pointwise and preference).
    """
    rng = np.random.default_rng(seed)
    samples: dict[str, list[float]] = {}
    for _ in range(n_boot):
        idx = rng.integers(0, n, n)
        for k, value in statistics(idx).items():
            samples.setdefault(k, [])
            if value is not None:
                samples[k].append(value)
    lo, hi = (1 - ci) / 2 * 100, (1 + ci) / 2 * 100
    return {k: ([float(np.percentile(v, lo)), float(np.percentile(v, hi))] if len(v) >= 10
                else [None, None]) for k, v in samples.items()}


def _bootstrap(pred: np.ndarray, true: np.ndarray, parsed: np.ndarray, scale: Scale,
               n_boot: int, ci: float, seed: int) -> dict[str, list[float | None]]:
    keys = ("mae", "mae_parsed", "rmse", "exact_acc", "within1_acc", "pearson", "spearman", "qwk")

    def stats(idx: np.ndarray) -> dict[str, float | None]:
        m = _point_metrics(pred[idx], true[idx], parsed[idx], scale)
        return {k: m[k] for k in keys}

    return bootstrap_ci(stats, len(true), n_boot=n_boot, ci=ci, seed=seed)


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


# ---------------------------------------------------------------------------- preferences
#: Preference metrics, each with a bootstrap interval in ``preference_metrics(...)["ci"]``.
PREFERENCE_METRICS = ("accuracy", "accuracy_non_tie", "macro_f1", "failure_rate")
_SIDES = ("a", "b", "tie")


def _classes(pred: Sequence[str | None], gold: Sequence[str]) -> list[str]:
    """The verdict classes macro-F1 averages over: those in the gold or predicted verdicts of the
    whole sample (fixed across bootstrap resamples). A set without ties (HHH) is not scored on a
    tie class nobody used; a judge that says tie there still pays for it."""
    return [s for s in _SIDES if s in gold or s in pred]


def _preference_point(pred: Sequence[str | None], gold: Sequence[str],
                      classes: Sequence[str] = _SIDES) -> dict[str, float | None]:
    from sklearn.metrics import f1_score

    n = len(gold)
    if n == 0:
        return {k: None for k in PREFERENCE_METRICS}
    got = ["fail" if p is None else str(p) for p in pred]
    hits = [g == p for g, p in zip(gold, got)]
    decided = [h for h, g in zip(hits, gold) if g != "tie"]
    f1 = f1_score(list(gold), got, labels=list(classes), average="macro", zero_division=0)
    return {"accuracy": sum(hits) / n,
            "accuracy_non_tie": sum(decided) / len(decided) if decided else None,
            "macro_f1": float(f1), "failure_rate": got.count("fail") / n}


def preference_metrics(predictions: Sequence[str | None], labels: Sequence[str], *,
                       groups: Sequence[str] | None = None,
                       consistent: Sequence[bool | None] | None = None, bootstrap: int = 1000,
                       ci: float = 0.95, seed: int = 0) -> dict[str, Any]:
    """Accuracy, accuracy on the non-tie labels, macro-F1 over a/b/tie and the failure rate of
    preference ``predictions`` (``"a"``/``"b"``/``"tie"``, None for a failure, which counts as
    wrong and as no class) against ``labels`` (macro-F1 over the classes that occur in all the
    labels or predictions, the same in every resample); ``ci`` holds bootstrap intervals,
    ``by_group`` the same per group, ``position_consistency`` the share of ``consistent``
    (per row: both orders agreed; None: not known) that is True.
    """
    if len(predictions) != len(labels):
        raise DataError(f"{len(predictions)} predictions for {len(labels)} labels")
    bad = sorted({str(g) for g in labels if g not in _SIDES})
    if bad:
        raise DataError(f"preference labels must be a, b or tie; got {bad}")
    pred, gold = list(predictions), list(labels)
    classes = _classes(pred, gold)
    out: dict[str, Any] = {"n": len(gold), **_preference_point(pred, gold, classes)}
    out["predicted"] = {s: sum(1 for p in pred if p == s) for s in _SIDES}
    out["predicted"]["fail"] = sum(1 for p in pred if p is None)
    known = [c for c in (consistent or []) if c is not None]
    out["position_consistency"] = sum(known) / len(known) if known else None
    out["ci_level"] = ci
    out["ci"] = bootstrap_ci(lambda idx: _preference_point([pred[i] for i in idx],
                                                           [gold[i] for i in idx], classes),
                             len(gold), n_boot=bootstrap, ci=ci, seed=seed) \
        if bootstrap and len(gold) >= 2 else {}
    if groups is not None:
        if len(groups) != len(gold):
            raise DataError("groups must have one entry per prediction")
        members: dict[str, list[int]] = {}
        for i, g in enumerate(groups):
            members.setdefault(str(g), []).append(i)
        out["by_group"] = {g: {"n": len(idx), **_preference_point(
                               [pred[i] for i in idx], [gold[i] for i in idx], classes)}
                           for g, idx in sorted(members.items())}
    return out


def preference_difference(first: Sequence[str | None], second: Sequence[str | None],
                          labels: Sequence[str], *, metric: str = "accuracy",
                          bootstrap: int = 1000, ci: float = 0.95, seed: int = 0
                          ) -> dict[str, Any]:
    """``metric(first) - metric(second)`` on the same rows, with a paired bootstrap interval
    (the rows resampled together): is ``first`` better than ``second`` beyond noise?"""
    if metric not in PREFERENCE_METRICS:
        raise DataError(f"metric must be one of {PREFERENCE_METRICS}, got {metric!r}")
    if not len(first) == len(second) == len(labels):
        raise DataError("first, second and labels must have the same length")

    cx, cy = _classes(first, labels), _classes(second, labels)

    def diff(idx: Sequence[int]) -> dict[str, float | None]:
        x = _preference_point([first[i] for i in idx], [labels[i] for i in idx], cx)[metric]
        y = _preference_point([second[i] for i in idx], [labels[i] for i in idx], cy)[metric]
        return {metric: None if x is None or y is None else x - y}

    point = diff(range(len(labels)))[metric]
    interval = bootstrap_ci(diff, len(labels), n_boot=bootstrap, ci=ci, seed=seed) \
        if bootstrap and len(labels) >= 2 else {}
    return {"metric": metric, "difference": point,
            "ci": interval.get(metric, [None, None]), "ci_level": ci}
