"""What a training run produced (both backends return it)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["TrainResult"]


@dataclass
class TrainResult:
    """What a training run produced.

    ``final``/``best`` are servable HF folders (``best`` is None when not kept); ``metrics`` holds
    validation summaries keyed ``sft`` (after the warm-up, before GRPO), ``final`` and ``best``
    (with its ``step``); ``log``/``curves`` are the JSONL log and the PNG. ``steps`` is the
    number of GRPO steps trained; ``stopped_by`` names a safety stop (``grpo.max_minutes ...``)
    that ended training before its step budget, None when the budget ran to its end.
    """

    backend: str
    output_dir: Path
    final: Path | None = None
    best: Path | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    log: Path | None = None
    curves: Path | None = None
    minutes: float = 0.0
    threads: int | None = None
    exit_code: int = 0
    steps: int | None = None
    stopped_by: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (paths as strings)."""
        return {k: str(v) if isinstance(v, Path) else v for k, v in asdict(self).items()}
