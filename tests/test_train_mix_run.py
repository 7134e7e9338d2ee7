"""A tiny mixed-scale training run for real: SFT then TRL GRPO on the default SmolLM2 model over
three shipped sets on three scales (Prometheus 1-5, FeedbackQA 0-3, LAMP-R 1-10), a few steps.

Proves the plumbing end to end on the CPU backend: each file's rows on its own scale through SFT,
the GRPO reward and validation (per scale, normalized headline), the calibration fitted on the
judge's own scale only, ``val.parquet`` holding exactly those rows, and the judge card naming
every dimension and scale it was trained on.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from judgeforge.train import TrainConfig

pytest.importorskip("trl")
pytestmark = pytest.mark.slow

OVERRIDES = [
    "sft.steps=3", "sft.batch_size=6", "sft.learning_rate=1e-4", "sft.balance_labels=true",
    "grpo.max_steps=2", "grpo.group_size=4", "grpo.train_batch_size=3",
    "grpo.micro_batch_size=6", "grpo.learning_rate=1e-5", "grpo.test_freq=1",
    "grpo.save_freq=-1", "grpo.max_minutes=30", "grpo.max_response_length=12",
    "cpu.eval_rows=5", "cpu.eval_batch_size=8", "cpu.eval_max_new_tokens=12",
    "prompt.max_query_chars=150", "prompt.max_response_chars=150",
    "prompt.use_rubric=false", "prompt.use_reference=false",
    "data.group_key=idx,pair,question", "data.mix_weights=[2,1,1]",
]
SCALES = {"quality 1-5", "quality 0-3", "quality 1-10"}


def _short(records: list[Any], n: int) -> list[Any]:
    return sorted(records, key=lambda r: len(r.input[-1].content) + len(r.response))[:n]


@pytest.fixture(scope="module")
def mixed_run(tmp_path_factory: pytest.TempPathFactory, default_model_path: Path) -> Any:
    from judgeforge.data.converters.prometheus import convert_prometheus
    from judgeforge.data.io import load_records, write_records
    from judgeforge.datasets import shipped_path
    from judgeforge.train.cpu import run_cpu
    from judgeforge.train.mix import write_mix

    data = tmp_path_factory.mktemp("mix-data")
    prom = convert_prometheus(shipped_path("prometheus-absolute/vicuna_eval.json.gz"))
    files = [write_records(data / "prometheus.parquet", _short(prom.records, 60), prom.info)]
    for name, path in write_mix(data / "full").items():
        full = load_records(path)
        files.append(write_records(data / f"{name}.parquet", _short(full.records, 40),
                                   full.info))
    out = tmp_path_factory.mktemp("mix-run")
    cfg = TrainConfig.for_cpu().with_overrides(
        OVERRIDES + [f"output_dir={out}", f"model.path={default_model_path}",
                     f"data.train_files=[{','.join(str(f) for f in files)}]"])
    return run_cpu(cfg)


def _rows(path: Path, stage: str) -> list[dict[str, Any]]:
    rows = [json.loads(x) for x in path.read_text().splitlines() if x.strip()]
    return [r for r in rows if r.get("stage") == stage]


def test_mixed_run_trains_and_validates_per_scale(mixed_run: Any) -> None:
    sft = _rows(mixed_run.log, "sft")
    assert len(sft) == 3 and all(r["loss"] > 0 for r in sft)
    grpo = _rows(mixed_run.log, "grpo")
    assert [r["step"] for r in grpo] == [1, 2]
    evals = _rows(mixed_run.log, "eval")
    assert [r["step"] for r in evals if not r.get("final")] == [0, 1, 2]
    for r in evals:
        assert r["normalized"] is True and set(r["groups"]) == SCALES
        assert 0.0 <= r["mae"] <= 1.0  # normalized by each row's scale range
        assert sum(g["n"] for g in r["groups"].values()) == r["n"]


def test_card_names_every_scale_and_calibration_is_on_the_judges_own(mixed_run: Any) -> None:
    from judgeforge.card import JudgeCard
    from judgeforge.data.io import load_records

    card = JudgeCard.read(mixed_run.final)
    assert card is not None
    assert {d: [s.min, s.max] for d, s in card.dimensions.items()} == {"quality": [1, 5]}
    trained_on = card.metrics["trained_on"]
    assert [(t["dimension"], t["scale"]) for t in trained_on] == [
        ("quality", [1, 5]), ("quality", [0, 3]), ("quality", [1, 10])]
    assert all(t["train_rows"] > 0 and t["val_rows"] > 0 for t in trained_on)
    val = load_records(mixed_run.output_dir / "val.parquet")
    assert len(val.records) == trained_on[0]["val_rows"]
    assert all(1 <= r.label["quality"] <= 5 for r in val.records)
    cal = [r for r in _rows(mixed_run.log, "calibration") if r["folder"] == "final"]
    assert cal and cal[-1]["fitted"], cal
    # fitted on the Prometheus validation rows only, not on the whole mix
    assert card.calibration is not None and cal[-1]["rows"] == len(val.records)
    assert card.calibration.rows == len(val.records)
    assert (card.calibration.low, card.calibration.high) == (1.0, 5.0)
