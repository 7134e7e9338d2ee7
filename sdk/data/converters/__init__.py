"""Converters from real datasets' own formats to pointwise records.

Each converter module exposes ``convert_<name>(path, ...) -> LoadResult`` and builds on the one
row loop in :mod:`judgeforge.data.converters.base`.
"""

__all__: list[str] = []  # a namespace of modules: import them by name
