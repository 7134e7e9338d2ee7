"""Load test of the scoring endpoint (``judgeforge serve``), against raw vLLM as the baseline.

    python -m judgeforge.benchmarks.load_endpoint --url http://127.0.0.1:8080 \\
        --requests 1000 --concurrency 64 --api-key "$KEY" --vllm-url http://127.0.0.1:8000/v1

Sends a bounded number of valid ``POST /v1/score`` requests (at most ``--requests``, and none
started after ``--max-seconds``) at a fixed concurrency, and prints throughput, p50/p95/p99
latency and counts by status. With ``--vllm-url`` the same gradings go straight to the vLLM
server -- the exact chat request the grader makes (captured from the grader itself), sent with
httpx -- and the ratios endpoint/vLLM are printed. ``--hostile SHARE`` mixes in invalid requests
(oversized body, malformed JSON, missing API key, over-long text, over-long batch, wrong type)
and checks each gets its 4xx with a reason; ``/healthz`` must answer 200 afterwards.

Only loopback targets are allowed unless ``--allow-remote``. Exit code 0 when valid requests saw
no 5xx and no transport error, every hostile request got its 4xx, and ``/healthz`` stayed OK.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any
from urllib.parse import urlparse

import httpx

from judgeforge.errors import ConfigError

__all__ = ["LoadReport", "run_endpoint", "run_baseline", "grader_request_body", "main",
           "amain", "PAIRS", "HOSTILE_KINDS"]

MAX_REQUESTS = 100_000
PAIRS: tuple[tuple[str, str], ...] = (
    ("What is the capital of France?", "The capital of France is Paris."),
    ("What is the capital of France?", "I think it is Lyon, or maybe Marseille."),
    ("How do I reverse a list in Python?", "Use `my_list.reverse()` in place, or `my_list[::-1]` "
                                           "for a reversed copy."),
    ("How do I reverse a list in Python?", "Python is a snake."),
    ("Give me a tip for sleeping better.", "Keep a regular schedule and avoid screens late at "
                                           "night."),
    ("Give me a tip for sleeping better.", "asdf qwer zxcv"),
    ("What is 12 * 12?", "12 * 12 = 144."),
    ("What is 12 * 12?", "It is 124."),
)
HOSTILE_KINDS = ("oversized", "malformed_json", "no_auth", "long_text", "big_batch",
                 "wrong_type")


@dataclass
class LoadReport:
    """One run's numbers. Latencies are seconds; ``statuses`` maps status (or exception) to
    count for valid requests; ``hostile`` maps kind -> {status: count}."""

    target: str
    requests: int = 0
    concurrency: int = 0
    wall_s: float = 0.0
    statuses: dict[str, int] = field(default_factory=dict)
    scored: int = 0
    unscored: int = 0
    latencies: list[float] = field(default_factory=list, repr=False)
    hostile: dict[str, dict[str, int]] = field(default_factory=dict)
    hostile_unexpected: list[str] = field(default_factory=list)
    healthz_after: int | None = None

    @property
    def throughput(self) -> float:
        """Valid requests completed per second."""
        return len(self.latencies) / self.wall_s if self.wall_s > 0 else 0.0

    def percentile(self, q: float) -> float:
        """Latency percentile ``q`` (0-100) of valid requests (nearest rank), NaN if none."""
        data = sorted(self.latencies)
        if not data:
            return math.nan
        rank = max(1, math.ceil(q / 100 * len(data)))
        return data[rank - 1]

    @property
    def server_errors(self) -> int:
        return sum(n for s, n in self.statuses.items() if s.isdigit() and int(s) >= 500)

    @property
    def transport_errors(self) -> int:
        return sum(n for s, n in self.statuses.items() if not s.isdigit())

    def summary(self) -> dict[str, Any]:
        out = {k: v for k, v in asdict(self).items() if k != "latencies"}
        out.update(throughput_rps=self.throughput, p50_s=self.percentile(50),
                   p95_s=self.percentile(95), p99_s=self.percentile(99),
                   server_errors=self.server_errors, transport_errors=self.transport_errors)
        return out


def require_loopback(url: str, allow_remote: bool) -> None:
    """Refuse a non-loopback target unless ``allow_remote``."""
    from judgeforge.graders.serving.settings import is_loopback_host

    host = urlparse(url).hostname or ""
    if not allow_remote and not is_loopback_host(host):
        raise SystemExit(f"refusing to load-test {url}: not a loopback address (use "
                         "--allow-remote for a server you own)")


async def _drive(n: int, concurrency: int, max_seconds: float,
                 one: Callable[[int], Any]) -> float:
    """Run ``one(i)`` for i < n with ``concurrency`` workers; none starts after the deadline."""
    counter = iter(range(n))
    started = time.perf_counter()
    deadline = started + max_seconds

    async def worker() -> None:
        for i in counter:
            if time.perf_counter() > deadline:
                return
            await one(i)

    await asyncio.gather(*(worker() for _ in range(max(1, min(concurrency, n)))))
    return time.perf_counter() - started


def _valid_body(i: int, dimension: str | None, mode: str | None) -> dict[str, Any]:
    query, response = PAIRS[i % len(PAIRS)]
    body: dict[str, Any] = {"query": query, "response": response, "id": str(i)}
    if dimension:
        body["dimension"] = dimension
    if mode:
        body["mode"] = mode
    return body


def _hostile_request(kind: str, limits: dict[str, float], api_key: str | None
                     ) -> tuple[str, dict[str, Any], set[int]]:
    """(path, httpx request kwargs, acceptable statuses) for one invalid request."""
    max_body = int(limits.get("max_body_bytes", 1_000_000))
    max_text = int(limits.get("max_text_chars", 20_000))
    max_batch = int(limits.get("max_batch", 64))
    auth = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    json_type = {"content-type": "application/json"}
    if kind == "oversized":
        pad = "x" * (max_body + 1)
        return "/v1/score", {"content": json.dumps({"query": "q", "response": pad}),
                             "headers": {**auth, **json_type}}, {413}
    if kind == "malformed_json":
        return "/v1/score", {"content": b'{"query": "q", "response": ', "headers":
                             {**auth, **json_type}}, {422}
    if kind == "no_auth":
        return "/v1/score", {"json": {"query": "q", "response": "r"}}, \
            ({401} if api_key else {200})
    if kind == "long_text":
        return "/v1/score", {"json": {"query": "q", "response": "x" * (max_text + 1)},
                             "headers": auth}, {422, 413}
    if kind == "big_batch":
        items = [{"query": "q", "response": "r"}] * (max_batch + 1)
        return "/v1/score/batch", {"json": {"items": items}, "headers": auth}, {422, 413}
    if kind == "wrong_type":
        return "/v1/score", {"json": {"query": "q", "response": 123}, "headers": auth}, {422}
    raise ConfigError(f"unknown hostile kind {kind!r}")


async def _limits(client: httpx.AsyncClient, headers: dict[str, str]) -> dict[str, float]:
    try:
        resp = await client.get("/v1/graders", headers=headers)
        if resp.status_code == 200:
            return dict(resp.json().get("limits", {}))
    except (httpx.HTTPError, ValueError):
        pass
    return {}


async def run_endpoint(url: str, *, requests: int, concurrency: int, api_key: str | None = None,
                       dimension: str | None = None, mode: str | None = None,
                       hostile: float = 0.0, max_seconds: float = 600.0,
                       timeout_s: float = 300.0, warmup: int = 4) -> LoadReport:
    """Load ``url`` (the scoring API's root) with valid ``/v1/score`` requests (plus a
    ``hostile`` share of invalid ones); then check ``/healthz``."""
    report = LoadReport(target=url, concurrency=concurrency)
    auth = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    status: Counter[str] = Counter()
    hostile_status: dict[str, Counter[str]] = {}
    limits_http = httpx.Limits(max_connections=concurrency + 4,
                               max_keepalive_connections=concurrency + 4)
    async with httpx.AsyncClient(base_url=url.rstrip("/"), timeout=timeout_s, trust_env=False,
                                 limits=limits_http) as client:
        limits = await _limits(client, auth)
        for i in range(warmup):
            await client.post("/v1/score", json=_valid_body(i, dimension, mode), headers=auth)
        every = int(round(1 / hostile)) if hostile > 0 else 0
        kinds = [k for k in HOSTILE_KINDS if api_key or k != "no_auth"]

        async def one(i: int) -> None:
            if every and i % every == every - 1:
                kind = kinds[(i // every) % len(kinds)]
                path, kw, ok = _hostile_request(kind, limits, api_key)
                try:
                    resp = await client.post(path, **kw)
                    code, has_reason = str(resp.status_code), bool(_detail(resp))
                except httpx.HTTPError as exc:
                    code, has_reason = type(exc).__name__, False
                hostile_status.setdefault(kind, Counter())[code] += 1
                if not (code.isdigit() and int(code) in ok and (has_reason or code == "200")):
                    report.hostile_unexpected.append(f"{kind}: {code}")
                return
            t0 = time.perf_counter()
            try:
                resp = await client.post("/v1/score", json=_valid_body(i, dimension, mode),
                                         headers=auth)
            except httpx.HTTPError as exc:
                status[type(exc).__name__] += 1
                return
            report.latencies.append(time.perf_counter() - t0)
            status[str(resp.status_code)] += 1
            if resp.status_code == 200:
                if resp.json().get("score") is not None:
                    report.scored += 1
                else:
                    report.unscored += 1

        report.wall_s = await _drive(requests, concurrency, max_seconds, one)
        try:
            report.healthz_after = (await client.get("/healthz")).status_code
        except httpx.HTTPError:
            report.healthz_after = None
    report.requests = sum(status.values())
    report.statuses = dict(status)
    report.hostile = {k: dict(v) for k, v in hostile_status.items()}
    return report


def _detail(resp: httpx.Response) -> Any:
    try:
        return resp.json().get("detail")
    except (ValueError, AttributeError):
        return None


async def grader_request_body(dimension: str, mode: str, model_name: str,
                              constrained: bool = False) -> Callable[[int], dict[str, Any]]:
    """A function ``i -> chat-completions JSON`` that is exactly what the service's grader sends
    for pair ``i`` (captured by running the grader on a recording model)."""
    from judgeforge.graders.builtin import get_grader
    from judgeforge.models.mock import ScriptedChatModel

    recorder = ScriptedChatModel(["<score>2</score>"])
    grader = get_grader(dimension, recorder, mode=mode, constrained=constrained)
    bodies = []
    for query, response in PAIRS:
        await grader.aevaluate(query=query, response=response)
        bodies.append(_openai_body(recorder.calls[-1], model_name))
    return lambda i: bodies[i % len(bodies)]


def _openai_body(call: Any, model_name: str) -> dict[str, Any]:
    """The JSON OpenAIChatModel sends to vLLM for one recorded ``achat`` call."""
    o = call.options
    body: dict[str, Any] = {"model": model_name, "messages": call.messages}
    for key in ("temperature", "max_tokens", "seed", "stop"):
        if o.get(key) is not None:
            body[key] = o[key]
    if o.get("n", 1) != 1:
        body["n"] = o["n"]
    if o.get("logprobs") or o.get("top_logprobs") is not None:
        body["logprobs"] = True
        if o.get("top_logprobs") is not None:
            body["top_logprobs"] = o["top_logprobs"]
    if o.get("prefill") is not None:  # the prefill is already the last message
        body.update(continue_final_message=True, add_generation_prompt=False)
    if o.get("regex") is not None:
        body["structured_outputs"] = {"regex": o["regex"]}
    return body


async def run_baseline(vllm_url: str, *, requests: int, concurrency: int, dimension: str,
                       mode: str, model_name: str | None = None, constrained: bool = False,
                       max_seconds: float = 600.0, timeout_s: float = 300.0,
                       warmup: int = 4) -> LoadReport:
    """The same gradings sent straight to vLLM's ``/chat/completions`` (no service)."""
    report = LoadReport(target=vllm_url, concurrency=concurrency)
    status: Counter[str] = Counter()
    limits_http = httpx.Limits(max_connections=concurrency + 4,
                               max_keepalive_connections=concurrency + 4)
    async with httpx.AsyncClient(base_url=vllm_url.rstrip("/"), timeout=timeout_s,
                                 trust_env=False, limits=limits_http) as client:
        if model_name is None:
            model_name = (await client.get("/models")).json()["data"][0]["id"]
        body_of = await grader_request_body(dimension, mode, str(model_name), constrained)
        for i in range(warmup):
            await client.post("/chat/completions", json=body_of(i))

        async def one(i: int) -> None:
            t0 = time.perf_counter()
            try:
                resp = await client.post("/chat/completions", json=body_of(i))
            except httpx.HTTPError as exc:
                status[type(exc).__name__] += 1
                return
            report.latencies.append(time.perf_counter() - t0)
            status[str(resp.status_code)] += 1
            report.scored += resp.status_code == 200

        report.wall_s = await _drive(requests, concurrency, max_seconds, one)
    report.requests = sum(status.values())
    report.statuses = dict(status)
    return report


