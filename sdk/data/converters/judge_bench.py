"""JUDGE-BENCH human-rated sets (``{annotations, instances}``) -> pointwise records.

One file declares its metrics (``annotations``: metric, category, prompt, worst, best) and holds
``instances``: ``{"id", "instance": text, "annotations": {metric: {"mean_human",
"individual_human_scores"}}}``. A record is made for one *graded* metric (``metric``; default the
file's first graded one); the dimension is the metric's name in snake case
(``Overall Quality`` -> ``overall_quality``) on the scale ``worst-best``.

The one ``instance`` text holds both parts; the layouts marked in the files are split:

- Newsroom: ``### Generated Summary ... ### Source Article ...`` -> the article is the query,
  the summary the response;
- ROSCOE: ``<instructions> CONTEXT: ... GENERATED RESPONSE: ... Judge the generated response:``
  -> the context is the query, the reasoning chain the response, the instructions go to
  ``extra_info.instructions``.

A text in neither layout is a bad row (named). The label is the mean of the individual rater
scores rounded half up (exactly, with fractions); the individual scores are kept in
``extra_info.rater_scores`` (for a human ceiling) and the file's ``mean_human`` in
``extra_info.mean_human``. :func:`metric_prompt` returns the metric's own annotation prompt
without its ``{{ instance }}`` placeholder: the task description the benchmark suite passes to
``PromptTemplate(task=...)``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from fractions import Fraction
from pathlib import Path
from typing import Any

from judgeforge.data.converters.base import RowProblem, convert_rows, row_object, scores_in_scale
from judgeforge.data.converters.prometheus import round_half_up
from judgeforge.data.converters.sources import load_source_json, plain_name
from judgeforge.data.io import LoadResult
from judgeforge.data.schema import DatasetInfo, Scale
from judgeforge.data.validate import RawRow, RowError, coerce_score
from judgeforge.errors import ConfigError, DataError

__all__ = [
    "JUDGE_BENCH_SOURCE",
    "convert_judge_bench",
    "dimension_name",
    "graded_metrics",
    "judge_bench_info",
    "metric_prompt",
    "split_instance",
]

JUDGE_BENCH_SOURCE = "dmg-illc/JUDGE-BENCH @ 5a0bf500325029efb5dc8adff2c1e991996f0e78"
# Licence of each set (JUDGE-BENCH data/README.md, licence table), by the file's ``dataset``.
_LICENSES = (
    ("newsroom", "Apache-2.0 (NewsRoom human evaluation; article texts are Newsroom's)"),
    ("roscoe", "MIT (ROSCOE, facebookresearch/ParlAI)"),
)
_NEWSROOM = re.compile(r"^\s*### Generated Summary\s*\n(?P<response>.*?)\n\s*### Source Article"
                       r"\s*\n(?P<query>.*)$", re.S)
_ROSCOE = re.compile(r"^(?P<instructions>.*?)CONTEXT:\s*\n(?P<query>.*?)\n\s*GENERATED RESPONSE:"
                     r"\s*\n(?P<response>.*?)(?:\n\s*Judge the generated response:\s*)?$", re.S)
_PLACEHOLDER = re.compile(r"\{\{\s*instance\s*\}\}")


def dimension_name(metric: str) -> str:
    """``Overall Quality`` -> ``overall_quality``."""
    return re.sub(r"[^0-9a-z]+", "_", metric.lower()).strip("_")


def split_instance(text: str) -> dict[str, str]:
    """Split an instance text into ``query``, ``response`` (and ROSCOE's ``instructions``).

    Raises ``ValueError`` when the text is in no known layout or a part is empty.
    """
    for layout in (_NEWSROOM, _ROSCOE):
        match = layout.match(text)
        if match:
            parts = {k: v.strip() for k, v in match.groupdict().items()}
            for key in ("query", "response"):
                if not parts[key]:
                    raise DataError(f"the {key} part is empty")
            return parts
    raise DataError("no known layout: expected '### Generated Summary ... ### Source Article' "
                     "or 'CONTEXT: ... GENERATED RESPONSE:'")


def graded_metrics(doc: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    """The file's graded (ordinal) metrics: name -> declaration."""
    return {a["metric"]: a for a in doc.get("annotations") or []
            if isinstance(a, Mapping) and a.get("category") == "graded" and "metric" in a}


def _declaration(doc: Any, metric: str | None, where: str) -> Mapping[str, Any]:
    if not isinstance(doc, Mapping) or not isinstance(doc.get("instances"), list):
        raise DataError(f"{where}: expected a JUDGE-BENCH object with 'annotations' and "
                        "'instances'", [RowError(None, None, "instances", "missing")])
    graded = graded_metrics(doc)
    if not graded:
        raise ConfigError(f"{where}: no graded metric in 'annotations'")
    if metric is None:
        return next(iter(graded.values()))
    if metric not in graded:
        others = [a.get("metric") for a in doc.get("annotations") or []
                  if isinstance(a, Mapping) and a.get("metric") not in graded]
        extra = f" ({', '.join(map(str, others))} are not graded)" if others else ""
        raise ConfigError(f"{where}: metric {metric!r} is not a graded metric of this file; "
                          f"choose one of {sorted(graded)}{extra}")
    return graded[metric]


def metric_prompt(source: str | os.PathLike[str] | Mapping[str, Any],
                  metric: str | None = None) -> str:
    """The metric's annotation prompt without ``{{ instance }}`` (the task description)."""
    doc = source if isinstance(source, Mapping) else load_source_json(source)
    decl = _declaration(doc, metric, str(source) if not isinstance(source, Mapping) else "rows")
    text = _PLACEHOLDER.sub(" ", str(decl.get("prompt") or ""))
    return re.sub(r"\s+", " ", text).strip()


def judge_bench_info(dataset: str, metric: str, scale: Scale, *, name: str,
                     file: str = "") -> DatasetInfo:
    """DatasetInfo of a converted JUDGE-BENCH set: its licence and source."""
    lic = next((text for key, text in _LICENSES if dataset.startswith(key)),
               "see JUDGE-BENCH data/README.md (licence of the original dataset)")
    path = f", data/{file}" if file else ""
    return DatasetInfo(
        name=name,
        dimensions={dimension_name(metric): scale},
        source=f"{JUDGE_BENCH_SOURCE}{path} (original: {dataset})",
        license=lic,
        description=f"JUDGE-BENCH {dataset}, metric {metric!r}: label = mean of the individual "
                    "human scores rounded half up; individual scores in extra_info.rater_scores.",
    )


def _scores(entry: Any, metric: str, scale: Scale) -> list[int]:
    if not isinstance(entry, Mapping):
        raise RowProblem(f"annotations.{metric}", "missing for this instance")
    return scores_in_scale(entry.get("individual_human_scores"),
                           f"annotations.{metric}.individual_human_scores", scale)


def _convert_row(raw: RawRow, metric: str, scale: Scale, data_source: str) -> dict[str, Any]:
    row = row_object(raw)
    text = row.get("instance")
    if not isinstance(text, str):
        raise RowProblem("instance", f"expected the instance text, got {type(text).__name__}")
    try:
        parts = split_instance(text)
    except ValueError as exc:
        raise RowProblem("instance", str(exc)) from None
    annotations = row.get("annotations")
    entry = annotations.get(metric) if isinstance(annotations, Mapping) else None
    scores = _scores(entry, metric, scale)
    label = round_half_up(Fraction(sum(scores), len(scores)))
    iid = row.get("id", raw.index)
    extra: dict[str, Any] = {"rater_scores": scores, "metric": metric, "instance_id": iid}
    assert isinstance(entry, Mapping)
    if isinstance(entry.get("mean_human"), (int, float)):
        extra["mean_human"] = float(entry["mean_human"])
    if parts.get("instructions"):
        extra["instructions"] = parts["instructions"]
    return {"input": [{"role": "user", "content": parts["query"]}],
            "output": {"content": parts["response"], "label": {dimension_name(metric): label}},
            "data_source": data_source, "id": f"{data_source}-{iid}", "extra_info": extra}


def _default_data_source(path: str | os.PathLike[str]) -> str:
    """``roscoe-gsm8k-overall.json.gz`` -> ``judge-bench/roscoe-gsm8k``."""
    stem = Path(plain_name(path)).stem
    return "judge-bench/" + re.sub(r"-overall$", "", stem)


def convert_judge_bench(
    source: str | os.PathLike[str] | Mapping[str, Any],
    *,
    metric: str | None = None,
    data_source: str | None = None,
    skip_invalid: bool = False,
) -> LoadResult:
    """Convert a JUDGE-BENCH file (JSON, or .json.gz) or its parsed object for one metric.

    ``metric`` is one of the file's graded metrics (default: the first). Raises
    :class:`~judgeforge.errors.ConfigError` for an unknown or ungraded metric and
    :class:`~judgeforge.errors.DataError` naming every bad instance unless ``skip_invalid``.
    """
    if isinstance(source, Mapping):
        doc: Any = source
        where = "rows"
        data_source = data_source or "judge-bench/" + str(source.get("dataset", "rows"))
        file = ""
    else:
        doc = load_source_json(source)
        where = str(source)
        data_source = data_source or _default_data_source(source)
        file = plain_name(source)
    decl = _declaration(doc, metric, where)
    name = str(decl["metric"])
    try:  # exact integers only: 1e400 (inf) and 2.5 are refused, not overflowed or cut
        scale = Scale(min=coerce_score(decl["worst"]), max=coerce_score(decl["best"]))
    except (KeyError, TypeError, ValueError, OverflowError) as exc:
        raise ConfigError(f"{where}: metric {name!r} has no integer worst/best ({exc})") from None
    info = judge_bench_info(str(doc.get("dataset", data_source)), name, scale,
                            name=f"{data_source.replace('/', '_')}_{dimension_name(name)}",
                            file=file)
    rows = (RawRow(i, None, item) for i, item in enumerate(doc["instances"]))
    return convert_rows(rows, lambda raw: _convert_row(raw, name, scale, data_source), info,
                        skip_invalid=skip_invalid, source=where)
