"""Faults: the model server down or hanging, a saturated service, and hostile load.

Nothing may wait forever: every HTTP call here has a client timeout far above the service's own
(a hang fails the test as a timeout instead of blocking CI); no test asserts on durations.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from judgeforge.benchmarks.load_endpoint import amain as load_main
from judgeforge.graders.serving.app import create_app
from judgeforge.graders.serving.limits import Busy, Gate
from judgeforge.graders.serving.settings import ServiceSettings
from judgeforge.models.openai_chat import OpenAIChatModel
from tests.service_support import ThreadedUvicorn, free_port

GUARD = 120.0  # client-side bound: far above every service timeout below
FAST = dict(request_timeout_s=2.0, health_timeout_s=1.0, health_cache_s=0.0)


def _model_at(base_url: str) -> OpenAIChatModel:
    return OpenAIChatModel(model="judge", base_url=base_url, server_kind="vllm", timeout=1.0,
                           max_retries=1, retry_initial_wait=0.1, max_concurrency=None)


@pytest.fixture
def hanging_stub_server() -> Iterator[str]:
    """A stub model server on 127.0.0.1 that accepts connections and never answers (a real
    vLLM cannot be made to hang on demand)."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
                held.append(conn)  # read nothing, answer nothing
            except (TimeoutError, OSError):
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}/v1"
    finally:
        stop.set()
        thread.join(5)
        for conn in held:
            conn.close()
        listener.close()


def _post(url: str, path: str, payload: dict[str, Any]) -> httpx.Response:
    return httpx.post(url + path, json=payload, timeout=GUARD, trust_env=False)


# -- model server unreachable --------------------------------------------------------------------
def test_unreachable_model_server_is_503_with_a_reason() -> None:
    closed = f"http://127.0.0.1:{free_port()}/v1"  # nothing listens there
    app = create_app(ServiceSettings(**FAST), _model_at(closed), own_model=True)
    with ThreadedUvicorn(app) as srv:
        resp = _post(srv.url, "/v1/score", {"query": "q", "response": "r"})
        assert resp.status_code == 503
        body = resp.json()
        assert body["detail"].startswith("model server unavailable")
        assert body["error_type"] == "ModelConnectionError" and resp.headers["retry-after"]
        health = httpx.get(srv.url + "/healthz", timeout=GUARD, trust_env=False)
        assert health.status_code == 503
        assert "unreachable" in health.json()["model_server"]["error"]
        batch = _post(srv.url, "/v1/score/batch", {"items": [{"query": "q", "response": "r"}] * 3})
        assert batch.status_code == 503 and len(batch.json()["result"]["results"]) == 3


# -- model server hanging ------------------------------------------------------------------------
def test_hanging_stub_model_server_is_503_after_the_request_timeout(
        hanging_stub_server: str) -> None:
    app = create_app(ServiceSettings(**FAST), _model_at(hanging_stub_server), own_model=True)
    with ThreadedUvicorn(app) as srv:
        resp = _post(srv.url, "/v1/score", {"query": "q", "response": "r"})
        assert resp.status_code == 503
        assert resp.json()["error_type"] in ("ModelTimeoutError",)
        assert "did not answer" in resp.json()["detail"] or "timed out" in resp.json()["detail"]
        health = httpx.get(srv.url + "/healthz", timeout=GUARD, trust_env=False)
        assert health.status_code == 503
        assert "did not answer its health check" in health.json()["model_server"]["error"]
        batch = _post(srv.url, "/v1/score/batch",
                      {"items": [{"query": "q", "response": "r"}] * 4, "mode": "sample"})
        assert batch.status_code == 503
        assert {r["error_type"] for r in batch.json()["result"]["results"]} == {
            "ModelTimeoutError"}


def test_hanging_stub_model_server_hard_timeout_beats_slow_retries(
        hanging_stub_server: str) -> None:
    """The model's own timeout and retries would take ~4x longer; request_timeout_s wins."""
    slow = OpenAIChatModel(model="judge", base_url=hanging_stub_server, server_kind="vllm",
                           timeout=30.0, max_retries=3, max_concurrency=None)
    settings = ServiceSettings(request_timeout_s=1.0, health_timeout_s=1.0)
    with ThreadedUvicorn(create_app(settings, slow, own_model=True)) as srv:
        resp = _post(srv.url, "/v1/score", {"query": "q", "response": "r"})
        assert resp.status_code == 503
        assert "request_timeout_s=1" in resp.json()["detail"]