def _line(name: str, r: LoadReport) -> str:
    return (f"{name:<9} {r.requests:>6} req  {r.wall_s:7.1f} s  {r.throughput:7.2f} req/s  "
            f"p50 {r.percentile(50):6.2f} s  p95 {r.percentile(95):6.2f} s  "
            f"p99 {r.percentile(99):6.2f} s  statuses {dict(sorted(r.statuses.items()))}")


def print_report(endpoint: LoadReport, baseline: LoadReport | None, out: Any = None) -> None:
    """The human-readable report (to ``out``, default the current ``sys.stdout``)."""
    out = out if out is not None else sys.stdout
    print(_line("endpoint", endpoint), file=out)
    print(f"{'':<9} scored {endpoint.scored}, 200 without a score {endpoint.unscored}, "
          f"server errors {endpoint.server_errors}, transport errors "
          f"{endpoint.transport_errors}", file=out)
    if endpoint.hostile:
        print(f"{'hostile':<9} {endpoint.hostile}; unexpected: "
              f"{endpoint.hostile_unexpected or 'none'}", file=out)
    print(f"{'healthz':<9} after the run: {endpoint.healthz_after}", file=out)
    if baseline is not None:
        print(_line("raw vLLM", baseline), file=out)
        if baseline.throughput > 0:
            print(f"{'ratio':<9} throughput endpoint/vLLM "
                  f"{endpoint.throughput / baseline.throughput:.2f}, p50 endpoint/vLLM "
                  f"{endpoint.percentile(50) / baseline.percentile(50):.2f}", file=out)


