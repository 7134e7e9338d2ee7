"""Pointwise and pairwise data: records, files, validation, converters and splits.

Names are loaded lazily, so ``import judgeforge.data`` stays light (no pyarrow, sklearn or
datasets until a function that needs them is used).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

# public name -> module that defines it
_EXPORTS: dict[str, str] = {
    "DEFAULT_SCALE": "judgeforge.data.schema",
    "DatasetInfo": "judgeforge.data.schema",
    "Message": "judgeforge.data.schema",
    "PointwiseOutput": "judgeforge.data.schema",
    "PointwiseRecord": "judgeforge.data.schema",
    "Scale": "judgeforge.data.schema",
    "PairwiseRecord": "judgeforge.data.pairwise",
    "is_pairwise_file": "judgeforge.data.pairwise",
    "read_pairwise": "judgeforge.data.pairwise",
    "write_pairwise": "judgeforge.data.pairwise",
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

if TYPE_CHECKING:  # the same names, eagerly, for type checkers and IDEs
    from judgeforge.data.converters.generic import ColumnMapping, convert_generic
    from judgeforge.data.converters.helpsteer2 import convert_helpsteer2
    from judgeforge.data.converters.prometheus import convert_prometheus
    from judgeforge.data.io import (
        LoadResult,
        iter_raw_rows,
        load_records,
        read_info,
        write_records,
    )
    from judgeforge.data.keys import content_hash, record_key
    from judgeforge.data.pairwise import (
        PairwiseRecord,
        is_pairwise_file,
        read_pairwise,
        write_pairwise,
    )
    from judgeforge.data.schema import (
        DEFAULT_SCALE,
        DatasetInfo,
        Message,
        PointwiseOutput,
        PointwiseRecord,
        Scale,
    )
    from judgeforge.data.split import group_split, split_file, stratified_split
    from judgeforge.data.validate import (
        RawRow,
        RowError,
        check_labels,
        coerce_score,
        infer_info,
        validate_rows,
    )

# a literal list (type checkers read it); tests/test_public_api.py keeps it equal to _EXPORTS
__all__ = [
    "ColumnMapping", "DEFAULT_SCALE", "DatasetInfo", "LoadResult", "Message", "PairwiseRecord",
    "PointwiseOutput", "PointwiseRecord", "RawRow", "RowError", "Scale", "check_labels",
    "coerce_score", "content_hash", "convert_generic", "convert_helpsteer2",
    "convert_prometheus", "group_split", "infer_info", "is_pairwise_file", "iter_raw_rows",
    "load_records", "read_info", "read_pairwise", "record_key", "split_file",
    "stratified_split", "validate_rows", "write_pairwise", "write_records",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'judgeforge.data' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
