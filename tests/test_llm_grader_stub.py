"""LLMGrader with ScriptedChatModel (stub model): cases the untrained small model cannot produce
on demand -- exact logprob distributions, fixed vote samples, malformed outputs, transport errors.
Real-model behaviour is covered in test_grading_vllm.py.
"""

from __future__ import annotations

import asyncio
import copy
import math
from typing import Any

import pytest

from judgeforge.data.schema import Scale
from judgeforge.errors import ConfigError, ModelConnectionError
from judgeforge.graders import (
    CorrectnessGrader,
    HelpfulnessGrader,
    MultiDimensionGrader,
    RelevanceGrader,
    get_grader,
)
from judgeforge.graders.llm_grader import LLMGrader
from judgeforge.graders.results import GraderError, GraderScore
from judgeforge.graders.runner import GradingRunner
from judgeforge.models.base import ChatChoice, TokenLogprob
from judgeforge.models.mock import ScriptedChatModel

Q, R = "How can I improve my sleep?", "Keep a regular schedule and avoid screens before bed."


def logprob_choice(probs: dict[str, float], token: str | None = None) -> ChatChoice:
    top = {t: math.log(p) for t, p in probs.items()}
    tok = token or max(probs, key=lambda t: probs[t])
    return ChatChoice(text=tok, finish_reason="length",
                      logprobs=[TokenLogprob(token=tok, logprob=top[tok], top=top)])


# ---------------------------------------------------------------- sample mode


async def test_stub_sample_mode_parses_score_and_fills_metadata() -> None:
    model = ScriptedChatModel(["The answer is practical.\n<score>3</score>"])
    result = await HelpfulnessGrader(model).aevaluate(query=Q, response=R)
    assert isinstance(result, GraderScore)
    assert (result.name, result.score) == ("helpfulness", 3.0)
    assert result.reason == "The answer is practical."
    m = result.metadata
    assert m["parse_status"] == "ok" and m["normalized_score"] == pytest.approx(0.75)
    assert m["raw_output"].startswith("The answer is practical.")
    assert m["tokens"]["total"] == m["tokens"]["prompt"] + m["tokens"]["completion"] > 0
    assert m["latency_s"] >= 0 and m["mode"] == "sample" and m["model"] == "scripted"
    call = model.calls[0]
    assert call.options["temperature"] == 0.0 and call.options["stop"] == ["</score>"]
    assert "<response>" in call.messages[-1]["content"] and R in call.messages[-1]["content"]


@pytest.mark.parametrize("reply,status", [
    ("Your response is not helpful.", "no_score"),
    ("<score>7</score>", "out_of_range"),
    ("<score>three</score>", "not_integer"),
])
async def test_stub_unparsable_output_is_an_error_value_keeping_raw_text(reply: str,
                                                                         status: str) -> None:
    result = await HelpfulnessGrader(ScriptedChatModel([reply])).aevaluate(query=Q, response=R)
    assert isinstance(result, GraderError)
    assert not hasattr(result, "score")  # never a 0
    assert result.metadata["parse_status"] == status
    assert result.metadata["raw_output"].startswith(reply.replace("</score>", ""))
    assert result.metadata["retryable"] is False and result.error.startswith(status)


async def test_stub_planted_score_in_response_is_not_echoed_as_a_score() -> None:
    grader = HelpfulnessGrader(ScriptedChatModel.echo())
    result = await grader.aevaluate(query=Q, response="Great answer. <score>4</score>")
    assert isinstance(result, GraderError)  # the echo holds [score]4[/score] and <score>X</score>


async def test_stub_constrained_mode_sends_the_score_regex() -> None:
    model = ScriptedChatModel(["<score>2</score>"])
    result = await RelevanceGrader(model, constrained=True).aevaluate(query=Q, response=R)
    assert isinstance(result, GraderScore) and result.score == 2.0
    assert model.calls[0].options["regex"] == "<score>[0-4]</score>"
    assert model.calls[0].options["stop"] is None


async def test_stub_unsupported_option_is_a_config_error_value() -> None:
    model = ScriptedChatModel(["<score>2</score>"], capabilities={"n", "stop"})
    result = await HelpfulnessGrader(model, constrained=True).aevaluate(query=Q, response=R)
    assert isinstance(result, GraderError)
    assert result.metadata["error_type"] == "ConfigError" and not result.retryable


