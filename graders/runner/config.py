"""Grader configurations and mappers (OpenJudge-compatible).

A mapper turns a dataset row into the grader's keyword arguments:

- ``None``: the row's columns are the keywords (OpenJudge's behaviour);
- a dict ``{"query": "input.0.content", "response": "output.content"}`` of dotted paths (dict
  keys, list indices, and OpenJudge's list traversal: ``"items.name"`` over a list of dicts);
- a callable ``row -> dict``.

A path missing from a row raises :class:`MappingError`, which the runner turns into an error
value for that row (never the text ``"None"``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from judgeforge.errors import JudgeforgeError, UsageError

__all__ = ["GraderConfig", "Mapper", "MappingError", "resolve_path", "apply_mapper",
           "record_mapper", "plain_mapper", "check_plain_inputs"]

Mapper = Mapping[str, str] | Callable[[Any], Mapping[str, Any]] | None

_MISSING = object()


class MappingError(JudgeforgeError, KeyError):
    """A mapper path is missing from a row, a callable mapper failed, or a plain row's input
    has the wrong type (:func:`check_plain_inputs`): a final error for that row."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


def _get(data: Any, parts: list[str]) -> Any:
    if not parts:
        return data
    key, rest = parts[0], parts[1:]
    if isinstance(data, Mapping):
        return _get(data[key], rest) if key in data else _MISSING
    if isinstance(data, (list, tuple)):
        if key.lstrip("-").isdigit():
            i = int(key)
            return _get(data[i], rest) if -len(data) <= i < len(data) else _MISSING
        values = [v for v in (_get(item, parts) for item in data) if v is not _MISSING]
        return values if values else _MISSING
    attr = getattr(data, key, _MISSING)  # pydantic records and other objects
    return _MISSING if attr is _MISSING else _get(attr, rest)


def resolve_path(row: Any, path: str) -> Any:
    """The value at the dotted ``path`` in ``row``; :class:`MappingError` if it is missing."""
    value = _get(row, path.split(".")) if path else row
    if value is _MISSING:
        raise MappingError(f"mapper path {path!r} is missing from the row")
    return value


def apply_mapper(row: Any, mapper: Mapper) -> dict[str, Any]:
    """The grader keywords for ``row`` (see the module docstring)."""
    if mapper is None:
        if isinstance(row, Mapping):
            return dict(row)
        if hasattr(row, "model_dump"):
            return record_mapper(row)
        raise MappingError(f"a row of type {type(row).__name__} needs a mapper")
    if isinstance(mapper, Mapping):
        return {name: resolve_path(row, str(path)) for name, path in mapper.items()}
    if callable(mapper):
        try:
            out = mapper(row)
        except MappingError:
            raise
        except Exception as exc:  # a user callable: report its failure as this row's error
            raise MappingError(f"mapper {getattr(mapper, '__name__', mapper)!r} failed: "
                               f"{type(exc).__name__}: {exc}") from exc
        if not isinstance(out, Mapping):
            raise MappingError(f"mapper returned {type(out).__name__}, not a dict")
        return dict(out)
    raise UsageError(f"a mapper is a dict of paths, a callable or None, not {type(mapper)}")


def plain_mapper(row: Mapping[str, Any]) -> dict[str, Any]:
    """Keywords for a plain row: ``query``, ``response``, and ``rubric``/``reference`` if set.

    Each is checked (:func:`check_plain_inputs`): a value of the wrong type is a
    :class:`MappingError` naming the field (a final error for the row, never graded as its
    Python repr).
    """
    kw = {"query": resolve_path(row, "query"), "response": resolve_path(row, "response")}
    for name in ("rubric", "reference"):
        if row.get(name) is not None:
            kw[name] = row[name]
    check_plain_inputs(kw)
    return kw


def _text_problem(value: Any) -> str | None:
    if not isinstance(value, str):
        return f"is {type(value).__name__}, not text"
    from judgeforge.data.validate import lone_surrogate

    bad = lone_surrogate(value)
    return None if bad is None else f"holds a lone surrogate {bad.partition(' ')[2]}"


def check_plain_inputs(kw: Mapping[str, Any],
                       text_fields: tuple[str, ...] = ("response", "rubric", "reference")) -> None:
    """``query`` is text or a list of chat messages (``role`` and text ``content`` each); the
    ``text_fields`` (``response``, ``rubric`` and ``reference`` by default; a pairwise grader
    names ``response_a`` and ``response_b``) are text; no text holds a lone surrogate.
    Otherwise a :class:`MappingError` naming the field."""
    query = kw.get("query")
    if isinstance(query, list):
        if not query:
            raise MappingError("field 'query': is an empty list of messages")
        for i, msg in enumerate(query):
            if not isinstance(msg, Mapping):
                raise MappingError(f"field 'query[{i}]': is {type(msg).__name__}, not a chat "
                                   "message (an object with role and content)")
            for part in ("role", "content"):
                if part not in msg:
                    raise MappingError(f"field 'query[{i}].{part}': missing")
                problem = _text_problem(msg[part])
                if problem:
                    raise MappingError(f"field 'query[{i}].{part}': {problem}")
    elif query is not None:
        problem = _text_problem(query)
        if problem:
            problem = problem.replace("not text", "not text or a list of chat messages")
            raise MappingError(f"field 'query': {problem}")
    for name in text_fields:
        if kw.get(name) is not None:
            problem = _text_problem(kw[name])
            if problem:
                raise MappingError(f"field {name!r}: {problem}")


def record_mapper(row: Any) -> dict[str, Any]:
    """Keywords for a pointwise record (or its dict form):
    :func:`judgeforge.prompt.record_inputs`, the same inputs the trainers render (``query`` is
    the whole conversation unless it is one user turn; ``rubric``/``reference`` from
    ``extra_info``, left out when absent).
    """
    from judgeforge.prompt import record_inputs

    try:
        kw = record_inputs(row)
    except (KeyError, IndexError, TypeError, AttributeError) as exc:
        raise MappingError(f"not a pointwise record (needs input messages and "
                           f"output.content): {type(exc).__name__}: {exc}") from exc
    from judgeforge.data.validate import lone_surrogate

    bad = lone_surrogate(kw)
    if bad is not None:
        field, _, where = bad.partition(" ")
        raise MappingError(f"field {field!r}: holds a lone surrogate {where}")
    return {k: v for k, v in kw.items() if v is not None}


@dataclass
class GraderConfig:
    """A grader and the mapper that feeds it (OpenJudge's ``GraderConfig``)."""

    grader: Any
    mapper: Mapper = None

    @classmethod
    def create(cls, config: Any) -> GraderConfig:
        """Accept a GraderConfig (ours or OpenJudge's), a grader, ``(grader, mapper)`` or a dict."""
        if isinstance(config, cls):
            return config
        if isinstance(config, tuple):
            if not 1 <= len(config) <= 2:
                raise UsageError(f"a grader tuple is (grader, mapper), got {len(config)} items")
            return cls(*config)
        if isinstance(config, Mapping):
            return cls(**config)
        if hasattr(config, "grader") and hasattr(config, "mapper"):  # OpenJudge's GraderConfig
            return cls(config.grader, config.mapper)
        if hasattr(config, "aevaluate"):
            return cls(config)
        raise UsageError(f"not a grader configuration: {config!r}")
