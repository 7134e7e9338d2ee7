"""Which of two responses is better, against human verdicts: ``judgeforge bench preference``.

:func:`run_preference` grades a pairwise file (:func:`judgeforge.data.pairwise.read_pairwise`)
with one judge two ways, each through the crash-safe
:class:`~judgeforge.graders.runner.GradingRunner` (its own results file, so a rerun resumes):

- ``pointwise``: :class:`~judgeforge.graders.pairwise.PointwisePreferenceGrader` (the judge's
  pointwise prompt, expected mode, both responses scored; the tie margin is ``margin`` if
  given, else fitted by :func:`~judgeforge.graders.pairwise.fit_margin` on ``dev_limit`` rows
  disjoint from the graded ones, else 0);
- ``pairwise``: :class:`~judgeforge.graders.pairwise.PairwiseGrader` (both orders, expected
  mode by default); with dev rows, also its verdicts re-decided with a tie margin on
  ``P(a) - P(b)`` fitted there (a column of its own, no extra grading of the graded rows).

Beside them: the published verdicts given as ``published`` (label -> a verdict file that
:func:`judgeforge.data.converters.pandalm.published_verdicts` reads, joined by record id;
None: the shipped GPT-3.5 and PandaLM-7B verdicts when the rows are PandaLM's), the
baselines "longer wins" (equal length: tie) and "majority class" (the most common verdict of
the graded rows: in-sample, an upper bound for a constant). Metrics
(:func:`judgeforge.metrics.preference_metrics`): accuracy against the gold verdict, accuracy on
non-tie items, macro-F1 over a/b/tie, the failure rate, per group (``extra_info.criterion``,
else ``data_source``), position consistency (pairwise: both orders agreed), bootstrap
intervals, and each judge's accuracy minus "longer wins" with a paired interval. A failure
(parse or model error) counts as wrong, never as a side.

Files in ``out_dir``: ``results_<grader>.jsonl`` (+ ``results_dev.jsonl``), ``rows.jsonl``,
``run.json``, ``report.json``, ``report.md``, ``preference.png``.
"""

from __future__ import annotations

import asyncio
import json
import os
import platform
import random
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from judgeforge.benchmarks.judges import JudgeSpec, open_judge, parse_judge_spec
from judgeforge.benchmarks.quality import _file_digest, _judge_timings
from judgeforge.errors import ConfigError, DataError

__all__ = ["run_preference", "arun_preference", "select_pairs", "group_of", "REPORT_KIND"]

REPORT_KIND = "judgeforge.bench.preference"
RUN_FILE = "run.json"
ROWS_FILE = "rows.jsonl"
GRADERS = ("pointwise", "pairwise")


def select_pairs(records: Sequence[Any], *, limit: int | None, dev_limit: int = 0,
                 seed: int = 0) -> tuple[list[Any], list[Any]]:
    """(graded rows, dev rows): a seeded sample of ``limit`` rows (all when None) in file
    order, and up to ``dev_limit`` other rows (disjoint) for fitting the tie margin."""
    order = list(range(len(records)))
    random.Random(seed).shuffle(order)
    n = len(records) if limit is None else limit
    if n < 1:
        raise ConfigError(f"--limit must be >= 1, got {n}")
    test = sorted(order[:n])
    dev = sorted(order[n:n + max(0, dev_limit)])
    return [records[i] for i in test], [records[i] for i in dev]


def group_of(record: Any) -> str:
    """The row's group for per-group tables: ``extra_info.criterion`` (HHH's four), else its
    ``data_source``."""
    criterion = (record.extra_info or {}).get("criterion")
    return str(criterion) if criterion else str(record.data_source)


def _longer(record: Any) -> str:
    la, lb = len(record.response_a), len(record.response_b)
    return "tie" if la == lb else ("a" if la > lb else "b")


def _verdict(result: Any) -> str | None:
    from judgeforge.graders.results import is_score

    return str(result.preference) if is_score(result) and hasattr(result, "preference") else None


def _status(result: Any) -> str:
    meta = getattr(result, "metadata", None) or {}
    if _verdict(result) is not None:
        return "ok"
    return str(meta.get("parse_status") or meta.get("error_type") or "error")


def _settings(data: Path, spec: JudgeSpec, limit: int | None, dev_limit: int, seed: int,
              margin: float | None, margin_metric: str, mode: str,
              both_orders: bool) -> dict[str, Any]:
    return {"data": str(data.resolve()), "data_sha256_16": _file_digest(data),
            "judge": spec.target, "limit": limit, "dev_limit": dev_limit, "seed": seed,
            "margin": margin, "margin_metric": margin_metric, "pairwise_mode": mode,
            "both_orders": both_orders}


