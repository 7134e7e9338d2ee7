"""``RayGradingJob``: a grading job as a Ray Data pipeline over replicas of one judge.

    from judgeforge.graders import HelpfulnessGrader
    from judgeforge.graders.distributed import RayGradingJob
    from judgeforge.models.openai_chat import OpenAIChatModel

    grader = HelpfulnessGrader(OpenAIChatModel(base_url=urls[0]), mode="expected")
    summary = RayGradingJob(grader, endpoints=urls, concurrency=8).run("test.parquet", "out/")

Read (``ray.data.read_parquet``, or JSONL lines with ``read_text``; local or any path Ray Data
reads) -> grade (``map_batches`` over an actor pool of :class:`~judgeforge.graders.
distributed.endpoints.GradeBatches`: the caller's grader, one model per endpoint, bounded
concurrency per endpoint, failover on transport errors) -> write Parquet shards
(:mod:`judgeforge.graders.distributed.shards`). Rerunning with the same output skips rows already
scored, grades stored transport errors again, and leaves one line per row.

Keys, fingerprints and resume rules are the runner's (``judgeforge grade``), computed by the same
functions (:mod:`judgeforge.graders.runner.checkpoint`): before grading, the driver reads every
row's base key and fingerprints (a Ray Data pass in file order), makes the keys unique over the
whole input (two different rows with one id in different batches are both graded and kept, as
``id#<content>``; reordering them swaps nothing), and decides per row whether a stored line is
reused, retried or stale (the row's content or the grading configuration changed: regraded, or
refused with ``on_stale="refuse"`` / ``--refuse-stale``; the endpoints' URLs are not part of the
configuration, they are replicas). Only the rows to grade reach the actors.

``GradingRunner`` stays the tool for one process; this is the same grading on Ray.
"""

from __future__ import annotations

import logging
import math
import os
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from judgeforge._extras import require
from judgeforge.errors import ConfigError
from judgeforge.graders.distributed.endpoints import GradeBatches, detach_model
from judgeforge.graders.distributed.rows import input_format
from judgeforge.graders.distributed.shards import (
    compact,
    count_by_type,
    read_results,
    scan,
)

__all__ = [
    "GradePlan",
    "JobSummary",
    "RayGradingJob",
    "RayVLLMEngineJob",
    "grade_on_ray",
    "model_options_of",
]

log = logging.getLogger(__name__)


@dataclass
class JobSummary:
    """What one run did: rows graded now (scored / failed by type), skipped, seconds."""

    rows: int = 0
    graded: int = 0
    scored: int = 0
    failed: dict[str, int] = field(default_factory=dict)
    skipped: int = 0
    retried: int = 0
    stale: int = 0
    torn_shards: int = 0
    superseded_dropped: int = 0
    seconds: float = 0.0
    endpoints: int = 0
    by_endpoint: dict[str, int] = field(default_factory=dict)
    output: str = ""
    run_id: str = ""

    @property
    def pairs_per_s(self) -> float:
        return self.graded / self.seconds if self.seconds > 0 else 0.0

    def __str__(self) -> str:
        failed = ", ".join(f"{k} {v}" for k, v in sorted(self.failed.items())) or "none"
        text = (f"{self.rows} row(s): graded {self.graded} ({self.scored} scored, failed: "
                f"{failed}), skipped {self.skipped} (already in the output)")
        if self.stale:
            text += (f", {self.stale} stale result(s) regraded (row or grading configuration "
                     "changed)")
        if self.retried:
            text += f", {self.retried} earlier transport error(s) retried"
        if self.torn_shards:
            text += f", {self.torn_shards} torn shard(s) redone"
        return (text + f"; {self.pairs_per_s:.2f} pairs/s over {self.endpoints} endpoint(s) in "
                f"{self.seconds:.1f}s -> {self.output}")


def model_options_of(model: Any) -> dict[str, Any]:
    """``OpenAIChatModel`` keywords that reproduce ``model``'s settings on another URL."""
    retry = getattr(model, "retry", None)
    opts: dict[str, Any] = {"model": getattr(model, "model", None),
                            "timeout": getattr(model, "timeout", 120.0),
                            "extra_body": dict(getattr(model, "extra_body", {}) or {})}
    kind = getattr(model, "server_kind", "auto")
    opts["server_kind"] = kind if kind in ("vllm", "openai") else "auto"
    if retry is not None:
        opts.update(max_retries=retry.max_retries, retry_initial_wait=retry.initial_wait,
                    retry_max_wait=retry.max_wait)
    return opts


