"""How close is a judge to human labels: ``judgeforge bench quality``.

:func:`run_quality` grades a labelled pointwise file with one or more judges (an
:class:`~judgeforge.graders.llm_grader.LLMGrader` each, same prompt and mode) through the crash-safe
:class:`~judgeforge.graders.runner.GradingRunner`, computes every metric of
:func:`judgeforge.metrics.compute_metrics` per judge, and writes into ``out_dir``:

- ``results.jsonl``: the runner's checkpoint, one line per (row, judge); a rerun with the same
  ``out_dir`` and settings resumes from it (settings are kept in ``run.json``; different settings
  are refused unless ``overwrite``);
- ``rows.jsonl``: the joined per-row view: id, data_source, label, and per judge the score (or
  null for a failure), error and parse status;
- ``report.json``: data, prompt, mode, judges, metrics (with bootstrap CIs and per data_source),
  error counts and timings; with ``train_data``, the trivial baselines of
  :mod:`judgeforge.benchmarks.baselines` (fitted on that file only) under ``baselines`` and each
  judge's verdict against them under ``verdicts`` (paired bootstrap);
- ``report.md``: the judges side by side, per-source tables and the plots;
- with ``calibration_data`` (validation rows, e.g. the ``val.parquet`` a CPU training run writes
  beside its folders; expected mode), each judge is also graded on those rows, an isotonic
  calibration (:func:`judgeforge.calibration.fit_calibration`, as the trainer fits a trained
  judge's) is fitted there, and its expected scores on ``data`` mapped through it are reported as
  the judge ``<label> (calibrated)`` (``kind: calibrated``; its validation results in
  ``calibration/``). The ``base`` judge's calibrated twin is the untrained base as it would be
  used: every other judge gets a verdict against it (paired bootstrap), so a trained judge must
  beat its own calibrated base, not only the trivial baselines;
- ``confusion_<judge>.png`` and ``distribution.png``.

Judges are graded one after another (a managed server for a local checkpoint runs only while its
judge is graded), so each judge's timings are its own.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
import platform
import random
import statistics
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from judgeforge.benchmarks.judges import JudgeSpec, open_judge, parse_judge_specs
from judgeforge.data.schema import PointwiseRecord, Scale
from judgeforge.errors import ConfigError, DataError

__all__ = ["run_quality", "arun_quality", "select_rows", "percentile", "calibrated_label",
           "REPORT_VERSION"]

log = logging.getLogger(__name__)

REPORT_VERSION = 1
RESULTS_FILE = "results.jsonl"
ROWS_FILE = "rows.jsonl"
RUN_FILE = "run.json"


def percentile(values: Sequence[float], q: float) -> float | None:
    """The ``q``-th percentile (0-100, linear interpolation), None for no values."""
    if not values:
        return None
    import numpy as np

    return float(np.percentile(np.asarray(values, dtype=float), q))


def select_rows(records: Sequence[PointwiseRecord], dimension: str, *, limit: int | None = None,
                seed: int = 0) -> tuple[list[PointwiseRecord], int]:
    """The rows labelled for ``dimension``; with ``limit``, a seeded random sample of that many
    (kept in file order). Returns (rows, number of rows without that label)."""
    labelled = [r for r in records if dimension in r.label]
    unlabelled = len(records) - len(labelled)
    if limit is not None and limit < len(labelled):
        if limit < 1:
            raise ConfigError(f"--limit must be >= 1, got {limit}")
        picked = sorted(random.Random(seed).sample(range(len(labelled)), limit))
        labelled = [labelled[i] for i in picked]
    return labelled, unlabelled


def _file_digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()[:16]


def _prediction(result: Any) -> float | None:
    from judgeforge.graders.results import is_score

    return float(result.score) if is_score(result) else None


def _status(result: Any) -> str:
    from judgeforge.graders.results import is_score

    meta = getattr(result, "metadata", None) or {}
    if is_score(result):
        return "ok"
    return str(meta.get("parse_status") or meta.get("error_type") or "error")


def _judge_timings(results: Sequence[Any], graded_now: int, wall_s: float) -> dict[str, Any]:
    lat = [float(r.metadata["latency_s"]) for r in results
           if isinstance((getattr(r, "metadata", None) or {}).get("latency_s"), (int, float))]
    tok = [r.metadata.get("tokens") for r in results
           if isinstance((getattr(r, "metadata", None) or {}).get("tokens"), Mapping)]
    prompt = [t.get("prompt", 0) for t in tok]
    completion = [t.get("completion", 0) for t in tok]
    return {
        "graded_now": graded_now,
        "reused": len(results) - graded_now,
        "wall_s": round(wall_s, 3),
        "pairs_per_s": round(graded_now / wall_s, 4) if graded_now and wall_s > 0 else None,
        "latency_p50_s": percentile(lat, 50),
        "latency_p95_s": percentile(lat, 95),
        "prompt_tokens_mean": statistics.fmean(prompt) if prompt else None,
        "completion_tokens_mean": statistics.fmean(completion) if completion else None,
    }


def _run_settings(data: Path, digest: str, dimension: str, scale: Scale, mode: str,
                  constrained: bool, limit: int | None, seed: int, max_tokens: int | None,
                  vote_n: int, specs: Sequence[JudgeSpec]) -> dict[str, Any]:
    return {
        "data": str(data), "data_sha256_16": digest, "dimension": dimension,
        "scale": [scale.min, scale.max], "mode": mode, "constrained": constrained,
        "limit": limit, "seed": seed, "max_tokens": max_tokens, "vote_n": vote_n,
        "judges": {s.label: s.target for s in specs},
    }


def _check_resume(out: Path, settings: Mapping[str, Any], overwrite: bool) -> None:
    run_file = out / RUN_FILE
    if overwrite:
        for name in (RESULTS_FILE, ROWS_FILE, RUN_FILE):
            (out / name).unlink(missing_ok=True)
        return
    if not run_file.is_file():
        if (out / RESULTS_FILE).exists():
            raise ConfigError(f"{out / RESULTS_FILE} exists without {RUN_FILE}: use another "
                              "--out or --overwrite")
        return
    old = json.loads(run_file.read_text())
    diff = []
    for k, v in settings.items():
        if k == "judges":
            # the same label must mean the same model; new labels may be added
            for label, target in v.items():
                if label in old.get("judges", {}) and old["judges"][label] != target:
                    diff.append(f"judge {label}: {old['judges'][label]} -> {target}")
        elif old.get(k) != v:
            diff.append(f"{k}: {old.get(k)!r} -> {v!r}")
    if diff:
        raise ConfigError(f"{out} holds results of a different benchmark ({'; '.join(diff)}); "
                          "use another --out or pass --overwrite")


async def arun_quality(
    data: str | os.PathLike[str],
    models: Sequence[str | JudgeSpec],
    *,
    out_dir: str | os.PathLike[str],
    dimension: str | None = None,
    mode: str = "expected",
    constrained: bool = False,
    limit: int | None = None,
    seed: int = 0,
    concurrency: int = 8,
    bootstrap: int = 1000,
    max_tokens: int | None = None,
    vote_n: int = 5,
    model_name: str | None = None,
    server_options: Mapping[str, Any] | None = None,
    timeout: float = 300.0,
    show_progress: bool = True,
    plots: bool = True,
    overwrite: bool = False,
    train_data: str | os.PathLike[str] | Sequence[PointwiseRecord] | None = None,
    template: Any = None,
    calibration_data: str | os.PathLike[str] | None = None,
    base: str = "base",
    prompt_of: str | None = None,
) -> dict[str, Any]:
    """Grade ``data`` with each judge in ``models`` and write the report (see module docstring).

    ``models`` are ``--model`` strings (``URL``, folder, ``default``, ``name=...``) or
    :class:`JudgeSpec`. ``mode`` is the LLMGrader scoring mode; ``constrained`` constrains
    sample/vote decoding to ``<score>X</score>``. ``limit`` grades a seeded random sample of that
    many rows. ``train_data`` (a file or records: the split the judges were trained on) fits
    the constant and length baselines shown beside the judges; without it the report says that
    no baseline was fitted. ``template`` (a PromptTemplate for that one dimension, e.g. with a
    per-set ``task``, or a mapping judge label -> PromptTemplate) replaces the judges' prompts;
    the caller keeps it stable across resumes. ``calibration_data`` (expected mode only): the
    validation rows each judge's calibrated twin is fitted on; ``base`` labels the judge whose
    calibrated twin the others are compared with (module docstring). ``prompt_of`` (a judge
    label): every judge is graded with that judge's card prompt (e.g. the untrained base with
    the trained judge's prompt settings).
    Returns the report dict (also written to ``report.json``).
    """
    from judgeforge.benchmarks import report as report_mod
    from judgeforge.data.io import load_records
    from judgeforge.graders.llm_grader import SCORING_MODES, LLMGrader
    from judgeforge.graders.results import is_error, to_dict
    from judgeforge.graders.runner import GraderConfig, GradingRunner, record_mapper, row_keys
    from judgeforge.metrics import compute_metrics
    from judgeforge.prompt import build_record_messages

    started = time.perf_counter()
    if mode not in SCORING_MODES:
        raise ConfigError(f"--mode must be one of {SCORING_MODES}, got {mode!r}")
    if concurrency < 1:
        raise ConfigError("--concurrency must be >= 1")
    data_path = Path(data)
    slots = [m if isinstance(m, JudgeSpec) else None for m in models]
    texts = [m for m in models if not isinstance(m, JudgeSpec)]
    parsed = iter(parse_judge_specs(texts, model_name=model_name,
                                    server_options=server_options) if texts else [])
    specs: list[JudgeSpec] = [s if s is not None else next(parsed) for s in slots]
    if not specs:
        raise ConfigError("give at least one --model")
    if len({s.label for s in specs}) != len(specs):
        raise ConfigError(f"judge labels must be unique: {[s.label for s in specs]}")

    loaded = load_records(data_path)
    info = loaded.info
    dim = dimension or (info.dimension_names[0] if info.dimension_names else None)
    if dim is None or (dim not in info.dimensions and not any(dim in r.label for r in loaded)):
        raise ConfigError(f"dimension {dim!r} is not in {data_path} (it has "
                          f"{info.dimension_names})")
    scale = info.scale(dim)
    rows, unlabelled = select_rows(loaded.records, dim, limit=limit, seed=seed)
    if not rows:
        raise DataError(f"{data_path}: no row is labelled for {dim!r}")
    labels = [r.label[dim] for r in rows]
    sources = [r.data_source for r in rows]
    keys = row_keys(rows)
    # each judge's prompt: ``template`` if given (one for all, or label -> template), else its
    # judge card's (JudgeSpec.template)
    given = dict(template) if isinstance(template, Mapping) else {s.label: template for s in specs}
    templates = {s.label: given.get(s.label) or s.template(dim, scale) for s in specs}
    if prompt_of is not None:
        owner = next((s for s in specs if s.label == prompt_of), None)
        if owner is None or owner.card() is None:
            raise ConfigError(f"--prompt-of {prompt_of}: no judge of that label with a judge "
                              f"card (judges: {', '.join(s.label for s in specs)})")
        templates = dict.fromkeys(templates, templates[prompt_of])
    template = templates[specs[0].label]

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    settings = _run_settings(data_path.resolve(), _file_digest(data_path), dim, scale, mode,
                             constrained, limit, seed, max_tokens, vote_n, specs)
    settings["prompt_of"] = prompt_of
    _check_resume(out, settings, overwrite)
    (out / RUN_FILE).write_text(json.dumps(settings, indent=2) + "\n")
    results_path = out / RESULTS_FILE

    baselines = _baselines(train_data, dim, scale, rows, bootstrap=bootstrap, seed=seed)
    cal_rows = _calibration_rows(calibration_data, dim, scale, mode, out)
    calibrated: list[dict[str, Any]] = []
    calibrated_preds: dict[str, list[float | None]] = {}

    judges: list[dict[str, Any]] = []
    per_judge_results: dict[str, list[Any]] = {}
    for spec in specs:
        t_open = time.perf_counter()
        async with open_judge(spec, timeout=timeout) as model:
            ready_s = time.perf_counter() - t_open
            grader = LLMGrader(model, template=templates[spec.label], name=spec.label,
                               mode=mode,  # type: ignore[arg-type]
                               constrained=constrained, n=vote_n, max_tokens=max_tokens)
            runner = GradingRunner({spec.label: GraderConfig(grader, record_mapper)},
                                   max_concurrency=concurrency, show_progress=show_progress,
                                   output=results_path, progress_desc=f"bench {spec.label}")
            t0 = time.perf_counter()
            res = (await runner.arun(rows))[spec.label]
            wall = time.perf_counter() - t0
            summary = runner.summary
            served = getattr(model, "base_url", None)
            if cal_rows is not None:
                twin = await _calibrated_twin(spec, grader, cal_rows, res, labels, sources,
                                              scale, out, concurrency=concurrency,
                                              show_progress=show_progress,
                                              bootstrap=bootstrap, seed=seed)
                calibrated.append(twin)
                if twin.get("predictions") is not None:
                    calibrated_preds[twin["label"]] = twin.pop("predictions")
        per_judge_results[spec.label] = res
        preds = [_prediction(r) for r in res]
        metrics = compute_metrics(preds, labels, scale, data_sources=sources,
                                  bootstrap=bootstrap, seed=seed)
        statuses = Counter(_status(r) for r in res)
        model_errors = sum(1 for r in res if is_error(r)
                           and (r.metadata or {}).get("error_type") != "ParseFailure")
        if model_errors:
            log.warning("%s: %d row(s) failed with a model/transport error (counted as failures)",
                        spec.label, model_errors)
        graded_now = (summary.done + summary.failed) if summary else len(res)
        timings = _judge_timings(res, graded_now, wall)
        timings["server_ready_s"] = round(ready_s, 3)
        judges.append({
            **spec.describe(),
            "served_at": served,
            "metrics": metrics,
            "status_counts": dict(sorted(statuses.items())),
            "model_errors": model_errors,
            "timings": timings,
        })

    # Joined per-row view (recomputable: label and each judge's prediction).
    with open(out / ROWS_FILE, "w", encoding="utf-8") as fh:
        for i, rec in enumerate(rows):
            line: dict[str, Any] = {"index": i, "key": keys[i], "id": rec.id,
                                    "data_source": rec.data_source, "label": labels[i],
                                    "judges": {}}
            for label, res in per_judge_results.items():
                r = res[i]
                d = to_dict(r)
                line["judges"][label] = {
                    "score": _prediction(r), "status": _status(r),
                    "error": d.get("error"),
                    "raw_output": (d.get("metadata") or {}).get("raw_output"),
                }
            for label, preds in calibrated_preds.items():
                line["judges"][label] = {"score": preds[i],
                                         "status": "ok" if preds[i] is not None else "failed",
                                         "error": None, "raw_output": None}
            fh.write(json.dumps(line, ensure_ascii=False) + "\n")

    example = build_record_messages(template, rows[0])
    label_spread = Counter(labels)
    report: dict[str, Any] = {
        "kind": "judgeforge.bench.quality",
        "version": REPORT_VERSION,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "data": {
            "path": str(data_path), "name": info.name, "sha256_16": settings["data_sha256_16"],
            "rows_in_file": len(loaded.records), "rows_unlabelled": unlabelled,
            "rows_graded": len(rows), "limit": limit, "seed": seed,
            "sample": ("all labelled rows" if len(rows) == len(loaded.records) - unlabelled
                       else f"seeded random sample, seed {seed}"),
            "dimension": dim, "scale": [scale.min, scale.max],
            "label_counts": {str(k): label_spread[k] for k in sorted(label_spread)},
            "data_sources": dict(sorted(Counter(sources).items())),
        },
        "mode": mode,
        "constrained": constrained,
        "grader": {"class": "judgeforge.graders.llm_grader.LLMGrader", "mode": mode,
                   "constrained": constrained, "max_tokens": max_tokens,
                   "n": vote_n if mode == "vote" else None, "concurrency": concurrency},
        "prompt": {
            "dimensions": {dim: [scale.min, scale.max]},
            "prompt_of": prompt_of,
            "thinking": template.thinking,
            "task": template.task,
            "system_prompt": template.system_prompt,
            "score_regex": template.score_regex() if constrained and mode != "expected" else None,
            "prefill": f"<{template.tags()[dim]}>" if mode == "expected" else None,
            "rows_with_rubric": sum(1 for r in rows if (r.extra_info or {}).get("rubric")),
            "rows_with_reference": sum(1 for r in rows
                                       if (r.extra_info or {}).get("reference")),
            "example_messages": example,
        },
        "metrics_note": ("failures (parse or model errors) count as the worst possible error in "
                         "mae/rmse/accuracy; *_parsed and correlations use parsed rows only; "
                         f"ci: bootstrap percentile intervals ({bootstrap} resamples)"),
        "judges": judges + [{k: v for k, v in t.items() if k != "predictions"}
                            for t in calibrated if t.get("metrics")],
        "calibration": _calibration_note(calibration_data, cal_rows, calibrated, base),
        "baselines": baselines["entries"],
        "baselines_note": baselines["note"],
        "verdicts": _verdicts(labels, scale, per_judge_results, baselines["predictions"],
                              bootstrap=bootstrap, seed=seed, calibrated=calibrated_preds,
                              base=base),
        "files": {"results": RESULTS_FILE, "rows": ROWS_FILE, "run": RUN_FILE},
        "environment": {"python": platform.python_version(), "cpus": os.cpu_count(),
                        "machine": platform.machine()},
    }
    if plots:
        from judgeforge.benchmarks import plots as plots_mod

        report["files"]["plots"] = plots_mod.quality_plots(report, out)
    report["timings"] = {"total_s": round(time.perf_counter() - started, 3)}
    (out / "report.json").write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    (out / "report.md").write_text(report_mod.quality_markdown(report))
    return report


def _baselines(train_data: str | os.PathLike[str] | Sequence[PointwiseRecord] | None,
               dim: str, scale: Scale, rows: Sequence[PointwiseRecord], *, bootstrap: int,
               seed: int) -> dict[str, Any]:
    """Baseline report entries, their per-row predictions and a note on how they were fitted."""
    from judgeforge.benchmarks.baselines import (
        baseline_entries,
        baseline_predictions,
        fit_baselines,
    )
    from judgeforge.data.split import shared_groups

    if train_data is None:
        return {"entries": [], "predictions": {},
                "note": "baselines were not fitted (no training data given: pass --train-data "
                        "with the split the judges were trained on)"}
    if isinstance(train_data, (str, os.PathLike)):
        from judgeforge.data.io import load_records

        where = str(train_data)
        train = load_records(train_data).records
    else:
        where, train = "records passed in", list(train_data)
    fitted = fit_baselines(train, dim, scale)
    leaked = shared_groups(train, rows)
    note = (f"baselines fitted on {len(train)} training rows ({where}) only; "
            f"{len(leaked)} query group(s) of the graded rows also occur in the training data")
    if leaked:  # the baselines saw these groups' labels, and so did any judge trained there
        log.warning("%d query group(s) of the benchmark data also occur in the training data "
                    "(%s): the baselines are fitted on them (in-sample), and a judge trained on "
                    "that data has seen them too; neither number is held out", len(leaked), where)
    return {"entries": baseline_entries(fitted, rows, dim, scale, bootstrap=bootstrap, seed=seed),
            "predictions": baseline_predictions(fitted, rows), "note": note,
            "shared_groups": len(leaked)}


def _verdicts(labels: Sequence[int], scale: Scale, results: Mapping[str, Sequence[Any]],
              baseline_preds: Mapping[str, Sequence[float]], *, bootstrap: int,
              seed: int, calibrated: Mapping[str, Sequence[float | None]] | None = None,
              base: str = "base") -> list[dict[str, Any]]:
    """Every judge (and calibrated twin) against every baseline; with the ``base`` judge's
    calibrated twin, every other judge and twin against it too."""
    from judgeforge.benchmarks.baselines import verdicts

    judges: dict[str, Sequence[float | None]] = {
        label: [_prediction(r) for r in res] for label, res in results.items()}
    judges.update(calibrated or {})
    found = verdicts(labels, scale, judges, baseline_preds, bootstrap=bootstrap, seed=seed)
    reference = calibrated_label(base)
    if reference in judges:
        others = {k: v for k, v in judges.items() if k not in (base, reference)}
        found += verdicts(labels, scale, others, {reference: judges[reference]},
                          bootstrap=bootstrap, seed=seed)
    return [v.to_dict() for v in found]


def calibrated_label(label: str) -> str:
    """The report label of ``label``'s calibrated twin."""
    return f"{label} (calibrated)"


