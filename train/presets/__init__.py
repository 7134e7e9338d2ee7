"""The training presets, shipped as package data and found by name.

``judgeforge train cpu`` (``cpu-quick``, ``gpu``) reads ``<name>.yaml`` beside this module; a path
to a YAML file works wherever a preset name does::

    from judgeforge.train.presets import preset_path
    cfg = TrainConfig.from_yaml(preset_path("cpu-quick"))
"""

from __future__ import annotations

import os
from pathlib import Path

from judgeforge._resources import package_dir
from judgeforge.errors import ConfigError

__all__ = ["preset_names", "preset_path", "resolve_config"]


def _root() -> Path:
    return package_dir(__name__, "the training presets", ConfigError)


def preset_names() -> list[str]:
    """The shipped presets, e.g. ``["cpu", "cpu-quick", "gpu"]``."""
    return sorted(p.stem for p in _root().glob("*.yaml"))


def preset_path(name: str) -> Path:
    """The YAML file of the preset ``name``; ConfigError naming the presets if there is none."""
    path = _root() / f"{name}.yaml"
    if "/" in name or os.sep in name or not path.is_file():
        raise ConfigError(f"no training preset {name!r} (presets: {', '.join(preset_names())}; "
                          "or give the path of a YAML file)")
    return path


def resolve_config(name_or_path: str | os.PathLike[str]) -> Path:
    """A YAML path as given when that file exists, else the preset of that name."""
    path = Path(name_or_path)
    if path.is_file() or path.suffix.lower() in (".yaml", ".yml") or len(path.parts) > 1:
        return path
    return preset_path(str(name_or_path))
