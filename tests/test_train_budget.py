"""Training length in steps, not minutes, and the calibration fitted at the end, on the real
default model (a few tiny steps).

The same config on the same data trains the same number of steps; ``grpo.max_minutes`` is only a
safety stop, and when it fires the log, the result and the CLI summary name it. The judge cards of
``final/`` and ``best/`` carry a calibration fitted on the validation rows.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from judgeforge.data.schema import DatasetInfo, PointwiseRecord
from judgeforge.train import TrainConfig

pytest.importorskip("trl")
pytestmark = pytest.mark.slow

WORDS = ("useless", "weak", "fine", "good", "excellent")
TINY = [
    "sft.steps=1", "sft.batch_size=4", "grpo.max_steps=2", "grpo.group_size=2",
    "grpo.train_batch_size=2", "grpo.micro_batch_size=4", "grpo.max_response_length=8",
    "grpo.test_freq=2", "grpo.save_freq=-1", "cpu.eval_rows=6", "cpu.eval_batch_size=6",
    "cpu.resume=false",
]


def records(n: int = 24) -> list[PointwiseRecord]:
    return [PointwiseRecord.model_validate({
        "input": [{"role": "user", "content": f"Name a colour ({i})."}],
        "output": {"content": f"Blue, {WORDS[i % 5]}.", "label": {"helpfulness": i % 5}},
        "data_source": "synthetic", "id": str(i)}) for i in range(n)]


def run(out: Path, model_path: Path, extra: list[str] = ()) -> Any:
    from judgeforge.train.cpu import run_cpu

    cfg = TrainConfig.for_cpu().with_overrides(
        TINY + [f"output_dir={out}", f"model.path={model_path}", "cpu.threads=1", *extra])
    return run_cpu(cfg, train_records=records(),
                   info=DatasetInfo(dimensions={"helpfulness": "0-4"}))


def _log(path: Path) -> list[dict[str, Any]]:
    return [json.loads(x) for x in path.read_text().splitlines() if x.strip()]


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory: pytest.TempPathFactory, default_model_path: Path) -> list[Any]:
    # The second run's safety stop is generous: it must not fire, and the steps are the same.
    return [run(tmp_path_factory.mktemp("budget-a"), default_model_path),
            run(tmp_path_factory.mktemp("budget-b"), default_model_path,
                ["grpo.max_minutes=120"])]


def test_same_config_same_data_same_steps(two_runs: list[Any]) -> None:
    for result in two_runs:
        assert result.steps == 2 and result.stopped_by is None
        assert result.metrics["final"]["step"] == 2
        assert result.metrics["final"]["stopped_by"] is None
        rows = _log(result.log)
        assert [r["step"] for r in rows if r["stage"] == "grpo"] == [1, 2]
        assert not [r for r in rows if r["stage"] == "stop"]
        assert [r["planned_steps"] for r in rows if r["stage"] == "grpo_start"] == [2]


def test_cards_carry_a_calibration_fitted_on_validation_rows(two_runs: list[Any]) -> None:
    from judgeforge.calibration import Calibration
    from judgeforge.card import JudgeCard

    result = two_runs[0]
    assert result.best is not None
    fitted = [r for r in _log(result.log) if r["stage"] == "calibration"]
    assert {r["folder"] for r in fitted} == {"final", "best"} and all(r["fitted"] for r in fitted)
    for folder in (result.final, result.best):
        card = JudgeCard.read(folder)
        assert card is not None and isinstance(card.calibration, Calibration), folder
        # fitted on the validation rows (about cpu.eval_rows, whole query groups)
        assert card.calibration.rows == card.metrics["val_n"] >= 4
        assert (card.calibration.low, card.calibration.high) == (0.0, 4.0)
        assert all(0.0 <= card.calibration(x) <= 4.0 for x in (-1.0, 0.0, 2.5, 4.0, 9.0))
        assert "val_mae" in card.metrics
    assert result.metrics["final"]["calibrated"] and result.metrics["best"]["calibrated"]


def test_safety_stop_is_named_in_log_and_result(tmp_path: Path,
                                                default_model_path: Path) -> None:
    result = run(tmp_path / "stop", default_model_path,
                 ["grpo.max_steps=3", "grpo.max_minutes=0.0001"])
    rows = _log(result.log)
    (stop,) = [r for r in rows if r["stage"] == "stop"]
    assert stop["reason"] == "grpo.max_minutes" and stop["step"] == 1
    assert stop["planned_steps"] == 3 and stop["limit_minutes"] == 0.0001
    assert result.steps == 1
    assert result.stopped_by == "grpo.max_minutes (0.0001 min) at step 1"
    assert result.metrics["final"]["stopped_by"] == result.stopped_by
    assert result.to_dict()["stopped_by"] == result.stopped_by


def test_presets_set_the_length_in_steps() -> None:
    for name in ("cpu", "cpu-quick"):
        cfg = TrainConfig.from_yaml(name)
        assert cfg.grpo.max_steps and cfg.sft.steps, name
    assert TrainConfig.for_cpu().grpo.max_minutes is None
    with pytest.raises(Exception, match="max_minutes"):
        TrainConfig.for_cpu().with_overrides(["grpo.max_minutes=0"])