class RayGradingJob:
    """Grades a dataset on Ray Data with ``grader`` over ``endpoints`` (replicas of one judge).

    Args:
        grader: a judgeforge grader whose ``model`` is an ``OpenAIChatModel`` (its settings --
            template, mode, constrained decoding, votes, seed -- are used as they are; only the
            model is rebuilt per endpoint, with ``model_options_of(grader.model)``).
        endpoints: OpenAI-compatible ``.../v1`` URLs (default: the grader model's URL).
        name: the grader's key in the output (default: ``grader.name``).
        concurrency: requests in flight per endpoint (split over the actors).
        actors: size of the actor pool (one is plenty on one node: the work is HTTP).
        batch_size: rows per Ray Data batch (a batch is also the unit a shard holds).
        retry_errors: grade stored transport errors again on a rerun.
        on_stale: ``"regrade"`` (default) or ``"refuse"``: what a rerun does with stored lines
            made from other row content or another grading configuration (as the runner).
        api_key, model_options: override what reaches each endpoint's ``OpenAIChatModel``.
        cooldown_s: how long an endpoint that failed a request is passed over.
        show_progress: Ray Data's progress bars.
    """

    endpoints: list[str]

    def __init__(self, grader: Any, endpoints: Sequence[str] | None = None, *,
                 name: str | None = None, concurrency: int = 8, actors: int = 1,
                 batch_size: int = 32, retry_errors: bool = True, api_key: str | None = None,
                 model_options: Mapping[str, Any] | None = None, cooldown_s: float = 5.0,
                 show_progress: bool = True, on_stale: str = "regrade") -> None:
        model = getattr(grader, "model", None)
        if model is None or not hasattr(grader, "aevaluate"):
            raise ConfigError("RayGradingJob needs a grader with a model (an LLMGrader)")
        urls = list(endpoints or [])
        if not urls:
            base = getattr(model, "base_url", None)
            if not base:
                raise ConfigError("no endpoint: pass endpoints=[URL, ...] (a managed local "
                                  "model has no URL for Ray workers to reach)")
            urls = [base]
        for url in urls:
            if not str(url).startswith(("http://", "https://")):
                raise ConfigError(f"endpoint {url!r} is not an http(s) URL")
        if len(set(urls)) != len(urls):
            raise ConfigError("the same endpoint is listed twice")
        if concurrency < 1 or actors < 1 or batch_size < 1:
            raise ConfigError("concurrency, actors and batch_size must be >= 1")
        self.grader = grader
        self.name = str(name or getattr(grader, "name", "") or "grader")
        self.endpoints = urls
        self.concurrency = concurrency
        self.actors = actors
        self.batch_size = batch_size
        self.retry_errors = retry_errors
        self.on_stale = _check_on_stale(on_stale)
        self.cooldown_s = cooldown_s
        self.show_progress = show_progress
        opts = model_options_of(model)
        if api_key is not None:
            opts["api_key"] = api_key
        opts.update(model_options or {})
        self.model_options = opts
        self.summary: JobSummary | None = None

    def run(self, data: str, output: str, *, limit: int | None = None) -> JobSummary:
        """Grade ``data`` into the shard folder ``output``; returns (and keeps) the summary."""
        self.summary = _run_job(self, str(data), str(output), limit)
        return self.summary

    def pipeline(self, ray: Any, ds: Any, fmt: str, plan: GradePlan, run_id: str) -> Any:
        """Input rows -> result rows (see :mod:`judgeforge.graders.distributed.shards`)."""
        self.model_options["server_kind"] = settle_server_kind(
            self.endpoints, self.model_options.get("server_kind", "auto"))
        per_actor = max(1, math.ceil(self.concurrency / self.actors))
        return ds.map_batches(
            GradeBatches, batch_size=self.batch_size, batch_format="pyarrow",
            compute=ray.data.ActorPoolStrategy(size=self.actors),
            fn_constructor_kwargs={
                "grader": detach_model(self.grader), "name": self.name,
                "endpoints": self.endpoints, "model_options": self.model_options,
                "per_endpoint_concurrency": per_actor, "fmt": fmt,
                "plan": ray.put(plan), "run_id": run_id, "cooldown_s": self.cooldown_s},
            num_cpus=0.5)


