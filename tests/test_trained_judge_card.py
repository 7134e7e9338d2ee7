"""A trained judge carries its own prompt (issue 14's "done when"), for real.

A tiny judge is trained with the CPU backend on a non-default dimension (``politeness``), scale
(1-5) and text limits; its folder's judge card is then the only thing that tells each grading
surface how to grade: ``judgeforge grade --model FOLDER`` (its own managed vLLM server),
``judgeforge serve FOLDER`` without ``--grader``/``--scale`` (another one), and
``LLMGrader.from_pretrained(FOLDER, model=<that server>)``. Every surface must report the trained
scale and send the trainer's prompt: the prompt token counts the real vLLM server reports equal
the chat-template token count of the trainer's messages, and vLLM's own ``/tokenize`` of those
messages gives the trainer's token ids.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from judgeforge.data.schema import DatasetInfo, PointwiseRecord, Scale
from tests.service_support import free_port

pytest.importorskip("trl")
pytest.importorskip("vllm")
pytestmark = [pytest.mark.slow, pytest.mark.vllm]

JUDGEFORGE = [sys.executable, "-m", "judgeforge.cli.main"]
GUARD = 900.0
TRAINED = {"politeness": Scale(min=1, max=5)}
WORDS = ("rude", "curt", "plain", "kind", "gracious")
OVERRIDES = [
    "sft.steps=2", "sft.batch_size=2", "grpo.max_steps=1", "grpo.group_size=2",
    "grpo.train_batch_size=2", "grpo.micro_batch_size=4", "grpo.save_freq=-1",
    "grpo.test_freq=-1", "cpu.eval_rows=4", "cpu.eval_batch_size=4", "cpu.keep_best=false",
    "prompt.max_query_chars=60", "prompt.max_response_chars=80", "prompt.use_rubric=true",
]


def _records(n: int = 16) -> list[PointwiseRecord]:
    """Politeness-labelled rows: long responses (cut by the limits), some conversations."""
    out = []
    for i in range(n):
        turns: list[dict[str, str]] = [{"role": "user", "content": f"Please help me ({i})."}]
        if i % 3 == 0:
            turns = [{"role": "system", "content": "You are a shop assistant."},
                     {"role": "user", "content": "Hello, is anyone there? " * 4},
                     {"role": "assistant", "content": "Yes, how can I help?"}, *turns]
        out.append(PointwiseRecord.model_validate({
            "input": turns,
            "output": {"content": f"Answer {i}: this reply is {WORDS[i % 5]}. " * 6,
                       "label": {"politeness": 1 + i % 5}},
            "data_source": "synthetic", "id": f"p{i}",
            "extra_info": {"rubric": "Polite replies thank the customer."}}))
    return out


@pytest.fixture(scope="module")
def judge(tmp_path_factory: pytest.TempPathFactory, default_model_path: Path) -> Path:
    from judgeforge.train import TrainConfig
    from judgeforge.train.cpu import run_cpu

    out = tmp_path_factory.mktemp("politeness-judge")
    cfg = TrainConfig.for_cpu().with_overrides(
        OVERRIDES + [f"output_dir={out}", f"model.path={default_model_path}"])
    result = run_cpu(cfg, train_records=_records(),
                     info=DatasetInfo(dimensions={"politeness": "1-5"}))
    return Path(result.final)


def _trainer_messages(judge: Path) -> list[list[dict[str, str]]]:
    """The messages the trainer built for the graded records, from the folder's card."""
    from judgeforge.card import JudgeCard
    from judgeforge.train.rows import build_rows

    card = JudgeCard.read(judge)
    assert card is not None
    return [r.prompt for r in build_rows(_records()[:4], card.template())]


def _prompt_ids(tok: Any, messages: list[dict[str, str]], mode: str) -> list[int]:
    """Token ids of the judge's prompt as a vLLM server receives it (``expected`` prefills the
    score tag and continues it)."""
    if mode == "expected":
        return list(tok.apply_chat_template(
            [*messages, {"role": "assistant", "content": "<score>"}], tokenize=True,
            continue_final_message=True, return_dict=False))
    return list(tok.apply_chat_template(messages, add_generation_prompt=True, tokenize=True,
                                        return_dict=False))


def test_card_records_the_training(judge: Path) -> None:
    from judgeforge.card import JudgeCard

    card = JudgeCard.read(judge)
    assert card is not None and dict(card.dimensions) == TRAINED
    template = card.template()
    assert (template.max_query_chars, template.max_response_chars) == (60, 80)
    assert card.scoring.mode == "expected" and card.data_fingerprint
    assert "val_mae" in card.metrics or "val_parse_rate" in card.metrics
    body = _trainer_messages(judge)[0][-1]["content"]
    assert "characters omitted" in body and "System: You are a shop assistant." in body


