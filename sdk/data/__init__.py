"""Pointwise data: records, files, validation, converters and splits.

Names are loaded lazily, so ``import judgeforge.data`` stays light (no pyarrow, sklearn or
datasets until a function that needs them is used).
"""

from __future__ import annotations

import importlib
from typing import Any

# public name -> module that defines it
_EXPORTS: dict[str, str] = {
    "DEFAULT_SCALE": "judgeforge.data.schema",
    "DatasetInfo": "judgeforge.data.schema",
    "Message": "judgeforge.data.schema",
    "PointwiseOutput": "judgeforge.data.schema",
    "PointwiseRecord": "judgeforge.data.schema",
    "Scale": "judgeforge.data.schema",
    "RawRow": "judgeforge.data.validate",
    "RowError": "judgeforge.data.validate",
    "check_labels": "judgeforge.data.validate",
    "coerce_score": "judgeforge.data.validate",
    "infer_info": "judgeforge.data.validate",
    "validate_rows": "judgeforge.data.validate",
    "LoadResult": "judgeforge.data.io",
    "iter_raw_rows": "judgeforge.data.io",
    "load_records": "judgeforge.data.io",
    "read_info": "judgeforge.data.io",
    "write_records": "judgeforge.data.io",
    "record_key": "judgeforge.data.keys",
    "content_hash": "judgeforge.data.keys",
    "convert_helpsteer2": "judgeforge.data.converters.helpsteer2",
    "convert_prometheus": "judgeforge.data.converters.prometheus",
    "ColumnMapping": "judgeforge.data.converters.generic",
    "convert_generic": "judgeforge.data.converters.generic",
    "stratified_split": "judgeforge.data.split",
    "group_split": "judgeforge.data.split",
    "split_file": "judgeforge.data.split",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'judgeforge.data' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
