"""``judgeforge bench suite``: grade judges over every set of a suite, with anchors and ceilings.

For each set, :func:`arun_suite`

1. converts its files with the data's own converter and writes ``<out>/<set>/data.jsonl``;
2. grades it with every judge through :func:`judgeforge.benchmarks.quality.arun_quality` (the
   same runner, checkpoint, per-row files and report as ``bench quality``; a rerun with the
   same ``out_dir`` resumes), with ``PromptTemplate({dim: scale}, task=...)``;
3. fits the constant and length baselines on the set's rows that are *not* graded (all rows
   when every row is graded: an in-sample fit, which flatters the baselines);
4. reads the published anchors and computes the human ceiling on the graded rows.

It writes ``<out>/suite.json`` (every number), ``<out>/suite.md`` (the tables) and
``<out>/suite.png`` (Spearman per set), and keeps each set's own ``report.json``,
``rows.jsonl``, ``results.jsonl`` and plots in ``<out>/<set>/``. Judges that need a managed
server (``default``, a folder) are opened once for the whole suite.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from judgeforge.benchmarks.judges import JudgeSpec, open_judge, parse_judge_specs
from judgeforge.benchmarks.suite.anchors import set_anchors
from judgeforge.benchmarks.suite.ceiling import loro_ceiling
from judgeforge.benchmarks.suite.sets import load_set
from judgeforge.benchmarks.suite.spec import Suite, SuiteSet, load_suite
from judgeforge.errors import ConfigError

__all__ = ["SUITE_VERSION", "arun_suite", "run_suite", "summary_metrics"]

SUITE_VERSION = 1
SET_FILE = "suite_set.json"
SUMMARY_KEYS = ("n", "n_parsed", "parse_failure_rate", "mae", "spearman", "pearson", "kendall",
                "qwk")


def summary_metrics(metrics: Mapping[str, Any]) -> dict[str, Any]:
    """The headline metrics of a quality report entry, with their bootstrap CIs."""
    ci = metrics.get("ci") or {}
    out = {k: metrics.get(k) for k in SUMMARY_KEYS}
    out["ci"] = {k: ci[k] for k in SUMMARY_KEYS if k in ci}
    return out


def _template_settings(template: Any) -> dict[str, Any]:
    return {"dimensions": {d: [s.min, s.max] for d, s in template.dimensions.items()},
            "task": template.task, "max_query_chars": template.max_query_chars,
            "max_response_chars": template.max_response_chars}


def _check_set_settings(set_dir: Path, settings: Mapping[str, Any], overwrite: bool) -> None:
    path = set_dir / SET_FILE
    if path.is_file() and not overwrite:
        old = json.loads(path.read_text())
        diff = [k for k in settings if old.get(k) != settings[k]]
        if diff:
            raise ConfigError(f"{set_dir} holds results of a different set definition "
                              f"({', '.join(diff)} changed); use another --out or --overwrite")
    set_dir.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(settings, indent=2, ensure_ascii=False) + "\n")


def _judge_template(spec: JudgeSpec, base: Any) -> Any:
    """The set's prompt for one judge: a trained judge (a folder with a judge card) keeps its
    card's prompt settings (system prompt, thinking, descriptions, ...) with the set's dimension,
    scale and task; text limits are the tighter of the card's and the set's."""
    import dataclasses

    card = spec.card()
    if card is None:
        return base
    trained = card.template()

    def tighter(a: int | None, b: int | None) -> int | None:
        return min(x for x in (a, b) if x is not None) if (a or b) else None

    return dataclasses.replace(
        trained, dimensions=dict(base.dimensions), task=base.task,
        max_query_chars=tighter(trained.max_query_chars, base.max_query_chars),
        max_response_chars=tighter(trained.max_response_chars, base.max_response_chars))


def _stored_report(set_dir: Path, settings: Mapping[str, Any], limit: int | None,
                   seed: int) -> dict[str, Any]:
    """The per-set quality report a previous run left, checked against this run's settings."""
    path, stored = set_dir / "report.json", set_dir / SET_FILE
    if not path.is_file() or not stored.is_file():
        raise ConfigError(f"{set_dir}: no finished run to report on (run without --report-only)")
    if json.loads(stored.read_text()) != json.loads(json.dumps(settings)):
        raise ConfigError(f"{set_dir} holds results of a different set definition")
    report: dict[str, Any] = json.loads(path.read_text())
    if (report["data"].get("limit"), report["data"].get("seed")) != (limit, seed):
        raise ConfigError(f"{set_dir} was graded with --limit {report['data'].get('limit')} "
                          f"--seed {report['data'].get('seed')}, not {limit} / {seed}")
    return report


