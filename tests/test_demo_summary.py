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
