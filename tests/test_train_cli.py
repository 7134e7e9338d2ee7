"""``judgeforge train``: explain, dry runs on both backends, usage errors, and a real CPU run
from data files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from judgeforge.cli.main import main

ROOT = Path(__file__).resolve().parents[1]
CPU_YAML = ROOT / "train" / "presets" / "cpu.yaml"  # the preset "cpu", by path
GPU_YAML = ROOT / "train" / "presets" / "gpu.yaml"


def test_explain_prints_every_key_with_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["train", "--explain"]) == 0
    out = capsys.readouterr().out.splitlines()
    keys = {line.split(" = ")[0] for line in out}
    for key in ("backend", "grpo.learning_rate", "grpo.kl_coef", "sft.steps",
                "prompt.max_response_chars", "reward.exact_bonus", "cpu.threads", "output_dir"):
        assert key in keys
    assert all(": " in line and line.split(": ", 1)[1].strip() for line in out)


def test_cpu_dry_run_prints_config_and_plan(capsys: pytest.CaptureFixture[str],
                                            tmp_path: Path) -> None:
    # Overrides may follow flags.
    code = main(["train", str(CPU_YAML), "--dry-run", "grpo.learning_rate=1e-6",
                 f"output_dir={tmp_path / 'run'}"])
    assert code == 0
    out = capsys.readouterr().out
    assert "# resolved config" in out and "# plan" in out
    assert "learning_rate: 1.0e-06" in out
    assert "lr 1e-06" in out and str(tmp_path / "run" / "final") in out
    assert not (tmp_path / "run").exists()  # a dry run writes nothing


def test_quick_dry_run_uses_the_quick_variant(capsys: pytest.CaptureFixture[str]) -> None:
    from judgeforge.train import TrainConfig

    assert main(["train", str(CPU_YAML), "--quick", "--dry-run"]) == 0
    out = capsys.readouterr().out
    quick = TrainConfig.from_yaml("cpu-quick")
    assert f"sft: {quick.sft.steps} steps" in out
    assert f"grpo: {quick.grpo.max_steps} steps" in out


def test_verl_dry_run_goes_to_the_verl_launcher(capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("judgeforge.train.verl.launch")
    assert main(["train", str(GPU_YAML), "--dry-run", "grpo.learning_rate=3e-6"]) == 0
    out = capsys.readouterr().out
    assert "actor.optim.lr=3e-06" in out
    # the CPU recipe's CPU-only knob is refused by name, not silently dropped
    assert main(["train", str(CPU_YAML), "--backend", "verl", "--dry-run"]) == 1
    assert "grpo.trainable_layers=null" in capsys.readouterr().err
    assert main(["train", str(CPU_YAML), "--backend", "verl", "--dry-run",
                 "grpo.trainable_layers=null"]) == 0
    assert "verl" in capsys.readouterr().out


@pytest.mark.parametrize("argv,code", [
    (["train"], 2),
    (["train", "grpo.learning_rate=1e-6"], 1),
    (["train", str(CPU_YAML), "grpo.no_such_key=1", "--dry-run"], 1),
    (["train", str(CPU_YAML), "grpo.learning_rate=-1", "--dry-run"], 1),
    (["train", "/no/such/config.yaml", "--dry-run"], 1),
])
def test_usage_and_config_errors(argv: list[str], code: int,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == code
    err = capsys.readouterr().err
    assert err and "Traceback" not in err


def test_missing_training_data_is_a_clean_error(capsys: pytest.CaptureFixture[str],
                                                tmp_path: Path) -> None:
    pytest.importorskip("trl")
    code = main(["train", str(CPU_YAML), f"output_dir={tmp_path}",
                 f"data.train_files=[{tmp_path / 'missing.jsonl'}]", "cpu.threads=1"])
    assert code == 1
    assert "missing.jsonl" in capsys.readouterr().err


@pytest.mark.slow
def test_cli_trains_from_files(tmp_path: Path, default_model_path: Path,
                               capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("trl")
    from judgeforge.data.io import write_records
    from judgeforge.data.schema import DatasetInfo, PointwiseRecord

    words = ("useless", "weak", "fine", "good", "excellent")
    records = [PointwiseRecord.model_validate({
        "input": [{"role": "user", "content": f"Say hi ({i})."}],
        "output": {"content": f"Hi. This is {words[i % 5]}.", "label": {"helpfulness": i % 5}},
        "data_source": "synthetic", "id": str(i)}) for i in range(20)]
    info = DatasetInfo(dimensions={"helpfulness": "0-4"})
    train = write_records(tmp_path / "train.jsonl", records[:16], info)
    val = write_records(tmp_path / "val.jsonl", records[16:], info)
    out = tmp_path / "run"
    code = main(["train", str(CPU_YAML), "--json", f"output_dir={out}",
                 f"model.path={default_model_path}", f"data.train_files=[{train}]",
                 f"data.val_files=[{val}]", "sft.steps=1", "sft.batch_size=4",
                 "grpo.max_steps=1", "grpo.group_size=4", "grpo.train_batch_size=1",
                 "grpo.micro_batch_size=4", "grpo.save_freq=-1", "cpu.eval_rows=4"])
    assert code == 0
    text = capsys.readouterr().out
    result = json.loads(text[text.rindex('{\n  "backend"'):])
    assert result["backend"] == "cpu" and result["final"] == str(out / "final")
    assert result["metrics"]["final"]["step"] == 1
    assert (out / "final" / "config.json").is_file()
    assert (out / "train_log.jsonl").is_file() and (out / "curves.png").is_file()
    rows = [json.loads(x) for x in (out / "train_log.jsonl").read_text().splitlines()]
    assert {r["stage"] for r in rows} == {"sft", "grpo_start", "grpo", "eval", "calibration"}
    assert (out / "final" / "judge_config.json").is_file()