async def _run_set(s: SuiteSet, specs: Sequence[JudgeSpec], out: Path, *, limit: int | None,
                   seed: int, overwrite: bool, quality_kw: Mapping[str, Any],
                   report_only: bool = False) -> dict[str, Any]:
    from judgeforge.benchmarks.quality import arun_quality, select_rows
    from judgeforge.data.io import write_records
    from judgeforge.prompt import PromptTemplate

    loaded = load_set(s)
    info, dim = loaded.result.info, loaded.dimension
    scale = info.scale(dim)
    template = PromptTemplate({dim: scale}, task=loaded.task,
                              max_query_chars=s.max_query_chars,
                              max_response_chars=s.max_response_chars)
    set_dir = out / s.name
    settings = {"set": s.describe(), "template": _template_settings(template)}
    data_file = set_dir / "data.jsonl"
    if not report_only:
        _check_set_settings(set_dir, settings, overwrite)
        write_records(data_file, loaded.result.records, info)

    kw = dict(quality_kw)
    mode_note = None
    if kw.get("mode") == "expected" and not (0 <= scale.min and scale.max <= 9):
        # expected mode reads one digit token per value: a wider scale is sampled, constrained
        kw.update(mode="sample", constrained=True)
        mode_note = f"sample, constrained (expected mode needs a 0-9 scale, this is {scale})"
    graded, _ = select_rows(loaded.result.records, dim, limit=limit, seed=seed)
    graded_ids = {r.id for r in graded}
    rest = [r for r in loaded.result.records if dim in r.label and r.id not in graded_ids]
    train = rest or graded
    if report_only:
        report = _stored_report(set_dir, settings, limit, seed)
    else:
        report = await arun_quality(data_file, list(specs), out_dir=set_dir, dimension=dim,
                                    limit=limit, seed=seed, overwrite=overwrite,
                                    train_data=train, template={
                                        j.label: _judge_template(j, template) for j in specs},
                                    **kw)
    labels = report["data"]["label_counts"]
    return {
        "name": s.name, "converter": s.converter, "description": s.description,
        "files": [str(f) for f in s.files], "source": info.source, "license": info.license,
        "dimension": dim, "scale": [scale.min, scale.max],
        "mode": mode_note or report["mode"] + (" constrained" if report["constrained"] else ""),
        "task": loaded.task, "task_origin": loaded.task_origin,
        "rows_in_set": len(loaded.result.records), "rows_graded": len(graded),
        "label_counts": labels,
        "baseline_fit": (f"{len(rest)} rows of the set not graded here" if rest else
                         "in-sample: every row is graded (flatters the baselines)"),
        "judges": [{"label": j["label"], "kind": j.get("kind"), "target": j.get("target"),
                    **summary_metrics(j["metrics"])} for j in report["judges"]],
        "baselines": [{"label": b["label"], "target": b.get("target"),
                       **summary_metrics(b["metrics"])} for b in report.get("baselines") or []],
        "anchors": set_anchors(s),
        "ceiling": loro_ceiling(graded),
        "report": f"{s.name}/report.json", "rows_file": f"{s.name}/rows.jsonl",
        "data_file": f"{s.name}/data.jsonl",
    }