def ok(endpoint: LoadReport) -> bool:
    """The run's verdict (see the module doc)."""
    return (endpoint.server_errors == 0 and endpoint.transport_errors == 0
            and not endpoint.hostile_unexpected and endpoint.healthz_after == 200)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="load_endpoint", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--url", default="http://127.0.0.1:8080",
                   help="root URL of the scoring API (default: http://127.0.0.1:8080)")
    p.add_argument("--requests", type=int, default=1000,
                   help=f"requests to send (default 1000, at most {MAX_REQUESTS})")
    p.add_argument("--concurrency", type=int, default=64,
                   help="requests in flight at once (default 64)")
    p.add_argument("--api-key", default=None, help="the service's API key, if it has one")
    p.add_argument("--dimension", default="helpfulness",
                   help="grader/dimension to request (default helpfulness)")
    p.add_argument("--mode", default="expected", choices=("expected", "sample", "vote"),
                   help="scoring mode to request (default expected)")
    p.add_argument("--vllm-url", default=None,
                   help="the vLLM server's .../v1 URL: also send the same gradings straight to "
                        "it as the baseline")
    p.add_argument("--vllm-model", default=None,
                   help="served model name at --vllm-url (default: its first model)")
    p.add_argument("--baseline-requests", type=int, default=None,
                   help="requests for the baseline (default: --requests)")
    p.add_argument("--hostile", type=float, default=0.0, metavar="SHARE",
                   help="share of invalid requests mixed in (0-0.5; e.g. 0.1), each checked "
                        "for its 4xx")
    p.add_argument("--max-seconds", type=float, default=600.0,
                   help="start no request after this many seconds per phase (default 600)")
    p.add_argument("--timeout", type=float, default=300.0,
                   help="per-request client timeout in seconds (default 300)")
    p.add_argument("--allow-remote", action="store_true",
                   help="allow non-loopback targets (only servers you own)")
    p.add_argument("--json", default=None, metavar="PATH", help="also write the numbers as JSON")
    return p


