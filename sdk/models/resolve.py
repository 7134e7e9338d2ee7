"""Turning whatever a user points at into a servable Hugging Face folder.

Packages register resolvers in the entry-point group ``judgeforge.model_resolvers``: each is
``fn(path) -> Path`` that returns a servable folder for paths it recognises and the path
unchanged otherwise. ``judgeforge.train`` registers the verl one (an FSDP ``global_step_N/actor``
checkpoint is merged with verl's model merger, cached beside it). The sdk never imports train.
"""

from __future__ import annotations

import logging
import os
from importlib.metadata import entry_points
from pathlib import Path

__all__ = ["resolve_model_path"]

log = logging.getLogger(__name__)


def resolve_model_path(path: str | os.PathLike[str]) -> Path:
    """``path`` itself if it is an HF folder, else the first resolver's servable folder."""
    p = Path(path).expanduser()
    if (p / "config.json").is_file() and any(p.glob("*.safetensors")) or not p.exists():
        return p
    for ep in sorted(entry_points(group="judgeforge.model_resolvers"), key=lambda e: e.name):
        resolved = Path(ep.load()(p))
        if resolved != p:
            log.info("resolved %s to %s (via %s)", p, resolved, ep.name)
            return resolved
    return p
