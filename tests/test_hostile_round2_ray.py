"""Issue 23, cases 7-9: Ray grading keys, fingerprints and stale rows are the runner's.

A real local Ray (one per module) runs ``RayGradingJob`` with ``batch_size=2``; the judge is a
:class:`~judgeforge.benchmarks.grade_ray.StubEndpoint` (``_stub_`` in the names): an
OpenAI-compatible server on 127.0.0.1 whose score is a fixed function of the prompt, so every
row's right score is known. ``judgeforge grade`` (``GradingRunner``) grades the same rows with
the same stub, and both must agree row for row: keys, scores, and what a rerun does.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from judgeforge.benchmarks.grade_ray import StubEndpoint
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


@pytest.fixture(scope="module")
def stub() -> Iterator[StubEndpoint]:
    server = StubEndpoint()
    try:
        yield server
    finally:
        server.close()


def _grader(url: str, mode: str = "sample") -> Any:
    model = OpenAIChatModel(base_url=url, timeout=60.0, max_retries=1,
                            retry_initial_wait=0.05, retry_max_wait=0.2)
    return get_grader("helpfulness", model, mode=mode, seed=0, max_tokens=48,
                      **({"n": 3} if mode == "vote" else {}))


def _write(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _runner(data: Path, url: str, out: Path, mode: str = "sample") -> tuple[dict[str, Any], Any]:
    """``judgeforge grade``'s path: read_rows + GradingRunner with a results file."""
    from judgeforge.graders.cli_grade import read_rows
    from judgeforge.graders.results import is_score
    from judgeforge.graders.runner import GraderConfig, GradingRunner, row_keys

    rows, mapper = read_rows(data)

    async def go() -> tuple[list[Any], Any]:
        grader = _grader(url, mode)
        async with grader.model:
            runner = GradingRunner({"helpfulness": GraderConfig(grader, mapper)},
                                   show_progress=False, output=out)
            return (await runner.arun(rows))["helpfulness"], runner.summary

    results, summary = asyncio.run(go())
    return {k: (r.score if is_score(r) else None) for k, r in zip(row_keys(rows), results)}, \
        summary


def _ray(data: Path, url: str, out: Path, mode: str = "sample", **kw: Any) -> tuple[dict, Any]:
    job = RayGradingJob(_grader(url, mode), [url], batch_size=2, concurrency=2,
                        show_progress=False, **kw)
    summary = job.run(str(data), str(out))
    table = read_results(str(out))
    ids = table.column("row_id").to_pylist()
    assert len(ids) == len(set(ids))  # never a row twice
    return dict(zip(ids, table.column("score").to_pylist())), summary


def _rows(stub: StubEndpoint, tmp_path: Path) -> list[dict[str, Any]]:
    """Rows 0 and 3 share the id ``x`` (batches [0, 1] and [2, 3]) and get different scores."""
    rows = [{"id": "x", "query": "What is 2+2?", "response": "4"},
            {"id": "y", "query": "Name a colour.", "response": "Blue."},
            {"id": "z", "query": "Capital of France?", "response": "Paris."},
            {"id": "x", "query": "What is 3+3?", "response": "6"}]
    for n in range(40):  # pick the second x row's text so that its score differs from the first
        rows[3]["response"] = "6" + " indeed" * n
        scores, _ = _runner(_write(tmp_path / "probe.jsonl", rows), stub.url,
                            tmp_path / f"probe{n}.jsonl")
        x_scores = [v for k, v in scores.items() if k.startswith("x#")]
        if len(set(x_scores)) == 2:
            return rows
    raise AssertionError("no pair of x rows with different stub scores")


def test_case07_stub_same_id_rows_in_different_batches_are_all_kept(
        ray_local: Any, stub: StubEndpoint, tmp_path: Path) -> None:
    rows = _rows(stub, tmp_path)
    data = _write(tmp_path / "rows.jsonl", rows)
    want, _ = _runner(data, stub.url, tmp_path / "runner.jsonl")
    got, summary = _ray(data, stub.url, tmp_path / "out")
    assert len(got) == 4 and summary.graded == 4 and summary.rows == 4
    assert got == want  # the runner's keys (x#<content>, y, z) and scores, row for row
    assert sum(k.startswith("x#") for k in got) == 2


def test_case08_stub_content_change_and_mode_switch_regrade_like_the_runner(
        ray_local: Any, stub: StubEndpoint, tmp_path: Path) -> None:
    rows = _rows(stub, tmp_path)
    data = _write(tmp_path / "rows.jsonl", rows)
    out, res = tmp_path / "out", tmp_path / "runner.jsonl"
    _ray(data, stub.url, out)
    _runner(data, stub.url, res)
    rows[1]["response"] = "Green, mostly."  # y's content changes (a unique id: same key)
    _write(data, rows)
    got, summary = _ray(data, stub.url, out, mode="vote")
    want, rsum = _runner(data, stub.url, res, mode="vote")
    assert summary.rows == 4 and summary.graded == 4 and summary.skipped == 0
    assert summary.stale == 4 == rsum.stale  # the mode changed for all, y's text too
    assert {k: got[k] for k in want} == want
    again, third = _ray(data, stub.url, out, mode="vote")
    assert third.graded == 0 and third.skipped == 4 and again == got
    with pytest.raises(Exception, match="stored result"):  # --refuse-stale, as the runner
        _ray(data, stub.url, out, mode="sample", on_stale="refuse")


def test_case09_stub_reordering_same_id_rows_swaps_no_results(
        ray_local: Any, stub: StubEndpoint, tmp_path: Path) -> None:
    rows = _rows(stub, tmp_path)
    data = _write(tmp_path / "rows.jsonl", rows)
    out = tmp_path / "out"
    first, _ = _ray(data, stub.url, out)
    _write(data, [rows[3], rows[1], rows[2], rows[0]])  # the two x rows trade places
    got, summary = _ray(data, stub.url, out)
    want, _ = _runner(data, stub.url, tmp_path / "fresh.jsonl")  # graded from scratch
    assert summary.graded == 0 and summary.skipped == 4
    assert got == first == want  # each row keeps its own score


def test_case08_stub_cli_engine_ray_reports_every_row_of_a_jsonl_file(
        ray_local: Any, stub: StubEndpoint, tmp_path: Path) -> None:
    rows = _rows(stub, tmp_path)
    data = _write(tmp_path / "rows.jsonl", rows)
    env = dict(os.environ, RAY_ADDRESS=ray.get_runtime_context().gcs_address)
    cli = [str(Path(sys.executable).parent / "judgeforge"), "grade", "--engine", "ray",
           "--data", str(data), "--output", str(tmp_path / "out"), "--model", stub.url,
           "--batch-size", "2", "--no-progress"]
    first = subprocess.run(cli + ["--mode", "sample"], env=env, capture_output=True, text=True,
                           timeout=300)
    assert first.returncode == 0, first.stderr[-3000:]
    assert "4 row(s): graded 4" in first.stderr
    refused = subprocess.run(cli + ["--mode", "vote", "--refuse-stale"], env=env,
                             capture_output=True, text=True, timeout=300)
    assert refused.returncode == 1 and "4 stored result(s)" in refused.stderr
    second = subprocess.run(cli + ["--mode", "vote"], env=env, capture_output=True, text=True,
                            timeout=300)
    assert second.returncode == 0, second.stderr[-3000:]
    assert "4 row(s): graded 4" in second.stderr and "4 stale result(s) regraded" in second.stderr
