"""Package data folders (shipped data sets, training presets), found the same way from a wheel
or a checkout."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from judgeforge.errors import JudgeforgeError

__all__ = ["package_dir"]


def package_dir(package: str, what: str, error: type[JudgeforgeError]) -> Path:
    """The folder of ``package`` on disk; ``error`` naming ``what`` when the package is not
    unpacked (e.g. imported from a zip file), since its data files are read as plain files."""
    root = resources.files(package)
    if not isinstance(root, Path):
        raise error(f"{what} need an installed (unzipped) package, not {root}")
    return root
