"""``judgeforge bench suite`` end to end against the real vLLM server, on a small limit: the
printed table has the published anchors, every reported number is recomputed from the per-row
files, the task description reaches the prompt, and a rerun resumes."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from scipy import stats
from sklearn.metrics import cohen_kappa_score

pytestmark = [pytest.mark.vllm, pytest.mark.slow]

SETS = "roscoe-gsm8k,feedbackqa,lamp-r"


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _recompute(preds: list[float | None], labels: list[int], lo: int, hi: int) -> dict[str, Any]:
    y = np.asarray(labels, dtype=float)
    ok = np.array([p is not None for p in preds])
    p = np.array([np.nan if v is None else v for v in preds], dtype=float)
    err = np.where(ok, np.abs(np.nan_to_num(p) - y), np.maximum(y - lo, hi - y))
    out: dict[str, Any] = {"n": len(y), "n_parsed": int(ok.sum()),
                           "parse_failure_rate": 1 - ok.mean(), "mae": err.mean(),
                           "pearson": None, "spearman": None, "kendall": None, "qwk": None}
    pp, yy = p[ok], y[ok]
    if ok.sum() >= 2 and np.ptp(pp) > 0 and np.ptp(yy) > 0:
        out["pearson"] = stats.pearsonr(pp, yy)[0]
        out["spearman"] = stats.spearmanr(pp, yy)[0]
        out["kendall"] = stats.kendalltau(pp, yy)[0]
    r = np.clip(np.rint(pp), lo, hi).astype(int)
    if ok.any() and len(set(r.tolist()) | set(yy.astype(int).tolist())) > 1:
        out["qwk"] = cohen_kappa_score(yy.astype(int), r, labels=list(range(lo, hi + 1)),
                                       weights="quadratic")
    return out


def _match(reported: dict[str, Any], expected: dict[str, Any]) -> None:
    for key, value in expected.items():
        if value is None:
            assert reported[key] is None, key
        else:
            assert reported[key] == pytest.approx(float(value), abs=1e-9), key


def _cli(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.run([sys.executable, "-m", "judgeforge.cli.main", "bench", "suite", *args],
                          capture_output=True, text=True, env=env, timeout=1200, cwd=cwd)


def test_suite_end_to_end_numbers_recomputed_and_resumed(vllm_server: Any,
                                                         tmp_path: Path) -> None:
    out = tmp_path / "suite"
    args = ["--model", f"smol={vllm_server.base_url}", "--model-name", vllm_server.model_name,
            "--sets", SETS, "--limit", "4", "--bootstrap", "100", "--out", str(out),
            "--no-progress"]
    done = _cli(args, tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    printed = done.stdout
    assert "## Spearman with the human labels (suite default)" in printed
    assert "gpt-4o (published)" in printed and "| 0.91 |" in printed  # gsm8k GPT-4o anchor
    assert "human (leave-one-rater-out)" in printed  # FeedbackQA has 2-3 raters a row

    report = json.loads((out / "suite.json").read_text())
    assert [s["name"] for s in report["sets"]] == SETS.split(",")
    assert (out / "suite.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "## roscoe-gsm8k" in (out / "suite.md").read_text()
    for s in report["sets"]:
        folder = out / s["name"]
        rows = _read_jsonl(folder / "rows.jsonl")
        assert len(rows) == s["rows_graded"] == 4
        lo, hi = s["scale"]
        labels = [r["label"] for r in rows]
        (judge,) = s["judges"]
        _match(judge, _recompute([r["judges"]["smol"]["score"] for r in rows], labels, lo, hi))
        # the constant baseline: the median of the set's rows that were not graded
        data = {r["id"]: r for r in _read_jsonl(folder / "data.jsonl")}
        graded = {r["id"] for r in rows}
        dim = s["dimension"]
        rest = [r["output"]["label"][dim] for i, r in data.items() if i not in graded]
        constant = next(b for b in s["baselines"] if b["label"] == "baseline: constant")
        median = statistics.median_low(rest)
        assert constant["mae"] == pytest.approx(np.mean([abs(median - y) for y in labels]))
        # the task description went through PromptTemplate(task=...) into the prompt
        quality = json.loads((folder / "report.json").read_text())
        prompt = quality["prompt"]["example_messages"][-1]["content"]
        assert s["task"] and prompt.startswith(f"Task: {s['task'][:40]}")
        if s["name"] == "feedbackqa":
            scores = [data[r["id"]]["extra_info"]["rater_scores"] for r in rows]
            per = []
            for j in range(max(len(x) for x in scores)):
                mine = [x[j] for x in scores if j < len(x)]
                rest_mean = [statistics.fmean(x[:j] + x[j + 1:]) for x in scores if j < len(x)]
                if len(mine) >= 3 and len(set(mine)) > 1 and len(set(rest_mean)) > 1:
                    per.append(stats.spearmanr(mine, rest_mean).statistic)
            if per:
                assert s["ceiling"]["spearman"] == pytest.approx(statistics.fmean(per))
            else:
                assert s["ceiling"] is None
        else:
            assert s["ceiling"] is None  # one expert (ROSCOE) or no rater scores (LAMP-R)
    gsm = report["sets"][0]
    assert gsm["anchors"] and gsm["anchors"][0]["source"].startswith("JUDGE-BENCH")
    assert report["sets"][2]["mode"].startswith("sample, constrained")  # 1-10 is not 0-9

    again = _cli(args, tmp_path)
    assert again.returncode == 0, again.stderr[-3000:]
    for s in json.loads((out / "suite.json").read_text())["sets"]:
        timings = json.loads((out / s["name"] / "report.json").read_text())["judges"][0][
            "timings"]
        assert timings["graded_now"] == 0 and timings["reused"] == 4, s["name"]
    assert [s["judges"] for s in json.loads((out / "suite.json").read_text())["sets"]] == \
        [s["judges"] for s in report["sets"]]

    # --report-only on one set grades nothing and keeps the other sets' entries
    only = _cli(["--report-only", "--sets", "lamp-r", "--limit", "4", "--bootstrap", "100",
                 "--out", str(out)], tmp_path)
    assert only.returncode == 0, only.stderr[-3000:]
    rebuilt = json.loads((out / "suite.json").read_text())
    assert [s["name"] for s in rebuilt["sets"]] == SETS.split(",")
    assert [s["judges"] for s in rebuilt["sets"]] == [s["judges"] for s in report["sets"]]
    wrong = _cli(["--report-only", "--sets", "lamp-r", "--limit", "5", "--out", str(out)],
                 tmp_path)
    assert wrong.returncode != 0 and "graded with --limit 4" in wrong.stderr
