"""``train(cfg)``: one entry point over both backends."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .config import TrainConfig
from .result import TrainResult

__all__ = ["TrainResult", "train"]


def train(cfg: TrainConfig, **kwargs: Any) -> TrainResult:
    """Run ``cfg`` on its backend: ``cpu`` trains here (TRL), ``verl`` launches verl.

    Keyword arguments go to the CPU backend (``train_records``/``val_records``/``info`` for
    in-memory data).
    """
    if cfg.backend == "cpu":
        from .cpu import run_cpu

        return run_cpu(cfg, **kwargs)
    from .verl.launch import launch

    code = launch(cfg, dry_run=False)
    out = Path(cfg.output_dir)
    return TrainResult(backend="verl", output_dir=out, exit_code=int(code))
