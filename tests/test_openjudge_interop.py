"""Interop with the real OpenJudge (PyPI ``py-openjudge``).

Our graders run inside OpenJudge's ``GradingRunner`` (with its executor and concurrency cap),
and OpenJudge's ``RelevanceGrader`` -- talking to our vLLM server through OpenJudge's own
``OpenAIChatModel`` -- runs inside ours; results read the same (``.name``, ``.score`` or
``.error``, ``.reason``).
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from judgeforge.graders import HelpfulnessGrader
from judgeforge.graders.results import GraderError, GraderScore, from_dict, is_error, is_score
from judgeforge.graders.runner import GraderConfig, GradingRunner, WeightedMean
from judgeforge.models.mock import ScriptedChatModel
from judgeforge.models.openai_chat import OpenAIChatModel

oj_runner = pytest.importorskip("openjudge.runner.grading_runner")
oj_schema = pytest.importorskip("openjudge.graders.schema")
oj_models = pytest.importorskip("openjudge.models")
oj_relevance = pytest.importorskip("openjudge.graders.common.relevance")

# OpenJudge's own model serialises its structured-output callback with a pydantic warning.
pytestmark = pytest.mark.filterwarnings("ignore:Pydantic serializer warnings:UserWarning")

DATA = [
    {"query": "What is AI?", "response": "AI is the field of building systems that learn."},
    {"query": "Benefits of exercise?", "response": "Exercise improves mood, sleep and health."},
    {"query": "Capital of France?", "response": "Paris."},
]


def read(result: Any) -> tuple[str, str, float | None, str | None]:
    """How a caller reads a result, whichever library produced it."""
    assert isinstance(result.name, str) and isinstance(result.reason, str)
    score = getattr(result, "score", None)
    error = getattr(result, "error", None)
    assert (score is None) != (error is None), result
    return result.name, result.reason, score, error


def test_stub_our_grader_in_openjudge_runner_respects_its_executor_cap() -> None:
    active, peak = 0, 0

    def reply(_: Any) -> str:
        return "<score>3</score>"

    class Tracking(ScriptedChatModel):
        async def achat(self, *a: Any, **kw: Any) -> Any:
            nonlocal active, peak
            active += 1
            peak = max(peak, active)
            try:
                await asyncio.sleep(0.01)
                return await super().achat(*a, **kw)
            finally:
                active -= 1

    grader = HelpfulnessGrader(Tracking(reply))
    runner = oj_runner.GradingRunner({"helpfulness": oj_runner.GraderConfig(grader=grader)},
                                     max_concurrency=2, show_progress=False)
    out = asyncio.run(runner.arun(DATA * 4))
    assert [read(r)[2] for r in out["helpfulness"]] == [3.0] * 12
    assert peak == 2  # OpenJudge's SemaphoreResourceExecutor capped our calls (and used both)


async def test_stub_our_runner_accepts_openjudge_grader_configs() -> None:
    grader = HelpfulnessGrader(ScriptedChatModel(["<score>1</score>"]))
    runner = GradingRunner({"h": oj_runner.GraderConfig(grader=grader,
                                                        mapper={"query": "q", "response": "r"})},
                           show_progress=False)
    out = await runner.arun([{"q": "a", "r": "b"}, {"q": "a"}])
    assert read(out["h"][0])[2] == 1.0
    assert isinstance(out["h"][1], GraderError) and "'r'" in out["h"][1].error


@pytest.mark.vllm
@pytest.mark.slow
async def test_our_grader_inside_openjudge_grading_runner(vllm_server: Any) -> None:
    model = OpenAIChatModel(model=vllm_server.model_name, base_url=vllm_server.base_url,
                            timeout=300)
    async with model:
        grader = HelpfulnessGrader(model, mode="expected")
        runner = oj_runner.GradingRunner(
            {"helpfulness": oj_runner.GraderConfig(grader=grader),
             "constrained": (HelpfulnessGrader(model, constrained=True), None)},
            max_concurrency=4, show_progress=False,
            aggregators=[WeightedMean("overall", {"helpfulness": 1.0, "constrained": 1.0})])
        out = await runner.arun(DATA)
    assert set(out) == {"helpfulness", "constrained", "overall"}
    for key in ("helpfulness", "constrained", "overall"):
        assert len(out[key]) == 3
        for r in out[key]:
            name, reason, score, error = read(r)
            assert isinstance(r, GraderScore), r
            assert score is not None and 0.0 <= score <= 4.0
    assert all(read(r)[0] == "helpfulness" for r in out["helpfulness"])
    # what OpenJudge's own pydantic schema makes of our values
    theirs = oj_schema.GraderScore(**out["helpfulness"][0].model_dump())
    assert theirs.score == out["helpfulness"][0].score


def reached_the_model(result: Any) -> bool:
    """A score, or an error about the model's answer -- not a failed call (these tests must
    fail when every OpenJudge call errors: "Evaluation error: Connection error.")."""
    error = (read(result)[3] or "").lower()
    return not any(s in error for s in ("connection error", "timed out", "timeout",
                                        "status code", "not found"))


@pytest.fixture
def their_model(vllm_server: Any) -> Any:
    # max_tokens caps their JSON "reason" (the untrained model rambles); a cut-off JSON
    # becomes their GraderError, which is fine here: the test is about reading results.
    return oj_models.OpenAIChatModel(model=vllm_server.model_name,
                                     base_url=vllm_server.base_url, api_key="EMPTY",
                                     max_retries=0, timeout=300, max_tokens=96)


@pytest.mark.vllm
@pytest.mark.slow
async def test_openjudge_relevance_grader_inside_our_runner(their_model: Any,
                                                            tmp_path: Path) -> None:
    theirs = oj_relevance.RelevanceGrader(model=their_model)
    out_path = tmp_path / "res.jsonl"
    runner = GradingRunner({"relevance": GraderConfig(theirs)}, max_concurrency=3,
                           show_progress=False, output=out_path)
    out = await runner.arun(DATA)
    col = out["relevance"]
    assert len(col) == 3
    for r in col:
        name, reason, score, error = read(r)
        assert name == "relevance"
        assert is_score(r) or is_error(r)
        assert isinstance(r, (oj_schema.GraderScore, oj_schema.GraderError, GraderError))
        assert reached_the_model(r), read(r)
    # their values went through our checkpoint and read back the same
    stored = [from_dict(json.loads(x)["result"]) for x in out_path.read_text().splitlines()]
    assert [read(s)[2:] for s in stored] == [read(r)[2:] for r in col]
    assert runner.summary is not None
    assert runner.summary.done + runner.summary.failed == 3

    # and one direct call, as on the seed page
    direct = await theirs.aevaluate(query=DATA[0]["query"], response=DATA[0]["response"])
    assert read(direct)[0] == "relevance"


@pytest.mark.vllm
@pytest.mark.slow
async def test_mixed_runner_ours_and_theirs_side_by_side(vllm_server: Any,
                                                         their_model: Any) -> None:
    ours_model = OpenAIChatModel(model=vllm_server.model_name, base_url=vllm_server.base_url,
                                 timeout=300)
    async with ours_model:
        runner = GradingRunner(
            {"ours": HelpfulnessGrader(ours_model, constrained=True),
             "theirs": (oj_relevance.RelevanceGrader(model=their_model), None)},
            max_concurrency=4, show_progress=False)
        out = await runner.arun(DATA)
    assert [read(r)[0] for r in out["ours"]] == ["helpfulness"] * 3
    assert [read(r)[0] for r in out["theirs"]] == ["relevance"] * 3
    assert all(reached_the_model(r) for r in out["theirs"]), [read(r) for r in out["theirs"]]
    assert all(isinstance(r, GraderScore) for r in out["ours"])
