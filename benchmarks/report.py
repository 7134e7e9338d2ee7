"""Markdown tables and printed summaries of benchmark reports (pure functions of the report dicts).

The quality table puts the judges side by side (one column each); the throughput table has one
line per (concurrency, variant). Both are GitHub-flavoured Markdown, which also reads well in a
terminal.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from judgeforge.errors import DataError

__all__ = ["fmt", "fmt_ci", "markdown_table", "quality_table", "quality_source_tables",
           "baseline_lines",
           "quality_markdown", "throughput_table", "throughput_goals_table",
           "throughput_markdown", "QUALITY_ROWS"]

# (metric key, row title, decimals); the CI comes from metrics["ci"][key] when present.
QUALITY_ROWS: tuple[tuple[str, str, int], ...] = (
    ("parse_failure_rate", "parse-failure rate", 3),
    ("mae", "MAE (failures = worst error)", 3),
    ("mae_parsed", "MAE (parsed rows)", 3),
    ("rmse", "RMSE (failures = worst error)", 3),
    ("rmse_parsed", "RMSE (parsed rows)", 3),
    ("exact_acc", "exact accuracy", 3),
    ("within1_acc", "within-1 accuracy", 3),
    ("pearson", "Pearson r", 3),
    ("spearman", "Spearman rho", 3),
    ("kendall", "Kendall tau", 3),
    ("qwk", "QWK", 3),
)


def fmt(value: Any, digits: int = 3) -> str:
    """A number for a table: ``-`` for None, fixed decimals for floats."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if value != value:  # NaN
            return "-"
        return f"{value:.{digits}f}"
    return str(value)


