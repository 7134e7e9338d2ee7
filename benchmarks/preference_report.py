"""The preference benchmark's Markdown report and plot (pure functions of the report dict).

Same shape as ``bench quality``'s report: a header of what was graded, the columns side by side
(baselines, published judges, then the judge's pointwise-derived and pairwise verdicts), one
row per metric with its 95% interval, then per group, against the baseline, status counts and
the plot.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from judgeforge.benchmarks.report import fmt, fmt_ci, markdown_table

__all__ = ["preference_table", "preference_group_table", "preference_markdown",
           "preference_plot", "PREFERENCE_ROWS"]

PREFERENCE_ROWS: tuple[tuple[str, str], ...] = (
    ("accuracy", "accuracy (vs gold)"),
    ("accuracy_non_tie", "accuracy (non-tie gold)"),
    ("macro_f1", "macro-F1 (a/b/tie)"),
    ("failure_rate", "failure rate"),
)


def preference_table(report: Mapping[str, Any]) -> str:
    """Every column side by side: one row per metric (with intervals), then costs."""
    cols = list(report.get("columns") or [])
    header = ["metric"] + [str(c["label"]) for c in cols]
    rows: list[list[str]] = [["rows"] + [str(c["metrics"].get("n")) for c in cols]]
    for key, title in PREFERENCE_ROWS:
        rows.append([title] + [fmt_ci(c["metrics"].get(key),
                                      (c["metrics"].get("ci") or {}).get(key))
                               for c in cols])
    rows.append(["predicted a / b / tie / fail"] + [
        " / ".join(str(c["metrics"].get("predicted", {}).get(k, 0))
                   for k in ("a", "b", "tie", "fail")) for c in cols])
    rows.append(["position consistency"] + [fmt(c["metrics"].get("position_consistency"))
                                            for c in cols])
    rows.append(["accuracy - longer wins"] + [
        fmt_ci(c["vs_longer"]["difference"], c["vs_longer"]["ci"]) if c.get("vs_longer")
        else "-" for c in cols])
    rows.append(["pairs/s"] + [fmt((c.get("timings") or {}).get("pairs_per_s"), 2)
                               for c in cols])
    rows.append(["prompt tokens / pair"] + [
        fmt((c.get("timings") or {}).get("prompt_tokens_mean"), 0) for c in cols])
    return markdown_table(header, rows)


def preference_group_table(report: Mapping[str, Any]) -> str:
    """Per group (criterion or data_source): rows, accuracy and macro-F1 of each column."""
    cols = list(report.get("columns") or [])
    groups: list[str] = []
    for c in cols:
        for g in c["metrics"].get("by_group") or {}:
            if g not in groups:
                groups.append(g)
    if len(groups) < 2:
        return ""
    header = ["group", "metric"] + [str(c["label"]) for c in cols]
    rows = []
    for g in groups:
        cells = [(c["metrics"].get("by_group") or {}).get(g, {}) for c in cols]
        rows.append([g, "rows"] + [str(m.get("n", "-")) for m in cells])
        rows.append([g, "accuracy"] + [fmt(m.get("accuracy")) for m in cells])
        rows.append([g, "macro-F1"] + [fmt(m.get("macro_f1")) for m in cells])
    return markdown_table(header, rows, align=["l", "l"] + ["r"] * len(cols))


def preference_markdown(report: Mapping[str, Any]) -> str:
    """The whole ``report.md`` of a preference benchmark."""
    d = report.get("data", {})
    j = report.get("judge", {})
    pw = report.get("pairwise", {})
    margin = (report.get("pointwise") or {}).get("margin") or {}
    lines = [
        "# judgeforge preference benchmark",
        "",
        f"- data: `{d.get('path')}`: {d.get('rows_graded')} of {d.get('rows_in_file')} pairs "
        f"({d.get('sample')})",
        f"- gold verdicts: {d.get('gold_counts')}; groups: {d.get('groups')}",
        f"- judge: `{j.get('label')}` = {j.get('target')}",
        f"- pairwise: mode `{pw.get('mode')}`, "
        + ("both orders averaged" if pw.get("both_orders") else "one order (a, b)"),
        f"- pointwise-derived: expected-mode scores of both responses; tie margin "
        f"{fmt(margin.get('margin'))} ({margin.get('how')})",
        f"- {report.get('metrics_note', '')}",
        "",
        "## Side by side",
        "",
        preference_table(report),
        "",
    ]
    for note in report.get("published_notes") or []:
        lines.append(f"- {note}")
    lines += [f"- `{c['label']}`: {c.get('target')}" for c in report.get("columns", [])
              if c.get("kind") in ("baseline", "published")]
    lines.append("")
    groups = preference_group_table(report)
    if groups:
        lines += ["## Per group", "", groups, ""]
    lines += ["## Result status counts", ""]
    lines += [f"- `{c['label']}`: {c['status_counts']}" for c in report.get("columns", [])
              if c.get("status_counts")]
    lines.append("")
    plots = (report.get("files") or {}).get("plots") or []
    if plots:
        lines += ["## Plots", ""] + [f"![{p}]({p})" for p in plots] + [""]
    t = report.get("timings", {})
    if t:
        lines += [f"Total time: {fmt(t.get('total_s'), 1)} s.", ""]
    return "\n".join(lines)


def preference_plot(report: Mapping[str, Any], out_dir: str | Path) -> str:
    """``preference.png``: accuracy and macro-F1 of every column with their intervals."""
    import numpy as np

    from judgeforge.benchmarks.plots import _pyplot

    plt = _pyplot()
    cols = list(report.get("columns") or [])
    labels = [str(c["label"]) for c in cols]
    x = np.arange(len(cols))
    fig, ax = plt.subplots(figsize=(max(6.0, 1.3 * len(cols)), 4.0))
    try:
        for offset, key in ((-0.2, "accuracy"), (0.2, "macro_f1")):
            values = [c["metrics"].get(key) or 0.0 for c in cols]
            ci = [(c["metrics"].get("ci") or {}).get(key) or [None, None] for c in cols]
            lo = [v - b[0] if b[0] is not None else 0.0 for v, b in zip(values, ci)]
            hi = [b[1] - v if b[1] is not None else 0.0 for v, b in zip(values, ci)]
            ax.bar(x + offset, values, width=0.4, yerr=[lo, hi], capsize=3, label=key)
        ax.set_xticks(x, labels=labels, rotation=20, ha="right", fontsize=8)
        ax.set_ylim(0, 1)
        ax.set_ylabel("vs gold verdict (95% CI)")
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(Path(out_dir) / "preference.png", dpi=110)
    finally:
        plt.close(fig)
    return "preference.png"