def _calibration_rows(path: str | os.PathLike[str] | None, dim: str, scale: Scale, mode: str,
                      out: Path) -> list[PointwiseRecord] | None:
    """The validation rows of ``--calibration-data`` (None without it); their results in
    ``out/calibration/`` are discarded when the file changed."""
    if path is None:
        return None
    from judgeforge.data.io import load_records

    if mode != "expected":
        raise ConfigError("--calibration-data fits a calibration of the expected score: use it "
                          f"with --mode expected (got --mode {mode})")
    loaded = load_records(path)
    if dim in loaded.info.dimensions and loaded.info.scale(dim) != scale:
        got = loaded.info.scale(dim)
        raise ConfigError(f"--calibration-data {path}: {dim} is on {got.min}-{got.max}, the "
                          f"graded data on {scale.min}-{scale.max}")
    rows, _ = select_rows(loaded.records, dim)
    if len(rows) < 2:
        raise DataError(f"--calibration-data {path}: needs at least 2 rows labelled {dim!r}, "
                        f"got {len(rows)}")
    folder = out / "calibration"
    folder.mkdir(parents=True, exist_ok=True)
    stamp = {"data": str(Path(path).resolve()), "sha256_16": _file_digest(Path(path))}
    run_file = folder / RUN_FILE
    if not run_file.is_file() or json.loads(run_file.read_text()) != stamp:
        (folder / RESULTS_FILE).unlink(missing_ok=True)  # another file: grade it afresh
        run_file.write_text(json.dumps(stamp, indent=2) + "\n")
    return rows


