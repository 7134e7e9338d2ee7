"""``grpo.trainable_layers``: only the top decoder layers (and the final norm) get gradients."""

from __future__ import annotations

from pathlib import Path

import pytest

from judgeforge.errors import ConfigError

pytest.importorskip("trl")


def test_only_the_top_layers_get_gradients(default_model_path: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM

    from judgeforge.train.cpu.trainer import freeze_lower_layers

    model = AutoModelForCausalLM.from_pretrained(str(default_model_path), dtype=torch.float32)
    total = sum(p.numel() for p in model.parameters())
    assert freeze_lower_layers(model, None) == total  # None: every weight stays trainable
    n_layers = len(model.get_decoder().layers)
    trainable = freeze_lower_layers(model, 2)
    assert 0 < trainable < total / 5
    names = {n for n, p in model.named_parameters() if p.requires_grad}
    top = {f"model.layers.{n_layers - 1}.", f"model.layers.{n_layers - 2}.", "model.norm."}
    assert names and all(any(n.startswith(t) for t in top) for n in names), sorted(names)[:5]

    ids = torch.tensor([[1, 2, 3, 4]])
    model(input_ids=ids, labels=ids).loss.backward()
    grads = {n for n, p in model.named_parameters() if p.grad is not None}
    assert grads == names  # nothing below the trainable layers (not even the tied embeddings)

    with pytest.raises(ConfigError, match="the model has"):
        freeze_lower_layers(model, n_layers + 1)


def test_verl_backend_refuses_the_cpu_only_option() -> None:
    from judgeforge.train.config import TrainConfig
    from judgeforge.train.verl.overrides import build_overrides

    cfg = TrainConfig.for_gpu().with_overrides(["data.train_files=[x.parquet]",
                                                "grpo.trainable_layers=4"])
    with pytest.raises(ConfigError, match="CPU-backend option"):
        build_overrides(cfg, model_path="m", experiment_name="t")
