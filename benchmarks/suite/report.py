"""Tables and the plot of a suite report (pure functions of ``suite.json``'s dict).

- :func:`summary_table`: one line per set, Spearman of each judge, the length baseline, the
  headline anchors and the human ceiling side by side;
- :func:`set_table`: one set in full: every judge, baseline, anchor and the ceiling, with rows,
  parse-failure rate, MAE, Spearman, Pearson, Kendall and QWK (95% CIs where measured);
- :func:`suite_markdown`: the whole report; :func:`suite_plot`: Spearman per set (PNG).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from judgeforge.benchmarks.report import fmt, fmt_ci, markdown_table

__all__ = ["headline_anchors", "set_table", "summary_table", "suite_markdown", "suite_plot"]

_SET_HEADER = ["who", "kind", "rows (parsed)", "parse fail", "MAE", "Spearman", "Pearson",
               "Kendall", "QWK"]


def _measured_row(entry: Mapping[str, Any], kind: str) -> list[str]:
    ci = entry.get("ci") or {}
    return [str(entry["label"]), kind, f"{fmt(entry.get('n'))} ({fmt(entry.get('n_parsed'))})",
            fmt(entry.get("parse_failure_rate"), 2)] + [
        fmt_ci(entry.get(k), ci.get(k), 2) for k in ("mae", "spearman", "pearson", "kendall",
                                                        "qwk")]


def headline_anchors(report: Mapping[str, Any], s: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The set's anchors named in the suite's ``headline_anchors`` (all when none are named)."""
    names = [n.lower() for n in report.get("suite", {}).get("headline_anchors") or []]
    anchors = list(s.get("anchors") or [])
    if not names:
        return anchors
    return [a for n in names for a in anchors if str(a["judge"]).lower() == n]


def set_table(report: Mapping[str, Any], s: Mapping[str, Any], *, all_anchors: bool = True) -> str:
    """One set: judges, baselines, anchors (all or the headline ones) and the human ceiling."""
    rows = [_measured_row(j, "judge") for j in s.get("judges", [])]
    rows += [_measured_row(b, "baseline") for b in s.get("baselines", [])]
    anchors = s.get("anchors") or [] if all_anchors else headline_anchors(report, s)
    for a in anchors:
        n = a.get("n")
        rows.append([f"{a['judge']} (published)", "anchor", fmt(n), "-", "-",
                     fmt(a.get("spearman"), 2), fmt(a.get("pearson"), 2),
                     fmt(a.get("kendall"), 2), "-"])
    c = s.get("ceiling")
    if c:
        rows.append(["human (leave-one-rater-out)", "ceiling", fmt(c.get("rows")), "-", "-",
                     fmt(c.get("spearman"), 2), "-", "-", "-"])
    return str(markdown_table(_SET_HEADER, rows))


def summary_table(report: Mapping[str, Any]) -> str:
    """Spearman per set: judges, baselines, headline anchors, human ceiling."""
    sets = list(report.get("sets", []))
    judges = [j["label"] for j in report.get("judges", [])]
    names = list(report.get("suite", {}).get("headline_anchors") or [])
    header = ["set", "rows"] + [f"{j}" for j in judges] + ["baseline: length"] + [
        f"{n} (pub.)" for n in names] + ["human ceiling"]
    rows = []
    for s in sets:
        by = {j["label"]: j for j in s.get("judges", [])}
        base = {b["label"]: b for b in s.get("baselines", [])}
        cells = [s["name"], fmt(s.get("rows_graded"))]
        for j in judges:
            e = by.get(j) or {}
            fail = e.get("parse_failure_rate")
            text = fmt_ci(e.get("spearman"), (e.get("ci") or {}).get("spearman"), 2)
            if fail:
                text += f" ({fail:.0%} fail)"
            cells.append(text)
        length = base.get("baseline: length") or {}
        cells.append(fmt(length.get("spearman"), 2))
        anchors = {str(a["judge"]).lower(): a for a in s.get("anchors") or []}
        cells += [fmt((anchors.get(n.lower()) or {}).get("spearman"), 2) for n in names]
        cells.append(fmt((s.get("ceiling") or {}).get("spearman"), 2))
        rows.append(cells)
    return str(markdown_table(header, rows))