async def _calibrated_twin(spec: JudgeSpec, grader: Any, cal_rows: Sequence[PointwiseRecord],
                           test_results: Sequence[Any], labels: Sequence[int],
                           sources: Sequence[str], scale: Scale, out: Path, *,
                           concurrency: int, show_progress: bool, bootstrap: int,
                           seed: int) -> dict[str, Any]:
    """Grade ``cal_rows`` with ``grader`` (expected mode), fit the calibration there and map the
    judge's test scores through it: the ``<label> (calibrated)`` report entry (with
    ``predictions``), or an entry without metrics saying why no calibration was fitted."""
    from judgeforge.calibration import fit_calibration
    from judgeforge.graders.runner import GraderConfig, GradingRunner, record_mapper
    from judgeforge.metrics import compute_metrics

    runner = GradingRunner({spec.label: GraderConfig(grader, record_mapper)},
                           max_concurrency=concurrency, show_progress=show_progress,
                           output=out / "calibration" / RESULTS_FILE,
                           progress_desc=f"calibration {spec.label}")
    val = (await runner.arun(list(cal_rows)))[spec.label]
    raw = [_prediction(r) for r in val]
    val_labels = [r.label[next(iter(grader.dimensions))] for r in cal_rows]
    entry: dict[str, Any] = {"label": calibrated_label(spec.label), "kind": "calibrated",
                             "target": f"{spec.target}, expected score through an isotonic "
                                       f"calibration fitted on {len(cal_rows)} validation rows"}
    usable = [(x, y) for x, y in zip(raw, val_labels) if x is not None]
    try:
        cal = fit_calibration([x for x, _ in usable], [y for _, y in usable], low=scale.min,
                              high=scale.max)
    except ConfigError as exc:
        log.warning("%s: no calibration fitted: %s", spec.label, exc)
        return {**entry, "calibration": None, "calibration_error": str(exc)}
    test = [_prediction(r) for r in test_results]
    preds = [None if x is None else cal(x) for x in test]
    metrics = compute_metrics(preds, list(labels), scale, data_sources=list(sources),
                              bootstrap=bootstrap, seed=seed)
    failed = sum(p is None for p in preds)
    return {**entry, "calibration": {**cal.to_dict(), "val_rows": len(cal_rows),
                                     "val_failures": len(raw) - len(usable)},
            "metrics": metrics, "status_counts": {"ok": len(preds) - failed,
                                                  **({"failed": failed} if failed else {})},
            "model_errors": 0, "timings": {}, "predictions": preds}


def _calibration_note(path: str | os.PathLike[str] | None,
                      rows: Sequence[PointwiseRecord] | None,
                      twins: Sequence[Mapping[str, Any]], base: str) -> dict[str, Any] | None:
    if path is None or rows is None:
        return None
    return {"data": str(path), "rows": len(rows), "base": base,
            "reference": calibrated_label(base),
            "fitted": {t["label"]: t.get("calibration") for t in twins},
            "not_fitted": {t["label"]: t["calibration_error"] for t in twins
                           if t.get("calibration_error")},
            "note": f"each judge's expected score mapped through an isotonic calibration fitted "
                    f"on {len(rows)} validation rows ({path}); the graded rows are not used"}


def run_quality(data: str | os.PathLike[str], models: Sequence[str | JudgeSpec], *,
                out_dir: str | os.PathLike[str], **kw: Any) -> dict[str, Any]:
    """Synchronous :func:`arun_quality` (returns the report dict)."""
    return asyncio.run(arun_quality(data, models, out_dir=out_dir, **kw))