class RayVLLMEngineJob:
    """Backend (b): the grader's requests run by vLLM engines inside Ray Data (GPUs).

    ``judge``: a servable judge folder (HF weights; its card's prompt settings are the
    grader's business). ``replicas`` engines of ``tensor_parallel_size`` GPUs each. The grader
    (``sample`` or one-dimension ``expected`` mode, optionally constrained) builds each request
    and parses each answer (:mod:`judgeforge.graders.distributed.vllm_engine`).
    """

    endpoints: list[str]

    def __init__(self, grader: Any, judge: str, *, name: str | None = None, replicas: int = 1,
                 tensor_parallel_size: int = 1, batch_size: int = 64,
                 max_model_len: int | None = 4096, retry_errors: bool = True,
                 engine_kwargs: Mapping[str, Any] | None = None,
                 show_progress: bool = True, on_stale: str = "regrade") -> None:
        from judgeforge.graders.distributed.vllm_engine import check_engine_grader

        check_engine_grader(grader)
        self.grader = grader
        self.name = str(name or getattr(grader, "name", "") or "grader")
        self.judge = str(judge)
        self.replicas, self.tensor_parallel_size = replicas, tensor_parallel_size
        self.batch_size, self.max_model_len = batch_size, max_model_len
        self.retry_errors, self.show_progress = retry_errors, show_progress
        self.on_stale = _check_on_stale(on_stale)
        self.engine_kwargs = dict(engine_kwargs or {})
        self.endpoints = [self.judge] * replicas
        self.summary: JobSummary | None = None

    def config(self) -> Any:
        """The ``vLLMEngineProcessorConfig`` this job uses."""
        from judgeforge.graders.distributed.vllm_engine import vllm_engine_config

        return vllm_engine_config(self.judge, replicas=self.replicas,
                                  tensor_parallel_size=self.tensor_parallel_size,
                                  batch_size=self.batch_size, max_model_len=self.max_model_len,
                                  engine_kwargs=self.engine_kwargs)

    def run(self, data: str, output: str, *, limit: int | None = None) -> JobSummary:
        """Grade ``data`` into ``output`` (same shards, resume and summary as backend (a))."""
        self.summary = _run_job(self, str(data), str(output), limit)
        return self.summary

    def pipeline(self, ray: Any, ds: Any, fmt: str, plan: GradePlan, run_id: str) -> Any:
        from judgeforge.graders.distributed.vllm_engine import (
            build_vllm_processor,
            engine_error_row,
            prepare_batch,
        )

        name, judge = self.name, self.judge
        prepared = ds.map_batches(prepare_batch, batch_format="pyarrow",
                                  fn_constructor_kwargs={"name": name, "fmt": fmt,
                                                         "plan": ray.put(plan),
                                                         "run_id": run_id},
                                  compute=ray.data.ActorPoolStrategy(size=1))
        bad = prepared.filter(lambda r: bool(r["error"]))
        good = prepared.filter(lambda r: not r["error"]).drop_columns(["error"])
        processor = build_vllm_processor(self.grader, self.config(), name, run_id)
        scored = processor(good)
        return bad.union(scored).map(lambda r: engine_error_row(r, name, run_id, judge))


def settle_server_kind(endpoints: Sequence[str], kind: str) -> str:
    """``"vllm"`` or ``"openai"`` for replicas of one judge, asked once on the driver.

    Each actor's model would otherwise probe its endpoint on first use, and a replica that is
    down at that moment would be taken for a non-vLLM server (no ``/version``), failing every
    prefill/regex request with a final error instead of a retryable one.
    """
    from judgeforge.models.vllm_server import _http_ok

    if kind in ("vllm", "openai"):
        return kind
    reachable = False
    for url in endpoints:
        root = url.rstrip("/")
        root = root[:-3] if root.endswith("/v1") else root
        if _http_ok(root + "/version", timeout=5.0):
            return "vllm"
        reachable = reachable or _http_ok(url.rstrip("/") + "/models", timeout=5.0)
    if not reachable:
        raise ConfigError(f"none of the endpoints answers: {', '.join(endpoints)}")
    return "openai"


def _run_job(job: Any, data: str, output: str, limit: int | None) -> JobSummary:
    ray = require("ray", "ray")
    require("ray.data", "ray")
    started_ray = not ray.is_initialized()
    if started_ray:  # RAY_ADDRESS names a running cluster; else a local instance starts
        ray.init(log_to_driver=False, **({} if os.environ.get("RAY_ADDRESS")
                                          else {"include_dashboard": False}))
    try:
        return _run(job, ray, data, output, limit)
    finally:
        if started_ray:
            ray.shutdown()


def _check_on_stale(on_stale: str) -> str:
    if on_stale not in ("regrade", "refuse"):
        raise ConfigError(f"on_stale must be 'regrade' or 'refuse', not {on_stale!r}")
    return on_stale


