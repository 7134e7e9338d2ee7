"""Metrics against direct computation; failures count as worst error, never as 0."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats
from sklearn.metrics import cohen_kappa_score

from judgeforge.data.schema import Scale
from judgeforge.metrics import compute_metrics, confusion_matrix


def test_headline_metrics_match_direct_computation() -> None:
    preds = [0, 1, 2, 3, 4, 2, None, 1]
    labels = [0, 1, 3, 3, 4, 1, 0, 2]
    m = compute_metrics(preds, labels, bootstrap=0)
    parsed = [(p, t) for p, t in zip(preds, labels) if p is not None]
    p, t = np.array([x for x, _ in parsed]), np.array([y for _, y in parsed])
    assert m["n"] == 8 and m["n_parsed"] == 7
    assert m["parse_failure_rate"] == pytest.approx(1 / 8)
    assert m["mae_parsed"] == pytest.approx(np.abs(p - t).mean())
    assert m["mae"] == pytest.approx((np.abs(p - t).sum() + 4) / 8)  # label 0 -> worst error 4
    assert m["exact_acc"] == pytest.approx(4 / 8)
    assert m["within1_acc"] == pytest.approx(7 / 8)
    assert m["spearman"] == pytest.approx(stats.spearmanr(p, t).statistic)
    assert m["pearson"] == pytest.approx(stats.pearsonr(p, t).statistic)
    assert m["kendall"] == pytest.approx(stats.kendalltau(p, t).statistic)
    assert m["qwk"] == pytest.approx(cohen_kappa_score(t, p, labels=range(5), weights="quadratic"))


def test_all_failures_is_worst_case_not_zero() -> None:
    m = compute_metrics([None, None], [1, 5], Scale(min=1, max=5), bootstrap=0)
    assert m["mae"] == 4.0 and m["exact_acc"] == 0.0 and m["mae_parsed"] is None
    assert m["parse_failure_rate"] == 1.0 and m["spearman"] is None


def test_confusion_matrix_has_fail_column() -> None:
    cm = confusion_matrix([1, None, 2.6], [1, 1, 3], Scale(min=1, max=3))
    assert cm["columns"] == ["1", "2", "3", "fail"]
    assert cm["counts"] == [[1, 0, 0, 1], [0, 0, 0, 0], [0, 0, 1, 0]]


def test_per_source_and_bootstrap() -> None:
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 5, 60).tolist()
    preds = [min(4, max(0, y + int(rng.integers(-1, 2)))) for y in labels]
    m = compute_metrics(preds, labels, data_sources=["a", "b"] * 30, bootstrap=200)
    assert set(m["by_data_source"]) == {"a", "b"}
    lo, hi = m["ci"]["mae"]
    assert lo <= m["mae"] <= hi
    assert m["by_data_source"]["a"]["n"] == 30


def test_rejects_labels_outside_scale() -> None:
    with pytest.raises(ValueError, match="outside the scale"):
        compute_metrics([1], [7])
