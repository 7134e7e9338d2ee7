"""The verl launcher's pure half, in the main environment (no verl, ray or torch needed).

The same overrides are composed with verl's real Hydra config in tests/verl (``.venv-verl``).
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from judgeforge.errors import ConfigError, MissingExtraError
from judgeforge.train.config import TrainConfig
from judgeforge.train.verl import checkpoints, ray_job
from judgeforge.train.verl.launch import build_command, launch, plan, runtime_env
from judgeforge.train.verl.overrides import (
    DATASET_CLS_PATH,
    REWARD_FN_PATH,
    build_overrides,
    forbidden_keys,
    hydra_value,
)
from judgeforge.train.verl.servable import resolve_servable

MODEL = "/models/judge"


def _cfg(tmp_path: Path, *overrides: str) -> TrainConfig:
    data = tmp_path / "train.parquet"
    data.write_bytes(b"")  # only its path matters here
    return TrainConfig.for_gpu().with_overrides(
        [f"data.train_files=[{data}]", f"model.path={MODEL}", *overrides])


def _as_dict(overrides: list[str]) -> dict[str, str]:
    return dict(o.split("=", 1) for o in overrides)


def test_seed_values_become_verl_09_keys(tmp_path: Path) -> None:
    cfg = _cfg(tmp_path)
    ov = build_overrides(cfg, experiment_name="run1")
    kv = _as_dict(ov)
    expected = {
        "algorithm.adv_estimator": "grpo",
        "data.train_batch_size": "96",
        "data.max_prompt_length": "4096",
        "data.max_response_length": "2048",
        "data.filter_overlong_prompts": "false",
        "data.custom_cls.path": DATASET_CLS_PATH,
        "data.custom_cls.name": "PointwiseJudgeDataset",
        "+data.judgeforge.reward": "exp_decay",
        "+data.judgeforge.k": "2.0",
        "actor_rollout_ref.model.path": MODEL,
        "actor_rollout_ref.actor.optim.lr": "1e-06",
        "actor_rollout_ref.actor.ppo_mini_batch_size": "24",
        "actor_rollout_ref.actor.ppo_micro_batch_size_per_gpu": "4",
        "actor_rollout_ref.rollout.log_prob_micro_batch_size_per_gpu": "4",
        "actor_rollout_ref.ref.log_prob_micro_batch_size_per_gpu": "4",
        "actor_rollout_ref.actor.use_kl_loss": "true",
        "actor_rollout_ref.actor.kl_loss_coef": "0.001",
        "actor_rollout_ref.actor.kl_loss_type": "low_var_kl",
        "actor_rollout_ref.rollout.name": "vllm",
        "actor_rollout_ref.rollout.mode": "async",
        "actor_rollout_ref.rollout.n": "4",
        "actor_rollout_ref.rollout.tensor_model_parallel_size": "8",
        "actor_rollout_ref.rollout.gpu_memory_utilization": "0.6",
        "reward.reward_manager.name": "naive",
        "reward.custom_reward_function.path": REWARD_FN_PATH,
        "reward.custom_reward_function.name": "compute_score",
        "trainer.logger": "[console,tensorboard]",
        "trainer.n_gpus_per_node": "8",
        "trainer.nnodes": "1",
        "trainer.save_freq": "20",
        "trainer.total_epochs": "1",
        "trainer.experiment_name": "run1",
    }
    assert {k: kv.get(k) for k in expected} == expected
    # no validation files: the training files stand in and validation is off
    assert kv["data.val_files"] == kv["data.train_files"]
    assert kv["trainer.test_freq"] == "-1" and kv["trainer.val_before_train"] == "false"


def test_no_ignored_or_deprecated_keys(tmp_path: Path) -> None:
    ov = build_overrides(_cfg(tmp_path, f"data.val_files=[{tmp_path / 'train.parquet'}]"))
    keys = [o.split("=", 1)[0].lstrip("+") for o in ov]
    assert not [k for k in keys if k.startswith("custom_reward_function.")]
    assert not [k for k in keys if k.startswith("reward_model.")]
    assert "data.val_batch_size" not in keys
    assert forbidden_keys(ov) == []
    assert forbidden_keys(["custom_reward_function.path=x", "reward_model.reward_manager=naive",
                           "data.val_batch_size=8"]) == [
        "custom_reward_function.path=x", "reward_model.reward_manager=naive",
        "data.val_batch_size=8"]
    assert len(keys) == len(set(keys))


def test_options_and_presets(tmp_path: Path) -> None:
    cfg = _cfg(tmp_path, "data.dimension=helpfulness", "data.scale=1-5", "grpo.max_steps=3",
               "grpo.save_freq=-1", "logger=[console,jsonl,wandb]", "data.max_train_rows=50",
               "verl.extra_overrides=[trainer.val_before_train=true]")
    ov = build_overrides(cfg)
    kv = _as_dict(ov)
    assert kv["+data.judgeforge.dimension"] == "helpfulness"
    assert kv["+data.judgeforge.scale"] == "1-5"  # Hydra reads it as the string 1-5
    assert kv["trainer.total_training_steps"] == "3"
    assert int(kv["trainer.save_freq"]) > 3  # verl saves at the last step only
    assert kv["trainer.logger"] == "[console,file,wandb]"
    assert kv["data.train_max_samples"] == "50"
    assert ov[-1] == "trainer.val_before_train=true"  # extra overrides win


@pytest.mark.parametrize("override, message", [
    ("grpo.mini_batch_size=25", "multiple of"),
    ("verl.tensor_parallel_size=3", "must divide"),
    ("logger=[mlflow]", "not supported"),
    ("data.train_files=[]", "train_files is empty"),
])
def test_bad_configs_are_refused(tmp_path: Path, override: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        build_overrides(_cfg(tmp_path, override))


@pytest.mark.parametrize("value, text", [
    (True, "true"), (None, "null"), (3, "3"), (1e-6, "1e-06"), ("grpo", "grpo"),
    ("true", "'true'"), ("1e-6", "'1e-6'"), ("~/x", "'~/x'"), ("a b", "'a b'"),
    ("it's", "'it\\'s'"), ("${x}", "'\\${x}'"), (["a", "b c"], "[a,'b c']"),
    ("pkg://judgeforge.train.reward", "pkg://judgeforge.train.reward"),
])
def test_hydra_value(value: object, text: str) -> None:
    assert hydra_value(value) == text


def test_command_and_dry_run(tmp_path: Path) -> None:
    cfg = _cfg(tmp_path, f"output_dir={tmp_path / 'out'}", "verl.experiment_name=e1")
    cmd = build_command(cfg, python="/py")
    assert cmd[:3] == ["/py", "-m", "verl.trainer.main_ppo"]
    kv = _as_dict(cmd[3:])
    assert kv["data.train_files"] == f"[{tmp_path / 'train.parquet'}]"
    assert kv["trainer.default_local_dir"] == str(tmp_path / "out")

    buf = io.StringIO()
    assert launch(cfg, dry_run=True, out=buf) == 0
    text = buf.getvalue()
    assert "verl.trainer.main_ppo" in text and f"TENSORBOARD_DIR={tmp_path / 'out'}" in text
    for o in plan(cfg).overrides:
        assert f"  {o}\n" in text
    assert "verl.model_merger merge --backend fsdp" in text
    assert not (tmp_path / "out").exists()  # a dry run creates nothing

    assert "sft.steps=5 is not run by the verl backend" in "\n".join(
        plan(cfg.with_overrides(["sft.steps=5"])).notes)
    with pytest.raises(ConfigError, match="backend"):
        launch(cfg.merged({"backend": "cpu"}), dry_run=True, out=buf)


def test_ray_job_plan_ships_package_and_data(tmp_path: Path) -> None:
    cfg = _cfg(tmp_path, "verl.ray_address=http://head:8265", "output_dir=/shared/ckpt",
               "logger=[console,jsonl]")
    p = plan(cfg, stage_dir=tmp_path / "stage")
    assert p.command[:3] == ["python3", "-m", "verl.trainer.main_ppo"]
    assert _as_dict(p.overrides)["data.train_files"] == "[data/0-train.parquet]"
    assert p.entrypoint.endswith("&& python3 -m judgeforge.train.verl.servable /shared/ckpt")
    env = p.runtime_env
    assert env is not None
    assert env["py_modules"] == [str(tmp_path / "stage" / "judgeforge")]
    assert env["working_dir"] == str(tmp_path / "stage" / "work")
    assert any(r.startswith("pydantic") for r in env["pip"])
    assert env["env_vars"]["VERL_FILE_LOGGER_PATH"] == "/shared/ckpt/metrics.jsonl"
    assert runtime_env(cfg, pip=["x"])["pip"] == ["x"]

    buf = io.StringIO()
    launch(cfg, dry_run=True, out=buf)
    assert "ray job submit --address http://head:8265 --runtime-env-json" in buf.getvalue()

    assert p.files is not None
    ray_job.stage(p.files)
    assert (tmp_path / "stage" / "work" / "data" / "0-train.parquet").is_file()
    probe = ("import sys; sys.path.insert(0, sys.argv[1]); import judgeforge.train.reward as r, "
             "judgeforge.train.verl.overrides as o; print(r.__file__); print(o.__file__)")
    out = subprocess.run([sys.executable, "-c", probe, str(tmp_path / "stage")],
                         capture_output=True, text=True, check=True).stdout.split()
    assert all(f.startswith(str(tmp_path / "stage" / "judgeforge")) for f in out), out


def test_launcher_imports_no_heavy_stack() -> None:
    code = ("import sys, judgeforge.train.verl.launch, judgeforge.train.verl.servable; "
            "print(sorted({m.split('.')[0] for m in sys.modules} & "
            "{'verl', 'ray', 'torch', 'vllm', 'transformers'}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_find_verl_python(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(checkpoints.VERL_PYTHON_ENV, raising=False)
    monkeypatch.setattr(checkpoints.importlib.util, "find_spec", lambda name: None)
    monkeypatch.setattr(checkpoints, "_repo_roots", lambda: [tmp_path])
    with pytest.raises(MissingExtraError, match=r"judgeforge\[verl\]"):
        checkpoints.find_verl_python()
    venv = tmp_path / ".venv-verl" / "bin"
    venv.mkdir(parents=True)
    (venv / "python").write_text("")
    assert checkpoints.find_verl_python() == str(venv / "python")
    monkeypatch.setenv(checkpoints.VERL_PYTHON_ENV, str(tmp_path / "missing"))
    with pytest.raises(ConfigError):
        checkpoints.find_verl_python()
    monkeypatch.setenv(checkpoints.VERL_PYTHON_ENV, sys.executable)
    assert checkpoints.find_verl_python() == sys.executable


def test_checkpoint_layout_and_passthrough(tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    run = tmp_path / "run"
    for step in (1, 3, 10):
        actor = run / f"global_step_{step}" / "actor"
        actor.mkdir(parents=True)
        (actor / "fsdp_config.json").write_text(json.dumps({"world_size": 1}))
        (actor / "model_world_size_1_rank_0.pt").write_bytes(b"")
    (run / "global_step_11").mkdir()  # incomplete: ignored
    assert checkpoints.latest_checkpoint(run) == run / "global_step_10" / "actor"
    (run / "latest_checkpointed_iteration.txt").write_text("3\n")
    assert checkpoints.latest_checkpoint(run) == run / "global_step_3" / "actor"
    assert checkpoints.latest_checkpoint(tmp_path / "nothing") is None

    hf = tmp_path / "hf_model"
    hf.mkdir()
    assert resolve_servable(hf) == hf
    assert resolve_servable("HuggingFaceTB/SmolLM2-135M-Instruct") == Path(
        "HuggingFaceTB/SmolLM2-135M-Instruct")
    monkeypatch.delenv(checkpoints.VERL_PYTHON_ENV, raising=False)
    monkeypatch.setattr(checkpoints.importlib.util, "find_spec", lambda name: None)
    monkeypatch.setattr(checkpoints, "_repo_roots", lambda: [tmp_path])
    with pytest.raises(MissingExtraError):
        resolve_servable(run)
    assert not (run / "hf").exists()
    assert os.environ.get(checkpoints.VERL_PYTHON_ENV) is None