def fmt_ci(value: Any, ci: Sequence[Any] | None, digits: int = 3,
           ci_digits: int | None = None) -> str:
    """``0.512 [0.401, 0.630]``; the interval is left out when unknown. ``ci_digits`` sets the
    interval's decimals (default: ``digits``)."""
    text = fmt(value, digits)
    if value is not None and ci and len(ci) == 2 and ci[0] is not None and ci[1] is not None:
        d = digits if ci_digits is None else ci_digits
        text += f" [{fmt(ci[0], d)}, {fmt(ci[1], d)}]"
    return text


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def markdown_table(header: Sequence[str], rows: Iterable[Sequence[Any]],
                   align: Sequence[str] | None = None) -> str:
    """A Markdown table; ``align`` holds ``"l"``/``"r"`` per column (default: first left)."""
    header = [_cell(h) for h in header]
    align = list(align or ["l"] + ["r"] * (len(header) - 1))
    sep = [":---" if a == "l" else "---:" for a in align]
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join(sep) + " |"]
    for row in rows:
        cells = [_cell(c) for c in row]
        if len(cells) != len(header):
            raise DataError(f"row has {len(cells)} cells, header {len(header)}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


# ---------------------------------------------------------------------------- quality

def _columns(report: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The table's columns: the fitted baselines first, then the judges."""
    return list(report.get("baselines") or []) + list(report.get("judges", []))


def quality_table(report: Mapping[str, Any]) -> str:
    """Baselines and judges side by side: one column each, one row per metric (with 95% CIs)."""
    judges = _columns(report)
    header = ["metric"] + [str(j["label"]) for j in judges]
    rows: list[list[str]] = []
    rows.append(["rows (parsed)"] + [f"{j['metrics'].get('n')} ({j['metrics'].get('n_parsed')})"
                                     for j in judges])
    for key, title, digits in QUALITY_ROWS:
        cells = []
        for j in judges:
            m = j["metrics"]
            cells.append(fmt_ci(m.get(key), (m.get("ci") or {}).get(key), digits))
        rows.append([title] + cells)
    rows.append(["pairs/s"] + [fmt(j.get("timings", {}).get("pairs_per_s"), 2) for j in judges])
    rows.append(["latency p50 / p95 (s)"] + [
        f"{fmt(j.get('timings', {}).get('latency_p50_s'), 2)} / "
        f"{fmt(j.get('timings', {}).get('latency_p95_s'), 2)}" for j in judges])
    rows.append(["generated tokens / pair"] + [
        fmt(j.get("timings", {}).get("completion_tokens_mean"), 1) for j in judges])
    return markdown_table(header, rows)


def quality_source_tables(report: Mapping[str, Any]) -> str:
    """Per ``data_source``: rows, failure rate, MAE, Pearson and QWK for each judge."""
    judges = _columns(report)
    sources: list[str] = []
    for j in judges:
        for s in (j["metrics"].get("by_data_source") or {}):
            if s not in sources:
                sources.append(s)
    if not sources:
        return ""
    header = ["data_source", "metric"] + [str(j["label"]) for j in judges]
    rows: list[list[str]] = []
    for src in sources:
        for key, title in (("n", "rows"), ("parse_failure_rate", "parse-failure rate"),
                           ("mae", "MAE"), ("mae_parsed", "MAE (parsed)"),
                           ("pearson", "Pearson r"), ("spearman", "Spearman rho"),
                           ("qwk", "QWK")):
            cells = [fmt((j["metrics"].get("by_data_source") or {}).get(src, {}).get(key))
                     for j in judges]
            rows.append([src, title] + cells)
    return markdown_table(header, rows, ["l", "l"] + ["r"] * len(judges))


def quality_markdown(report: Mapping[str, Any]) -> str:
    """The whole ``report.md`` of a quality benchmark."""
    d = report.get("data", {})
    lines = [
        "# judgeforge quality benchmark",
        "",
        f"- data: `{d.get('path')}` ({d.get('name')}), dimension `{d.get('dimension')}` on "
        f"{d.get('scale', ['?', '?'])[0]}-{d.get('scale', ['?', '?'])[1]}; "
        f"{d.get('rows_graded')} of {d.get('rows_in_file')} rows ({d.get('sample')})",
        f"- label counts: {d.get('label_counts')}",
        f"- mode: `{report.get('mode')}`" + (" (constrained decoding)"
                                            if report.get("constrained") else ""),
        "- judges: " + ", ".join(f"`{j['label']}` = {j.get('target')}"
                                 for j in report.get("judges", [])),
        f"- {report.get('metrics_note', '')}",
        *([f"- calibrated judges: {report['calibration']['note']}; `"
           f"{report['calibration']['reference']}` is the reference every other judge is "
           "compared with"] if report.get("calibration") else []),
        "",
        "## Judges side by side",
        "",
        quality_table(report),
        "",
    ]
    lines += baseline_lines(report)
    per_source = quality_source_tables(report)
    if per_source:
        lines += ["## Per data_source", "", per_source, ""]
    errors = [(j["label"], j.get("status_counts", {})) for j in report.get("judges", [])]
    lines += ["## Result status counts", ""]
    lines += [f"- `{label}`: {counts}" for label, counts in errors]
    lines.append("")
    plots = (report.get("files") or {}).get("plots") or []
    if plots:
        lines += ["## Plots", ""]
        lines += [f"![{p}]({p})" for p in plots]
        lines.append("")
    t = report.get("timings", {})
    if t:
        lines += [f"Total time: {fmt(t.get('total_s'), 1)} s.", ""]
    return "\n".join(lines)


def baseline_lines(report: Mapping[str, Any]) -> list[str]:
    """How the baselines were fitted, and each judge's verdict against them (failures first)."""
    from judgeforge.benchmarks.baselines import verdict_lines

    lines: list[str] = []
    note = report.get("baselines_note")
    if note:
        lines += [f"{note[:1].upper()}{note[1:]}."]
    for b in report.get("baselines") or []:
        lines.append(f"- `{b['label']}`: {b.get('target')}")
    found = report.get("verdicts") or []
    if found:
        ref = f" and `{report['calibration']['reference']}`" if report.get("calibration") \
            else ""
        lines += ["", f"### Against the baselines{ref} (paired bootstrap 95% intervals of "
                      "judge - baseline)", ""]
        lines += verdict_lines(found)
    return lines + ([""] if lines else [])


# ---------------------------------------------------------------------------- throughput

def throughput_table(report: Mapping[str, Any]) -> str:
    """One line per (concurrency, variant): pairs/s, tokens, latency, ratio to the raw client."""
    header = ["conc", "variant", "pairs/s", "ratio vs raw", "gen tok/pair", "prompt tok/pair",
              "p50 s", "p95 s", "errors", "cache hit"]
    rows = []
    for entry in report.get("summary", []):
        rows.append([
            entry["concurrency"], entry["variant"], fmt(entry.get("pairs_per_s"), 3),
            fmt(entry.get("ratio_to_raw"), 3), fmt(entry.get("gen_tokens_per_pair"), 1),
            fmt(entry.get("prompt_tokens_per_pair"), 0), fmt(entry.get("latency_p50_s"), 2),
            fmt(entry.get("latency_p95_s"), 2), fmt(entry.get("error_rate"), 2),
            fmt(entry.get("prefix_cache_hit_rate"), 2),
        ])
    return markdown_table(header, rows, ["r", "l"] + ["r"] * (len(header) - 2))


def throughput_goals_table(report: Mapping[str, Any]) -> str:
    """The issue's goals, per concurrency: measured ratio, target, met or not."""
    header = ["conc", "goal", "measured", "target", "met"]
    rows = []
    for g in report.get("goals", []):
        met = g.get("met")
        rows.append([g["concurrency"], g["goal"], fmt(g.get("value"), 3), g.get("target", ""),
                     "-" if met is None else ("yes" if met else "NO")])
    return markdown_table(header, rows, ["r", "l", "r", "l", "l"])


def throughput_markdown(report: Mapping[str, Any]) -> str:
    """The whole ``throughput.md``."""
    s = report.get("setup", {})
    lines = [
        "# judgeforge throughput benchmark",
        "",
        f"- model: {s.get('model')} (served as `{s.get('served_model')}` at {s.get('base_url')})",
        f"- data: `{s.get('data')}`, {s.get('rows')} rows, dimension `{s.get('dimension')}`; "
        f"{s.get('rounds')} interleaved rounds per concurrency (variant order shuffled per "
        "round); medians over rounds",
        f"- sample/vote requests: constrained={s.get('constrained')}, max_tokens="
        f"{s.get('max_tokens')}; vote n={s.get('vote_n')}",
        "- prefill-bound limit: max_tokens=1 requests with the same messages at the same "
        "concurrency; limit pairs/s = prompt tokens/s / prompt tokens per pair",
        "",
        throughput_table(report),
        "",
    ]
    limits = report.get("prefill_limit", [])
    if limits:
        lines += [markdown_table(
            ["conc", "prompt tok/s", "prompt tok/pair", "limit pairs/s"],
            [[x["concurrency"], fmt(x.get("prompt_tokens_per_s"), 0),
              fmt(x.get("prompt_tokens_per_pair"), 0), fmt(x.get("limit_pairs_per_s"), 3)]
             for x in limits]), ""]
    if report.get("goals"):
        lines += ["## Goals", "", throughput_goals_table(report), ""]
    for note in report.get("notes", []):
        lines.append(f"- {note}")
    if report.get("notes"):
        lines.append("")
    return "\n".join(lines)