def _with_earlier_sets(out: Path, suite: Suite, results: list[dict[str, Any]],
                       settings: Mapping[str, Any],
                       judges: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """``results`` plus the entries of the suite's other sets from an earlier ``suite.json``
    of the same suite, settings and judges (a run of a few sets does not drop the others)."""
    path = out / "suite.json"
    if not path.is_file() or len(results) == len(suite.sets):
        return results
    old = json.loads(path.read_text())
    labels = [j.get("label") for j in judges]
    if (old.get("suite", {}).get("name") != suite.name or old.get("settings") != settings
            or [j.get("label") for j in old.get("judges", [])] != labels):
        return results
    now = {e["name"]: e for e in results}
    before = {e["name"]: e for e in old.get("sets", [])}
    return [now.get(s.name) or before[s.name] for s in suite.sets
            if s.name in now or s.name in before]


async def arun_suite(
    suite: str | os.PathLike[str] | Suite,
    models: Sequence[str | JudgeSpec],
    *,
    out_dir: str | os.PathLike[str],
    sets: Sequence[str] | None = None,
    limit: int | None = None,
    seed: int = 0,
    mode: str = "expected",
    concurrency: int = 4,
    bootstrap: int = 1000,
    model_name: str | None = None,
    server_options: Mapping[str, Any] | None = None,
    timeout: float = 600.0,
    show_progress: bool = True,
    plots: bool = True,
    overwrite: bool = False,
    report_only: bool = False,
    **quality_kw: Any,
) -> dict[str, Any]:
    """Grade ``models`` over ``suite`` (a shipped name, a YAML path or a :class:`Suite`).

    ``sets`` restricts the run to those set names (the other sets' entries of an earlier
    ``suite.json`` with the same settings are kept); ``limit`` grades a seeded random sample of
    that many rows per set. ``report_only`` grades nothing: it rebuilds the suite report from
    the per-set reports already in ``out_dir`` (``models`` may then be empty). Other keywords go
    to ``arun_quality`` (e.g. ``constrained``, ``max_tokens``). Returns the suite report (also
    written to ``<out_dir>/suite.json``).
    """
    from judgeforge.benchmarks.suite import report as report_mod

    started = time.perf_counter()
    spec_all = suite if isinstance(suite, Suite) else load_suite(suite)
    spec = spec_all.select(list(sets) if sets else None)
    judges = [m for m in models if isinstance(m, JudgeSpec)] + (
        parse_judge_specs([m for m in models if not isinstance(m, JudgeSpec)],
                          model_name=model_name, server_options=server_options)
        if any(not isinstance(m, JudgeSpec) for m in models) else [])
    if not judges and not report_only:
        raise ConfigError("give at least one --model")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    kw = dict(mode=mode, concurrency=concurrency, bootstrap=bootstrap, timeout=timeout,
              show_progress=show_progress, plots=plots, **quality_kw)
    results = []
    async with contextlib.AsyncExitStack() as stack:
        for j in judges:  # one managed server per local judge for the whole suite
            if j.kind != "url" and not report_only:
                await stack.enter_async_context(open_judge(j, timeout=timeout))
        for s in spec.sets:
            t0 = time.perf_counter()
            entry = await _run_set(s, judges, out, limit=limit, seed=seed, overwrite=overwrite,
                                   quality_kw=kw, report_only=report_only)
            entry["wall_s"] = round(time.perf_counter() - t0, 1)
            results.append(entry)
    if report_only or not judges:
        described = {j["label"]: {"label": j["label"], "kind": j.get("kind"),
                                  "target": j.get("target")}
                     for e in results for j in e["judges"]}
        judge_list = list(described.values())
    else:
        judge_list = [j.describe() for j in judges]
    settings = {"limit": limit, "seed": seed, "mode": mode, "bootstrap": bootstrap,
                "concurrency": concurrency}
    results = _with_earlier_sets(out, spec_all, results, settings, judge_list)
    report: dict[str, Any] = {
        "kind": "judgeforge.bench.suite", "version": SUITE_VERSION,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "suite": {"name": spec.name, "path": str(spec.path), "description": spec.description,
                  "headline_anchors": list(spec.headline_anchors)},
        "judges": judge_list,
        "settings": settings,
        "notes": [
            "judges and baselines: on the graded rows against the rounded human label; "
            "failures count as the worst error in MAE; correlations use parsed rows; "
            f"95% bootstrap CIs ({bootstrap} resamples)",
            "anchors: published correlations with the human mean on the whole set "
            "(not re-measured here)",
            "human ceiling: mean leave-one-rater-out Spearman on the graded rows, where "
            "individual rater scores exist",
        ],
        "sets": results,
        "timings": {"total_s": round(time.perf_counter() - started, 1)},
    }
    (out / "suite.json").write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    (out / "suite.md").write_text(report_mod.suite_markdown(report))
    if plots:
        report_mod.suite_plot(report, out / "suite.png")
    return report


def run_suite(suite: str | os.PathLike[str] | Suite, models: Sequence[str | JudgeSpec], *,
              out_dir: str | os.PathLike[str], **kw: Any) -> dict[str, Any]:
    """Synchronous :func:`arun_suite`."""
    return asyncio.run(arun_suite(suite, models, out_dir=out_dir, **kw))
