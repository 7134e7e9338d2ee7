"""How fast can I grade: ``judgeforge bench throughput``.

The same rows are graded several ways against ONE server, at each concurrency, in interleaved
rounds (every round runs every variant once, in a shuffled order, so drift of a shared machine
hits all variants alike); the summary reports medians over rounds.

Variants (``VARIANTS``):

- ``raw``: the plain ``openai.AsyncOpenAI`` client, sending exactly the requests judgeforge's
  sample-mode grader sends (recorded from the grader through a recording
  :class:`~judgeforge.models.base.ChatModel`, then turned into the OpenAI request by
  :meth:`~judgeforge.models.openai_chat.OpenAIChatModel.request_params`), under a semaphore. The
  baseline and practical limit.
- ``prefill``: the same messages with ``max_tokens=1`` (no regex, no stop): the server's
  prefill-bound limit, ``limit pairs/s = prompt tokens/s / prompt tokens per pair``.
- ``jf-sample``, ``jf-expected``, ``jf-vote``: judgeforge's
  :class:`~judgeforge.graders.runner.GradingRunner` with an
  :class:`~judgeforge.graders.llm_grader.LLMGrader` in each scoring mode.
- ``oj-runner``: OpenJudge's ``GradingRunner`` running the same judgeforge sample grader.
- ``oj-relevance``: OpenJudge's own JSON ``RelevanceGrader`` (structured JSON output with a
  reason) on the same served model, in OpenJudge's runner; same ``max_tokens`` and temperature 0.

The OpenJudge variants run only when ``py-openjudge`` is installed. Token counts come from the
server's Prometheus counters (``/metrics``: prompt, generation, prefix-cache) when it is vLLM,
else from the responses' usage (the OpenJudge variants then have none).

Goals checked (per concurrency): jf-sample >= 95% of raw; jf-sample >= OpenJudge's runner with the
same grader; jf-expected >= 3x OpenJudge's JSON grader; jf-expected >= 80% of the prefill limit.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import platform
import random
import re
import statistics
import time
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from judgeforge.benchmarks.judges import (
    JudgeSpec,
    open_judge,
    parse_judge_spec,
    served_model_name,
    server_root,
)
from judgeforge.benchmarks.quality import percentile, select_rows
from judgeforge.errors import ConfigError, DataError
from judgeforge.models.base import ChatChoice, ChatMessage, ChatModel, ChatOptions, ChatResponse

__all__ = ["VARIANTS", "RecordingModel", "parse_concurrency",
           "scrape_metrics", "summarize", "evaluate_goals", "run_throughput", "arun_throughput",
           "Measurement"]

log = logging.getLogger(__name__)

VARIANTS: tuple[str, ...] = ("raw", "prefill", "jf-sample", "jf-expected", "jf-vote", "oj-runner",
                             "oj-relevance")
OPENJUDGE_VARIANTS = ("oj-runner", "oj-relevance")
_COUNTERS = {
    "prompt_tokens": "vllm:prompt_tokens_total",
    "generation_tokens": "vllm:generation_tokens_total",
    "cache_queries": "vllm:prefix_cache_queries_total",
    "cache_hits": "vllm:prefix_cache_hits_total",
}


# ------------------------------------------------------------------------------- requests

class RecordingModel(ChatModel):
    """A ChatModel that records every ``achat`` call (messages and options) and answers ``""``.

    Used to take the exact request a grader makes, without a server.
    """

    def __init__(self, name: str = "recorder") -> None:
        self.name = name
        self.calls: list[tuple[list[ChatMessage], ChatOptions]] = []

    async def _generate(self, messages: Sequence[ChatMessage],
                        options: ChatOptions) -> ChatResponse:
        self.calls.append(([dict(m) for m in messages], options))
        return ChatResponse(choices=[ChatChoice(text="")])

    def __deepcopy__(self, memo: dict[int, Any]) -> RecordingModel:
        return self  # copies record into the same list


def prefill_probe_params(params: Mapping[str, Any]) -> dict[str, Any]:
    """The same messages with ``max_tokens=1``, greedy, no constraint, stop or sampling options."""
    probe = {"model": params["model"], "messages": params["messages"], "max_tokens": 1,
             "temperature": 0.0}
    extra = {k: v for k, v in (params.get("extra_body") or {}).items()
             if k not in ("structured_outputs", "guided_regex")}
    if extra:
        probe["extra_body"] = extra
    return probe


def parse_concurrency(text: str | Sequence[int]) -> list[int]:
    """``"1,8,32"`` -> ``[1, 8, 32]`` (positive, in the order given, no repeats)."""
    values = text if not isinstance(text, str) else [
        v for v in re.split(r"[,\s]+", text.strip()) if v]
    out: list[int] = []
    for v in values:
        try:
            n = int(v)
        except (TypeError, ValueError):
            raise ConfigError(f"--concurrency takes integers like 1,8,32, got {v!r}") from None
        if n < 1:
            raise ConfigError(f"concurrency must be >= 1, got {n}")
        if n not in out:
            out.append(n)
    if not out:
        raise ConfigError("--concurrency is empty")
    return out


# ------------------------------------------------------------------------------- server counters

_METRIC_LINE = re.compile(r"^([A-Za-z_:][A-Za-z0-9_:]*)(\{[^}]*\})?\s+([-+0-9.eEinfNa]+)")


def parse_metrics_text(text: str) -> dict[str, float]:
    """Sum every sample of each Prometheus metric name (over label sets)."""
    out: dict[str, float] = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = _METRIC_LINE.match(line)
        if not m:
            continue
        try:
            value = float(m.group(3))
        except ValueError:
            continue
        out[m.group(1)] = out.get(m.group(1), 0.0) + value
    return out


def scrape_metrics(root: str | None, timeout: float = 10.0) -> dict[str, float] | None:
    """The server's token/prefix-cache counters, or None when it has no vLLM ``/metrics``."""
    if not root:
        return None
    try:
        with urllib.request.urlopen(root + "/metrics", timeout=timeout) as resp:
            text = resp.read().decode("utf-8", "replace")
    except (OSError, ValueError):
        return None
    raw = parse_metrics_text(text)
    if _COUNTERS["prompt_tokens"] not in raw:
        return None
    return {k: raw.get(name, 0.0) for k, name in _COUNTERS.items()}