def test_every_surface_grades_with_the_trained_prompt_and_scale(judge: Path,
                                                                tmp_path: Path) -> None:
    from transformers import AutoTokenizer

    from judgeforge.data.io import write_records
    from judgeforge.graders.llm_grader import LLMGrader
    from judgeforge.models.openai_chat import OpenAIChatModel

    tok = AutoTokenizer.from_pretrained(str(judge))
    trained = _trainer_messages(judge)
    want = [len(_prompt_ids(tok, m, "expected")) for m in trained]
    data = write_records(tmp_path / "rows.parquet", _records()[:4],
                         DatasetInfo(dimensions={"politeness": "1-5"}))
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("JUDGEFORGE_API_KEY", None)

    # 1. judgeforge grade --model FOLDER (no --grader, --scale or --mode)
    out = subprocess.run([*JUDGEFORGE, "grade", "--data", str(data), "--model", str(judge),
                          "--no-progress", "--concurrency", "1"], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=GUARD)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "judge card of" in out.stderr and "politeness 1-5" in out.stderr
    lines = sorted((json.loads(x) for x in out.stdout.splitlines() if x.startswith("{")),
                   key=lambda r: r["index"])
    assert [r["grader"] for r in lines] == ["politeness"] * 4
    meta = [r["result"]["metadata"] for r in lines]
    assert [m["mode"] for m in meta] == ["expected"] * 4
    assert [m["tokens"]["prompt"] for m in meta] == want
    for r in lines:
        if r["result"].get("score") is not None:
            assert 1 <= r["result"]["score"] <= 5

    # 2. judgeforge serve FOLDER (no --grader / --scale), and 3. from_pretrained on its server
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen([*JUDGEFORGE, "serve", str(judge), "--port", str(port),
                             "--max-model-len", "2048", "--request-timeout-s", "600"],
                            cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    log: list[str] = []
    reader = threading.Thread(target=lambda: log.extend(iter(proc.stdout.readline, "")),
                              daemon=True)  # type: ignore[union-attr]
    reader.start()
    try:
        deadline = time.monotonic() + GUARD
        while not any("scoring API at" in line for line in log):
            assert proc.poll() is None and time.monotonic() < deadline, "".join(log)[-3000:]
            time.sleep(0.5)
        vllm_url = next(line.split("vLLM ready at ")[1].split()[0] for line in log
                        if "vLLM ready at" in line)
        graders = httpx.get(url + "/v1/graders", timeout=60, trust_env=False).json()
        assert [(g["name"], g["dimensions"]) for g in graders["graders"]] == [
            ("politeness", {"politeness": {"min": 1, "max": 5}})]
        served: list[int] = []
        for rec in _records()[:4]:
            body = {"messages": [m.model_dump() for m in rec.input], "response": rec.response,
                    "rubric": (rec.extra_info or {}).get("rubric"), "include_metadata": True}
            resp = httpx.post(url + "/v1/score", json=body, timeout=GUARD, trust_env=False)
            assert resp.status_code == 200, resp.text
            result = resp.json()
            assert result["grader"] == "politeness" and result["mode"] == "expected"
            if result["score"] is not None:
                assert 1 <= result["score"] <= 5
            served.append(result["metadata"]["tokens"]["prompt"])
        assert served == want

        # vLLM's own tokenisation of the trainer's messages is the trainer's tokenizer's
        root = vllm_url.removesuffix("/v1")
        name = httpx.get(vllm_url + "/models", timeout=60, trust_env=False).json()["data"][0]["id"]
        for messages in trained:
            tokens = httpx.post(root + "/tokenize", timeout=60, trust_env=False, json={
                "model": name, "messages": messages, "add_generation_prompt": True}).json()
            assert tokens["tokens"] == _prompt_ids(tok, messages, "sample")

        async def pretrained() -> list[Any]:
            from judgeforge.graders.runner import GraderConfig, GradingRunner, record_mapper

            model = OpenAIChatModel(model=name, base_url=vllm_url)
            async with model:
                grader = LLMGrader.from_pretrained(judge, model)
                assert dict(grader.dimensions) == TRAINED and grader.mode == "expected"
                runner = GradingRunner({"g": GraderConfig(grader, record_mapper)},
                                       max_concurrency=1, show_progress=False)
                return (await runner.arun(_records()[:4]))["g"]

        results = asyncio.run(pretrained())
        assert [r.metadata["tokens"]["prompt"] for r in results] == want
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=120)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, "".join(log)[-3000:]
