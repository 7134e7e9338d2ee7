"""verl 0.9.1 Hydra overrides from a :class:`TrainConfig` (pure Python: no verl, ray or torch).

The seed page's keys are partly wrong for verl 0.9: its top-level ``custom_reward_function.*`` and
``reward_model.reward_manager`` are accepted by Hydra and silently ignored by ``main_ppo``, and
``data.val_batch_size`` is deprecated. What this module writes instead:

* reward: ``reward.custom_reward_function.{path,name}`` (``pkg://judgeforge.train.reward``,
  ``compute_score``) with ``reward.reward_manager.{source,name}=register,naive``;
* data: the project's dataset class through ``data.custom_cls.{path,name}``, its own options
  under ``+data.judgeforge.*`` (dimension, scale, reward, k, prompt options, and what to do with
  over-long prompts); verl's silent long-prompt filter is off (``data.filter_overlong_prompts=
  false``) because the dataset class measures every prompt and reports the long ones itself;
* GRPO with a KL loss, every micro-batch key, a vLLM async rollout, loggers and checkpoints.

``cfg.verl.extra_overrides`` come last, so they win.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from judgeforge.errors import ConfigError
from judgeforge.train.config import TrainConfig

__all__ = [
    "DATASET_CLS_PATH",
    "DATASET_CLS_NAME",
    "REWARD_FN_PATH",
    "REWARD_FN_NAME",
    "DATASET_OPTIONS_KEY",
    "OVERLONG_POLICIES",
    "LOGGER_MAP",
    "SAVE_AT_END_FREQ",
    "FORBIDDEN_PREFIXES",
    "absolute",
    "build_overrides",
    "forbidden_keys",
    "default_experiment_name",
    "hydra_value",
    "logger_env",
    "verl_loggers",
]

DATASET_CLS_PATH = "pkg://judgeforge.train.verl.dataset"
DATASET_CLS_NAME = "PointwiseJudgeDataset"
REWARD_FN_PATH = "pkg://judgeforge.train.reward"
REWARD_FN_NAME = "compute_score"
#: The dataset class reads its options from ``data.<DATASET_OPTIONS_KEY>`` (added with ``+``).
DATASET_OPTIONS_KEY = "judgeforge"
#: ``error``: refuse to start and name the long rows; ``drop``: drop them, logging the count.
OVERLONG_POLICIES = ("error", "drop")
#: judgeforge logger name -> verl ``trainer.logger`` backend.
LOGGER_MAP = {"console": "console", "tensorboard": "tensorboard", "wandb": "wandb",
              "jsonl": "file"}
#: verl saves only when ``save_freq > 0`` (then also at the last step), so judgeforge's
#: ``save_freq=-1`` ("only at the end") becomes a frequency no run reaches.
SAVE_AT_END_FREQ = 1_000_000_000
#: Keys verl 0.9.1 accepts but ignores or deprecates; never generated (tests assert it).
FORBIDDEN_PREFIXES = ("custom_reward_function.", "reward_model.reward_manager",
                      "data.val_batch_size")

_SAFE = re.compile(r"^[A-Za-z0-9_./@+-][A-Za-z0-9_./:@~+-]*$")
_RESERVED = {"true", "false", "null", "none", "nan", "inf", "+inf", "-inf"}


def _escape_interpolations(text: str) -> str:
    """Make ``${`` literal for OmegaConf (a backslash run before it is doubled first)."""
    return re.sub(r"(\\*)\$\{", lambda m: m.group(1) * 2 + "\\${", text)


def _quote(text: str) -> str:
    """A single-quoted Hydra string whose value is exactly ``text``."""
    body = _escape_interpolations(text)
    # Hydra: a quote inside is escaped as \'; a backslash run right before a quote (escaped or
    # closing) must be doubled; other backslashes stay literal.
    body = re.sub(r"(\\*)'", lambda m: m.group(1) * 2 + "\\'", body)
    body = re.sub(r"(\\+)$", lambda m: m.group(1) * 2, body)
    return f"'{body}'"


def _looks_like_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def hydra_value(value: Any) -> str:
    """``value`` written so that Hydra's override parser reads it back unchanged."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, Mapping):
        return "{" + ",".join(f"{_key(k)}:{hydra_value(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(hydra_value(v) for v in value) + "]"
    text = str(value)
    if _SAFE.match(text) and text.lower() not in _RESERVED and not _looks_like_number(text):
        return text
    return _quote(text)


def _key(key: Any) -> str:
    text = str(key)
    if not re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", text):
        raise ConfigError(f"cannot write {text!r} as a Hydra dictionary key")
    return text


def default_experiment_name() -> str:
    """``judge-MMDDTHHMMSS`` (the seed's timestamped run name)."""
    return time.strftime("judge-%m%dT%H%M%S")


def verl_loggers(cfg: TrainConfig) -> list[str]:
    """``cfg.logger`` as verl tracking backends (``jsonl`` is verl's ``file`` logger)."""
    out: list[str] = []
    for name in cfg.logger:
        backend = LOGGER_MAP.get(name)
        if backend is None:
            raise ConfigError(f"logger {name!r} is not supported by the verl backend "
                              f"(choose from {', '.join(LOGGER_MAP)})")
        if backend not in out:
            out.append(backend)
    return out or ["console"]


def logger_env(cfg: TrainConfig, output_dir: str | None = None) -> dict[str, str]:
    """Environment variables that put verl's tensorboard/file logs under the output folder."""
    out = output_dir if output_dir is not None else cfg.output_dir
    loggers = verl_loggers(cfg)
    env: dict[str, str] = {}
    if "tensorboard" in loggers:
        env["TENSORBOARD_DIR"] = f"{out.rstrip('/')}/tensorboard"
    if "file" in loggers:
        env["VERL_FILE_LOGGER_PATH"] = f"{out.rstrip('/')}/metrics.jsonl"
    return env


def _kv(key: str, value: Any) -> str:
    return f"{key}={hydra_value(value)}"


def _check(cfg: TrainConfig, overlong: str) -> None:
    g, v = cfg.grpo, cfg.verl
    if not cfg.data.train_files:
        raise ConfigError("data.train_files is empty: give at least one pointwise Parquet file")
    if g.trainable_layers is not None:
        raise ConfigError("grpo.trainable_layers is a CPU-backend option (verl trains every "
                          "weight): set grpo.trainable_layers=null for --backend verl")
    if overlong not in OVERLONG_POLICIES:
        raise ConfigError(f"overlong must be one of {OVERLONG_POLICIES}, got {overlong!r}")
    if g.mini_batch_size > g.train_batch_size:
        raise ConfigError(f"grpo.mini_batch_size ({g.mini_batch_size}) must not exceed "
                          f"grpo.train_batch_size ({g.train_batch_size})")
    if g.train_batch_size % g.mini_batch_size:
        raise ConfigError(f"grpo.train_batch_size ({g.train_batch_size}) must be a multiple of "
                          f"grpo.mini_batch_size ({g.mini_batch_size})")
    n_gpus = v.n_gpus_per_node * v.nnodes
    if n_gpus % v.tensor_parallel_size:
        raise ConfigError(f"verl.tensor_parallel_size ({v.tensor_parallel_size}) must divide the "
                          f"GPU count ({n_gpus})")
    if (g.train_batch_size * g.group_size) % n_gpus:
        raise ConfigError(f"grpo.train_batch_size x grpo.group_size ({g.train_batch_size} x "
                          f"{g.group_size}) must be divisible by the GPU count ({n_gpus})")
    if (g.mini_batch_size * g.group_size) % n_gpus:
        raise ConfigError(
            f"grpo.mini_batch_size x grpo.group_size ({g.mini_batch_size} x {g.group_size}) must "
            f"be divisible by the GPU count ({n_gpus}): verl splits each mini-batch over GPUs")


def _dataset_options(cfg: TrainConfig, overlong: str, card_dir: str | None = None,
                     base_model: str | None = None) -> dict[str, Any]:
    opts: dict[str, Any] = {
        "card_dir": card_dir,  # the training dataset writes the judge card draft there
        "base_model": base_model,
        "dimension": cfg.data.dimension,
        "scale": cfg.data.scale,
        "reward": cfg.reward.name,
        "k": float(cfg.reward.k),
        **cfg.prompt.settings(),  # judgeforge.prompt.TRAINING_PROMPT_OPTIONS, flat
        "balance_labels": cfg.data.balance_labels,
        "overlong": overlong,
    }
    return {k: v for k, v in opts.items() if v is not None}


def build_overrides(
    cfg: TrainConfig,
    *,
    model_path: str | None = None,
    train_files: Sequence[str] | None = None,
    val_files: Sequence[str] | None = None,
    output_dir: str | None = None,
    experiment_name: str | None = None,
    dataset_cls_path: str = DATASET_CLS_PATH,
    dataset_cls_name: str = DATASET_CLS_NAME,
    reward_fn_path: str = REWARD_FN_PATH,
    reward_fn_name: str = REWARD_FN_NAME,
    overlong: str = "error",
) -> list[str]:
    """The ``key=value`` overrides for ``python -m verl.trainer.main_ppo``.

    ``model_path``, ``train_files``, ``val_files`` and ``output_dir`` replace the config's values
    as they should appear on the machine that runs verl (the launcher resolves them); by default
    the config's own values are used, and ``model.path`` must then be set. Without validation
    files the training files are given as ``data.val_files`` (verl needs one) and validation is
    switched off. Raises :class:`ConfigError` for batch sizes verl would reject.
    """
    _check(cfg, overlong)
    g, v = cfg.grpo, cfg.verl
    model = model_path or cfg.model.path
    if not model:
        raise ConfigError("model.path is empty: give a model folder or hub name (the launcher "
                          "fills in the prepared default model)")
    train = list(train_files if train_files is not None else cfg.data.train_files)
    val = list(val_files if val_files is not None else cfg.data.val_files)
    has_val = bool(val)
    out = output_dir if output_dir is not None else cfg.output_dir
    name = experiment_name or v.experiment_name or default_experiment_name()
    save_freq = g.save_freq if g.save_freq > 0 else SAVE_AT_END_FREQ
    test_freq = g.test_freq if has_val else -1
    dtype = cfg.model.dtype

    ov: list[str] = [
        _kv("algorithm.adv_estimator", "grpo"),
        _kv("algorithm.use_kl_in_reward", False),
        # data
        _kv("data.train_files", train),
        _kv("data.val_files", val if has_val else train),
        _kv("data.prompt_key", "prompt"),
        _kv("data.reward_fn_key", "data_source"),
        _kv("data.train_batch_size", g.train_batch_size),
        _kv("data.max_prompt_length", g.max_prompt_length),
        _kv("data.max_response_length", g.max_response_length),
        _kv("data.filter_overlong_prompts", False),
        _kv("data.truncation", "error"),
        _kv("data.return_raw_chat", True),
        _kv("data.shuffle", True),
        _kv("data.seed", cfg.seed),
        _kv("data.train_max_samples", cfg.data.max_train_rows or -1),
        _kv("data.val_max_samples", cfg.data.max_val_rows or -1),
        _kv("data.custom_cls.path", dataset_cls_path),
        _kv("data.custom_cls.name", dataset_cls_name),
    ]
    ov += [_kv(f"+data.{DATASET_OPTIONS_KEY}.{k}", val_)
           for k, val_ in _dataset_options(cfg, overlong, out, model).items()]
    ov += [
        # model and actor
        _kv("actor_rollout_ref.model.path", model),
        _kv("actor_rollout_ref.model.enable_gradient_checkpointing",
            cfg.model.gradient_checkpointing),
        _kv("actor_rollout_ref.actor.strategy", "fsdp"),
        _kv("actor_rollout_ref.actor.optim.lr", g.learning_rate),
        _kv("actor_rollout_ref.actor.ppo_mini_batch_size", g.mini_batch_size),
        _kv("actor_rollout_ref.actor.ppo_micro_batch_size_per_gpu", g.micro_batch_size),
        _kv("actor_rollout_ref.actor.ppo_epochs", 1),
        _kv("actor_rollout_ref.actor.use_kl_loss", g.use_kl_loss),
        _kv("actor_rollout_ref.actor.kl_loss_coef", g.kl_coef),
        _kv("actor_rollout_ref.actor.kl_loss_type", g.kl_loss_type),
        _kv("actor_rollout_ref.actor.entropy_coeff", 0),
        _kv("actor_rollout_ref.actor.fsdp_config.dtype", dtype),
        # reference policy (log-probs for the KL loss)
        _kv("actor_rollout_ref.ref.log_prob_micro_batch_size_per_gpu", g.micro_batch_size),
        _kv("actor_rollout_ref.ref.fsdp_config.dtype", dtype),
        # rollout
        _kv("actor_rollout_ref.rollout.name", "vllm"),
        _kv("actor_rollout_ref.rollout.mode", "async"),
        _kv("actor_rollout_ref.rollout.n", g.group_size),
        _kv("actor_rollout_ref.rollout.temperature", g.temperature),
        _kv("actor_rollout_ref.rollout.tensor_model_parallel_size", v.tensor_parallel_size),
        _kv("actor_rollout_ref.rollout.gpu_memory_utilization", v.gpu_memory_utilization),
        _kv("actor_rollout_ref.rollout.log_prob_micro_batch_size_per_gpu", g.micro_batch_size),
        _kv("actor_rollout_ref.rollout.dtype", dtype),
        _kv("actor_rollout_ref.rollout.seed", cfg.seed),
        # reward (verl 0.9 keys; the seed's top-level ones are silently ignored)
        _kv("reward.reward_manager.source", "register"),
        _kv("reward.reward_manager.name", "naive"),
        _kv("reward.custom_reward_function.path", reward_fn_path),
        _kv("reward.custom_reward_function.name", reward_fn_name),
        # trainer
        _kv("trainer.logger", verl_loggers(cfg)),
        _kv("trainer.project_name", v.project_name),
        _kv("trainer.experiment_name", name),
        _kv("trainer.n_gpus_per_node", v.n_gpus_per_node),
        _kv("trainer.nnodes", v.nnodes),
        _kv("trainer.save_freq", save_freq),
        _kv("trainer.test_freq", test_freq),
        _kv("trainer.val_before_train", has_val and g.test_freq > 0),
        _kv("trainer.total_epochs", g.epochs),
        _kv("trainer.default_local_dir", out),
        _kv("trainer.resume_mode", "auto"),
    ]
    if g.max_steps is not None:
        ov.append(_kv("trainer.total_training_steps", g.max_steps))
    ov += list(v.extra_overrides)
    return ov


def _override_key(item: str) -> str:
    return item.partition("=")[0].lstrip("+~")


def forbidden_keys(overrides: Sequence[str]) -> list[str]:
    """The overrides whose key verl 0.9.1 ignores or deprecates (see FORBIDDEN_PREFIXES)."""
    return [o for o in overrides if _override_key(o).startswith(FORBIDDEN_PREFIXES)]


def absolute(path: str) -> str:
    """A local path made absolute (``~`` expanded); URLs (``scheme://``) are left alone."""
    if "://" in path:
        return path
    return str(Path(path).expanduser().resolve())
