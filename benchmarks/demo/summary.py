"""The demo's closing table: base vs trained judge, side by side, per scoring mode."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from judgeforge.benchmarks.report import markdown_table, fmt

__all__ = ["side_by_side", "write_summary"]

ROWS = (("parse_failure_rate", "parse-failure rate"), ("mae", "MAE (failures = worst error)"),
        ("mae_parsed", "MAE (parsed rows)"), ("exact_acc", "exact accuracy"),
        ("within1_acc", "within-1 accuracy"), ("spearman", "Spearman rho"), ("qwk", "QWK"))


def _judge(report_path: Path) -> dict[str, Any] | None:
    if not report_path.is_file():
        return None
    report = json.loads(report_path.read_text())
    judges = report.get("judges") or []
    return judges[0] if judges else None


def side_by_side(work: Path, mode: str) -> str:
    """A Markdown table (metric x judge) for one scoring mode, from the two bench reports."""
    judges = [(label, _judge(work / folder / mode / "report.json"))
              for label, folder in (("base", "bench-base"), ("trained", "bench-trained"))]
    judges = [(label, j) for label, j in judges if j]
    if not judges:
        return f"(no {mode} reports yet)"
    rows = [["rows"] + [str(j["metrics"].get("n")) for _, j in judges]]
    for key, title in ROWS:
        rows.append([title] + [fmt(j["metrics"].get(key)) for _, j in judges])
    rows.append(["pairs/s"] + [fmt(j.get("timings", {}).get("pairs_per_s"), 2)
                               for _, j in judges])
    return markdown_table([f"{mode} mode"] + [label for label, _ in judges], rows)


def write_summary(work: Path, minutes: float) -> Path:
    parts = ["# judgeforge demo: base vs GRPO-trained judge", "",
             f"Total time of all steps: {minutes:.1f} min. Work folder: `{work}`.", ""]
    for mode in ("sample", "expected"):
        parts += [side_by_side(work, mode), ""]
    parts += ["Sample mode parses the judge's own `<score>X</score>`; expected mode reads the "
              "probability of each score token after a `<score>` prefill.", "",
              "Reports: `bench-base/<mode>/report.md`, `bench-trained/<mode>/report.md`; "
              "training curves: `train/curves.png`."]
    out = work / "report.md"
    out.write_text("\n".join(parts) + "\n")
    return out