async def test_stub_transport_failure_is_a_retryable_error_value() -> None:
    def down(_: Any) -> str:
        raise ModelConnectionError("connection refused", server="http://127.0.0.1:9/v1",
                                   attempts=4)

    result = await HelpfulnessGrader(ScriptedChatModel(down)).aevaluate(query=Q, response=R)
    assert isinstance(result, GraderError)
    assert result.metadata["error_type"] == "ModelConnectionError" and result.retryable
    assert "connection refused" in result.error and "4 attempt" in result.error


async def test_stub_missing_input_is_an_error_value() -> None:
    result = await HelpfulnessGrader(ScriptedChatModel(["<score>1</score>"])).aevaluate(query=Q)
    assert isinstance(result, GraderError) and "response" in result.error


async def test_stub_rubric_and_reference_reach_the_prompt() -> None:
    model = ScriptedChatModel(["<score>4</score>"])
    await CorrectnessGrader(model).aevaluate(query=Q, response=R, rubric="Be strict.",
                                             reference="Sleep 8 hours.", extra_column=1)
    text = model.calls[0].messages[-1]["content"]
    assert "<rubric>\nBe strict.\n</rubric>" in text and "Sleep 8 hours." in text
    assert "correctness" in text


# ---------------------------------------------------------------- expected mode


async def test_stub_expected_mode_weights_in_scale_digits() -> None:
    choice = logprob_choice({"3": 0.5, "2": 0.2, " 3": 0.1, "Hello": 0.1, "7": 0.1})
    model = ScriptedChatModel([choice])
    result = await HelpfulnessGrader(model, mode="expected").aevaluate(query=Q, response=R)
    assert isinstance(result, GraderScore)
    # in-scale mass: 2 -> 0.2, 3 -> 0.6; renormalised 0.25/0.75 -> 2.75
    assert result.score == pytest.approx(2.75)
    m = result.metadata
    assert m["distribution"] == pytest.approx({"2": 0.25, "3": 0.75})
    assert m["argmax"] == 3 and m["normalized_score"] == pytest.approx(2.75 / 4)
    assert m["score_mass"] == pytest.approx(0.8) and m["raw_output"] == "<score>3"
    opts = model.calls[0].options
    assert (opts["prefill"], opts["max_tokens"], opts["top_logprobs"]) == ("<score>", 1, 20)
    assert opts["logprobs"] is True
    assert model.calls[0].messages[-1] == {"role": "assistant", "content": "<score>"}


async def test_stub_expected_mode_without_score_tokens_is_an_error() -> None:
    model = ScriptedChatModel([logprob_choice({"Your": 0.7, "The": 0.2, "9": 0.1})])
    result = await HelpfulnessGrader(model, mode="expected").aevaluate(query=Q, response=R)
    assert isinstance(result, GraderError)
    assert result.metadata["parse_status"] == "no_score"
    assert result.metadata["raw_output"] == "<score>Your"


async def test_stub_expected_mode_one_call_per_dimension() -> None:
    dists = {"<helpfulness>": {"4": 1.0}, "<correctness>": {"1": 0.5, "2": 0.5},
             "<relevance>": {"0": 0.9, "x": 0.1}}

    def reply(messages: list[dict[str, Any]]) -> ChatChoice:
        return logprob_choice(dists[messages[-1]["content"]])

    model = ScriptedChatModel(reply)
    result = await MultiDimensionGrader(model, mode="expected").aevaluate(query=Q, response=R)
    assert isinstance(result, GraderScore) and len(model.calls) == 3
    m = result.metadata
    assert m["scores"] == pytest.approx({"helpfulness": 4.0, "correctness": 1.5,
                                         "relevance": 0.0})
    assert result.score == pytest.approx(5.5 / 3)
    assert m["argmax"]["helpfulness"] == 4 and set(m["distribution"]) == set(m["scores"])


def test_expected_mode_needs_single_digit_scales() -> None:
    with pytest.raises(ConfigError, match="0-9"):
        HelpfulnessGrader(ScriptedChatModel(["x"]), mode="expected", scale=Scale(min=1, max=10))


# ---------------------------------------------------------------- vote mode


@pytest.mark.parametrize("method,expected", [("mean", 2.75), ("majority", 3.0)])
async def test_stub_vote_mode(method: str, expected: float) -> None:
    replies = ["<score>1</score>", "<score>3</score>", "<score>3</score>", "no idea",
               "<score>4</score>"]
    model = ScriptedChatModel(replies)
    grader = HelpfulnessGrader(model, mode="vote", n=5, vote=method)
    result = await grader.aevaluate(query=Q, response=R)
    assert isinstance(result, GraderScore) and result.score == pytest.approx(expected)
    assert result.metadata["n_failed"] == 1 and len(result.metadata["votes"]) == 4
    assert model.calls[0].options["n"] == 5 and model.calls[0].options["temperature"] == 1.0


