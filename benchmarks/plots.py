"""PNG plots for the quality benchmark (matplotlib, Agg backend; imported lazily).

- ``confusion_<judge>.png``: counts of true label (rows) x predicted score (columns, rounded to
  the nearest level; a last ``fail`` column for failures), from
  :func:`judgeforge.metrics.confusion_matrix`'s output in the report;
- ``distribution.png``: how often each score is given: the true labels beside each judge's
  predictions (rounded, plus failures).

Fitted baselines (``report["baselines"]``) are drawn like judges, before them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

__all__ = ["confusion_plot", "distribution_plot", "quality_plots", "safe_name"]


def safe_name(label: str) -> str:
    """A file-name-safe version of a judge label."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", label).strip("._") or "judge"


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def confusion_plot(confusion: Mapping[str, Any], path: str | Path, *, title: str = "") -> Path:
    """Draw one confusion matrix (``{"levels", "columns", "counts"}``) to ``path``."""
    import numpy as np

    plt = _pyplot()
    counts = np.asarray(confusion["counts"], dtype=float)
    rows = [str(v) for v in confusion["levels"]]
    cols = [str(c) for c in confusion["columns"]]
    fig, ax = plt.subplots(figsize=(1.0 + 0.75 * len(cols), 1.0 + 0.7 * len(rows)))
    try:
        ax.imshow(counts, cmap="Blues", aspect="auto", vmin=0, vmax=max(1.0, counts.max()))
        ax.set_xticks(range(len(cols)), labels=cols)
        ax.set_yticks(range(len(rows)), labels=rows)
        ax.set_xlabel("predicted (rounded)")
        ax.set_ylabel("true label")
        if title:
            ax.set_title(title, fontsize=10)
        top = counts.max() if counts.size else 0
        for i in range(counts.shape[0]):
            for j in range(counts.shape[1]):
                value = int(counts[i, j])
                ax.text(j, i, str(value), ha="center", va="center", fontsize=9,
                        color="white" if top and value > top / 2 else "black")
        fig.tight_layout()
        out = Path(path)
        fig.savefig(out, dpi=100)
    finally:
        plt.close(fig)
    return out


def distribution_plot(levels: Sequence[int], true_counts: Sequence[int],
                      judge_counts: Mapping[str, Sequence[int]], path: str | Path, *,
                      title: str = "") -> Path:
    """Grouped bars: per score level (and ``fail``), the true count and each judge's count.

    ``judge_counts[label]`` has one count per level and a last count for failures.
    """
    import numpy as np

    plt = _pyplot()
    cats = [str(v) for v in levels] + ["fail"]
    series = [("true label", list(true_counts) + [0])]
    series += [(label, list(c)) for label, c in judge_counts.items()]
    x = np.arange(len(cats))
    width = 0.8 / max(1, len(series))
    fig, ax = plt.subplots(figsize=(max(5.0, 1.2 * len(cats) + 0.4 * len(series)), 3.6))
    try:
        for k, (name, values) in enumerate(series):
            ax.bar(x - 0.4 + width * (k + 0.5), values, width, label=name)
        ax.set_xticks(x, labels=cats)
        ax.set_xlabel("score")
        ax.set_ylabel("rows")
        ax.set_title(title or "predicted vs true score distribution", fontsize=10)
        ax.legend(fontsize=8)
        fig.tight_layout()
        out = Path(path)
        fig.savefig(out, dpi=100)
    finally:
        plt.close(fig)
    return out


def quality_plots(report: Mapping[str, Any], out_dir: str | Path) -> list[str]:
    """Write the quality plots for ``report`` into ``out_dir``; returns their file names."""
    out = Path(out_dir)
    names: list[str] = []
    judges = list(report.get("baselines") or []) + list(report.get("judges", []))
    if not judges:
        return names
    used: set[str] = set()
    judge_counts: dict[str, list[int]] = {}
    for j in judges:
        conf = j["metrics"]["confusion"]
        base = safe_name(str(j["label"]))
        name, k = f"confusion_{base}.png", 2
        while name in used:
            name, k = f"confusion_{base}-{k}.png", k + 1
        used.add(name)
        confusion_plot(conf, out / name, title=f"{j['label']} ({report.get('mode')})")
        names.append(name)
        counts = conf["counts"]
        judge_counts[str(j["label"])] = [sum(r[c] for r in counts)
                                         for c in range(len(conf["columns"]))]
    conf0 = judges[0]["metrics"]["confusion"]
    true_counts = [sum(row) for row in conf0["counts"]]
    distribution_plot(conf0["levels"], true_counts, judge_counts, out / "distribution.png",
                      title=f"predicted vs true ({report.get('data', {}).get('name')}, "
                            f"{report.get('mode')})")
    names.append("distribution.png")
    return names
