"""ScriptedChatModel: scripted replies in the ChatModel contract (usage, latency, copies)."""

from __future__ import annotations

import asyncio
import copy

import pytest

from judgeforge.errors import ConfigError
from judgeforge.models.base import ChatChoice, TokenLogprob
from judgeforge.models.mock import ScriptedChatModel

MSGS = [{"role": "system", "content": "judge"}, {"role": "user", "content": "say <score>4</score>"}]


async def test_replies_in_turn_and_cycle() -> None:
    m = ScriptedChatModel(["a", "b"])
    texts = [(await m.achat(MSGS)).text for _ in range(3)]
    assert texts == ["a", "b", "a"]
    once = ScriptedChatModel(["a"], cycle=False)
    await once.achat(MSGS)
    with pytest.raises(ConfigError, match="ran out"):
        await once.achat(MSGS)


async def test_echo_returns_the_last_user_message_with_usage() -> None:
    resp = await ScriptedChatModel.echo().achat(MSGS)
    assert resp.text == "say <score>4</score>"
    assert resp.usage.prompt_tokens == 3 and resp.usage.completion_tokens == 2
    assert resp.latency_s >= 0 and resp.model == "scripted"


async def test_function_n_prefill_stop_and_logprobs() -> None:
    m = ScriptedChatModel(lambda msgs: "<score>3</score> because")
    resp = await m.achat(MSGS, n=2, prefill="<score>", stop=[" because"], logprobs=True)
    assert [c.text for c in resp.choices] == ["3</score>", "3</score>"]
    lp = resp.choices[0].logprobs
    assert lp is not None and lp[0] == TokenLogprob("3", 0.0, {"3": 0.0})
    assert m.calls[0].messages[-1] == {"role": "assistant", "content": "<score>"}
    assert m.calls[0].options["n"] == 2


async def test_choice_objects_pass_through_and_max_tokens_truncates() -> None:
    choice = ChatChoice(text="x", finish_reason="length")
    assert (await ScriptedChatModel([choice]).achat(MSGS)).choices[0] is choice
    resp = await ScriptedChatModel(["one two three"]).achat(MSGS, max_tokens=2)
    assert resp.text == "one two" and resp.choices[0].finish_reason == "length"


async def test_capabilities_reject_unsupported_options() -> None:
    m = ScriptedChatModel(["x"], capabilities={"n"})
    with pytest.raises(ConfigError, match="prefill"):
        await m.achat(MSGS, prefill="<score>")
    with pytest.raises(ConfigError, match="regex"):
        await m.achat(MSGS, regex="[0-4]")


async def test_deep_copies_share_script_and_calls() -> None:
    m = ScriptedChatModel(["a", "b", "c"], delay_s=0.01)
    copies = [copy.deepcopy({"model": m})["model"] for _ in range(3)]
    texts = sorted(r.text for r in await asyncio.gather(*(c.achat(MSGS) for c in copies)))
    assert texts == ["a", "b", "c"]
    assert len(m.calls) == 3
    async with m:
        pass  # aclose is a no-op
