"""Prometheus absolute-grading sets (MT-Bench, Vicuna, ...) -> pointwise records, scale 1-5.

Each item's ``instruction`` is a whole Prometheus prompt; its sections are split out::

    ###Task Description: ...             (the grader's instructions: dropped)
    ###The instruction to evaluate: ...  -> the user message (the query)
    ###Response to evaluate: ...         -> output.content
    ###Reference Answer (Score 5): ...   -> extra_info.reference
    ###Score Rubrics: ...                -> extra_info.rubric
    ###Feedback:                         (where the grader writes: dropped)
    gpt4_feedback                        -> extra_info.feedback (the one closest to the label)

The label is the rounded mean of the GPT-4 scores (``gpt4_score``, a list or a string holding a
list), rounding halves up: ``floor(mean + 1/2)`` computed exactly with fractions. With three
integer scores the mean is never exactly a half, so half-up and Python's half-to-even agree;
both reproduce the published spreads (MT-Bench {1:35, 2:52, 3:35, 4:122, 5:76}, Vicuna
{1:4, 2:12, 3:24, 4:170, 5:110}); flooring or taking the median do not. The ``idx`` of these
files is shared by the four responses to one question, so ids are
``<data_source>-<idx>-<response_source>``.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Iterable, Mapping
from fractions import Fraction
from pathlib import Path
from typing import Any

from judgeforge.data.converters.base import RowProblem, convert_rows, row_object, scores_in_scale
from judgeforge.data.io import LoadResult, iter_raw_rows
from judgeforge.data.schema import DatasetInfo, Scale
from judgeforge.data.validate import RawRow
from judgeforge.errors import DataError

__all__ = [
    "PROMETHEUS_SCALE",
    "convert_prometheus",
    "default_data_source",
    "parse_prometheus_prompt",
    "prometheus_info",
    "round_half_up",
]

PROMETHEUS_SCALE = Scale(min=1, max=5)
_SECTIONS = (
    ("query", "###The instruction to evaluate:"),
    ("response", "###Response to evaluate:"),
    ("reference", re.compile(r"###Reference Answer(?: \(Score 5\))?:")),
    ("rubric", re.compile(r"###Score Rubrics?:")),
)
_END = re.compile(r"\n###Feedback:\s*$")


def round_half_up(value: Fraction | float | int) -> int:
    """Round to the nearest integer, halves up (2.5 -> 3), exactly for fractions."""
    return math.floor(Fraction(value) + Fraction(1, 2))


def prometheus_info(name: str, dimension: str = "quality") -> DatasetInfo:
    """DatasetInfo of a converted Prometheus set: one dimension on the 1-5 scale."""
    return DatasetInfo(
        name=name,
        dimensions={dimension: PROMETHEUS_SCALE},
        source="prometheus-eval/prometheus-eval eval/benchmark/data",
        license="Apache-2.0 (repository); labels are GPT-4 outputs",
        description="Prometheus absolute grading: rounded mean of three GPT-4 scores, with the "
                    "item's rubric and reference answer in extra_info.",
    )


def _find(text: str, marker: str | re.Pattern[str], start: int) -> tuple[int, int]:
    if isinstance(marker, str):
        pos = text.find(marker, start)
        return (pos, pos + len(marker)) if pos >= 0 else (-1, -1)
    match = marker.search(text, start)
    return match.span() if match else (-1, -1)


def parse_prometheus_prompt(text: str, *, require_reference: bool = True) -> dict[str, str]:
    """Split a Prometheus absolute-grading prompt into query, response, reference, rubric.

    Raises ``ValueError`` naming the first section header that is missing; without
    ``require_reference`` a prompt with no reference section (HHH's) gives no ``reference``.
    """
    spans = []
    pos = 0
    for name, marker in _SECTIONS:
        begin, end = _find(text, marker, pos)
        if begin < 0 and name == "reference" and not require_reference:
            continue
        if begin < 0:
            label = marker if isinstance(marker, str) else marker.pattern.replace("\\", "")
            raise DataError(f"section {label!r} not found")
        spans.append((name, begin, end))
        pos = end
    out = {}
    for i, (name, _, end) in enumerate(spans):
        stop = spans[i + 1][1] if i + 1 < len(spans) else len(text)
        section = text[end:stop]
        if i + 1 == len(spans):
            match = _END.search(section)
            section = section[: match.start()] if match else section
        out[name] = section.strip()
    return out


def _scores(value: Any) -> list[int]:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            raise RowProblem("gpt4_score", f"{value[:40]!r} is not a JSON list") from None
    return scores_in_scale(value, "gpt4_score", PROMETHEUS_SCALE)


def _feedback(value: Any, scores: list[int], label: int) -> str | None:
    """The GPT-4 feedback written with the score closest to ``label`` (the first on ties), or
    None when the row has none. ``gpt4_feedback`` is a list parallel to ``gpt4_score`` (or a
    string holding one)."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            value = [value]
    if not isinstance(value, (list, tuple)):
        return None
    texts = [v if isinstance(v, str) else "" for v in value]
    order = sorted(range(len(texts)), key=lambda i: abs((scores[i] if i < len(scores) else
                                                         label) - label))
    for i in order:
        if texts[i].strip():
            return texts[i].strip()
    return None


def _convert_row(raw: RawRow, dimension: str, data_source: str) -> dict[str, Any]:
    row = row_object(raw)
    text = row.get("instruction")
    if not isinstance(text, str):
        raise RowProblem("instruction", f"expected the prompt text, got {type(text).__name__}")
    try:
        parts = parse_prometheus_prompt(text)
    except ValueError as exc:
        raise RowProblem("instruction", str(exc)) from None
    scores = _scores(row.get("gpt4_score"))
    label = round_half_up(Fraction(sum(scores), len(scores)))
    idx = row.get("idx", raw.index)
    extra = {"rubric": parts["rubric"], "reference": parts["reference"], "idx": idx,
             "gpt4_scores": scores}
    feedback = _feedback(row.get("gpt4_feedback"), scores, label)
    if feedback:
        extra["feedback"] = feedback
    for key in ("category", "response_source"):
        if row.get(key) is not None:
            extra[key] = row[key]
    rid = f"{data_source}-{idx}"
    if row.get("response_source") is not None:
        rid += f"-{row['response_source']}"
    return {"input": [{"role": "user", "content": parts["query"]}],
            "output": {"content": parts["response"], "label": {dimension: label}},
            "data_source": data_source, "id": rid, "extra_info": extra}


def default_data_source(path: str | os.PathLike[str]) -> str:
    """``mt_bench_eval.json`` (or ``mt_bench_eval.json.gz``) -> ``prometheus/mt_bench``."""
    name = Path(path).name
    stem = Path(name[:-3] if name.lower().endswith(".gz") else name).stem
    return "prometheus/" + re.sub(r"_eval$", "", stem)


def convert_prometheus(
    source: str | os.PathLike[str] | Iterable[Mapping[str, Any]],
    *,
    dimension: str = "quality",
    data_source: str | None = None,
    skip_invalid: bool = False,
) -> LoadResult:
    """Convert a Prometheus absolute-grading file (JSON list or JSONL, gzipped or not) or rows.

    ``data_source`` defaults to ``prometheus/<file stem without _eval>``. Raises DataError
    naming every row that cannot be converted unless ``skip_invalid``.
    """
    if isinstance(source, (str, os.PathLike)):
        rows: Iterable[RawRow] = iter_raw_rows(source)
        where = str(source)
        data_source = data_source or default_data_source(source)
    else:
        rows = (RawRow(i, None, r) for i, r in enumerate(source))
        where = "rows"
        data_source = data_source or "prometheus"
    info = prometheus_info(data_source.replace("/", "_"), dimension)
    return convert_rows(rows, lambda raw: _convert_row(raw, dimension, data_source), info,
                        skip_invalid=skip_invalid, source=where)
