"""Loading a model for the CPU backend, and its LoRA adapter: attach, save, merge.

The one place where the CPU backend turns a folder into a trainable model. SFT, GRPO, validation,
calibration and export all come through here, so a full fine-tune and a LoRA run differ in this
module only:

- :func:`load_model`: an HF folder as fp32 master weights (bf16 is autocast) with judgeforge's
  special tokens (eos ``<|im_end|>``, a pad token distinct from eos);
- :func:`lora_config` / :func:`attach_adapter`: a ``peft`` LoRA adapter from the ``lora``
  section (optionally on the top N decoder layers only: ``grpo.trainable_layers``);
- :func:`save_adapter`: the adapter alone (checkpoints, ``best/adapter``);
- :func:`merged`: the adapter folded into the weights (``merge_and_unload``), so the exported
  folder is a plain model that vLLM serves as is;
- :func:`load_merged`: a base folder plus a saved adapter, merged (``best/`` at the end of a run).

GRPO's reference model with LoRA is the model it started from with the adapter disabled (TRL does
that for a ``peft_config``), so no second copy of the weights is held in memory.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from judgeforge._extras import require
from judgeforge.errors import ConfigError

from .export import ADAPTER_DIR, fix_special_tokens

if TYPE_CHECKING:
    from ..config import LoraSection

__all__ = ["load_model", "lora_config", "attach_adapter", "is_adapter_model", "save_adapter",
           "merged", "load_merged", "adapter_card", "trainable_parameters", "ADAPTER_DIR"]

def load_model(path: str | Path) -> tuple[Any, Any]:
    """``(model, tokenizer)`` from the HF folder ``path``: fp32 weights (bf16 autocast on top)."""
    transformers = require("transformers", "train")
    torch = require("torch", "train")
    tok = transformers.AutoTokenizer.from_pretrained(str(path))
    model = transformers.AutoModelForCausalLM.from_pretrained(str(path), dtype=torch.float32)
    fix_special_tokens(model, tok)
    return model, tok


def _n_layers(model: Any) -> int:
    n = getattr(model.config, "num_hidden_layers", None)
    if not isinstance(n, int) or n <= 0:
        raise ConfigError(f"{type(model).__name__} does not say how many layers it has "
                          "(config.num_hidden_layers); LoRA on the top layers needs it")
    return n


def lora_config(section: LoraSection, model: Any, top_layers: int | None = None) -> Any:
    """The ``peft.LoraConfig`` of ``section``; with ``top_layers`` only the last N decoder
    layers get adapters (the backward pass then stops there, as with full fine-tuning's
    ``grpo.trainable_layers``)."""
    peft = require("peft", "train")
    kwargs: dict[str, Any] = {}
    if top_layers is not None:
        n = _n_layers(model)
        if top_layers > n:
            raise ConfigError(f"grpo.trainable_layers={top_layers} but the model has {n} layers")
        kwargs["layers_to_transform"] = list(range(n - top_layers, n))
    names = {name.rsplit(".", 1)[-1] for name, _ in model.named_modules()}
    missing = [m for m in section.target_modules if m not in names]
    if missing:
        raise ConfigError(f"lora.target_modules: {type(model).__name__} has no module named "
                          f"{', '.join(missing)}")
    return peft.LoraConfig(r=section.r, lora_alpha=section.alpha, lora_dropout=section.dropout,
                           target_modules=list(section.target_modules), bias="none",
                           task_type="CAUSAL_LM", **kwargs)


def attach_adapter(model: Any, section: LoraSection, top_layers: int | None = None) -> Any:
    """``model`` wrapped with a fresh trainable LoRA adapter (every other weight frozen)."""
    peft = require("peft", "train")
    return peft.get_peft_model(model, lora_config(section, model, top_layers))


def is_adapter_model(model: Any) -> bool:
    """True for a ``peft`` model (an adapter on top of frozen weights)."""
    try:
        from peft import PeftModel
    except ImportError:
        return False
    return isinstance(model, PeftModel)


def trainable_parameters(model: Any) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def save_adapter(model: Any, path: str | Path) -> Path:
    """Write ``model``'s adapter (weights + ``adapter_config.json``) to ``path``."""
    if not is_adapter_model(model):
        raise ConfigError("save_adapter: the model has no LoRA adapter")
    out = Path(path)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(out))
    return out


def merged(model: Any) -> Any:
    """A plain model: the adapter folded into the weights (in place; ``model`` itself when it
    has no adapter)."""
    if not is_adapter_model(model):
        return model
    return model.merge_and_unload()


def load_merged(base: str | Path, adapter: str | Path) -> tuple[Any, Any]:
    """``(model, tokenizer)``: the folder ``base`` with the adapter saved at ``adapter``
    merged into it."""
    peft = require("peft", "train")
    model, tok = load_model(base)
    model = peft.PeftModel.from_pretrained(model, str(adapter))
    return merged(model), tok


def adapter_card(section: LoraSection, adapter_dir: str | Path | None = None,
                 top_layers: int | None = None) -> dict[str, Any]:
    """What a judge card and a training marker say about the adapter."""
    info: dict[str, Any] = {"r": section.r, "alpha": section.alpha, "dropout": section.dropout,
                            "target_modules": list(section.target_modules)}
    if top_layers is not None:
        info["top_layers"] = top_layers
    if adapter_dir is not None:
        cfg = Path(adapter_dir) / "adapter_config.json"
        if cfg.is_file():
            info["path"] = str(Path(adapter_dir).name)
            info["peft_type"] = json.loads(cfg.read_text()).get("peft_type")
    return info
