"""Issue 23, cases 10, 11, 12, 14 and the two "also seen" items: scoring, parsing and rewards.

The endpoint runs over HTTP (uvicorn on 127.0.0.1, or the ASGI transport) on the project's
scripted model or on a stub OpenAI server (``..._stub_...``: replies with ``³`` or ``-Infinity``
logprobs, and a reply that never comes, cannot be made on demand with real vLLM). The parser's
linear time is checked by metering the characters it scans and by the shape of its patterns, never
by a clock.
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import re
import socket
import threading
import time
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from judgeforge import parsing
from judgeforge.errors import ConfigError
from judgeforge.graders.serving import cli_serve
from judgeforge.graders.serving.app import create_app
from judgeforge.graders.serving.settings import ServiceSettings
from judgeforge.models.mock import ScriptedChatModel
from judgeforge.models.openai_chat import OpenAIChatModel
from judgeforge.parsing import ParsedScore, ParseFailure, ParseFailureKind, parse_score
from tests.service_support import ThreadedUvicorn
from tests.test_openai_chat_retries import Stub, _completion, stub  # noqa: F401

GUARD = 60.0  # a client timeout far above anything the service should take


def _serve_settings(*flags: str) -> ServiceSettings:
    parser = argparse.ArgumentParser()
    cli_serve.register(parser.add_subparsers())
    return cli_serve.settings_from_args(parser.parse_args(["serve", *flags]))


async def _post(app: Any, path: str, body: dict[str, Any]) -> httpx.Response:
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                     base_url="http://service", timeout=GUARD) as c:
            return await c.post(path, json=body)


# -- case 10: --scale reaches the multi-dimension grader ------------------------------------------
async def test_case10_multi_dimension_request_uses_the_served_scales() -> None:
    settings = _serve_settings("--grader", "helpfulness", "--grader", "quality",
                               "--scale", "quality=1-5", "--mode", "sample")
    model = ScriptedChatModel(["<helpfulness>3</helpfulness>\n<quality>5</quality>"])
    resp = await _post(create_app(settings, model), "/v1/score",
                       {"query": "q", "response": "r", "dimension": ["helpfulness", "quality"]})
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["parse_status"] == "ok" and body["scores"] == {"helpfulness": 3, "quality": 5}
    assert body["normalized_score"] == pytest.approx((3 / 4 + 1.0) / 2)
    prompt = model.calls[0].messages[-1]["content"]
    assert "an integer from 1 (very poor) to 5" in prompt
    assert "an integer from 0 (not helpful) to 4" in prompt


# -- case 11 and -Infinity: only ASCII digits are score tokens; -inf is probability 0 -------------
def _expected_reply(top: dict[str, float]) -> dict[str, Any]:
    body = _completion(text="3")
    first = max(top, key=lambda t: top[t])
    body["choices"][0]["logprobs"] = {"content": [
        {"token": first, "logprob": top[first], "bytes": None,
         "top_logprobs": [{"token": t, "logprob": lp, "bytes": None} for t, lp in top.items()]}]}
    return body


def _stub_app(stub: Stub, **settings: Any) -> Any:  # noqa: F811
    model = OpenAIChatModel(model="judge", base_url=stub.url, server_kind="vllm", timeout=GUARD,
                            max_retries=1, retry_initial_wait=0.05, max_concurrency=None)
    return create_app(ServiceSettings(health_cache_s=0.0, **settings), model, own_model=True)


async def test_case11_stub_non_ascii_digits_are_not_score_tokens(stub: Stub) -> None:  # noqa: F811
    stub.default = {"status": 200, "body": _expected_reply(
        {"³": -0.1, "③": -0.5, "３": -1.0, "٣": -1.5, "3": -2.0, "4": -3.0})}
    resp = await _post(_stub_app(stub), "/v1/score",
                       {"query": "q", "response": "r", "mode": "expected",
                        "include_metadata": True})
    assert resp.status_code == 200, resp.text
    meta = resp.json()["metadata"]
    assert set(meta["distribution"]) == {"3", "4"}
    p3 = math.exp(-2.0) / (math.exp(-2.0) + math.exp(-3.0))
    assert resp.json()["score"] == pytest.approx(3 * p3 + 4 * (1 - p3))


async def test_case11_stub_only_non_ascii_digits_is_a_final_parse_failure(
        stub: Stub) -> None:  # noqa: F811
    stub.default = {"status": 200, "body": _expected_reply({"³": -0.1, "③": -0.5, "３": -1.0})}
    resp = await _post(_stub_app(stub), "/v1/score",
                       {"query": "q", "response": "r", "mode": "expected",
                        "include_metadata": True})
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["score"] is None and body["parse_status"] == "no_score"
    assert body["metadata"]["retryable"] is False


def test_case11_stub_runner_marks_non_ascii_digits_final(stub: Stub) -> None:  # noqa: F811
    from judgeforge.graders.builtin import get_grader
    from judgeforge.graders.runner import GradingRunner

    stub.default = {"status": 200, "body": _expected_reply({"③": -0.1, "³": -0.2})}
    model = OpenAIChatModel(model="judge", base_url=stub.url, server_kind="vllm", timeout=GUARD,
                            max_retries=1)
    grader = get_grader("helpfulness", model, mode="expected")
    [result] = GradingRunner({"g": grader}, show_progress=False).run(
        [{"query": "q", "response": "r"}])["g"]
    assert result.metadata["parse_status"] == "no_score"
    assert result.metadata["retryable"] is False


def test_case11_sample_mode_reads_only_ascii_digits() -> None:
    for text in ("<score>３</score>", "<score>③</score>", "<score>٣</score>"):
        result = parse_score(text)
        assert isinstance(result, ParseFailure) and result.kind is ParseFailureKind.NOT_INTEGER


async def test_stub_minus_infinity_logprob_is_probability_zero_not_502(
        stub: Stub) -> None:  # noqa: F811
    stub.default = {"status": 200, "body": _expected_reply(
        {"3": -0.2, "4": float("-inf"), "2": -1.0})}
    resp = await _post(_stub_app(stub), "/v1/score",
                       {"query": "q", "response": "r", "mode": "expected",
                        "include_metadata": True})
    assert resp.status_code == 200, resp.text
    assert resp.json()["metadata"]["distribution"]["4"] == 0.0
    assert '"logprob": -Infinity' in json.dumps(_expected_reply({"4": float("-inf")}))
    assert parsing.checked_logprob(float("-inf"), "4") == float("-inf")
    for bad in (float("nan"), float("inf"), 5.0):
        with pytest.raises(Exception, match="unusable|at most 0"):
            parsing.checked_logprob(bad, "4")


# -- case 12: linear-time parsing, off the event loop ---------------------------------------------
HOSTILE = {
    "think_openers": "<think>" * 150_000,
    "score_openers": "<score>" * 150_000,
    "mixed": ("<think> a <score>1 " * 60_000),
    "spaced": ("< score   >x" * 90_000),
    "multi_dim": "<helpfulness>" * 80_000 + "<correctness>" * 80_000,
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_case12_parsing_a_megabyte_of_openers_scans_linearly(
        name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    text = HOSTILE[name]
    assert len(text) >= 1_000_000
    scanned = 0
    tokens = parsing._tokens

    def metered(pattern: re.Pattern[str], text: str) -> list[re.Match[str]]:
        nonlocal scanned
        scanned += len(text)
        return tokens(pattern, text)

    monkeypatch.setattr(parsing, "_tokens", metered)
    dims = {"helpfulness": parsing.DEFAULT_SCALE, "correctness": parsing.DEFAULT_SCALE}
    result = parse_score(text, dimensions=dims if name == "multi_dim" else None)
    assert isinstance(result, ParseFailure)
    assert scanned <= 4 * len(text), scanned  # a constant number of passes, whatever the input


def test_case12_every_parser_pattern_matches_one_tag_at_most() -> None:
    """No pattern of the parser spans text (``.*``, ``.*?``, DOTALL): a lazy span retried from
    each of N openers is what made 42 KB take 2.3 s."""
    parse_score("<think>a</think><score>1</score>", dimensions={"a": parsing.DEFAULT_SCALE,
                                                                "b": parsing.DEFAULT_SCALE})
    patterns = [v for v in vars(parsing).values() if isinstance(v, re.Pattern)]
    for fn in vars(parsing).values():
        if isinstance(fn, functools._lru_cache_wrapper):
            patterns += [fn(t) for t in ("score", "think", "a")]
    assert len(patterns) >= 4
    for pattern in patterns:
        assert not pattern.flags & re.DOTALL and ".*" not in pattern.pattern, pattern.pattern


# The regexes the linear walk replaced, as the reference for what it must reproduce.
_OLD_BLOCK = re.compile(r"<\s*think\s*>.*?<\s*/\s*think\s*>", re.IGNORECASE | re.DOTALL)


def _old_strip_thinking(text: str) -> tuple[str, str]:
    thoughts = [m.group(0) for m in _OLD_BLOCK.finditer(text)]
    visible = _OLD_BLOCK.sub(" ", text)
    close = list(parsing._THINK_CLOSE.finditer(visible))
    if close:
        thoughts.insert(0, visible[: close[-1].start()])
        visible = visible[close[-1].end():]
    opened = parsing._THINK_OPEN.search(visible)
    if opened:
        thoughts.append(visible[opened.end():])
        visible = visible[: opened.start()]
    thinking = "\n".join(parsing._THINK_OPEN.sub("", parsing._THINK_CLOSE.sub("", t)).strip()
                         for t in thoughts)
    return visible, thinking.strip()


def _old_find_last(tag: str, visible: str) -> tuple[str, tuple[int, int]] | None:
    t = re.escape(tag)
    matches = list(re.finditer(rf"<\s*{t}\s*>(.*?)<\s*/\s*{t}\s*>", visible,
                               re.IGNORECASE | re.DOTALL))
    if matches:
        return matches[-1].group(1), matches[-1].span()
    tail = re.search(rf"<\s*{t}\s*>\s*([^<\s]+)\s*$", visible, re.IGNORECASE)
    return (tail.group(1), tail.span()) if tail else None


_SOUP = st.lists(st.sampled_from([
    "<think>", "</think>", "< Think >", "</ THINK>", "<score>", "</score>", "<SCORE >",
    "< / score>", "<quality>", "</quality>", "3", "12", "x", " ", "\n", "<", ">", "/"]),
    max_size=30).map("".join)


@settings(max_examples=400, deadline=None)
@given(_SOUP)
def test_case12_the_linear_parser_reads_what_the_regexes_read(text: str) -> None:
    assert parsing.strip_thinking(text) == _old_strip_thinking(text)
    visible, _ = parsing.strip_thinking(text)
    for tag in ("score", "quality"):
        assert parsing._find_last(tag, visible) == _old_find_last(tag, visible)


def test_case12_stub_long_outputs_are_parsed_off_the_event_loop(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """While the parser works on a long output, ``/healthz`` answers (on the old code the parse
    held the loop, so the health check could not be served until the parse ended)."""
    import judgeforge.graders.llm_grader as llm_grader

    started, release = threading.Event(), threading.Event()
    real = llm_grader.parse_score

    def slow_parse(text: str | None, **kw: Any) -> Any:
        if text and len(text) > 100_000:
            started.set()
            release.wait(GUARD)
        return real(text, **kw)

    monkeypatch.setattr(llm_grader, "parse_score", slow_parse)
    model = ScriptedChatModel([HOSTILE["score_openers"]])
    settings = ServiceSettings(default_mode="sample", max_text_chars=100)
    out: dict[str, Any] = {}
    with ThreadedUvicorn(create_app(settings, model)) as srv:
        def score() -> None:
            out["resp"] = httpx.post(srv.url + "/v1/score", json={"query": "q", "response": "r"},
                                     timeout=GUARD, trust_env=False)

        worker = threading.Thread(target=score)
        worker.start()
        try:
            assert started.wait(GUARD), "the grading never reached the parser"
            health = httpx.get(srv.url + "/healthz", timeout=10.0, trust_env=False)
            assert health.status_code == 200
            assert health.json()["gradings"]["in_flight"] == 1  # answered mid-parse
        finally:
            release.set()
            worker.join(GUARD)
    assert out["resp"].status_code == 200 and out["resp"].json()["parse_status"] == "no_score"


# -- also seen: a disconnected client's grading is cancelled ---------------------------------------
def _in_flight(url: str) -> int:
    resp = httpx.get(url + "/healthz", timeout=GUARD, trust_env=False)
    return int(resp.json()["gradings"]["in_flight"])


def test_stub_a_disconnected_clients_grading_is_cancelled(stub: Stub) -> None:  # noqa: F811
    stub.delay = 300.0  # the model server would take 5 minutes: nobody waits for it
    app = _stub_app(stub, default_mode="sample", request_timeout_s=600.0)
    body = json.dumps({"query": "q", "response": "r"}).encode()
    with ThreadedUvicorn(app) as srv:
        sock = socket.create_connection(("127.0.0.1", srv.port), timeout=GUARD)
        sock.sendall(b"POST /v1/score HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     + f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
        deadline = time.monotonic() + GUARD
        while stub.in_flight == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert stub.in_flight == 1 and _in_flight(srv.url) == 1
        sock.close()  # the client goes away
        while _in_flight(srv.url) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _in_flight(srv.url) == 0, "the gone client's grading still holds its slot"
        assert len(stub.requests) == 1  # cancelled, not retried


# -- case 14: reward settings ----------------------------------------------------------------------
@pytest.mark.parametrize("override, key", [
    ("reward.k=-2", "reward.k"), ("reward.k=0", "reward.k"), ("reward.k=.nan", "reward.k"),
    ("reward.k=.inf", "reward.k"), ("reward.exact_bonus=-5", "reward.exact_bonus"),
    ("reward.exact_bonus=.nan", "reward.exact_bonus"),
])
def test_case14_train_config_refuses_bad_reward_settings(override: str, key: str) -> None:
    from judgeforge.train import TrainConfig

    with pytest.raises(ConfigError, match=re.escape(key)):
        TrainConfig.for_cpu().with_overrides([override])


@pytest.mark.parametrize("extra, kwargs, where", [
    ({"judgeforge": {"dimensions": {"q": [0, 4]}, "reward": "exp_decay", "k": float("nan")}},
     {}, "extra_info"),
    ({"judgeforge": {"dimensions": {"q": [0, 4]}, "reward": "exp_decay", "k": -2.0}},
     {}, "extra_info"),
    (None, {"k": -2.0}, "keyword"),
    (None, {"k": float("inf")}, "keyword"),
])
def test_case14_compute_score_refuses_bad_k_by_name(extra: Any, kwargs: dict[str, Any],
                                                    where: str) -> None:
    from judgeforge.train.reward import compute_score

    with pytest.raises(ConfigError, match=rf"reward setting k \({where}"):
        compute_score("t", "<score>0</score>", {"q": 4}, extra, **kwargs)


@pytest.mark.parametrize("make", [
    lambda: __import__("judgeforge.rewards").rewards.get_reward_function("exp_decay",
                                                                        min_reward=5),
    lambda: __import__("judgeforge.rewards").rewards.get_reward_function("exact",
                                                                        min_reward=-1),
    lambda: __import__("judgeforge.rewards").rewards.get_reward_function("quadratic",
                                                                        min_reward=float("nan")),
    lambda: __import__("judgeforge.rewards").rewards.get_reward_function("exp_decay", k=-2),
    lambda: __import__("judgeforge.rewards").rewards.get_reward_function(
        "math:hypot", min_reward=float("inf")),
    lambda: __import__("judgeforge.rewards").rewards.ExpDecayReward(k=float("nan")),
])
def test_case14_reward_functions_refuse_bad_settings(make: Any) -> None:
    with pytest.raises(ConfigError, match="reward setting (k|min_reward)"):
        make()


def test_case14_trl_reward_refuses_a_negative_exact_bonus() -> None:
    from judgeforge.train.cpu.rewards_trl import make_reward_function

    with pytest.raises(ConfigError, match="exact_bonus"):
        make_reward_function(exact_bonus=-5)


@settings(max_examples=200, deadline=None)
@given(st.floats(1e-6, 100.0), st.floats(0.0, 1.0), st.integers(0, 4), st.integers(0, 4))
def test_case14_a_failure_never_beats_an_exact_answer(k: float, floor: float, pred: int,
                                                      true: int) -> None:
    from judgeforge.data.schema import DEFAULT_SCALE
    from judgeforge.rewards import ExpDecayReward

    fn = ExpDecayReward(k=k, min_reward=floor)
    exact = fn(true, true, DEFAULT_SCALE)
    assert fn(None, true, DEFAULT_SCALE) <= exact and fn(pred, true, DEFAULT_SCALE) <= exact
    assert math.isfinite(fn(pred, true, DEFAULT_SCALE))


def test_case12_parsed_scores_are_unchanged_on_ordinary_outputs() -> None:
    cases = {"<think>hm</think> fine <score>3</score>": 3, "<score>2": 2,
             "</think><score>4</score>": 4, "<score>1</score><score>2</score>": 2}
    for text, value in cases.items():
        result = parse_score(text)
        assert isinstance(result, ParsedScore) and result.score == value, text
