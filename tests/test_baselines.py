"""The trivial baselines (constant, response length) and the verdicts against them, on the real
Prometheus files split by query group. No quality number is asserted: only that the baselines
are fitted on the training rows, evaluated with the judges' metrics, and reported."""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from judgeforge.benchmarks.baselines import (
    baseline_entries,
    baseline_predictions,
    compare,
    fit_baselines,
    fit_constant,
    fit_length,
    verdicts,
)
from judgeforge.data.converters.prometheus import convert_prometheus
from judgeforge.data.schema import PointwiseRecord, Scale
from judgeforge.data.split import group_split
from judgeforge.errors import DataError
from judgeforge.metrics import compute_metrics
from tests.fixtures_data import make_row, shared_data  # noqa: F401  (fixture)

SCALE = Scale(min=1, max=5)


@pytest.fixture(scope="module")
def split(shared_data: Path) -> tuple[list[PointwiseRecord], list[PointwiseRecord]]:  # noqa: F811
    root = shared_data / "prometheus-absolute"
    recs = (convert_prometheus(root / "mt_bench_eval.json").records
            + convert_prometheus(root / "vicuna_eval.json").records)
    return group_split(recs, test_size=120, seed=0)


def test_constant_is_the_training_median(split: Any) -> None:
    train, test = split
    b = fit_constant(train, "quality")
    median = statistics.median_low([r.label["quality"] for r in train])
    assert b.name == "constant" and b.params["value"] == median
    assert set(b.predict_all(test)) == {float(median)}


def test_length_baseline_is_monotone_in_length_and_fitted_on_train_only(split: Any) -> None:
    train, test = split
    b = fit_length(train, "quality", SCALE)
    assert b.params["n_train"] == len(train)
    by_len = sorted(test, key=lambda r: len(r.response))
    preds = b.predict_all(by_len)
    steps = np.diff(preds)
    assert (steps >= -1e-12).all() if b.params["increasing"] else (steps <= 1e-12).all()
    assert all(1.0 <= p <= 5.0 for p in preds) and len(set(preds)) > 1
    # Fitted on the training rows only: changing the test rows' labels changes nothing.
    flipped = [r.model_copy(update={"output": r.output.model_copy(update={"label": {
        "quality": 6 - r.label["quality"]}})}) for r in test]
    assert b.predict_all(flipped) == b.predict_all(test)
    # ... while refitting on other rows does.
    assert fit_length(test, "quality", SCALE).predict_all(train) != b.predict_all(train)


def test_entries_have_the_judges_metrics_with_cis(split: Any) -> None:
    train, test = split
    fitted = fit_baselines(train, "quality", SCALE)
    entries = baseline_entries(fitted, test, "quality", SCALE, bootstrap=200, seed=0)
    assert [e["label"] for e in entries] == ["baseline: constant", "baseline: length"]
    preds = baseline_predictions(fitted, test)
    labels = [r.label["quality"] for r in test]
    for e in entries:
        again = compute_metrics(preds[e["label"]], labels, SCALE,
                                data_sources=[r.data_source for r in test], bootstrap=200)
        assert e["metrics"]["mae"] == again["mae"] and e["metrics"]["ci"] == again["ci"]
        assert e["kind"] == "baseline" and e["metrics"]["parse_failure_rate"] == 0.0
    assert entries[0]["metrics"]["spearman"] is None  # a constant has no rank


def test_verdicts_say_when_a_judge_does_not_beat_a_baseline(split: Any) -> None:
    train, test = split
    labels = [r.label["quality"] for r in test]
    base = baseline_predictions(fit_baselines(train, "quality", SCALE), test)
    perfect = [float(v) for v in labels]
    same_as_constant = list(base["baseline: constant"])
    failing = [None] * len(labels)
    found = verdicts(labels, SCALE, {"perfect": perfect, "copy": same_as_constant,
                                     "broken": failing}, base, bootstrap=200)
    by = {(v.judge, v.baseline, v.metric): v for v in found}
    assert ("perfect", "baseline: constant", "spearman") not in by  # constant: no Spearman
    p = by[("perfect", "baseline: length", "mae")]
    assert p.beats and p.significant and p.ci is not None and p.ci[1] < 0
    assert "beats the length baseline on MAE" in p.text
    c = by[("copy", "baseline: constant", "mae")]
    assert not c.beats and c.diff == 0.0
    assert "`copy` does NOT beat the constant baseline on MAE" in c.text
    b = by[("broken", "baseline: length", "mae")]
    assert not b.beats and b.judge_value is not None and b.judge_value > b.baseline_value
    assert by[("broken", "baseline: length", "spearman")].judge_value is None
    assert not by[("broken", "baseline: length", "spearman")].beats


def test_compare_is_a_paired_bootstrap() -> None:
    labels = [1, 2, 3, 4, 5] * 8
    a = [float(v) for v in labels]
    b = [float(v) + 0.5 for v in labels]
    jv, bv, ci = compare(a, b, labels, SCALE, bootstrap=100)
    assert (jv, bv) == (0.0, 0.5) and ci == (-0.5, -0.5)  # same rows on both sides
    with pytest.raises(ValueError):
        compare(a, b, labels, SCALE, metric="qwk")


def test_no_labelled_training_rows_is_a_clear_error() -> None:
    recs = [PointwiseRecord.model_validate(make_row("q", "r", helpfulness=1))]
    with pytest.raises(DataError, match="no training record is labelled for 'quality'"):
        fit_baselines(recs, "quality")


def test_report_markdown_and_plots_show_baselines(split: Any, tmp_path: Path) -> None:
    from judgeforge.benchmarks.plots import quality_plots
    from judgeforge.benchmarks.report import quality_markdown, quality_table

    train, test = split
    labels = [r.label["quality"] for r in test]
    fitted = fit_baselines(train, "quality", SCALE)
    base = baseline_predictions(fitted, test)
    judge = list(base["baseline: constant"])
    report = {
        "mode": "sample", "data": {"name": "prometheus", "dimension": "quality"},
        "judges": [{"label": "trained", "target": "x",
                    "metrics": compute_metrics(judge, labels, SCALE, bootstrap=50)}],
        "baselines": baseline_entries(fitted, test, "quality", SCALE, bootstrap=50),
        "baselines_note": "baselines fitted on the training split",
        "verdicts": [v.to_dict() for v in verdicts(labels, SCALE, {"trained": judge}, base,
                                                   bootstrap=50)],
    }
    assert "| metric | baseline: constant | baseline: length | trained |" in quality_table(report)
    md = quality_markdown(report)
    assert "`trained` does NOT beat the constant baseline on MAE" in md
    assert "Baselines fitted on the training split." in md
    names = quality_plots(report, tmp_path)
    assert "confusion_baseline_length.png" in names and (tmp_path / "distribution.png").is_file()
    bare = quality_markdown({**report, "baselines": [], "verdicts": [],
                             "baselines_note": "baselines were not fitted (no training data)"})
    assert "Baselines were not fitted" in bare and "does NOT beat" not in bare


def test_length_reads_the_untrimmed_length_when_kept() -> None:
    from judgeforge.benchmarks.baselines import response_length

    rec = PointwiseRecord.model_validate(make_row("q", "short", quality=3))
    assert response_length(rec) == 5.0
    kept = rec.model_copy(update={"extra_info": {"response_chars": 1234}})
    assert response_length(kept) == 1234.0
