"""The training recipe's one typed config, shared by the verl (GPU) and CPU backends.

Load it from YAML (``TrainConfig.from_yaml``), override with dotted ``key=value`` pairs
(``grpo.learning_rate=5e-6``), and start from the seed's GPU values (``TrainConfig.for_gpu()``) or
small CPU values (``TrainConfig.for_cpu()``). Every field has help text
(``judgeforge train --explain`` prints them).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from judgeforge.errors import ConfigError
from judgeforge.prompt import TRAINING_PROMPT_OPTIONS

__all__ = ["TrainConfig", "ModelSection", "DataSection", "PromptSection", "RewardSection",
           "GRPOSection", "SFTSection", "VerlSection", "CPUSection", "LoraSection", "explain"]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class ModelSection(_Section):
    path: str | None = Field(None, description="HF model folder, or a base model's name from "
                             "`judgeforge model list` (e.g. qwen2.5-coder-0.5b-instruct, "
                             "prepared on first use); empty = the prepared default model "
                             "(SmolLM2-135M-Instruct)")
    dtype: Literal["bfloat16", "float32", "float16"] = Field(
        "bfloat16", description="training/serving dtype")
    gradient_checkpointing: bool = Field(True, description="trade compute for memory")


class DataSection(_Section):
    train_files: list[str] = Field(default_factory=list,
                                   description="pointwise Parquet/JSONL training files; several "
                                   "files may be on different scales (a training mix: each "
                                   "row's prompt shows its own file's dimension and scale; the "
                                   "first file's is the judge's own, the one its calibration "
                                   "maps)")
    val_files: list[str] = Field(default_factory=list,
                                 description="pointwise Parquet/JSONL validation files")
    dimension: str | None = Field(None, description="label dimension to train on; empty = every "
                                  "dimension of the data (one tag each when several)")
    scale: str | None = Field(None, description="score scale MIN-MAX; empty = from the dataset "
                              "info (default 0-4)")
    max_train_rows: int | None = Field(None, description="cap on training rows (None = all)")
    mix_weights: list[float] | None = Field(None, description="each training file's share of "
                                            "the training rows, in train_files order (e.g. "
                                            "[2, 1, 1]); files are resampled to it (repeats "
                                            "only where a file has too few rows); None = every "
                                            "row once")
    max_val_rows: int | None = Field(None, description="cap on validation rows (None = all; "
                                     "per file in a mix)")
    balance_labels: bool = Field(False, description="resample training rows so every label is "
                                 "equally frequent")
    group_key: str | None = Field(None, description="rows sharing extra_info[group_key] stay on "
                                  "one side of the validation hold-out; empty = rows sharing "
                                  "their query text do. A comma list (idx,pair,question) picks "
                                  "per file the first key all its rows carry (a mix of sets), "
                                  "else the query text")


class PromptSection(_Section):
    thinking: bool = Field(False, description="ask for <think>...</think> before the score")
    use_rubric: bool = Field(True, description="include extra_info.rubric when present")
    use_reference: bool = Field(True, description="include extra_info.reference when present")
    system_prompt: str | None = Field(None, description="optional system message")
    max_query_chars: int | None = Field(None, ge=1, description="truncate the query text to this "
                                        "many characters (marked with [...]); None = keep all")
    max_response_chars: int | None = Field(None, ge=1, description="truncate the graded response "
                                           "to this many characters (marked with [...]); None = "
                                           "keep all. Shorter prompts make CPU steps cheaper")
    max_reference_chars: int | None = Field(None, ge=1, description="truncate the reference "
                                            "answer (use_reference) to this many characters "
                                            "(marked with [...]); None = keep all")

    def settings(self) -> dict[str, Any]:
        """The PromptTemplate settings this section chooses, by the one list of their names
        (:data:`judgeforge.prompt.TRAINING_PROMPT_OPTIONS`)."""
        return {name: getattr(self, name) for name in TRAINING_PROMPT_OPTIONS}


# the section's fields are exactly the one list (a new prompt option is added in both places)
if tuple(PromptSection.model_fields) != TRAINING_PROMPT_OPTIONS:
    raise AssertionError(f"PromptSection fields {tuple(PromptSection.model_fields)} differ from "
                         f"judgeforge.prompt.TRAINING_PROMPT_OPTIONS {TRAINING_PROMPT_OPTIONS}")


class RewardSection(_Section):
    name: str = Field("exp_decay", description="exp_decay, quadratic, exact, module:function, "
                      "or pairwise (a pairwise training file: 1 for the right verdict, the "
                      "rows' tie credit for a near miss, 0 wrong or unparsed; J1's both-orders "
                      "credit when a pair's two orders share a batch)")
    k: float = Field(2.0, gt=0, allow_inf_nan=False,
                     description="decay rate of exp_decay: exp(-k*|pred-true|/(max-min)); a "
                     "finite number > 0 (a negative k pays more for larger errors)")
    exact_bonus: float = Field(0.0, ge=0, allow_inf_nan=False,
                               description="extra reward for the exact label (CPU backend); a "
                               "finite number >= 0")


class GRPOSection(_Section):
    group_size: int = Field(4, ge=2, description="samples per prompt (verl rollout.n)")
    train_batch_size: int = Field(96, ge=1, description="prompts per training step")
    mini_batch_size: int = Field(24, ge=1, description="prompts per PPO mini-batch")
    micro_batch_size: int = Field(4, ge=1, description="rows per forward pass per device")
    max_prompt_length: int = Field(4096, ge=16, description="prompt tokens (longer rows are "
                                   "reported, not silently dropped)")
    max_response_length: int = Field(2048, ge=1, description="generated tokens per sample")
    learning_rate: float = Field(1e-6, gt=0, description="actor learning rate")
    use_kl_loss: bool = Field(True, description="KL to the reference model as a loss term")
    kl_coef: float = Field(0.001, ge=0, description="KL loss coefficient (beta)")
    kl_loss_type: str = Field("low_var_kl", description="verl kl_loss_type (low_var_kl, kl, "
                              "mse, ...)")
    temperature: float = Field(1.0, gt=0, description="rollout sampling temperature")
    epochs: int = Field(1, ge=1, description="passes over the training data")
    max_steps: int | None = Field(None, description="training length in optimizer steps (None = "
                                  "epochs); the same config on the same data always trains the "
                                  "same number of steps")
    max_minutes: float | None = Field(None, gt=0, description="safety stop only (CPU backend): "
                                      "end GRPO early after this wall time; None = off. When it "
                                      "fires, train_log.jsonl gets a 'stop' row and the result "
                                      "names it (stopped_by), since the step count then depends "
                                      "on the machine's speed")
    save_freq: int = Field(20, description="save a checkpoint every N steps (-1 = only at end)")
    test_freq: int = Field(10, description="validate every N steps (-1 = never)")
    entropy_coef: float = Field(0.0, ge=0, description="entropy bonus coefficient (CPU backend, "
                                "TRL entropy_coef; counters collapse)")
    trainable_layers: int | None = Field(
        None, ge=1, description="train only the last N transformer layers and the final norm "
        "(CPU backend): the backward pass stops at layer N from the top, so a step costs about "
        "half as much and the SFT features below stay put; None = every weight")
    scale_rewards: Literal["group", "batch", "none"] = Field(
        "group", description="advantage scaling (CPU backend, TRL scale_rewards): group std, "
        "batch std, or none (Dr. GRPO)")


class SFTSection(_Section):
    steps: int = Field(0, ge=0, description="supervised warm-up steps before GRPO (0 = none)")
    batch_size: int = Field(8, ge=1, description="rows per SFT step")
    learning_rate: float = Field(5e-5, gt=0, description="SFT learning rate")
    target: Literal["label", "random", "reason"] = Field(
        "label", description="SFT target: the true label; random (format only); or reason: "
        "the record's extra_info.feedback (first sentences, <= reason_chars) before the "
        "score tag, so the judge explains (in <think> when prompt.thinking)")
    reason_chars: int = Field(200, ge=20, description="longest reason an SFT target carries "
                              "(sft.target=reason)")
    balance_labels: bool = Field(False, description="sample SFT rows so every label is equally "
                                 "frequent (CPU backend)")
    micro_batch_size: int = Field(4, ge=1, description="rows per forward pass (gradient "
                                  "accumulation up to batch_size; bounds memory, CPU backend)")


class VerlSection(_Section):
    n_gpus_per_node: int = Field(8, ge=1, description="GPUs per node")
    nnodes: int = Field(1, ge=1, description="nodes in the Ray cluster")
    tensor_parallel_size: int = Field(8, ge=1, description="vLLM rollout tensor parallel size")
    gpu_memory_utilization: float = Field(0.6, gt=0, le=1, description="vLLM rollout memory share")
    ray_address: str | None = Field(None, description="Ray dashboard address for `ray job "
                                    "submit` (e.g. http://127.0.0.1:8265); empty = run locally")
    project_name: str = Field("judgeforge", description="tracking project name")
    experiment_name: str | None = Field(None, description="run name; empty = derived from time")
    extra_overrides: list[str] = Field(default_factory=list,
                                       description="raw verl Hydra overrides appended last")


LORA_ALL_PROJECTIONS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj",
                        "down_proj")


class LoraSection(_Section):
    r: int = Field(0, ge=0, le=256, description="LoRA rank (CPU backend, peft); 0 = off: full "
                   "fine-tuning (the small models). With r > 0 SFT and GRPO train a low-rank "
                   "adapter; GRPO's KL reference is the SFT model with the adapter disabled (no "
                   "second copy in memory); checkpoints save the adapter and the export merges it "
                   "into a plain folder vLLM serves")
    alpha: float = Field(32.0, gt=0, description="LoRA scaling numerator (scale = alpha / r)")
    dropout: float = Field(0.0, ge=0, lt=1, description="dropout on the adapter's input")
    target_modules: list[str] = Field(
        default_factory=lambda: list(LORA_ALL_PROJECTIONS),
        description="module names that get an adapter (default: every attention and MLP "
        "projection of Llama/Qwen-style models)")

    @property
    def enabled(self) -> bool:
        return self.r > 0


class CPUSection(_Section):
    threads: int | None = Field(None, description="torch threads; empty = all cores")
    eval_rows: int = Field(40, ge=1, description="validation rows scored at each evaluation")
    keep_best: bool = Field(True, description="keep the checkpoint with the best validation MAE")
    eval_max_new_tokens: int = Field(8, ge=1, description="greedy tokens generated per "
                                     "validation row")
    eval_batch_size: int = Field(16, ge=1, description="validation rows per generate() call")
    resume: bool = Field(True, description="reuse a finished SFT stage and resume GRPO from the "
                         "last checkpoint in output_dir")


class TrainConfig(_Section):
    """Everything a training run needs; see each section's fields."""

    backend: Literal["cpu", "verl"] = Field("cpu", description="cpu (TRL, embedded) or verl (GPU)")
    model: ModelSection = Field(default_factory=ModelSection)
    data: DataSection = Field(default_factory=DataSection)
    prompt: PromptSection = Field(default_factory=PromptSection)
    reward: RewardSection = Field(default_factory=RewardSection)
    grpo: GRPOSection = Field(default_factory=GRPOSection)
    sft: SFTSection = Field(default_factory=SFTSection)
    verl: VerlSection = Field(default_factory=VerlSection)
    cpu: CPUSection = Field(default_factory=CPUSection)
    lora: LoraSection = Field(default_factory=LoraSection)
    output_dir: str = Field("checkpoints/judge", description="where checkpoints and logs go")
    seed: int = Field(0, description="random seed")
    logger: list[str] = Field(default_factory=lambda: ["console", "tensorboard"],
                              description="console, tensorboard, wandb, jsonl")

    # ---- presets -----------------------------------------------------------------------------
    @classmethod
    def for_gpu(cls, **kw: Any) -> TrainConfig:
        """The seed page's values (8 GPUs, Qwen2.5-7B-class model)."""
        return cls(backend="verl", **kw)

    @classmethod
    def for_cpu(cls, **kw: Any) -> TrainConfig:
        """Small values that finish on 2 CPU cores in about 15 minutes with SmolLM2-135M.

        The length is set in steps (SFT 35, GRPO 16), never in minutes: no wall-clock stop is
        set (``grpo.max_minutes`` is a safety stop, off here), so the same config on the same data
        trains the same number of steps on any machine.

        Short prompts (no rubric/reference, long texts cut) keep a step affordable. The SFT
        warm-up teaches the score format on label-balanced batches (on the natural, 46%-"4"
        labels it learns to answer "4" to everything); GRPO then moves the model toward the
        labels' distribution with the exp-decay reward, training only the top 8 of 30 layers
        (half the step cost; lr 5e-6, KL 0.01 to the SFT model), and the best checkpoint by
        validation MAE is kept. Measured (benchmarks/train_cpu_recipe.py, 120 test rows):
        SFT MAE 0.875 / Spearman 0.41 -> SFT+GRPO 0.800 / 0.47; lr 1e-5 collapsed to "always 4"
        within 19 steps.
        """
        base = cls(
            backend="cpu",
            prompt=PromptSection(use_rubric=False, use_reference=False, max_query_chars=300,
                                 max_response_chars=400),
            grpo=GRPOSection(group_size=4, train_batch_size=4, mini_batch_size=4,
                             micro_batch_size=4, max_prompt_length=1024, max_response_length=10,
                             learning_rate=5e-6, kl_coef=0.01, temperature=1.0, max_steps=16,
                             max_minutes=None, save_freq=4, test_freq=4, trainable_layers=8),
            sft=SFTSection(steps=35, batch_size=8, learning_rate=5e-5, target="label",
                           balance_labels=True),
            cpu=CPUSection(eval_rows=30),
            logger=["console", "jsonl"],
        )
        return base.merged(kw) if kw else base

    # ---- loading -----------------------------------------------------------------------------
    @classmethod
    def from_yaml(cls, path: str | Path, overrides: list[str] | None = None,
                  backend: str | None = None) -> TrainConfig:
        """Load ``path``, or the shipped preset of that name (``cpu``, ``cpu-quick``, ``gpu``);
        ``preset: cpu|gpu`` (or the backend) picks the defaults underneath."""
        from .presets import resolve_config

        path = resolve_config(path)
        try:
            data = yaml.safe_load(Path(path).read_text()) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise ConfigError(f"cannot read training config {path}: {exc}") from exc
        if not isinstance(data, dict):
            raise ConfigError(f"{path}: the top level must be a mapping")
        chosen = backend or data.get("backend") or "cpu"
        preset = data.pop("preset", None) or ("gpu" if chosen == "verl" else "cpu")
        base = cls.for_gpu() if preset == "gpu" else cls.for_cpu()
        cfg = base.merged(data)
        if backend:
            cfg = cfg.merged({"backend": backend})
        return cfg.with_overrides(overrides or [])

    def merged(self, data: dict[str, Any]) -> TrainConfig:
        merged = _deep_merge(self.model_dump(), data)
        try:
            return TrainConfig.model_validate(merged)
        except ValidationError as exc:
            raise ConfigError(_format_validation(exc)) from exc

    def with_overrides(self, overrides: list[str]) -> TrainConfig:
        """Apply ``a.b=value`` strings (values parsed as YAML: numbers, lists, booleans)."""
        patch: dict[str, Any] = {}
        for item in overrides:
            key, sep, raw = item.partition("=")
            if not sep or not key:
                raise ConfigError(f"override {item!r} must look like section.key=value")
            node = patch
            parts = key.strip().split(".")
            for part in parts[:-1]:
                node = node.setdefault(part, {})
            node[parts[-1]] = yaml.safe_load(raw) if raw.strip() else None
        return self.merged(patch) if patch else self

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.model_dump(), sort_keys=False)


def _deep_merge(base: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in patch.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def _format_validation(exc: ValidationError) -> str:
    lines = ["invalid training config:"]
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"])
        lines.append(f"  {loc}: {err['msg']} (got {err.get('input')!r})")
    return "\n".join(lines)


def explain(model: type[BaseModel] = TrainConfig, prefix: str = "") -> list[str]:
    """One line per field: dotted key, default and help text."""
    lines: list[str] = []
    for name, field in model.model_fields.items():
        ann = field.annotation
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            lines.extend(explain(ann, f"{prefix}{name}."))
            continue
        default = field.get_default(call_default_factory=True)
        lines.append(f"{prefix}{name} = {default!r}: {field.description or ''}")
    return lines
