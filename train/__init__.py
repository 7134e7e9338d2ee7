"""judgeforge.train: the training recipe (typed config, CPU backend, verl backend).

``import judgeforge.train`` stays light: the backends import torch/TRL/verl when they run.

    from judgeforge.train import TrainConfig, train
    result = train(TrainConfig.for_cpu().with_overrides(["data.train_files=[train.parquet]"]))
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__all__ = ["TrainConfig", "TrainResult", "train", "run_cpu", "compute_score", "explain"]

if TYPE_CHECKING:
    from .api import train
    from .config import TrainConfig, explain
    from .cpu import run_cpu
    from .result import TrainResult
    from .reward import compute_score

_WHERE = {"TrainConfig": "config", "explain": "config", "TrainResult": "result", "train": "api",
          "run_cpu": "cpu", "compute_score": "reward"}


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        import importlib

        return getattr(importlib.import_module(f"{__name__}.{_WHERE[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
