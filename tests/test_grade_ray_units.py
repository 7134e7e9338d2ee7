"""Grading on Ray, the parts that need no Ray instance: row keys, shards, the vLLM engine
backend's request capture / answer replay and its configuration (built, not run: it needs
GPUs), argument checks, the serve-model data-parallel flag, and lazy imports."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from judgeforge.errors import ConfigError
from judgeforge.graders.builtin import get_grader
from judgeforge.graders.distributed.rows import decode_batch, input_format
from judgeforge.graders.distributed.shards import (
    compact,
    read_results,
    result_row,
    result_schema,
    results_table,
    scan,
)
from judgeforge.graders.distributed.vllm_engine import engine_request, engine_result
from judgeforge.graders.results import GraderError, GraderScore, from_dict, to_dict
from judgeforge.graders.runner import row_keys
from judgeforge.graders.runner.checkpoint import keys_from_parts
from judgeforge.models.mock import ScriptedChatModel


def _pairs(tmp_path: Path, n: int = 6) -> Path:
    from judgeforge.benchmarks.grade_ray import write_pairs

    return write_pairs(tmp_path / "pairs.parquet", n)


def test_row_keys_and_grader_inputs_match_the_runner(tmp_path: Path) -> None:
    from judgeforge.graders.cli_grade import read_rows
    from judgeforge.graders.runner.config import apply_mapper

    path = _pairs(tmp_path)
    rows, mapper = read_rows(path)
    decoded = decode_batch(pq.read_table(path), "parquet")
    assert [r.key for r in decoded] == row_keys(rows)
    for want, got in zip(rows, decoded):
        assert got.error is None and got.mapper is not None
        assert apply_mapper(got.row, got.mapper) == apply_mapper(want, mapper)


def test_plain_jsonl_rows_bad_lines_and_repeats_become_keyed_values() -> None:
    lines = [json.dumps({"query": "q", "response": "r"}), "{not json",
             json.dumps({"query": "q", "response": "r"}), json.dumps({"id": 7, "query": "a"})]
    rows = decode_batch(pa.table({"text": lines}), "jsonl")
    keys = keys_from_parts([(r.key, r.content_fp) for r in rows])  # the driver's unique keys
    assert keys[2] == keys[0] + "-2" and keys[3] == "7" and len(set(keys)) == 4
    assert rows[1].error is not None and "invalid JSON" in rows[1].error.error
    assert rows[0].error is None and input_format("x/data.jsonl") == "jsonl"


def test_a_bad_pointwise_row_names_its_field() -> None:
    table = pa.table({"input": [json.dumps([{"role": "system", "content": "no user turn"}])],
                      "output": [json.dumps({"content": "x"})], "id": ["r1"]})
    (row,) = decode_batch(table, "parquet")
    assert row.key == "r1" and row.error is not None
    assert "r1" in row.error.error and "input" in row.error.error


def test_result_rows_keep_the_runners_value(tmp_path: Path) -> None:
    score = GraderScore(name="h", score=2.5, reason="ok", metadata={
        "parse_status": "ok", "raw_output": "<score>2</score>", "latency_s": 0.1,
        "tokens": {"prompt": 10, "completion": 4, "total": 14}})
    err = GraderError(name="h", error="boom", metadata={"error_type": "ModelConnectionError",
                                                         "retryable": True})
    rows = [result_row("a", "h", score, endpoint="u1", run_id="r"),
            result_row("b", "h", err, endpoint="u2", run_id="r")]
    table = results_table(rows)
    assert table.schema == result_schema()
    assert from_dict(json.loads(rows[0]["result"])) == score
    assert rows[0]["prompt_tokens"] == 10 and rows[0]["parse_status"] == "ok"
    assert rows[1]["score"] is None and rows[1]["retryable"] is True
    assert to_dict(from_dict(json.loads(rows[1]["result"]))) == to_dict(err)


def test_compaction_keeps_one_line_per_row_and_torn_shards_are_set_aside(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    err = GraderError(name="h", error="down", metadata={"error_type": "ModelConnectionError",
                                                          "retryable": True})
    ok = GraderScore(name="h", score=3.0)
    pq.write_table(results_table([result_row("a", "h", err, endpoint=None, run_id="r1"),
                                  result_row("b", "h", ok, endpoint=None, run_id="r1")]),
                   out / "s1.parquet")
    pq.write_table(results_table([result_row("a", "h", ok, endpoint=None, run_id="r2")]),
                   out / "s2.parquet")
    (out / "s3.parquet").write_bytes(b"PAR1 torn")
    before = scan(str(out))
    assert before.torn and (out / "s3.parquet.torn").exists()
    assert ("b", "h") in before.final and ("a", "h") in before.final
    assert compact(str(out), keep_run="r2") == 1
    table = read_results(str(out))
    got = dict(zip(table.column("row_id").to_pylist(), table.column("score").to_pylist()))
    assert got == {"a": 3.0, "b": 3.0} and table.num_rows == 2


@pytest.mark.parametrize("mode,constrained", [("expected", False), ("sample", True),
                                              ("sample", False)])
def test_engine_backend_sends_the_graders_request_and_parses_with_the_grader(
        mode: str, constrained: bool) -> None:
    recorder = ScriptedChatModel(["<score>3</score>"])
    grader = get_grader("helpfulness", recorder, mode=mode, constrained=constrained, seed=7)
    kw = {"query": "What is 2+2?", "response": "4"}
    want = asyncio.run(grader.aevaluate(**kw))
    call = recorder.calls[-1]
    req = engine_request(grader, kw)
    sp = req["sampling_params"]
    assert req["messages"] == call.messages  # the mock records a prefill as the last turn
    if mode == "expected":
        assert req["messages"][-1] == {"role": "assistant", "content": "<score>"}
    assert sp.get("temperature") == call.options["temperature"]
    assert sp.get("max_tokens") == call.options["max_tokens"] and sp.get("seed") == 7
    assert ("structured_outputs" in sp) == constrained
    if mode == "expected":
        assert sp["logprobs"] == call.options["top_logprobs"]
        output = {"generated_text": "3", "generated_tokens": [51],
                  "logprobs": [{51: {"logprob": -0.05, "rank": 1, "decoded_token": "3"},
                                52: {"logprob": -3.0, "rank": 2, "decoded_token": "4"}}],
                  "num_input_tokens": 40, "num_generated_tokens": 1}
    else:
        output = {"generated_text": "<score>3</score>", "num_input_tokens": 40,
                  "num_generated_tokens": 5}
    got = engine_result(grader, kw, output)
    assert isinstance(got, GraderScore)
    assert got.metadata["tokens"] == {"prompt": 40, "completion": output["num_generated_tokens"],
                                      "total": 40 + output["num_generated_tokens"]}
    if mode == "sample":
        assert got.score == want.score == 3.0
    else:
        assert 3.0 < got.score < 3.1
    bad = engine_result(grader, kw, {"generated_text": "no score here"})
    if mode == "sample" and not constrained:
        assert isinstance(bad, GraderError) and bad.metadata["parse_status"] == "no_score"


def test_engine_backend_refuses_vote_mode_and_builds_its_config() -> None:
    from judgeforge.graders.distributed.job import RayVLLMEngineJob

    with pytest.raises(ConfigError, match="vote"):
        RayVLLMEngineJob(get_grader("helpfulness", ScriptedChatModel(["x"]), mode="vote"), "/j")
    job = RayVLLMEngineJob(get_grader("helpfulness", ScriptedChatModel(["x"])),
                           "/models/judge", replicas=4, tensor_parallel_size=2, batch_size=16)
    cfg = job.config()
    assert type(cfg).__name__ == "vLLMEngineProcessorConfig"
    assert cfg.model_source == "/models/judge" and cfg.concurrency == 4
    assert cfg.batch_size == 16 and cfg.engine_kwargs["tensor_parallel_size"] == 2
    assert cfg.should_continue_on_error is True and cfg.chat_template_stage


def test_job_arguments_are_checked() -> None:
    from judgeforge.graders.distributed import RayGradingJob
    from judgeforge.models.openai_chat import OpenAIChatModel

    grader = get_grader("helpfulness", OpenAIChatModel(base_url="http://127.0.0.1:9/v1"))
    assert RayGradingJob(grader).endpoints == ["http://127.0.0.1:9/v1"]
    with pytest.raises(ConfigError, match="twice"):
        RayGradingJob(grader, ["http://127.0.0.1:9/v1", "http://127.0.0.1:9/v1"])
    with pytest.raises(ConfigError, match="http"):
        RayGradingJob(grader, ["127.0.0.1:9"])
    with pytest.raises(ConfigError, match="model"):
        RayGradingJob(object(), ["http://127.0.0.1:9/v1"])


def test_serve_model_passes_data_parallel_size_on_gpus_only() -> None:
    from judgeforge.models.vllm_server import build_vllm_command

    cmd = build_vllm_command("/m", port=8001, device="cuda", data_parallel_size=4)
    assert cmd[cmd.index("--data-parallel-size") + 1] == "4"
    assert "--data-parallel-size" not in build_vllm_command("/m", port=8001, device="cuda")
    with pytest.raises(ConfigError, match="GPU"):
        build_vllm_command("/m", port=8001, device="cpu", data_parallel_size=2)


def test_importing_the_graders_does_not_import_ray() -> None:
    code = ("import sys, judgeforge.graders, judgeforge.graders.distributed, "
            "judgeforge.graders.cli_grade; print('ray' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "False"


def test_engine_capture_and_replay_work_inside_a_running_event_loop() -> None:
    # Ray calls the processor's pre/postprocess inside its own event loop
    grader = get_grader("helpfulness", ScriptedChatModel(["x"]), mode="sample")
    kw = {"query": "q", "response": "r"}

    async def inside() -> tuple[dict, object]:
        return engine_request(grader, kw), engine_result(grader, kw,
                                                         {"generated_text": "<score>2</score>"})

    req, res = asyncio.run(inside())
    assert req["sampling_params"]["stop"] == ["</score>"]
    assert isinstance(res, GraderScore) and res.score == 2.0