@dataclass
class GradePlan:
    """What the actors grade: ``(base key, content fingerprint)`` of an input row -> the
    ``(unique key, row_fp)`` of each of its occurrences to grade now; ``config_fp`` is the
    grader's fingerprint (both written with every result line)."""

    todo: dict[tuple[str, str], list[tuple[str, str]]]
    config_fp: str

    def rows_for(self, row: Any) -> list[tuple[str, str]]:
        return self.todo.get((row.key, row.content_fp), [])


def _row_parts(ds: Any, fmt: str) -> list[tuple[str, str, str]]:
    """Every input row's ``(base key, content_fp, row_fp)``, in file order (one Ray pass)."""
    from judgeforge.graders.distributed.rows import row_parts

    parts: list[tuple[str, str, str]] = []
    for batch in ds.map_batches(row_parts, batch_format="pyarrow",
                                fn_kwargs={"fmt": fmt}).iter_batches(batch_format="pyarrow",
                                                                     batch_size=None):
        parts.extend(zip(*(batch.column(c).to_pylist() for c in
                           ("base", "content_fp", "row_fp"))))
    return parts


def _plan(job: Any, parts: list[tuple[str, str, str]], before: Any, output: str,
          summary: JobSummary) -> GradePlan:
    """The runner's keys and resume rules over the whole input (see the module docstring)."""
    from judgeforge.graders.runner.checkpoint import (
        grader_fingerprint,
        keys_from_parts,
        resume_decision,
        stale_error,
    )

    config_fp = grader_fingerprint(job.grader, url=False)  # endpoints are replicas
    keys = keys_from_parts([(base, cfp) for base, cfp, _ in parts])
    plan = GradePlan({}, config_fp)
    stale: list[str] = []
    for (base, cfp, row_fp), key in zip(parts, keys):
        decision, what = resume_decision(before.entries.get((key, job.name)),
                                         (row_fp, config_fp), job.retry_errors)
        if decision == "reuse":
            summary.skipped += 1
            continue
        if decision == "stale":
            stale.append(f"row {key!r} x {job.name!r}: the {what} changed")
        summary.stale += decision == "stale"
        summary.retried += decision == "retry"
        plan.todo.setdefault((base, cfp), []).append((key, row_fp))
    if stale and job.on_stale == "refuse":
        raise stale_error(output, stale)
    return plan


def _run(job: Any, ray: Any, data: str, output: str, limit: int | None) -> JobSummary:
    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = job.show_progress
    ctx.execution_options.preserve_order = True  # the key pass reads rows in file order
    run_id = f"{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:8]}"
    fmt = input_format(data)
    before = scan(output)
    summary = JobSummary(endpoints=len(job.endpoints), output=output, run_id=run_id,
                         torn_shards=len(before.torn))
    t0 = time.perf_counter()
    ds = ray.data.read_text(data) if fmt == "jsonl" else ray.data.read_parquet(data)
    if limit is not None:
        ds = ds.limit(limit)
    parts = _row_parts(ds, fmt)
    summary.rows = len(parts)
    plan = _plan(job, parts, before, output, summary)
    if plan.todo:
        job.pipeline(ray, ds, fmt, plan, run_id).write_parquet(output)
    summary.seconds = time.perf_counter() - t0
    import pyarrow as pa

    results = read_results(output)
    mine = results.filter(_eq(results, "run_id", run_id))
    # an exact repeat (same id, same content) in two batches is graded by both; compaction
    # keeps one line per key
    first: dict[tuple[str, str], int] = {}
    for i, ident in enumerate(zip(mine.column("row_id").to_pylist(),
                                  mine.column("grader").to_pylist())):
        first.setdefault(ident, i)
    mine = mine.take(pa.array(sorted(first.values()), pa.int64()))
    summary.graded = mine.num_rows
    summary.failed = count_by_type(mine.column("error_type").to_pylist())
    summary.scored = summary.graded - sum(summary.failed.values())
    summary.by_endpoint = count_by_type(mine.column("endpoint").to_pylist())
    summary.superseded_dropped = compact(output, keep_run=run_id)
    log.info("%s", summary)
    return summary


def _eq(table: Any, column: str, value: str) -> Any:
    import pyarrow.compute as pc

    return pc.equal(table.column(column), value)


def grade_on_ray(data: str, output: str, grader: Any, endpoints: Sequence[str] | None = None,
                 *, limit: int | None = None, **job_options: Any) -> JobSummary:
    """One call: ``RayGradingJob(grader, endpoints, **job_options).run(data, output)``."""
    return RayGradingJob(grader, endpoints, **job_options).run(data, output, limit=limit)