def _check_resume(out: Path, settings: Mapping[str, Any], overwrite: bool) -> None:
    files = [out / RUN_FILE, out / ROWS_FILE, out / "results_dev.jsonl",
             out / "results_dev_pairwise.jsonl",
             *(out / f"results_{g}.jsonl" for g in GRADERS)]
    if overwrite:
        for f in files:
            f.unlink(missing_ok=True)
        return
    run = out / RUN_FILE
    if not run.is_file():
        if any(f.exists() for f in files):
            raise ConfigError(f"{out} holds results without {RUN_FILE}: use another --out or "
                              "--overwrite")
        return
    old = json.loads(run.read_text())
    diff = [f"{k}: {old.get(k)!r} -> {v!r}" for k, v in settings.items() if old.get(k) != v]
    if diff:
        raise ConfigError(f"{out} holds results of a different benchmark ({'; '.join(diff)}); "
                          "use another --out or pass --overwrite")


def _graders(spec: JudgeSpec, model: Any, mode: str, both_orders: bool,
             max_tokens: int | None) -> dict[str, Any]:
    """The judge's two graders: its card's prompts when it has a card, else the defaults.

    A pairwise-trained judge's card (``kind: pairwise``) holds no pointwise scale (its
    ``dimensions`` are a placeholder), so its pointwise column uses the default pointwise prompt.
    """
    from judgeforge.graders.llm_grader import LLMGrader
    from judgeforge.graders.pairwise import PairwiseGrader, PointwisePreferenceGrader

    card = spec.card()
    if card is not None and card.kind == "pointwise":
        pointwise = LLMGrader.from_card(card, model, mode="expected", calibration=None)
    else:
        pointwise = LLMGrader(model, mode="expected")
    pair_kw: dict[str, Any] = {"mode": mode, "both_orders": both_orders,
                               "max_tokens": max_tokens}
    if card is not None and getattr(card, "pairwise", None) is not None:
        pairwise = PairwiseGrader.from_card(card, model, **pair_kw)
    else:
        pairwise = PairwiseGrader(model, **pair_kw)
    return {"pointwise": PointwisePreferenceGrader(pointwise, name="pointwise"),
            "pairwise": pairwise}


def _fit_on_dev(dev_results: Sequence[Any], dev: Sequence[Any], metric: str) -> dict[str, Any]:
    """A tie margin fitted on the dev rows' results (score = the judge's difference), and how:
    the count of dev rows that failed is part of it, since a margin fitted on failed rows (a
    dead server) is no fit and the report must not read as if it were."""
    from judgeforge.graders.pairwise import fit_margin

    diffs = [r.score if _verdict(r) is not None else None for r in dev_results]
    failed = diffs.count(None)
    how = f"fitted on {len(diffs)} dev rows (max {metric})"
    if failed:
        how += (f"; {failed} of them FAILED (no score) and count as wrong for every margin: "
                "rerun to regrade them")
    return {"margin": fit_margin(diffs, [r.preference for r in dev], metric=metric),
            "how": how, "dev_rows": len(dev), "dev_failed": failed}


async def _grade(name: str, grader: Any, rows: Sequence[Any], path: Path, concurrency: int,
                 show_progress: bool) -> tuple[list[Any], dict[str, Any]]:
    from judgeforge.graders.pairwise import pairwise_mapper
    from judgeforge.graders.runner import GraderConfig, GradingRunner

    runner = GradingRunner({name: GraderConfig(grader, pairwise_mapper)},
                           max_concurrency=concurrency, show_progress=show_progress,
                           output=path, progress_desc=f"bench preference {name}")
    t0 = time.perf_counter()
    results = (await runner.arun([r.to_dict() for r in rows]))[name]
    summary = runner.summary
    graded_now = (summary.done + summary.failed) if summary else len(results)
    return results, _judge_timings(results, graded_now, time.perf_counter() - t0)


def _published(published: Mapping[str, str | os.PathLike[str]], rows: Sequence[Any]
               ) -> tuple[dict[str, list[str | None]], list[str]]:
    """Each published judge's verdict per graded row, and notes on the ones left out."""
    from judgeforge.data.converters.pandalm import published_verdicts

    out: dict[str, list[str | None]] = {}
    notes: list[str] = []
    for label, path in published.items():
        verdicts = published_verdicts(path)
        missing = [r.id for r in rows if r.id not in verdicts]
        if missing:
            notes.append(f"{label}: left out, {len(missing)} graded row(s) have no verdict in "
                         f"{path} (e.g. id {missing[0]!r})")
            continue
        out[label] = [verdicts[str(r.id)] for r in rows]
    return out, notes


def _shipped_verdicts(rows: Sequence[Any]) -> dict[str, str | os.PathLike[str]]:
    """The shipped published verdicts (GPT-3.5, PandaLM-7B) when every row is PandaLM's."""
    from judgeforge.datasets import PANDALM_VERDICT_FILES, shipped_path

    if not rows or any(r.data_source != "pandalm" for r in rows):
        return {}
    return {label: shipped_path(f) for label, f in PANDALM_VERDICT_FILES.items()}


