"""The demo report's training line names the step budget and any safety stop (from the log)."""

from __future__ import annotations

import json
from pathlib import Path

from judgeforge.benchmarks.demo.summary import training_line


def _log(work: Path, rows: list[dict[str, object]]) -> None:
    (work / "train").mkdir(parents=True)
    (work / "train" / "train_log.jsonl").write_text(
        "".join(json.dumps(r) + "\n" for r in rows) + '{"cut by a cra')


def test_budget_ran_to_its_end(tmp_path: Path) -> None:
    _log(tmp_path, [{"stage": "sft", "step": 1}, {"stage": "sft", "step": 2},
                    {"stage": "grpo_start", "planned_steps": 3},
                    *({"stage": "grpo", "step": s} for s in (1, 2, 3))])
    line = training_line(tmp_path)
    assert line == "Training: 2 SFT steps, 3 GRPO steps (budget 3)."


def test_safety_stop_is_named(tmp_path: Path) -> None:
    _log(tmp_path, [{"stage": "grpo_start", "planned_steps": 8},
                    {"stage": "grpo", "step": 1},
                    {"stage": "stop", "reason": "grpo.max_minutes", "limit_minutes": 10.0,
                     "step": 1, "planned_steps": 8}])
    line = training_line(tmp_path)
    assert "1 GRPO steps (budget 8)" in line
    assert "safety stop (grpo.max_minutes = 10.0 min) at step 1 of 8" in line
    assert training_line(tmp_path / "none") == "Training: no log yet."


def _bench(work: Path, folder: str, judges: dict[str, list[float]], labels: list[int]) -> None:
    out = work / folder / "expected"
    out.mkdir(parents=True)
    entries = [{"label": k, "metrics": {"n": len(labels), "mae": 0.5}, "timings": {}}
               for k in judges]
    (out / "report.json").write_text(json.dumps({
        "data": {"scale": [1, 5], "seed": 0}, "judges": entries, "baselines": [],
        "baselines_note": "none", "verdicts": []}))
    (out / "rows.jsonl").write_text("".join(
        json.dumps({"index": i, "key": f"k{i}", "label": y,
                    "judges": {k: {"score": v[i]} for k, v in judges.items()}}) + "\n"
        for i, y in enumerate(labels)))


def test_trained_judge_is_compared_with_its_calibrated_base(tmp_path: Path) -> None:
    from judgeforge.benchmarks.demo.summary import calibrated_base_verdicts, side_by_side

    labels = [1, 2, 3, 4, 5] * 4
    good = [y + 0.2 * ((i % 3) - 1) for i, y in enumerate(labels)]
    flat = [3.0 + 0.01 * (i % 7) for i in range(len(labels))]
    _bench(tmp_path, "bench-base", {"base": flat, "base (calibrated)": flat}, labels)
    _bench(tmp_path, "bench-trained", {"trained": good, "trained (calibrated)": good}, labels)
    assert ("| expected mode | base | base (calibrated) | trained | trained (calibrated) |"
            in side_by_side(tmp_path, "expected"))
    lines = calibrated_base_verdicts(tmp_path, "expected", bootstrap=200)
    assert len(lines) == 4 and all("beats `base (calibrated)`" in x for x in lines)
    assert any(x.startswith("- `trained` beats `base (calibrated)` on Spearman") for x in lines)
    # rows are paired by key: a base report over other rows gives no verdict
    (tmp_path / "bench-base" / "expected" / "rows.jsonl").write_text("")
    assert calibrated_base_verdicts(tmp_path, "expected") == []