def suite_markdown(report: Mapping[str, Any]) -> str:
    """The whole suite report as Markdown."""
    suite = report.get("suite", {})
    st = report.get("settings", {})
    judges = ", ".join(f"`{j['label']}` ({j.get('target')})" for j in report.get("judges", []))
    lines = [f"# Benchmark suite `{suite.get('name')}`", ""]
    if suite.get("description"):
        lines += [str(suite["description"]), ""]
    limit = st.get("limit")
    sample = "all rows" if limit is None else f"a seeded sample of at most {limit} rows"
    lines += [f"Judges: {judges}. Mode {st.get('mode')}; {sample} per set "
              f"(seed {st.get('seed')}).", ""]
    lines += [f"- {n}" for n in report.get("notes", [])] + [""]
    lines += ["## Spearman with the human labels", "", summary_table(report), ""]
    lines += ["![Spearman per set](suite.png)", ""]
    for s in report.get("sets", []):
        lines += [f"## {s['name']}", "",
                  f"{s['dimension']} ({s['scale'][0]}-{s['scale'][1]}), mode {s.get('mode')}, "
                  f"{s['rows_graded']} of {s['rows_in_set']} rows graded; labels "
                  f"{s.get('label_counts')}; baselines fitted on {s.get('baseline_fit')}.",
                  "", f"Data: {s.get('source')}; licence: {s.get('license')}.", ""]
        if s.get("task"):
            lines += [f"Task description ({s.get('task_origin')}): \"{s['task']}\"", ""]
        lines += [set_table(report, s), "", f"Per-row results: `{s['rows_file']}`; full "
                  f"report: `{s['report']}`.", ""]
    return "\n".join(lines)


def suite_plot(report: Mapping[str, Any], path: str | Path) -> Path:
    """Grouped bars: Spearman per set for each judge (with CIs), the length baseline, the
    headline anchors and the human ceiling."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt
    import numpy as np

    sets: Sequence[Mapping[str, Any]] = report.get("sets", [])
    series: list[tuple[str, list[float], list[tuple[float, float]] | None]] = []
    for j in report.get("judges", []):
        vals: list[float] = []
        errs: list[tuple[float, float]] = []
        for s in sets:
            e: Mapping[str, Any] = next((x for x in s["judges"] if x["label"] == j["label"]),
                                        {})
            v = e.get("spearman")
            ci = (e.get("ci") or {}).get("spearman") or [None, None]
            vals.append(np.nan if v is None else v)
            errs.append((0.0 if v is None or ci[0] is None else v - ci[0],
                         0.0 if v is None or ci[1] is None else ci[1] - v))
        series.append((j["label"], vals, errs))

    def column(get: Any) -> list[float]:
        out = []
        for s in sets:
            v = get(s)
            out.append(np.nan if v is None else float(v))
        return out

    series.append(("baseline: length", column(lambda s: next(
        (b.get("spearman") for b in s.get("baselines", []) if b["label"] == "baseline: length"),
        None)), None))
    for name in report.get("suite", {}).get("headline_anchors") or []:
        series.append((f"{name} (published)", column(lambda s, n=name: next(
            (a.get("spearman") for a in s.get("anchors") or []
             if str(a["judge"]).lower() == n.lower()), None)), None))
    series.append(("human ceiling", column(lambda s: (s.get("ceiling") or {}).get("spearman")),
                   None))
    x = np.arange(len(sets))
    width = 0.8 / max(len(series), 1)
    fig, ax = plt.subplots(figsize=(max(6.0, 1.1 * len(sets) + 3), 4.2))
    for i, (label, heights, bars) in enumerate(series):
        yerr = np.array(bars).T if bars else None
        ax.bar(x + (i - (len(series) - 1) / 2) * width, heights, width, label=label, yerr=yerr,
               capsize=2)
    ax.axhline(0, color="black", linewidth=0.6)
    ax.set_xticks(x)
    ax.set_xticklabels([s["name"] for s in sets], rotation=30, ha="right", fontsize=8)
    ax.set_ylabel("Spearman with human labels")
    ax.set_title(f"Benchmark suite {report.get('suite', {}).get('name')}")
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    out = Path(path)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out
