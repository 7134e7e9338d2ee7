"""TrainConfig presets and shipped YAMLs, plus the CPU backend's light helpers (no torch)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from judgeforge.data.schema import PointwiseRecord, Scale
from judgeforge.errors import ConfigError
from judgeforge.train import TrainConfig, compute_score, explain

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ROOT / "train" / "presets"


def _record(i: int, label: int, response: str = "An answer.") -> PointwiseRecord:
    return PointwiseRecord.model_validate({
        "input": [{"role": "user", "content": f"Question {i}?"}],
        "output": {"content": response, "label": {"quality": label}},
        "data_source": "unit", "id": str(i),
        "extra_info": {"rubric": "Is it good?", "reference": "The best answer."}})


def test_for_cpu_is_a_small_sft_then_grpo_recipe() -> None:
    cfg = TrainConfig.for_cpu()
    assert cfg.backend == "cpu"
    assert cfg.sft.steps > 0  # GRPO alone gets all-zero rewards on the untrained model
    assert cfg.grpo.max_steps and cfg.grpo.max_minutes is None  # steps, not minutes
    assert cfg.grpo.group_size >= 4 and cfg.grpo.kl_coef > 0 and cfg.grpo.learning_rate <= 5e-6
    assert cfg.sft.balance_labels and cfg.grpo.trainable_layers  # the measured recipe
    assert cfg.grpo.save_freq > 0 and cfg.grpo.test_freq > 0
    assert not cfg.prompt.use_reference and cfg.prompt.max_response_chars
    assert "jsonl" in cfg.logger


@pytest.mark.parametrize("name,backend", [("cpu", "cpu"), ("cpu-quick", "cpu"), ("gpu", "verl")])
def test_shipped_configs_load(name: str, backend: str) -> None:
    cfg = TrainConfig.from_yaml(CONFIGS / f"{name}.yaml")
    assert cfg.backend == backend
    assert cfg.data.train_files


def test_quick_config_matches_quick_overrides() -> None:
    from judgeforge.train.cpu import QUICK_OVERRIDES

    quick_yaml = TrainConfig.from_yaml(CONFIGS / "cpu-quick.yaml")
    quick_flag = TrainConfig.from_yaml(CONFIGS / "cpu.yaml", QUICK_OVERRIDES)
    for key in ("sft.steps", "grpo.max_steps", "grpo.test_freq", "grpo.max_minutes",
                "cpu.eval_rows", "data.max_train_rows"):
        sec, field = key.split(".")
        assert getattr(getattr(quick_yaml, sec), field) == getattr(getattr(quick_flag, sec), field)
    assert quick_flag.sft.steps < TrainConfig.for_cpu().sft.steps


def test_new_fields_have_help_and_overrides() -> None:
    lines = "\n".join(explain())
    for key in ("prompt.max_response_chars", "prompt.max_query_chars", "grpo.entropy_coef",
                "grpo.scale_rewards", "sft.balance_labels", "cpu.eval_max_new_tokens",
                "cpu.resume"):
        line = next(x for x in lines.splitlines() if x.startswith(key + " "))
        assert line.split(":", 1)[1].strip(), key
    cfg = TrainConfig.for_cpu().with_overrides(["prompt.max_response_chars=100",
                                                "grpo.scale_rewards=none"])
    assert cfg.prompt.max_response_chars == 100 and cfg.grpo.scale_rewards == "none"
    with pytest.raises(ConfigError):
        cfg.with_overrides(["grpo.scale_rewards=sometimes"])


def test_import_train_stays_light() -> None:
    code = ("import sys, judgeforge.train, judgeforge.train.cpu, judgeforge.train.cli_train;"
            "judgeforge.train.TrainConfig; judgeforge.train.train;"
            "print(sorted(m for m in ('torch', 'trl', 'transformers', 'datasets') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_make_rows_builds_prompt_label_and_reward_spec() -> None:
    from judgeforge.train.cpu.data import make_rows

    cfg = TrainConfig.for_cpu().with_overrides(["prompt.max_response_chars=20",
                                                "reward.k=3"])
    rows = make_rows([_record(0, 4, "x" * 100), _record(1, 2)], cfg, "quality",
                     Scale(min=1, max=5))
    assert [r["label"] for r in rows] == [4, 2]
    text = rows[0]["prompt"][-1]["content"]
    assert "<score>X</score>" in text and "1-5" in text
    assert "The best answer." not in text  # use_reference=False in the CPU preset
    assert "Is it good?" not in text  # use_rubric=False in the CPU preset
    assert "x" * 21 not in text
    assert rows[0]["completion"] == "<score>4</score>"
    spec = rows[0]["extra_info"]["judgeforge"]
    assert spec == {"dimensions": {"quality": [1, 5]}, "reward": "exp_decay", "k": 3.0}
    full = TrainConfig.for_cpu().with_overrides(["prompt.use_reference=true",
                                                 "prompt.use_rubric=true"])
    text = make_rows([_record(0, 4)], full, "quality", Scale(min=1, max=5))[0]["prompt"][-1]
    assert "The best answer." in text["content"] and "Is it good?" in text["content"]


def test_make_rows_rejects_out_of_scale_labels() -> None:
    from judgeforge.errors import DataError
    from judgeforge.train.cpu.data import make_rows

    with pytest.raises(DataError, match="row 1: output.label.quality: 7 is outside the scale"):
        make_rows([_record(0, 4), _record(1, 7)], TrainConfig.for_cpu(), "quality",
                  Scale(min=1, max=5))


def test_balance_draws_labels_equally() -> None:
    from judgeforge.train.cpu.data import balance

    rows = [{"label": 4}] * 20 + [{"label": 1}] * 2 + [{"label": 2}] * 3
    out = balance(rows, 30, seed=0)
    counts = {k: sum(r["label"] == k for r in out) for k in (1, 2, 4)}
    assert counts == {1: 10, 2: 10, 4: 10}


def test_reward_function_wraps_compute_score_in_trl_contract() -> None:
    from judgeforge.train.cpu.rewards_trl import make_reward_function

    spec = {"judgeforge": {"dimensions": {"quality": [1, 5]}, "reward": "exp_decay", "k": 2.0}}
    logged: dict[str, float] = {}
    fn = make_reward_function(exact_bonus=0.5)
    completions = [[{"role": "assistant", "content": "<score>4</score>"}],
                   [{"role": "assistant", "content": "<score>2</score>"}],
                   [{"role": "assistant", "content": "no score"}]]
    rewards = fn(prompts=[[{"role": "user", "content": "q"}]] * 3, completions=completions,
                 completion_ids=[[1]] * 3, ground_truth=[4, 4, 4], extra_info=[spec] * 3,
                 data_source=["unit"] * 3, trainer_state=None,
                 log_metric=lambda k, v: logged.__setitem__(k, v))
    expected = compute_score("unit", "<score>2</score>", 4, spec)["score"]
    assert rewards == pytest.approx([1.5, expected, 0.0])
    assert logged["judge/parse_rate"] == pytest.approx(2 / 3)
    assert logged["judge/accuracy"] == pytest.approx(1 / 3)
    # A parse failure is the worst error (3 on 1-5 for label 4), never a score of 0.
    assert logged["judge/mae"] == pytest.approx((0 + 2 + 3) / 3)


def test_grpo_shape_and_plan() -> None:
    from judgeforge.train.cpu.trainer import _grpo_shape, plan

    cfg = TrainConfig.for_cpu().with_overrides(["grpo.group_size=8", "grpo.train_batch_size=4",
                                                "grpo.micro_batch_size=16"])
    assert _grpo_shape(cfg) == (16, 2)
    cfg = cfg.with_overrides(["grpo.micro_batch_size=3"])
    assert _grpo_shape(cfg) == (2, 16)  # a divisor of the 32 completions of a step
    text = "\n".join(plan(cfg))
    for word in ("sft:", "grpo:", "threads:", "validation:", "train_log.jsonl", "curves.png"):
        assert word in text


def test_choose_threads() -> None:
    import os

    from judgeforge.train.cpu.trainer import choose_threads

    assert choose_threads(3) == 3
    assert 1 <= choose_threads(None) <= (os.cpu_count() or 1)


def test_train_log_best_tracker_and_curves(tmp_path: Path) -> None:
    from judgeforge.train.cpu.callbacks import BestTracker, TrainLog
    from judgeforge.train.cpu.plots import plot_curves

    log = TrainLog(tmp_path / "train_log.jsonl")
    log.write({"stage": "sft", "step": 1, "loss": 1.0})
    log.write({"stage": "grpo", "step": 1, "reward": 0.5, "entropy": 0.3, "kl": 0.0})
    log.write({"stage": "eval", "step": 1, "mae": 0.9})
    with (tmp_path / "train_log.jsonl").open("a") as fh:
        fh.write('{"cut by a cra')  # a torn last line is skipped
    assert [r["stage"] for r in log.read_all()] == ["sft", "grpo", "eval"]
    saved: list[int] = []
    best = BestTracker(lambda model, s: saved.append(s["step"]))
    assert best.offer(0, {"mae": 1.0}, None) and not best.offer(1, {"mae": 1.2}, None)
    assert best.offer(2, {"mae": 0.8}, None) and saved == [0, 2] and best.best_step == 2
    png = plot_curves(log.read_all(), tmp_path / "curves.png")
    assert png is not None and png.read_bytes()[:4] == b"\x89PNG"
    assert plot_curves([], tmp_path / "none.png") is None
    json.dumps([r for r in log.rows])


def test_busy_cores_reads_current_load_not_the_average() -> None:
    import os
    import subprocess
    import sys

    from judgeforge.train.cpu.trainer import busy_cores

    if not os.path.exists("/proc/stat"):
        pytest.skip("no /proc/stat")
    spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        busy = busy_cores(1.0)
    finally:
        spinner.kill()
        spinner.wait()
    assert busy is not None and busy >= 0.7  # one spinning process keeps about a core busy


def test_train_log_reset_forgets_an_interrupted_stage(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from judgeforge.train.cpu.callbacks import TrainLog

    log = TrainLog(tmp_path / "train_log.jsonl")
    log.write({"stage": "sft", "step": 1})
    log.reset()
    log.write({"stage": "sft", "step": 1, "loss": 0.5})
    rows = TrainLog(tmp_path / "train_log.jsonl").read_all()
    assert [(r["stage"], r["step"]) for r in rows] == [("sft", 1)] and rows[0]["loss"] == 0.5


def test_every_shipped_preset_loads_and_the_larger_bases_train_a_lora_adapter() -> None:
    from judgeforge.models.default_model import model_names
    from judgeforge.train.presets import preset_names

    for name in preset_names():
        TrainConfig.from_yaml(name)  # a preset that does not validate is a ConfigError here
    for name, model in (("cpu-0.5b", "qwen2.5-coder-0.5b-instruct"),
                        ("cpu-1.5b", "qwen2.5-coder-1.5b-instruct")):
        cfg = TrainConfig.from_yaml(name)
        assert cfg.model.path == model and model in model_names()
        assert cfg.lora.enabled and cfg.lora.r > 0


def test_lora_section_refuses_bad_values_by_name() -> None:
    with pytest.raises(ConfigError, match="lora.r"):
        TrainConfig.for_cpu().with_overrides(["lora.r=-1"])
    with pytest.raises(ConfigError, match="lora.dropout"):
        TrainConfig.for_cpu().with_overrides(["lora.dropout=1.5"])
    assert not TrainConfig.for_cpu().lora.enabled  # full fine-tuning stays the default
