"""Lazy imports of optional stacks, with an error that names the extra to install."""

from __future__ import annotations

import importlib
from types import ModuleType

from judgeforge.errors import MissingExtraError


def require(module: str, extra: str, hint: str | None = None) -> ModuleType:
    """Import ``module`` or raise :class:`MissingExtraError` naming ``extra``."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:  # only a missing module, never other failures
        if exc.name and module.split(".")[0] != exc.name.split(".")[0] and exc.name not in module:
            raise
        raise MissingExtraError(extra, module, hint) from exc