def _column(label: str, kind: str, preds: Sequence[str | None], gold: Sequence[str],
            groups: Sequence[str], *, bootstrap: int, seed: int,
            consistent: Sequence[bool | None] | None = None, **extra: Any) -> dict[str, Any]:
    from judgeforge.metrics import preference_metrics

    metrics = preference_metrics(preds, gold, groups=groups, consistent=consistent,
                                 bootstrap=bootstrap, seed=seed)
    return {"label": label, "kind": kind, "metrics": metrics, **extra}


async def arun_preference(
    data: str | os.PathLike[str],
    model: str | JudgeSpec,
    *,
    out_dir: str | os.PathLike[str],
    limit: int | None = None,
    dev_limit: int = 0,
    margin: float | None = None,
    margin_metric: str = "macro_f1",
    mode: str = "expected",
    both_orders: bool = True,
    graders: Sequence[str] = GRADERS,
    published: Mapping[str, str | os.PathLike[str]] | None = None,
    seed: int = 0,
    concurrency: int = 8,
    bootstrap: int = 1000,
    max_tokens: int | None = None,
    model_name: str | None = None,
    server_options: Mapping[str, Any] | None = None,
    timeout: float = 300.0,
    show_progress: bool = True,
    plots: bool = True,
    overwrite: bool = False,
) -> dict[str, Any]:
    """Grade ``data`` with ``model`` (pointwise-derived and pairwise verdicts) and write the
    report (see the module docstring). Returns the report dict (also ``report.json``)."""
    from judgeforge.data.pairwise import read_pairwise
    from judgeforge.graders.pairwise import preference_from_diff
    from judgeforge.graders.results import to_dict
    from judgeforge.metrics import preference_difference

    started = time.perf_counter()
    unknown = sorted(set(graders) - set(GRADERS))
    if unknown or not graders:
        raise ConfigError(f"graders must be among {GRADERS}, got {list(graders)}")
    if concurrency < 1:
        raise ConfigError("--concurrency must be >= 1")
    spec = model if isinstance(model, JudgeSpec) else parse_judge_spec(
        model, model_name=model_name, server_options=server_options)
    data_path = Path(data)
    records = read_pairwise(data_path)
    if not records:
        raise DataError(f"{data_path}: no pairwise records")
    rows, dev = select_pairs(records, limit=limit, dev_limit=dev_limit if margin is None else 0,
                             seed=seed)
    gold = [r.preference for r in rows]
    groups = [group_of(r) for r in rows]
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    settings = _settings(data_path, spec, limit, dev_limit, seed, margin, margin_metric, mode,
                         both_orders)
    _check_resume(out, settings, overwrite)
    (out / RUN_FILE).write_text(json.dumps(settings, indent=2) + "\n")

    results: dict[str, list[Any]] = {}
    timings: dict[str, dict[str, Any]] = {}
    fitted: dict[str, Any] = {"margin": margin, "how": "given" if margin is not None else None}
    pair_margin: dict[str, Any] | None = None  # a tie margin on P(a) - P(b), fitted on dev
    t_open = time.perf_counter()
    async with open_judge(spec, timeout=timeout) as judge_model:
        ready_s = time.perf_counter() - t_open
        built = _graders(spec, judge_model, mode, both_orders, max_tokens)
        for name in graders:
            results[name], timings[name] = await _grade(
                name, built[name], rows, out / f"results_{name}.jsonl", concurrency,
                show_progress)
        if "pointwise" in graders and margin is None and dev:
            dev_res, _ = await _grade("pointwise", built["pointwise"], dev,
                                      out / "results_dev.jsonl", concurrency, show_progress)
            fitted = _fit_on_dev(dev_res, dev, margin_metric)
        if "pairwise" in graders and dev:
            dev_res, _ = await _grade("pairwise", built["pairwise"], dev,
                                      out / "results_dev_pairwise.jsonl", concurrency,
                                      show_progress)
            pair_margin = _fit_on_dev(dev_res, dev, margin_metric)
        served = getattr(judge_model, "base_url", None)
    if fitted["margin"] is None:
        fitted = {"margin": 0.0, "how": "0 (no dev rows, none given): only equal scores tie"}

    preds: dict[str, list[str | None]] = {}
    for name, res in results.items():
        if name == "pointwise":
            preds[name] = [preference_from_diff(r.score, fitted["margin"])
                           if _verdict(r) is not None else None for r in res]
        else:
            preds[name] = [_verdict(r) for r in res]
    longer = [_longer(r) for r in rows]
    majority = Counter(gold).most_common(1)[0][0]
    if published is None:
        published = _shipped_verdicts(rows)
    pub, pub_notes = _published(published, rows)

    kw: dict[str, Any] = {"bootstrap": bootstrap, "seed": seed}
    columns = [_column("longer wins", "baseline", longer, gold, groups, **kw,
                       target="the longer response (characters) wins; equal length: tie"),
               _column("majority class", "baseline", [majority] * len(rows), gold, groups,
                       **kw, target=f"always {majority!r} (the graded rows' most common "
                                    "verdict: in-sample)")]
    columns += [_column(label, "published", p, gold, groups, **kw,
                        target=str((published or {})[label])) for label, p in pub.items()]
    for name, res in results.items():
        consistent = ([(r.metadata or {}).get("orders_disagree") is False
                       if _verdict(r) is not None and "orders_disagree" in (r.metadata or {})
                       else None for r in res] if name == "pairwise" else None)
        columns.append(_column(
            f"{spec.label} {name}", name, preds[name], gold, groups, **kw,
            consistent=consistent, target=spec.target, timings=timings[name],
            status_counts=dict(sorted(Counter(_status(r) for r in res).items())),
            vs_longer=preference_difference(preds[name], longer, gold, **kw)))
    if pair_margin is not None:
        name = "pairwise, fitted tie margin"
        preds[name] = [preference_from_diff(r.score, pair_margin["margin"])
                       if _verdict(r) is not None else None for r in results["pairwise"]]
        columns.append(_column(
            f"{spec.label} {name}", "pairwise", preds[name], gold, groups, **kw,
            target=f"the pairwise verdicts re-decided: tie when |P(a) - P(b)| <= "
                   f"{pair_margin['margin']:.3f} ({pair_margin['how']})",
            vs_longer=preference_difference(preds[name], longer, gold, **kw)))

    with open(out / ROWS_FILE, "w", encoding="utf-8") as fh:
        for i, rec in enumerate(rows):
            line: dict[str, Any] = {"index": i, "id": rec.id, "group": groups[i],
                                    "gold": gold[i], "longer": longer[i], "judges": {}}
            for label, p in pub.items():
                line["judges"][label] = {"verdict": p[i]}
            for name, res in results.items():
                d = to_dict(res[i])
                line["judges"][name] = {"verdict": preds[name][i], "status": _status(res[i]),
                                        "margin": d.get("score"), "error": d.get("error")}
            if pair_margin is not None:
                line["judges"]["pairwise, fitted tie margin"] = {
                    "verdict": preds["pairwise, fitted tie margin"][i]}
            fh.write(json.dumps(line, ensure_ascii=False) + "\n")

    report: dict[str, Any] = {
        "kind": REPORT_KIND, "version": 1, "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "data": {"path": str(data_path), "sha256_16": settings["data_sha256_16"],
                 "rows_in_file": len(records), "rows_graded": len(rows), "limit": limit,
                 "seed": seed, "sample": ("all rows" if len(rows) == len(records)
                                          else f"seeded random sample, seed {seed}"),
                 "gold_counts": dict(sorted(Counter(gold).items())),
                 "groups": dict(sorted(Counter(groups).items()))},
        "judge": {**spec.describe(), "served_at": served, "server_ready_s": round(ready_s, 3)},
        "pairwise": {"mode": mode, "both_orders": both_orders,
                     "example_messages": built["pairwise"].template.record_messages(rows[0])},
        "pointwise": {"mode": "expected", "margin": fitted},
        "pairwise_tie_margin": pair_margin,
        "metrics_note": ("failures (parse or model errors) count as wrong and as no class; "
                         "accuracy_non_tie: rows whose gold verdict is not a tie; macro-F1 over "
                         "the verdict classes that occur (gold or predicted); ci: bootstrap "
                         f"percentile intervals ({bootstrap} "
                         "resamples); vs_longer: accuracy minus 'longer wins', paired"),
        "published_notes": pub_notes,
        "columns": columns,
        "files": {"rows": ROWS_FILE, "run": RUN_FILE},
        "environment": {"python": platform.python_version(), "cpus": os.cpu_count(),
                        "machine": platform.machine()},
    }
    from judgeforge.benchmarks import preference_report

    if plots:
        report["files"]["plots"] = [preference_report.preference_plot(report, out)]
    report["timings"] = {"total_s": round(time.perf_counter() - started, 3)}
    (out / "report.json").write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    (out / "report.md").write_text(preference_report.preference_markdown(report))
    return report


def run_preference(data: str | os.PathLike[str], model: str | JudgeSpec, *,
                   out_dir: str | os.PathLike[str], **kw: Any) -> dict[str, Any]:
    """Synchronous :func:`arun_preference` (returns the report dict)."""
    return asyncio.run(arun_preference(data, model, out_dir=out_dir, **kw))