# -- saturation ----------------------------------------------------------------------------------
async def test_gate_caps_concurrency_and_bounds_the_queue() -> None:
    gate = Gate(max_concurrency=1, max_queue=1, queue_timeout_s=0.2)
    async with gate.slot():
        assert gate.stats()["in_flight"] == 1
        waiter = asyncio.ensure_future(_hold(gate))
        await asyncio.sleep(0)  # the waiter queues
        assert gate.waiting == 1
        with pytest.raises(Busy, match="max_queue=1"):
            async with gate.slot():
                pass
        with pytest.raises(Busy, match="queue_timeout_s=0.2"):
            await waiter
    assert gate.stats() == {"in_flight": 0, "waiting": 0, "max_concurrency": 1, "max_queue": 1}
    async with gate.slot():  # the slot was given back
        pass


async def _hold(gate: Gate) -> None:
    async with gate.slot():
        pass


def test_saturated_service_answers_503_busy_not_a_hang(hanging_stub_server: str) -> None:
    settings = ServiceSettings(max_concurrency=1, max_queue=0, request_timeout_s=5.0,
                               health_timeout_s=1.0, health_cache_s=0.0)
    app = create_app(settings, _model_at(hanging_stub_server), own_model=True)
    payload = {"query": "q", "response": "r", "mode": "sample"}
    with ThreadedUvicorn(app) as srv, ThreadPoolExecutor(1) as pool:
        first = pool.submit(_post, srv.url, "/v1/score", payload)  # holds the only slot
        _wait_in_flight(srv.url, 1)
        resp = _post(srv.url, "/v1/score", payload)
        assert resp.status_code == 503 and resp.json()["error_type"] == "Busy"
        assert resp.json()["detail"].startswith("service saturated")
        assert "max_queue=0" in resp.json()["detail"]
        assert first.result(timeout=GUARD).json()["error_type"] == "ModelTimeoutError"
        _wait_in_flight(srv.url, 0)


def _wait_in_flight(url: str, n: int) -> None:
    """Poll /healthz until ``n`` gradings are in flight (bounded by GUARD)."""
    deadline = time.monotonic() + GUARD
    while time.monotonic() < deadline:
        body = httpx.get(url + "/healthz", timeout=GUARD, trust_env=False).json()
        if body["gradings"]["in_flight"] == n:
            return
        time.sleep(0.05)
    raise AssertionError(f"never saw {n} grading(s) in flight")


# -- hostile load on the real stack --------------------------------------------------------------
@pytest.mark.vllm
@pytest.mark.slow
def test_bounded_hostile_load_on_the_real_stack(vllm_server: Any, capsys: Any) -> None:
    model = OpenAIChatModel(model=vllm_server.model_name, base_url=vllm_server.base_url,
                            server_kind="vllm", timeout=300, max_concurrency=None)
    settings = ServiceSettings(api_key="load-key", max_body_bytes=64_000, max_text_chars=4000,
                               max_batch=8, max_concurrency=8, request_timeout_s=300,
                               queue_timeout_s=300)
    with ThreadedUvicorn(create_app(settings, model, own_model=True)) as srv:
        code = asyncio.run(load_main([
            "--url", srv.url, "--api-key", "load-key", "--requests", "60", "--concurrency", "8",
            "--hostile", "0.25", "--max-seconds", "600", "--vllm-url", vllm_server.base_url,
            "--baseline-requests", "16"]))
        out = capsys.readouterr().out
        assert code == 0, out
        assert "server errors 0, transport errors 0" in out and "unexpected: none" in out
        assert "healthz   after the run: 200" in out and "ratio" in out
        health = httpx.get(srv.url + "/healthz", timeout=GUARD, trust_env=False)
        assert health.status_code == 200 and health.json()["gradings"]["in_flight"] == 0
