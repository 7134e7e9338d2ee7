"""The embedded CPU training backend (TRL GRPO after an SFT warm-up).

Importing this package is light; torch, transformers and TRL load when a run starts.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__all__ = ["run_cpu", "plan", "choose_threads", "QUICK_OVERRIDES"]

# `--quick`: a ~2-4 minute variant of the CPU recipe (CI, smoke runs).
QUICK_OVERRIDES: list[str] = [
    "sft.steps=12", "grpo.max_steps=8", "grpo.test_freq=4", "grpo.max_minutes=30",
    "cpu.eval_rows=24", "data.max_train_rows=200",
]

if TYPE_CHECKING:
    from .trainer import choose_threads, plan, run_cpu


def __getattr__(name: str) -> Any:
    if name in ("run_cpu", "plan", "choose_threads"):
        from . import trainer

        return getattr(trainer, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
