"""The demo's closing table: the baselines, the base and the trained judge side by side, per
scoring mode, and what the judges do and do not beat.

In expected mode each judge also has its calibrated twin (``bench quality --calibration-data``
on the training run's validation rows): ``base (calibrated)`` is the untrained base as it
would be used, and the trained judge (raw and calibrated) gets paired verdicts against it
(:func:`calibrated_base_verdicts`, read from both reports' ``rows.jsonl``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from judgeforge.benchmarks.baselines import verdict_lines
from judgeforge.benchmarks.report import fmt, fmt_ci, markdown_table

__all__ = ["side_by_side", "training_line", "verdict_summary", "write_summary",
           "calibrated_base_verdicts"]

REFERENCE = "base (calibrated)"

ROWS = (("parse_failure_rate", "parse-failure rate"), ("mae", "MAE (failures = worst error)"),
        ("mae_parsed", "MAE (parsed rows)"), ("exact_acc", "exact accuracy"),
        ("within1_acc", "within-1 accuracy"), ("spearman", "Spearman rho"), ("qwk", "QWK"))


def _report(work: Path, folder: str, mode: str) -> dict[str, Any] | None:
    path = work / folder / mode / "report.json"
    return json.loads(path.read_text()) if path.is_file() else None


def _columns(work: Path, mode: str) -> list[tuple[str, dict[str, Any]]]:
    """(label, entry): the baselines (from the first report that has them), then base and
    trained."""
    reports = [(label, _report(work, folder, mode))
               for label, folder in (("base", "bench-base"), ("trained", "bench-trained"))]
    cols: list[tuple[str, dict[str, Any]]] = []
    for _, r in reports:
        if r and r.get("baselines"):
            cols += [(str(b["label"]), b) for b in r["baselines"]]
            break
    for _, r in reports:
        for j in (r or {}).get("judges") or []:
            cols.append((str(j["label"]), j))
    return cols


def side_by_side(work: Path, mode: str) -> str:
    """A Markdown table (metric x baseline/judge) for one scoring mode, from the bench reports."""
    judges = _columns(work, mode)
    if not judges:
        return f"(no {mode} reports yet)"
    rows = [["rows"] + [str(j["metrics"].get("n")) for _, j in judges]]
    for key, title in ROWS:
        rows.append([title] + [fmt_ci(j["metrics"].get(key),
                                      (j["metrics"].get("ci") or {}).get(key))
                               for _, j in judges])
    rows.append(["pairs/s"] + [fmt((j.get("timings") or {}).get("pairs_per_s"), 2)
                               for _, j in judges])
    return markdown_table([f"{mode} mode"] + [label for label, _ in judges], rows)


def verdict_summary(work: Path, mode: str) -> list[str]:
    """Each judge against each baseline in ``mode`` (failures first), or why there is none."""
    lines: list[str] = []
    for folder in ("bench-base", "bench-trained"):
        r = _report(work, folder, mode)
        if not r:
            continue
        if not r.get("baselines"):
            lines.append(f"- {folder}: {r.get('baselines_note') or 'no baselines'}")
        lines += verdict_lines(r.get("verdicts") or [])
    return lines


def _rows(work: Path, folder: str, mode: str) -> dict[str, dict[str, Any]]:
    path = work / folder / mode / "rows.jsonl"
    if not path.is_file():
        return {}
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return {str(r["key"]): r for r in rows}


def calibrated_base_verdicts(work: Path, mode: str = "expected",
                             bootstrap: int = 1000) -> list[str]:
    """The trained judge (and its calibrated twin) against ``base (calibrated)``, paired on the
    test rows both reports graded (failures first); empty when either report is missing."""
    from judgeforge.benchmarks.baselines import verdicts
    from judgeforge.data.schema import Scale

    base, trained = _rows(work, "bench-base", mode), _rows(work, "bench-trained", mode)
    report = _report(work, "bench-trained", mode)
    keys = [k for k in trained if REFERENCE in base.get(k, {}).get("judges", {})]
    if not keys or report is None:
        return []
    lo, hi = report["data"]["scale"]
    labels = [int(trained[k]["label"]) for k in keys]
    judges = {label: [trained[k]["judges"][label]["score"] for k in keys]
              for label in trained[keys[0]]["judges"]}
    ref = {REFERENCE: [base[k]["judges"][REFERENCE]["score"] for k in keys]}
    found = verdicts(labels, Scale(min=lo, max=hi), judges, ref, bootstrap=bootstrap,
                     seed=int(report["data"].get("seed") or 0))
    return verdict_lines(found)


def training_line(work: Path) -> str:
    """How long training ran, in steps, and whether a safety stop (not the budget) ended it,
    read from ``train/train_log.jsonl``."""
    path = work / "train" / "train_log.jsonl"
    if not path.is_file():
        return "Training: no log yet."
    rows = []
    for line in path.read_text().splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            continue  # a line cut by a crash
    grpo = [r["step"] for r in rows if r.get("stage") == "grpo" and "step" in r]
    sft = [r["step"] for r in rows if r.get("stage") == "sft" and "step" in r]
    planned = [r.get("planned_steps") for r in rows if r.get("stage") == "grpo_start"]
    text = (f"Training: {max(sft, default=0)} SFT steps, {max(grpo, default=0)} GRPO steps"
            + (f" (budget {planned[-1]})" if planned and planned[-1] else "") + ".")
    stops = [r for r in rows if r.get("stage") == "stop"]
    if stops:
        s = stops[-1]
        text += (f" NOTE: GRPO was ended by a safety stop ({s.get('reason')} = "
                 f"{s.get('limit_minutes')} min) at step {s.get('step')} of "
                 f"{s.get('planned_steps')}: this machine was slower than the budget assumes, "
                 "and the step count depends on it.")
    return text


def write_summary(work: Path, minutes: float) -> Path:
    parts = ["# judgeforge demo: baselines, base and GRPO-trained judge", "",
             f"Total time of all steps: {minutes:.1f} min. Work folder: `{work}`.", "",
             "Test rows: a group split of Prometheus by query (no question in both train and "
             "test). Baselines fitted on the training split only: `baseline: constant` (the "
             "training-label median) and `baseline: length` (an isotonic fit of the label on "
             "the response length in characters). 95% bootstrap intervals in brackets.", "",
             training_line(work), ""]
    for mode in ("sample", "expected"):
        parts += [side_by_side(work, mode), ""]
        verdict = verdict_summary(work, mode)
        if verdict:
            parts += [f"Against the baselines ({mode} mode; paired bootstrap 95% intervals of "
                      "judge - baseline):", "", *verdict, ""]
        own = calibrated_base_verdicts(work, mode)
        if own:
            parts += [f"Against its own base, calibrated on the training run's validation rows "
                      f"({mode} mode; paired bootstrap 95% intervals on the same test rows):",
                      "", *own, ""]
    parts += ["Sample mode parses the judge's own `<score>X</score>`; expected mode reads the "
              "probability of each score token after a `<score>` prefill; `(calibrated)`: that "
              "score through an isotonic map fitted on the training run's validation rows "
              "(`train/val.parquet`, held out of the training split by question).", "",
              "Reports: `bench-base/<mode>/report.md`, `bench-trained/<mode>/report.md`; "
              "training curves: `train/curves.png`."]
    out = work / "report.md"
    out.write_text("\n".join(parts) + "\n")
    return out