# ------------------------------------------------------------------------------- measurement

@dataclass
class Measurement:
    """One variant run over the rows at one concurrency, in one round."""

    variant: str
    concurrency: int
    round: int
    pairs: int
    wall_s: float
    errors: int = 0
    latencies: list[float] = field(default_factory=list)
    prompt_tokens: float | None = None
    gen_tokens: float | None = None
    token_source: str | None = None  # "server" (/metrics), "client" (usage) or None
    cache_queries: float | None = None
    cache_hits: float | None = None

    @property
    def pairs_per_s(self) -> float:
        return self.pairs / self.wall_s if self.wall_s > 0 else 0.0


@dataclass
class _RunOut:
    latencies: list[float]
    errors: int
    prompt_tokens: float | None = None
    gen_tokens: float | None = None


class _Sink(list[float]):
    """A list that deep copies share (OpenJudge's runner deep-copies graders and models)."""

    def __deepcopy__(self, memo: dict[int, Any]) -> _Sink:
        return self


def _timed_openjudge_model(sink: _Sink, **kw: Any) -> Any:
    """OpenJudge's OpenAIChatModel, timing each ``achat`` into ``sink``."""
    from openjudge.models.openai_chat_model import OpenAIChatModel as OJChatModel

    class TimedOJModel(OJChatModel):
        async def achat(self, *args: Any, **kwargs: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return await super().achat(*args, **kwargs)
            finally:
                sink.append(time.perf_counter() - t0)

    return TimedOJModel(**kw)


def _grader_latencies(results: Sequence[Any]) -> list[float]:
    out = []
    for r in results:
        lat = (getattr(r, "metadata", None) or {}).get("latency_s")
        if isinstance(lat, (int, float)):
            out.append(float(lat))
    return out


def _grader_tokens(results: Sequence[Any]) -> tuple[float | None, float | None]:
    prompt = completion = 0.0
    seen = False
    for r in results:
        tok = (getattr(r, "metadata", None) or {}).get("tokens")
        if isinstance(tok, Mapping):
            seen = True
            prompt += float(tok.get("prompt", 0) or 0)
            completion += float(tok.get("completion", 0) or 0)
    return (prompt, completion) if seen else (None, None)


def _oj_failed(result: Any, scale: tuple[int, int]) -> bool:
    """An OpenJudge error, or its silent 0 / out-of-scale score for an unparsable answer."""
    from judgeforge.graders.results import is_score

    if not is_score(result):
        return True
    return not (scale[0] <= float(result.score) <= scale[1])


# ------------------------------------------------------------------------------- the benchmark

class _Bench:
    def __init__(self, model: Any, served: str, rows: list[dict[str, Any]], template: Any,
                 *, constrained: bool, max_tokens: int | None, vote_n: int, timeout: float,
                 scale: tuple[int, int]) -> None:
        self.model = model
        self.served = served
        self.rows = rows
        self.template = template
        self.constrained = constrained
        self.max_tokens = max_tokens
        self.vote_n = vote_n
        self.timeout = timeout
        self.scale = scale
        self.root = server_root(model.base_url)
        self.raw_client: Any = None
        self.requests: list[dict[str, Any]] = []
        self.probes: list[dict[str, Any]] = []
        self.graders: dict[str, Any] = {}
        self.oj_available = False
        self.oj_rows: list[dict[str, Any]] = []

    def grader(self, mode: str, model: Any = None) -> Any:
        from judgeforge.graders.llm_grader import LLMGrader

        return LLMGrader(model or self.model, template=self.template,
                         mode=mode,  # type: ignore[arg-type]
                         constrained=self.constrained, n=self.vote_n, max_tokens=self.max_tokens)

    async def setup(self) -> None:
        import openai

        self.raw_client = openai.AsyncOpenAI(base_url=self.model.base_url, api_key="EMPTY",
                                             max_retries=0, timeout=self.timeout)
        # Record the sample grader's own requests (the raw baseline sends exactly these).
        recorder = RecordingModel()
        rec_grader = self.grader("sample", recorder)
        for row in self.rows:
            await rec_grader.aevaluate(**row)
        if len(recorder.calls) != len(self.rows):
            raise ConfigError(f"the sample grader made {len(recorder.calls)} calls for "
                              f"{len(self.rows)} rows; expected one each")
        self.requests = [self.model.request_params(msgs, opts, model=self.served)
                         for msgs, opts in recorder.calls]
        self.probes = [prefill_probe_params(p) for p in self.requests]
        for mode in ("sample", "expected", "vote"):
            self.graders[f"jf-{mode}"] = self.grader(mode)
        try:
            import openjudge  # noqa: F401
        except ImportError:
            self.oj_available = False
        else:
            self.oj_available = True
            self.oj_rows = [{"query": r["query"] if isinstance(r["query"], str)
                             else "\n".join(f"{m['role']}: {m['content']}" for m in r["query"]),
                             "response": r["response"],
                             "reference_response": r.get("reference") or ""}
                            for r in self.rows]

    async def close(self) -> None:
        if self.raw_client is not None:
            await self.raw_client.close()

    # -- one run of each variant -------------------------------------------------------------
    async def _raw(self, params: Sequence[dict[str, Any]], concurrency: int) -> _RunOut:
        sem = asyncio.Semaphore(concurrency)
        lat: list[float] = []
        usage = [0.0, 0.0]
        errors = 0

        async def one(p: dict[str, Any]) -> None:
            nonlocal errors
            async with sem:
                t0 = time.perf_counter()
                try:
                    resp = await self.raw_client.chat.completions.create(**p)
                except Exception as exc:  # counted, as the graders count theirs
                    errors += 1
                    log.debug("raw request failed: %s", exc)
                    return
                lat.append(time.perf_counter() - t0)
                if resp.usage is not None:
                    usage[0] += resp.usage.prompt_tokens or 0
                    usage[1] += resp.usage.completion_tokens or 0

        await asyncio.gather(*(one(p) for p in params))
        return _RunOut(lat, errors, usage[0], usage[1])

    async def _jf(self, name: str, concurrency: int) -> _RunOut:
        from judgeforge.graders.results import is_error
        from judgeforge.graders.runner import GradingRunner

        runner = GradingRunner({name: self.graders[name]}, max_concurrency=concurrency,
                               show_progress=False)
        res = (await runner.arun(self.rows))[name]
        prompt, gen = _grader_tokens(res)
        return _RunOut(_grader_latencies(res), sum(1 for r in res if is_error(r)), prompt, gen)

    async def _oj_runner(self, concurrency: int) -> _RunOut:
        from openjudge.runner.grading_runner import GraderConfig as OJConfig
        from openjudge.runner.grading_runner import GradingRunner as OJRunner

        from judgeforge.graders.results import is_error

        # A foreign grader enters their runner through their GraderConfig (their create()
        # accepts only their own BaseGrader instances).
        runner = OJRunner({"jf-sample": OJConfig(grader=self.graders["jf-sample"])},
                          max_concurrency=concurrency, show_progress=False)
        res = (await runner.arun(self.rows))["jf-sample"]
        prompt, gen = _grader_tokens(res)
        return _RunOut(_grader_latencies(res), sum(1 for r in res if is_error(r)), prompt, gen)

    async def _oj_relevance(self, concurrency: int) -> _RunOut:
        from openjudge.graders.common.relevance import RelevanceGrader as OJRelevance
        from openjudge.runner.grading_runner import GradingRunner as OJRunner

        sink = _Sink()
        gen_kw: dict[str, Any] = {"temperature": 0.0,
                                  "max_tokens": self.max_tokens or 256}
        model = _timed_openjudge_model(sink, model=self.served, base_url=self.model.base_url,
                                       api_key="EMPTY", timeout=self.timeout, max_retries=0,
                                       **gen_kw)
        grader = OJRelevance(model=model)
        runner = OJRunner({"relevance": grader}, max_concurrency=concurrency,
                          show_progress=False)
        try:
            res = (await runner.arun(self.oj_rows))["relevance"]
        finally:
            await model.client.close()
        return _RunOut(list(sink), sum(1 for r in res if _oj_failed(r, self.scale)))

    async def run(self, variant: str, concurrency: int, rows: int | None = None) -> _RunOut:
        n = len(self.rows) if rows is None else rows
        if variant == "raw":
            return await self._raw(self.requests[:n], concurrency)
        if variant == "prefill":
            return await self._raw(self.probes[:n], concurrency)
        if rows is not None and rows < len(self.rows):  # warm-up on a few rows
            saved = self.rows, self.oj_rows
            self.rows, self.oj_rows = self.rows[:n], self.oj_rows[:n]
            try:
                return await self.run(variant, concurrency)
            finally:
                self.rows, self.oj_rows = saved
        if variant.startswith("jf-"):
            return await self._jf(variant, concurrency)
        if variant == "oj-runner":
            return await self._oj_runner(concurrency)
        if variant == "oj-relevance":
            return await self._oj_relevance(concurrency)
        raise ConfigError(f"unknown variant {variant!r}; known: {VARIANTS}")

    async def measure(self, variant: str, concurrency: int, round_: int) -> Measurement:
        before = await asyncio.to_thread(scrape_metrics, self.root)
        t0 = time.perf_counter()
        out = await self.run(variant, concurrency)
        wall = time.perf_counter() - t0
        after = await asyncio.to_thread(scrape_metrics, self.root)
        m = Measurement(variant, concurrency, round_, len(self.rows), wall, out.errors,
                        out.latencies)
        if before is not None and after is not None:
            m.prompt_tokens = after["prompt_tokens"] - before["prompt_tokens"]
            m.gen_tokens = after["generation_tokens"] - before["generation_tokens"]
            m.cache_queries = after["cache_queries"] - before["cache_queries"]
            m.cache_hits = after["cache_hits"] - before["cache_hits"]
            m.token_source = "server"
        elif out.gen_tokens is not None:
            m.prompt_tokens, m.gen_tokens, m.token_source = out.prompt_tokens, out.gen_tokens, \
                "client"
        return m


# ------------------------------------------------------------------------------- summaries

def _median(values: Sequence[float]) -> float | None:
    vals = [v for v in values if v is not None]
    return float(statistics.median(vals)) if vals else None


def _paired_ratio(ms: Sequence[Measurement], num: str, den: str, conc: int) -> float | None:
    """Median over rounds of pairs/s(num) / pairs/s(den), pairing runs of the same round."""
    by_round: dict[int, dict[str, Measurement]] = {}
    for m in ms:
        if m.concurrency == conc:
            by_round.setdefault(m.round, {})[m.variant] = m
    ratios = [r[num].pairs_per_s / r[den].pairs_per_s for r in by_round.values()
              if num in r and den in r and r[den].pairs_per_s > 0]
    return _median(ratios)


def _limit_per_round(ms: Sequence[Measurement], conc: int) -> dict[int, dict[str, float]]:
    out: dict[int, dict[str, float]] = {}
    for m in ms:
        if m.variant == "prefill" and m.concurrency == conc and m.prompt_tokens and m.pairs:
            tps = m.prompt_tokens / m.wall_s
            per_pair = m.prompt_tokens / m.pairs
            out[m.round] = {"prompt_tokens_per_s": tps, "prompt_tokens_per_pair": per_pair,
                            "limit_pairs_per_s": tps / per_pair}
    return out


def summarize(measurements: Sequence[Measurement]) -> dict[str, Any]:
    """Per (concurrency, variant) medians, the prefill limits and the goals."""
    concs = sorted({m.concurrency for m in measurements})
    variants = [v for v in VARIANTS if any(m.variant == v for m in measurements)]
    summary: list[dict[str, Any]] = []
    limits: list[dict[str, Any]] = []
    for c in concs:
        for v in variants:
            ms = [m for m in measurements if m.concurrency == c and m.variant == v]
            if not ms:
                continue
            pairs = sum(m.pairs for m in ms)
            lat = [x for m in ms for x in m.latencies]
            queries = sum(m.cache_queries or 0 for m in ms)
            hits = sum(m.cache_hits or 0 for m in ms)
            summary.append({
                "concurrency": c, "variant": v, "rounds": len(ms),
                "pairs_per_s": _median([m.pairs_per_s for m in ms]),
                "pairs_per_s_rounds": [round(m.pairs_per_s, 4) for m in ms],
                "ratio_to_raw": _paired_ratio(measurements, v, "raw", c),
                "gen_tokens_per_pair": _median([m.gen_tokens / m.pairs for m in ms
                                                if m.gen_tokens is not None and m.pairs]),
                "prompt_tokens_per_pair": _median([m.prompt_tokens / m.pairs for m in ms
                                                   if m.prompt_tokens is not None and m.pairs]),
                "latency_p50_s": percentile(lat, 50),
                "latency_p95_s": percentile(lat, 95),
                "error_rate": (sum(m.errors for m in ms) / pairs) if pairs else None,
                "prefix_cache_hit_rate": (hits / queries) if queries else None,
                "token_source": ms[0].token_source,
            })
        per_round = _limit_per_round(measurements, c)
        if per_round:
            limits.append({
                "concurrency": c,
                **{k: _median([r[k] for r in per_round.values()])
                   for k in ("prompt_tokens_per_s", "prompt_tokens_per_pair",
                             "limit_pairs_per_s")},
            })
    return {"summary": summary, "prefill_limit": limits,
            "goals": evaluate_goals(measurements)}


def evaluate_goals(measurements: Sequence[Measurement]) -> list[dict[str, Any]]:
    """The issue's four goals per concurrency, from paired per-round ratios (medians)."""
    goals: list[dict[str, Any]] = []
    for c in sorted({m.concurrency for m in measurements}):
        have = {m.variant for m in measurements if m.concurrency == c}

        def add(goal: str, value: float | None, target: float, text: str) -> None:
            goals.append({"concurrency": c,  # noqa: B023 (called within this iteration)
                          "goal": goal, "value": value, "target": text,
                          "threshold": target,
                          "met": None if value is None else bool(value >= target)})

        if {"jf-sample", "raw"} <= have:
            add("jf-sample / raw pairs/s", _paired_ratio(measurements, "jf-sample", "raw", c),
                0.95, ">= 0.95")
        if {"jf-sample", "oj-runner"} <= have:
            add("jf-sample / oj-runner (same grader)",
                _paired_ratio(measurements, "jf-sample", "oj-runner", c), 1.0, ">= 1.0")
        if {"jf-expected", "oj-relevance"} <= have:
            add("jf-expected / oj-relevance (JSON grader)",
                _paired_ratio(measurements, "jf-expected", "oj-relevance", c), 3.0, ">= 3.0")
        if {"jf-expected", "prefill"} <= have:
            per_round = _limit_per_round(measurements, c)
            ratios = [m.pairs_per_s / per_round[m.round]["limit_pairs_per_s"]
                      for m in measurements
                      if m.variant == "jf-expected" and m.concurrency == c
                      and m.round in per_round and per_round[m.round]["limit_pairs_per_s"] > 0]
            add("jf-expected / prefill-bound limit", _median(ratios), 0.8, ">= 0.80")
    return goals


# ------------------------------------------------------------------------------- entry points

async def arun_throughput(
    model: str | JudgeSpec,
    data: str | os.PathLike[str],
    *,
    concurrency: str | Sequence[int] = (1, 8),
    rounds: int = 3,
    limit: int | None = 12,
    dimension: str | None = None,
    constrained: bool = True,
    max_tokens: int | None = None,
    vote_n: int = 5,
    seed: int = 0,
    variants: Sequence[str] | None = None,
    warmup: int = 2,
    model_name: str | None = None,
    server_options: Mapping[str, Any] | None = None,
    timeout: float = 600.0,
    out_dir: str | os.PathLike[str] | None = None,
    show_progress: bool = True,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Run the throughput benchmark (see the module docstring); returns the report dict.

    ``limit`` rows (a seeded random sample; None for all) are graded by every variant in each of
    ``rounds`` rounds per concurrency. Before measuring (when ``warmup`` > 0): every row once
    as a ``max_tokens=1`` probe (so a server's prefix cache, if on, holds judgeforge's prompts
    for all variants alike), then ``warmup`` rows of every variant.
    With ``out_dir`` the report is written to ``throughput.json`` and ``throughput.md``.
    """
    from judgeforge.benchmarks import report as report_mod
    from judgeforge.data.io import load_records
    from judgeforge.graders.runner import record_mapper

    started = time.perf_counter()
    concs = parse_concurrency(concurrency)
    if rounds < 1:
        raise ConfigError("--rounds must be >= 1")
    chosen = list(variants) if variants else list(VARIANTS)
    unknown = [v for v in chosen if v not in VARIANTS]
    if unknown:
        raise ConfigError(f"unknown variant(s) {unknown}; known: {', '.join(VARIANTS)}")
    spec = model if isinstance(model, JudgeSpec) else parse_judge_spec(
        model, model_name=model_name, server_options=server_options)

    loaded = load_records(data)
    info = loaded.info
    dim = dimension or info.dimension_names[0]
    scale = info.scale(dim)
    records, _ = select_rows(loaded.records, dim, limit=limit, seed=seed)
    if not records:
        raise DataError(f"{data}: no row is labelled for {dim!r}")
    rows = [record_mapper(r) for r in records]
    template = spec.template(dim, scale)  # the judge card's prompt, if the judge has one
    notes: list[str] = []
    measurements: list[Measurement] = []
    rng = random.Random(seed)

    async with open_judge(spec, timeout=timeout) as judge:
        served = await served_model_name(judge)
        bench = _Bench(judge, served, rows, template, constrained=constrained,
                       max_tokens=max_tokens, vote_n=vote_n, timeout=timeout,
                       scale=(scale.min, scale.max))
        await bench.setup()
        if not bench.oj_available:
            dropped = [v for v in chosen if v in OPENJUDGE_VARIANTS]
            if dropped:
                notes.append(f"py-openjudge is not installed: skipped {dropped}")
            chosen = [v for v in chosen if v not in OPENJUDGE_VARIANTS]
        oj_logger: Any = None
        if bench.oj_available:
            from loguru import logger as oj_logger

            oj_logger.disable("openjudge")  # it logs every failed row at ERROR
        steps = len(concs) * rounds * len(chosen) + (len(chosen) + 1 if warmup else 0)
        bar = None
        if show_progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=steps, desc="bench throughput", unit="run", dynamic_ncols=True)
        try:
            if warmup:
                if bar is not None:
                    bar.set_postfix_str("warm-up: every row once, max_tokens=1")
                await bench.run("prefill", max(concs))
                if bar is not None:
                    bar.update(1)
                for v in chosen:
                    if bar is not None:
                        bar.set_postfix_str(f"warm-up {v}")
                    await bench.run(v, min(concs), rows=min(warmup, len(rows)))
                    if bar is not None:
                        bar.update(1)
            for c in concs:
                for r in range(rounds):
                    order = list(chosen)
                    rng.shuffle(order)
                    for v in order:
                        if bar is not None:
                            bar.set_postfix_str(f"c={c} round {r + 1} {v}")
                        m = await bench.measure(v, c, r)
                        measurements.append(m)
                        line = (f"c={c} round {r + 1}/{rounds} {v}: {m.pairs_per_s:.3f} pairs/s "
                                f"({m.pairs} pairs in {m.wall_s:.1f} s, {m.errors} errors)")
                        log.info("%s", line)
                        if progress is not None:
                            progress(line)
                        if bar is not None:
                            bar.update(1)
        finally:
            if bar is not None:
                bar.close()
            if oj_logger is not None:
                oj_logger.enable("openjudge")
            await bench.close()
        base_url = judge.base_url
        request_example = bench.requests[0]

    result = summarize(measurements)
    by = {(e["concurrency"], e["variant"]): e for e in result["summary"]}
    for c in concs:
        raw, js = by.get((c, "raw")), by.get((c, "jf-sample"))
        if raw and js and raw.get("prompt_tokens_per_pair") and js.get("prompt_tokens_per_pair"):
            if abs(raw["prompt_tokens_per_pair"] - js["prompt_tokens_per_pair"]) > 0.5:
                notes.append(f"c={c}: raw and jf-sample prompt tokens per pair differ "
                             f"({raw['prompt_tokens_per_pair']:.1f} vs "
                             f"{js['prompt_tokens_per_pair']:.1f}): not the same requests")
    hit = [e["prefix_cache_hit_rate"] for e in result["summary"]
           if e.get("prefix_cache_hit_rate") is not None]
    if hit and max(hit) > 0.5:
        notes.append("the server's prefix cache served most prompt tokens (the same rows are "
                     "sent by every variant): prefill is cheaper than on fresh data; start the "
                     "server with --no-enable-prefix-caching for a fresh-data prefill limit")
    for e in result["summary"]:
        if e["variant"] == "oj-relevance" and (e.get("error_rate") or 0) > 0.5:
            notes.append(
                f"c={e['concurrency']}: OpenJudge's JSON RelevanceGrader failed on "
                f"{e['error_rate']:.0%} of pairs (an error, or its silent 0 for an unparsable "
                f"answer) with {e.get('gen_tokens_per_pair') or 0:.0f} generated tokens per pair "
                f"(max_tokens {max_tokens or 256}): its JSON 'reason' did not finish; its pairs/s "
                "is that of max_tokens-long answers")
            break
    notes.append("judgeforge's model is created with max_concurrency=None here, so the runner's "
                 "max_concurrency is the only limit, as for the raw client and OpenJudge")
    notes.append("timings come from a shared machine; compare ratios within a round (paired), "
                 "not absolute numbers across runs")
    report: dict[str, Any] = {
        "kind": "judgeforge.bench.throughput",
        "version": 1,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "setup": {
            "model": spec.target, "label": spec.label, "served_model": served,
            "base_url": base_url, "data": str(data), "dimension": dim,
            "scale": [scale.min, scale.max], "rows": len(rows), "seed": seed,
            "concurrency": concs, "rounds": rounds, "variants": chosen,
            "constrained": constrained, "max_tokens": max_tokens or 256, "vote_n": vote_n,
            "warmup_rows": warmup,
            "raw_request_example": {k: v for k, v in request_example.items() if k != "messages"},
        },
        **result,
        "measurements": [asdict(m) | {"pairs_per_s": m.pairs_per_s} for m in measurements],
        "notes": notes,
        "environment": {"python": platform.python_version(), "cpus": os.cpu_count(),
                        "machine": platform.machine()},
        "timings": {"total_s": round(time.perf_counter() - started, 3)},
    }
    if out_dir is not None:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        (out / "throughput.json").write_text(json.dumps(report, indent=2) + "\n")
        (out / "throughput.md").write_text(report_mod.throughput_markdown(report))
    return report


def run_throughput(model: str | JudgeSpec, data: str | os.PathLike[str],
                   **kw: Any) -> dict[str, Any]:
    """Synchronous :func:`arun_throughput`."""
    return asyncio.run(arun_throughput(model, data, **kw))