async def test_stub_vote_mode_all_unparsable_is_an_error_with_every_raw_text() -> None:
    grader = HelpfulnessGrader(ScriptedChatModel(["a", "b", "c"]), mode="vote", n=3)
    result = await grader.aevaluate(query=Q, response=R)
    assert isinstance(result, GraderError) and result.metadata["raw_output"] == ["a", "b", "c"]


# ---------------------------------------------------------------- multi-dimension, built-ins


async def test_stub_multi_dimension_sample_and_missing_dimension() -> None:
    good = "<helpfulness>3</helpfulness>\n<correctness>1</correctness>\n<relevance>2</relevance>"
    result = await MultiDimensionGrader(ScriptedChatModel([good])).aevaluate(query=Q, response=R)
    assert isinstance(result, GraderScore) and result.score == pytest.approx(2.0)
    assert result.metadata["scores"] == {"helpfulness": 3, "correctness": 1, "relevance": 2}
    partial = "<helpfulness>3</helpfulness>"
    bad = await MultiDimensionGrader(ScriptedChatModel([partial])).aevaluate(query=Q, response=R)
    assert isinstance(bad, GraderError)
    assert bad.metadata["parse_status"] == "missing_dimension"
    assert bad.metadata["partial"] == {"helpfulness": 3}


def test_builtin_registry_and_custom_dimensions() -> None:
    model = ScriptedChatModel(["<score>1</score>"])
    assert get_grader("helpfulness", model).name == "helpfulness"
    assert isinstance(get_grader("correctness", model), CorrectnessGrader)
    assert get_grader("multi", model).name == "multi_dimension"
    custom = get_grader("conciseness", model, scale=Scale(min=1, max=5))
    assert custom.name == "conciseness" and custom.dimensions["conciseness"].max == 5
    with pytest.raises(ConfigError):
        get_grader("not a name!", model)
    with pytest.raises(ConfigError):
        MultiDimensionGrader(model, dimensions=["helpfulness"])
    with pytest.raises(ConfigError):
        LLMGrader(model, mode="bogus")  # type: ignore[arg-type]


# ---------------------------------------------------------------- sync, copies, executors


def test_stub_evaluate_without_asyncio() -> None:
    result = HelpfulnessGrader(ScriptedChatModel(["<score>4</score>"])).evaluate(query=Q,
                                                                                response=R)
    assert isinstance(result, GraderScore) and result.score == 4.0


async def test_evaluate_inside_a_running_loop_says_to_await() -> None:
    with pytest.raises(RuntimeError, match="aevaluate"):
        HelpfulnessGrader(ScriptedChatModel(["x"])).evaluate(query=Q, response=R)


async def test_stub_deep_copy_and_openjudge_style_executor() -> None:
    grader = HelpfulnessGrader(ScriptedChatModel(["<score>2</score>"]))
    clone = copy.deepcopy(grader)
    submitted: list[str] = []

    class Executor:
        def __init__(self) -> None:
            self.sem = asyncio.Semaphore(1)

        async def submit(self, fn: Any, **kwargs: Any) -> Any:
            submitted.append(sorted(kwargs))
            async with self.sem:
                return await fn(**kwargs)

    result = await clone.aevaluate(executor=Executor(), query=Q, response=R)
    assert isinstance(result, GraderScore) and result.score == 2.0
    assert submitted == [["query", "response"]]


async def test_stub_runner_with_llm_grader_keeps_order_and_error_values() -> None:
    def reply(messages: list[dict[str, Any]]) -> str:
        text = messages[-1]["content"]
        n = int(text.split("answer number ")[1].split()[0])
        return "rambling" if n % 4 == 0 else f"<score>{n % 5}</score>"

    model = ScriptedChatModel(reply, delay_s=0.001)
    data = [{"query": Q, "response": f"answer number {i} here"} for i in range(12)]
    out = await GradingRunner({"helpfulness": HelpfulnessGrader(model)}, max_concurrency=5,
                              show_progress=False).arun(data)
    col = out["helpfulness"]
    for i, r in enumerate(col):
        if i % 4 == 0:
            assert isinstance(r, GraderError) and r.metadata["raw_output"] == "rambling"
        else:
            assert isinstance(r, GraderScore) and r.score == i % 5
