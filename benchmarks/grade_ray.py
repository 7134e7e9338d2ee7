"""Benchmark: grading on Ray Data (``judgeforge grade --engine ray``) vs ``GradingRunner``.

    python -m judgeforge.benchmarks.grade_ray --vllm-url http://127.0.0.1:8000/v1

Prints markdown tables (not a test; nothing here asserts a speed). ``--parts`` picks:

- ``real`` (1a) same rows, same real vLLM server: the Ray path's scores against
  ``GradingRunner``'s, expected mode and sample mode (constrained, temperature 1, fixed seed),
  one request at a time after a warm-up pass, with the runner against itself as the server's
  noise floor; (1b) pairs/s of both on one endpoint, and the Ray job's fixed cost (a rerun that
  skips every row) so its steady rate shows too;
- ``scale`` (2) N = 1, 2, 4, 8 latency-bound stub endpoints on 127.0.0.1 (:class:`StubEndpoint`:
  each answers after ``--stub-delay`` seconds with at most ``--stub-cap`` requests at once, so the
  cores are not the limit): pairs/s and efficiency = pairs/s(N) / (N x pairs/s(1));
- ``http`` (2b) the actor pool against ``ray.data.llm``'s HttpRequestProcessor on one stub;
- ``fault`` (3) two endpoints, one dies after 20 answers; the first run and a rerun, rows counted
  (all present, none twice).

Loopback addresses only; every loop is bounded by the row count.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import shutil
import tempfile
import threading
import time
from collections.abc import Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

__all__ = ["StubEndpoint", "main", "stub_score", "write_pairs"]


def stub_score(messages: Any) -> int:
    """The score a stub gives a prompt: a stable function of its text (0-4)."""
    text = json.dumps(messages, sort_keys=True)
    return int(hashlib.sha1(text.encode()).hexdigest(), 16) % 5


class StubEndpoint:
    """An OpenAI-compatible chat endpoint on 127.0.0.1 in a thread (HTTP/1.0: no keep-alive).

    Answers ``<score>S</score>`` (S = :func:`stub_score` of the messages; with ``top_logprobs``
    the digit's logprobs too) after ``delay_s``, at most ``cap`` requests at once (the rest
    wait), or forwards to ``upstream`` (a real server) when given. ``die_after=K``: after K
    answered requests the endpoint dies -- requests in flight and later ones get their connection
    closed without an answer, and the port stops listening (a killed replica).
    """

    def __init__(self, *, delay_s: float = 0.0, cap: int = 4, upstream: str | None = None,
                 die_after: int | None = None, model: str = "stub-judge") -> None:
        self.delay_s, self.model, self.upstream = delay_s, model, upstream
        self.die_after = die_after
        self.served = 0
        self.refused = 0
        self.dead = False
        self._sem = threading.BoundedSemaphore(cap)
        self._lock = threading.Lock()
        stub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"

            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                self._send(200, {"object": "list", "data": [{"id": stub.model,
                                                             "object": "model"}]})

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with stub._lock:
                    if stub.dead:
                        stub.refused += 1
                        self.close_connection = True
                        self.connection.close()
                        return
                with stub._sem:
                    status, payload = stub._answer(self.path, body)
                with stub._lock:
                    if stub.dead:  # killed while this request was in flight: no answer
                        stub.refused += 1
                        self.close_connection = True
                        self.connection.close()
                        return
                    stub.served += 1
                    if stub.die_after is not None and stub.served >= stub.die_after:
                        stub._die()
                self._send(status, payload)

            def _send(self, status: int, payload: Any) -> None:
                data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def _die(self) -> None:
        self.dead = True
        threading.Thread(target=self._server.shutdown, daemon=True).start()
        self._server.socket.close()

    def _answer(self, path: str, body: bytes) -> tuple[int, Any]:
        if self.upstream is not None:
            import httpx

            r = httpx.post(self.upstream.rstrip("/") + path[len("/v1"):]
                           if path.startswith("/v1") else self.upstream + path,
                           content=body, headers={"Content-Type": "application/json"},
                           timeout=300)
            return r.status_code, r.content
        req = json.loads(body or b"{}")
        if self.delay_s:
            time.sleep(self.delay_s)
        msgs = [m for m in req.get("messages", []) if m.get("role") != "assistant"]
        score = stub_score(msgs)
        prefilled = bool(req.get("continue_final_message"))
        text = str(score) if prefilled else f"<score>{score}</score>"
        choice: dict[str, Any] = {"index": 0, "finish_reason": "stop",
                                  "message": {"role": "assistant", "content": text}}
        if req.get("logprobs"):
            top = [{"token": str(score), "logprob": -0.1, "bytes": None},
                   {"token": str((score + 1) % 5), "logprob": -2.4, "bytes": None}]
            choice["logprobs"] = {"content": [{"token": str(score), "logprob": -0.1,
                                               "bytes": None, "top_logprobs": top}]}
        n = int(req.get("n") or 1)
        choices = [dict(choice, index=i) for i in range(n)]
        return 200, {"id": "stub", "object": "chat.completion", "created": 0,
                     "model": self.model, "choices": choices,
                     "usage": {"prompt_tokens": 10, "completion_tokens": 3,
                               "total_tokens": 13}}

    def close(self) -> None:
        if not self.dead:
            self.dead = True
            self._server.shutdown()
        self._server.server_close()


def write_pairs(path: Path, n: int, *, prefix: str = "row") -> Path:
    """``n`` pointwise records (ids ``prefix-i``) as Parquet, for tests and this benchmark."""
    from judgeforge.data.io import write_records
    from judgeforge.data.schema import DatasetInfo, PointwiseRecord, Scale

    records = [PointwiseRecord.model_validate({
        "id": f"{prefix}-{i}", "input": [{"role": "user", "content": f"What is {i} plus {i}?"}],
        "output": {"content": f"It is {2 * i}." if i % 3 else "No idea.",
                   "label": {"helpfulness": 4 if i % 3 else 0}},
        "data_source": "grade_ray"}) for i in range(n)]
    return write_records(path, records, DatasetInfo(dimensions={"helpfulness": Scale()}))


def _require_loopback(url: str) -> None:
    host = urlparse(url).hostname or ""
    if host not in ("127.0.0.1", "localhost", "::1"):
        raise SystemExit(f"{url}: loopback addresses only")


def _grader(url: str, mode: str, *, seed: int | None = 0, timeout: float = 300.0) -> Any:
    """The benchmark's grader: expected mode, or sample mode constrained to the score format
    at temperature 1 with a fixed seed (so the seed decides the sample)."""
    from judgeforge.graders.builtin import get_grader
    from judgeforge.models.openai_chat import OpenAIChatModel

    model = OpenAIChatModel(base_url=url, timeout=timeout, max_retries=2,
                            retry_initial_wait=0.2, retry_max_wait=1.0)
    if mode == "sample":
        return get_grader("helpfulness", model, mode="sample", constrained=True,
                          temperature=1.0, seed=seed, max_tokens=16)
    return get_grader("helpfulness", model, mode=mode, seed=seed, max_tokens=48)


async def _runner_scores(data: Path, url: str, mode: str, concurrency: int
                         ) -> tuple[dict[str, float | None], float]:
    from judgeforge.graders.cli_grade import read_rows
    from judgeforge.graders.results import is_score
    from judgeforge.graders.runner import GraderConfig, GradingRunner, row_keys

    rows, mapper = read_rows(data)
    grader = _grader(url, mode)
    async with grader.model:
        runner = GradingRunner({"helpfulness": GraderConfig(grader, mapper)},
                               max_concurrency=concurrency, show_progress=False)
        t0 = time.perf_counter()
        res = (await runner.arun(rows))["helpfulness"]
        dt = time.perf_counter() - t0
    return ({k: (r.score if is_score(r) else None) for k, r in zip(row_keys(rows), res)},
            len(rows) / dt)


def _ray_scores(data: Path, out: Path, urls: Sequence[str], mode: str, concurrency: int,
                batch_size: int, *, rerun: bool = False) -> tuple[dict[str, float | None], Any,
                                                                  float]:
    """Scores by row id, the summary, and the seconds of a rerun that skips every row (the
    job's fixed cost: Ray Data planning, actor start, shard scan) when ``rerun``."""
    from judgeforge.graders.distributed import RayGradingJob, read_results

    shutil.rmtree(out, ignore_errors=True)
    job = RayGradingJob(_grader(urls[0], mode), urls, concurrency=concurrency,
                        batch_size=batch_size, show_progress=False, cooldown_s=2.0)
    summary = job.run(str(data), str(out))
    fixed = job.run(str(data), str(out)).seconds if rerun else 0.0
    t = read_results(str(out))
    return (dict(zip(t.column("row_id").to_pylist(), t.column("score").to_pylist())), summary,
            fixed)


def _http_processor_rate(data: Path, url: str, batch_size: int) -> tuple[float, int]:
    """pairs/s and scored rows through ``ray.data.llm``'s HttpRequestProcessor (one URL), with
    the grader building each request and parsing each answer (sample mode)."""
    import ray
    from ray.data.llm import HttpRequestProcessorConfig, build_processor

    from judgeforge.graders.distributed.endpoints import detach_model
    from judgeforge.graders.distributed.vllm_engine import (
        engine_request,
        engine_result,
        prepare_batch,
    )
    from judgeforge.graders.results import is_score

    blob = detach_model(_grader(url, "sample"))

    def pre(row: dict[str, Any]) -> dict[str, Any]:
        req = engine_request(blob, json.loads(row["kwargs"]))
        sp = dict(req["sampling_params"])
        body = {"model": "stub-judge", "messages": req["messages"], **sp}
        if "structured_outputs" in body:
            body["structured_outputs"] = sp["structured_outputs"]
        return {"payload": body, "kwargs": row["kwargs"], "row_id": row["row_id"]}

    def post(row: dict[str, Any]) -> dict[str, Any]:
        resp = row["http_response"]
        text = resp["choices"][0]["message"]["content"]
        res = engine_result(blob, json.loads(row["kwargs"]), {"generated_text": text})
        return {"row_id": row["row_id"], "scored": is_score(res)}

    cfg = HttpRequestProcessorConfig(url=url.rstrip("/") + "/chat/completions",
                                     batch_size=batch_size, concurrency=1, max_retries=2)
    t0 = time.perf_counter()
    ds = ray.data.read_parquet(str(data)).map_batches(
        prepare_batch, batch_format="pyarrow", compute=ray.data.ActorPoolStrategy(size=1),
        num_cpus=0.25,  # the HTTP stage's actor takes a whole CPU of the two
        fn_constructor_kwargs={"name": "helpfulness", "fmt": "parquet", "done": frozenset(),
                               "run_id": "http"})
    rows = build_processor(cfg, preprocess=pre, postprocess=post)(ds.drop_columns(["error"]))
    out = rows.take_all()
    return len(out) / (time.perf_counter() - t0), sum(bool(r["scored"]) for r in out)


def _fmt(x: float) -> str:
    return f"{x:.2f}"


def _compare(want: dict[str, Any], got: dict[str, Any]) -> tuple[int, float]:
    """(rows with equal values, max abs difference where both are scores)."""
    equal = sum(1 for k in want if want[k] == got.get(k))
    both = [k for k in want if want[k] is not None and got.get(k) is not None]
    return equal, max((abs(want[k] - got[k]) for k in both), default=0.0)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the parts and print the table."""
    import ray

    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--vllm-url", default="http://127.0.0.1:8000/v1",
                   help="the real vLLM server (loopback)")
    p.add_argument("--rows", type=int, default=24, help="rows for the equality check")
    p.add_argument("--speed-rows", type=int, default=96, help="rows for runner vs Ray pairs/s")
    p.add_argument("--concurrency", type=int, default=8, help="requests in flight per endpoint")
    p.add_argument("--stub-rows", type=int, default=480, help="rows for the scaling runs")
    p.add_argument("--stub-delay", type=float, default=0.5, help="stub answer delay (s)")
    p.add_argument("--stub-cap", type=int, default=4, help="stub concurrency cap")
    p.add_argument("--endpoints", default="1,2,4,8", help="N values for the scaling runs")
    p.add_argument("--parts", default="real,scale,http,fault",
                   help="comma-separated parts to run: real (1a/1b, needs the vLLM server), "
                        "scale (2), http (2b), fault (3)")
    args = p.parse_args(argv)
    _require_loopback(args.vllm_url)
    if not (1 <= args.rows <= 10_000 and 1 <= args.speed_rows <= 10_000
            and 1 <= args.stub_rows <= 100_000):
        raise SystemExit("--rows/--speed-rows must be 1-10000 and --stub-rows 1-100000")
    work = Path(tempfile.mkdtemp(prefix="grade_ray_bench_"))
    lines: list[str] = []
    # 4 logical CPUs on the 2 cores: the HTTP processor part holds two actors and a map task
    ray.init(num_cpus=4, include_dashboard=False, object_store_memory=200 * 1024 ** 2,
             log_to_driver=False)
    try:
        parts = set(args.parts.split(","))
        if "real" in parts:
            data = write_pairs(work / "real.parquet", args.rows)
            lines += ["## 1a. Same rows, same real vLLM server: Ray scores vs GradingRunner's",
                      "(one request at a time on both sides, after a warm-up pass that fills "
                      "the prefix cache; 'runner twice' is the server's own noise floor)", "",
                      "| mode | rows | equal (ray vs runner) | max abs diff | equal (runner "
                      "twice) | scored (runner / ray) |", "|---|---|---|---|---|---|"]
            for mode in ("expected", "sample"):
                asyncio.run(_runner_scores(data, args.vllm_url, mode, 1))  # warm-up
                want, _ = asyncio.run(_runner_scores(data, args.vllm_url, mode, 1))
                got, _, _ = _ray_scores(data, work / f"eq-{mode}", [args.vllm_url], mode, 1, 8)
                again, _ = asyncio.run(_runner_scores(data, args.vllm_url, mode, 1))
                eq, diff = _compare(want, got)
                eq2, _ = _compare(want, again)
                lines.append(f"| {mode} | {len(want)} | {eq}/{len(want)} | {diff:.1e} | "
                             f"{eq2}/{len(want)} | {sum(v is not None for v in want.values())}"
                             f" / {sum(v is not None for v in got.values())} |")
            data = write_pairs(work / "speed.parquet", args.speed_rows, prefix="speed")
            lines += ["", f"## 1b. Pairs/s on one real endpoint ({args.speed_rows} rows, "
                      f"expected mode, {args.concurrency} in flight)", "",
                      "| path | pairs/s | seconds | note |", "|---|---|---|---|"]
            asyncio.run(_runner_scores(data, args.vllm_url, "expected", args.concurrency))
            _, runner_rate = asyncio.run(_runner_scores(data, args.vllm_url, "expected",
                                                        args.concurrency))
            _, summ, fixed = _ray_scores(data, work / "speed", [args.vllm_url], "expected",
                                         args.concurrency, 32, rerun=True)
            steady = summ.graded / max(1e-9, summ.seconds - fixed)
            lines += [f"| GradingRunner | {_fmt(runner_rate)} | "
                      f"{args.speed_rows / runner_rate:.1f} | in-process |",
                      f"| Ray job, wall | {_fmt(summ.pairs_per_s)} | {summ.seconds:.1f} | "
                      f"{summ.pairs_per_s / runner_rate:.2f} x runner |",
                      f"| Ray job, minus fixed cost | {_fmt(steady)} | "
                      f"{summ.seconds - fixed:.1f} | fixed cost {fixed:.1f}s (a rerun that "
                      f"skips every row); {steady / runner_rate:.2f} x runner |"]
        data = write_pairs(work / "stub.parquet", args.stub_rows)
        ns = [int(x) for x in args.endpoints.split(",")][:4] if "scale" in parts else []
        if ns:
            lines += ["", f"## 2. Scaling over latency-bound stub endpoints ({args.stub_delay}s "
                      f"per answer, at most {args.stub_cap} at once each, {args.stub_rows} rows, "
                      "expected mode)", "",
                      "| endpoints | pairs/s (wall) | efficiency (wall) | pairs/s minus fixed "
                      "cost | efficiency | rows per endpoint |", "|---|---|---|---|---|---|"]
        base_wall = base = 0.0
        for n in ns:
            stubs = [StubEndpoint(delay_s=args.stub_delay, cap=args.stub_cap) for _ in range(n)]
            try:
                _, summ, fixed = _ray_scores(data, work / f"scale-{n}", [s.url for s in stubs],
                                             "expected", args.stub_cap, 32, rerun=True)
            finally:
                for s in stubs:
                    s.close()
            steady = summ.graded / max(1e-9, summ.seconds - fixed)
            base_wall, base = base_wall or summ.pairs_per_s, base or steady
            lines.append(f"| {n} | {_fmt(summ.pairs_per_s)} | "
                         f"{summ.pairs_per_s / (base_wall * n):.2f} | {_fmt(steady)} | "
                         f"{steady / (base * n):.2f} | "
                         f"{'/'.join(str(s.served) for s in stubs)} |")
        print("\n".join(lines), flush=True)
        lines = []
        if "http" in parts:
            print("\n".join(_http_part(work, args)), flush=True)
        if "fault" in parts:
            print("\n".join(_fault_part(work, args)), flush=True)
    finally:
        ray.shutdown()
        shutil.rmtree(work, ignore_errors=True)
    print("\n".join(lines))
    return 0


def _http_part(work: Path, args: Any) -> list[str]:
    """2b: the actor pool against ``ray.data.llm``'s HttpRequestProcessor on one stub."""
    stub = StubEndpoint(delay_s=args.stub_delay, cap=args.stub_cap)
    small = write_pairs(work / "http.parquet", 96, prefix="http")
    try:
        http_rate, http_scored = _http_processor_rate(small, stub.url, args.stub_cap)
        stub.served = 0
        _, summ, _ = _ray_scores(small, work / "actor-sample", [stub.url], "sample",
                                 args.stub_cap, args.stub_cap)
    finally:
        stub.close()
    lines = ["", "## 2b. One stub endpoint, sample mode, 96 rows: actor pool vs "
              "ray.data.llm HttpRequestProcessor (wall, both including Ray start-up)", "",
              "| path | pairs/s | scored |", "|---|---|---|",
              f"| map_batches actor pool (RayGradingJob) | {_fmt(summ.pairs_per_s)} | "
              f"{summ.scored} |",
              f"| HttpRequestProcessor (batch {args.stub_cap}) | {_fmt(http_rate)} | "
              f"{http_scored} |"]
    return lines


def _fault_part(work: Path, args: Any) -> list[str]:
    """3: one of two endpoints dies mid-job; the first run and a rerun, rows counted."""
    lines = ["", "## 3. Fault: 2 endpoints, one dies after 20 answers (200 rows)", "",
              "| run | graded | scored | failed | rows in output | distinct row ids | "
              "answered (live / dying) |", "|---|---|---|---|---|---|---|"]
    live = StubEndpoint(delay_s=args.stub_delay / 5, cap=args.stub_cap)
    dying = StubEndpoint(delay_s=args.stub_delay / 5, cap=args.stub_cap, die_after=20)
    out = work / "fault"
    try:
        from judgeforge.graders.distributed import RayGradingJob, read_results

        fdata = write_pairs(work / "fault.parquet", 200)
        for run in ("first", "rerun"):
            job = RayGradingJob(_grader(live.url, "expected"), [dying.url, live.url],
                                concurrency=args.stub_cap, batch_size=16,
                                show_progress=False, cooldown_s=2.0)
            summ = job.run(str(fdata), str(out))
            t = read_results(str(out))
            ids = t.column("row_id").to_pylist()
            lines.append(f"| {run} | {summ.graded} | {summ.scored} | "
                         f"{sum(summ.failed.values())} | {len(ids)} | {len(set(ids))} | "
                         f"{live.served} / {dying.served} |")
    finally:
        live.close()
        dying.close()
    return lines


if __name__ == "__main__":
    raise SystemExit(main())