async def amain(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if not 1 <= args.requests <= MAX_REQUESTS:
        raise SystemExit(f"--requests must be in 1..{MAX_REQUESTS}")
    if not 1 <= args.concurrency <= 1024:
        raise SystemExit("--concurrency must be in 1..1024")
    if not 0 <= args.hostile <= 0.5:
        raise SystemExit("--hostile must be in 0..0.5")
    require_loopback(args.url, args.allow_remote)
    if args.vllm_url:
        require_loopback(args.vllm_url, args.allow_remote)
    endpoint = await run_endpoint(args.url, requests=args.requests, concurrency=args.concurrency,
                                  api_key=args.api_key, dimension=args.dimension,
                                  mode=args.mode, hostile=args.hostile,
                                  max_seconds=args.max_seconds, timeout_s=args.timeout)
    baseline = None
    if args.vllm_url:
        baseline = await run_baseline(
            args.vllm_url, requests=min(args.baseline_requests or args.requests, MAX_REQUESTS),
            concurrency=args.concurrency, dimension=args.dimension, mode=args.mode,
            model_name=args.vllm_model, max_seconds=args.max_seconds, timeout_s=args.timeout)
    print_report(endpoint, baseline)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump({"endpoint": endpoint.summary(),
                       "baseline": baseline.summary() if baseline else None}, fh, indent=2)
    verdict = ok(endpoint)
    print("verdict: " + ("OK" if verdict else "FAILED"))
    return 0 if verdict else 1


def main(argv: Sequence[str] | None = None) -> int:
    return asyncio.run(amain(argv))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
