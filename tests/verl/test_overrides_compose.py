"""The generated overrides compose with verl 0.9.1's Hydra config and pass its validation."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from judgeforge.train.config import TrainConfig
from judgeforge.train.verl.overrides import DATASET_CLS_NAME, REWARD_FN_PATH, build_overrides

pytest.importorskip("verl", reason="the verl tests run in .venv-verl")
from omegaconf import OmegaConf


def _validate(cfg: Any) -> None:
    """What ``main_ppo.main`` checks before starting Ray, plus the dataclass conversions the
    trainer and workers do for the model and rollout sections."""
    import warnings

    from verl.trainer.ppo.utils import need_critic, need_reference_policy
    from verl.utils.config import omega_conf_to_dataclass, validate_config

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Disabled critic")
        use_critic = need_critic(cfg)
    validate_config(cfg, use_reference_policy=need_reference_policy(cfg), use_critic=use_critic)
    assert need_reference_policy(cfg)  # the KL loss needs the reference policy
    assert not use_critic  # GRPO has no critic
    rollout = omega_conf_to_dataclass(cfg.actor_rollout_ref.rollout)
    assert (rollout.name, rollout.mode) == ("vllm", "async")
    model = omega_conf_to_dataclass(cfg.actor_rollout_ref.model)  # loads the HF config
    assert model.hf_config.model_type == "llama"


@pytest.mark.parametrize("preset", ["seed", "one_gpu"])
def test_overrides_compose_and_validate(preset: str, compose: Callable[[list[str]], Any],
                                        model_dir: Path, mt_bench_parquet: Path) -> None:
    cfg = TrainConfig.for_gpu().with_overrides([f"data.train_files=[{mt_bench_parquet}]",
                                                f"data.val_files=[{mt_bench_parquet}]"])
    if preset == "one_gpu":
        cfg = cfg.with_overrides(["verl.n_gpus_per_node=1", "verl.tensor_parallel_size=1",
                                  "grpo.train_batch_size=4", "grpo.mini_batch_size=4",
                                  "grpo.micro_batch_size=2", "grpo.max_steps=2",
                                  "grpo.save_freq=-1", "logger=[console,jsonl]"])
    ov = build_overrides(cfg, model_path=str(model_dir), experiment_name="t")
    vc = compose(ov)
    _validate(vc)

    assert vc.algorithm.adv_estimator == "grpo"
    assert vc.reward.custom_reward_function.path == REWARD_FN_PATH
    assert vc.reward.custom_reward_function.name == "compute_score"
    assert vc.reward.reward_manager.name == "naive"
    # the seed's keys stay at their (ignored) defaults and nothing deprecated is set
    assert vc.custom_reward_function.path is None
    assert vc.reward_model.reward_manager is None
    assert vc.data.val_batch_size is None
    assert vc.data.custom_cls.name == DATASET_CLS_NAME
    assert vc.data.filter_overlong_prompts is False
    assert vc.data.judgeforge.reward == "exp_decay" and vc.data.judgeforge.k == 2.0
    a = vc.actor_rollout_ref
    assert a.actor.use_kl_loss is True and a.actor.kl_loss_coef == cfg.grpo.kl_coef
    assert a.actor.kl_loss_type == "low_var_kl"
    assert a.rollout.n == cfg.grpo.group_size
    for mbs in (a.actor.ppo_micro_batch_size_per_gpu, a.rollout.log_prob_micro_batch_size_per_gpu,
                a.ref.log_prob_micro_batch_size_per_gpu):
        assert mbs == cfg.grpo.micro_batch_size
    assert a.rollout.tensor_model_parallel_size == cfg.verl.tensor_parallel_size
    if preset == "one_gpu":
        assert list(vc.trainer.logger) == ["console", "file"]
        assert vc.trainer.total_training_steps == 2
        assert vc.trainer.save_freq > 2  # "only at the end": verl saves at the last step


def test_tricky_strings_survive_hydra(compose: Callable[[list[str]], Any], model_dir: Path,
                                      tmp_path: Path) -> None:
    """Quotes, backslashes, brackets, commas and ${...} reach verl exactly as written."""
    weird = tmp_path / "my data, v1 [it's]=x.parquet"
    prompt = "It's a \\${x} test = [a, b] \\' ${oc.env:HOME} {y} end\\"
    cfg = TrainConfig.for_gpu().merged({
        "data": {"train_files": [str(weird)], "dimension": "quality", "scale": "1-5"},
        "prompt": {"system_prompt": prompt}, "verl": {"experiment_name": "true"},
        "output_dir": str(tmp_path / "out dir")})
    vc = compose(build_overrides(cfg, model_path=str(model_dir)))
    plain = OmegaConf.to_container(vc, resolve=True)
    assert plain["data"]["judgeforge"]["system_prompt"] == prompt
    assert plain["data"]["train_files"] == [str(weird)]
    assert plain["data"]["judgeforge"]["scale"] == "1-5"
    assert plain["trainer"]["experiment_name"] == "true"
    assert plain["trainer"]["default_local_dir"] == str(tmp_path / "out dir")


def test_extra_overrides_come_last(compose: Callable[[list[str]], Any], model_dir: Path) -> None:
    cfg = TrainConfig.for_gpu().with_overrides([
        "data.train_files=[a.parquet]",
        "verl.extra_overrides=[actor_rollout_ref.rollout.gpu_memory_utilization=0.3]"])
    vc = compose(build_overrides(cfg, model_path=str(model_dir)))
    assert vc.actor_rollout_ref.rollout.gpu_memory_utilization == 0.3
