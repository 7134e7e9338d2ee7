"""Published correlations of well-known judges with the same human labels ("anchors").

JUDGE-BENCH's results files (``results/regular/<set>.json``, shipped gzip-compressed) hold, per
judge (``"gpt-4o (SP: None, AP: 1)"``) and metric, ``corr_coeff`` (Pearson, Spearman, Kendall
with the human mean), ``total_responses`` and ``valid_responses``; they are read as they are,
never typed by hand. Anchors typed in a suite (``anchors.published``) must cite their source.
Anchors are measured on the whole set against the mean human score; the suite's judges on its
(possibly limited) sample against the rounded mean: close, not identical conditions.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from judgeforge.benchmarks.suite.spec import SuiteSet
from judgeforge.errors import ConfigError

__all__ = ["JUDGE_BENCH_CITATION", "judge_bench_anchors", "set_anchors"]

JUDGE_BENCH_CITATION = ("JUDGE-BENCH results/regular (Bavaresco et al. 2024, 'LLMs instead of "
                        "Human Judges?')")
_SETTINGS = re.compile(r"\s*\(SP:.*\)\s*$")


def _num(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and math.isfinite(value) else None


def judge_bench_anchors(path: str | Path, metric: str) -> list[dict[str, Any]]:
    """Every judge's published correlations for ``metric`` in a JUDGE-BENCH results file."""
    from judgeforge.data.converters.sources import load_source_json, plain_name

    doc = load_source_json(path)
    if not isinstance(doc, Mapping):
        raise ConfigError(f"{path}: expected a JUDGE-BENCH results object (judge -> metrics)")
    out = []
    for judge, metrics in doc.items():
        entry = metrics.get(metric) if isinstance(metrics, Mapping) else None
        if not isinstance(entry, Mapping):
            continue
        corr = entry.get("corr_coeff") or {}
        out.append({"judge": _SETTINGS.sub("", str(judge)),
                    "spearman": _num(corr.get("spearman")), "pearson": _num(corr.get("pearson")),
                    "kendall": _num(corr.get("kendall")),
                    "n": entry.get("total_responses"), "valid": entry.get("valid_responses"),
                    "source": f"{JUDGE_BENCH_CITATION}, {plain_name(path)}"})
    if not out:
        raise ConfigError(f"{path}: no judge has results for metric {metric!r}")
    return sorted(out, key=lambda a: -(a["spearman"] if a["spearman"] is not None else -2))


def set_anchors(s: SuiteSet) -> list[dict[str, Any]]:
    """The set's anchors: from its JUDGE-BENCH results file, then the typed ones."""
    found: list[dict[str, Any]] = []
    if s.anchors_file is not None:
        found += judge_bench_anchors(s.anchors_file, s.metric or "")
    for item in s.published:
        found.append({"judge": item["judge"], "spearman": item.get("spearman"),
                      "pearson": item.get("pearson"), "kendall": item.get("kendall"),
                      "n": item.get("n"), "valid": item.get("n"), "source": item["source"]})
    return found
