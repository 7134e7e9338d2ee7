"""Turning a suite's set into records and its task description, with the data's own converter.

Every converter is the one ``judgeforge data convert`` uses; several files of one set are
merged (e.g. the four FeedbackQA test files). The task description passed to
``PromptTemplate(task=...)`` is the set's ``task`` when given, else the data's own annotation
prompt where it has one: a JUDGE-BENCH metric's ``prompt`` (without ``{{ instance }}``), LAMP-R's
scoring instruction.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from judgeforge.benchmarks.suite.spec import SuiteSet
from judgeforge.errors import ConfigError

__all__ = ["LoadedSet", "load_set"]


@dataclass
class LoadedSet:
    """A converted set: its records (a LoadResult), the graded dimension, the task text."""

    result: Any
    dimension: str
    task: str | None
    task_origin: str


def _convert(s: SuiteSet) -> Any:
    from judgeforge.data.converters.base import merge_results

    results = []
    for f in s.files:
        if s.converter == "judge-bench":
            from judgeforge.data.converters.judge_bench import convert_judge_bench

            results.append(convert_judge_bench(f, metric=s.metric))
        elif s.converter == "feedbackqa":
            from judgeforge.data.converters.feedbackqa import convert_feedbackqa

            results.append(convert_feedbackqa(f, dimension=s.dimension or "quality"))
        elif s.converter == "lamp":
            from judgeforge.data.converters.lamp import convert_lamp

            results.append(convert_lamp(f, dimension=s.dimension or "quality"))
        elif s.converter == "prometheus":
            from judgeforge.data.converters.prometheus import convert_prometheus

            results.append(convert_prometheus(f, dimension=s.dimension or "quality"))
        else:  # records: an already converted pointwise file
            from judgeforge.data.io import load_records

            results.append(load_records(f))
    return merge_results(results)


def _data_task(s: SuiteSet, result: Any) -> str | None:
    if s.converter == "judge-bench":
        from judgeforge.data.converters.judge_bench import metric_prompt

        return metric_prompt(s.files[0], s.metric) or None
    if s.converter == "lamp":
        texts = {(r.extra_info or {}).get("instruction") for r in result.records}
        texts.discard(None)
        return texts.pop() if len(texts) == 1 else None
    return None


def load_set(s: SuiteSet) -> LoadedSet:
    """Convert ``s``'s files; pick its dimension and task description."""
    result = _convert(s)
    dims = result.info.dimension_names
    dim = s.dimension or (dims[0] if dims else None)
    if dim is None or dim not in result.info.dimensions:
        raise ConfigError(f"set {s.name!r}: dimension {dim!r} is not in its data ({dims})")
    if s.task:
        return LoadedSet(result, dim, s.task, "suite")
    task = _data_task(s, result)
    return LoadedSet(result, dim, task, "data" if task else "none")
