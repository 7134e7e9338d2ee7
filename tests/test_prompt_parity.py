"""One record-to-prompt path: what the trainers build is what every grading surface sends.

On real records (``tests/parity_cases.py``: single turn, system + multi-turn, list-form
``output``, long texts under limits, five dimensions), the training rows' messages are compared
with the messages that reach the judge model from ``judgeforge grade`` (its own row reader and
grader factory, with the judge card), the runner with ``LLMGrader.from_pretrained``, the HTTP
endpoint (``judgeforge serve``'s settings and grader pool from the card), and the quality
benchmark's judge spec; then the token ids after the real tokenizer's chat template. The judge
model is a scripted stub (it records what it is sent): these tests are about the prompt, not
the answer. The verl dataset class is checked against the same cases in
``tests/verl/test_dataset.py``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from judgeforge.card import JudgeCard
from judgeforge.data.schema import PointwiseRecord
from judgeforge.graders.llm_grader import LLMGrader
from judgeforge.models.mock import ScriptedChatModel
from judgeforge.prompt import PromptTemplate
from tests.parity_cases import parity_cases, trainer_messages

CASES = parity_cases()
IDS = [name for name, _, _ in CASES]


def _stub(template: PromptTemplate) -> ScriptedChatModel:
    return ScriptedChatModel([template.score_regex().replace("[1-5]", "3")
                              .replace("[0-4]", "3")])


def _raw_rows(name: str, records: list[PointwiseRecord]) -> list[dict[str, Any]]:
    rows = [r.to_dict() for r in records]
    if "list-form" in name:
        for row in rows:
            row["output"] = [row["output"]]
    return rows


def _sent(model: ScriptedChatModel) -> list[list[dict[str, str]]]:
    return [[dict(m) for m in call.messages] for call in model.calls]


def _card_folder(tmp_path: Path, template: PromptTemplate) -> Path:
    folder = tmp_path / "judge"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    JudgeCard.from_template(template).write(folder)
    return folder


def _grade_cli(folder: Path, rows: list[dict[str, Any]], tmp_path: Path,
               model: ScriptedChatModel) -> None:
    """``judgeforge grade --data FILE --model FOLDER``: its reader, card and grader factory."""
    from judgeforge.graders import cli_grade
    from judgeforge.graders.runner import GraderConfig, GradingRunner

    data = tmp_path / "rows.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    parser = argparse.ArgumentParser()
    cli_grade.register(parser.add_subparsers())
    args = parser.parse_args(["grade", "--data", str(data), "--model", str(folder)])
    read, mapper = cli_grade.read_rows(args.data)
    grader = cli_grade._build_grader(args, model, JudgeCard.read(folder))
    asyncio.run(GradingRunner({"g": GraderConfig(grader, mapper)}, show_progress=False)
                .arun(read))


def _endpoint(folder: Path, rows: list[dict[str, Any]], model: ScriptedChatModel) -> None:
    """``judgeforge serve FOLDER`` (no --grader/--scale): settings and graders from the card."""
    from fastapi.testclient import TestClient

    from judgeforge.graders.serving import cli_serve
    from judgeforge.graders.serving.app import create_app

    card = JudgeCard.read(folder)
    assert card is not None
    parser = argparse.ArgumentParser()
    cli_serve.register(parser.add_subparsers())
    settings = cli_serve.settings_from_args(parser.parse_args(["serve", str(folder)]), card)
    with TestClient(create_app(settings, model, card=card)) as client:
        for row in rows:
            out = row["output"][0] if isinstance(row["output"], list) else row["output"]
            extra = row.get("extra_info") or {}
            body = {"messages": row["input"], "response": out["content"],
                    "rubric": extra.get("rubric"), "reference": extra.get("reference"),
                    "dimension": list(card.dimensions), "mode": "sample"}
            answer = client.post("/v1/score", json=body)
            assert answer.status_code == 200, answer.text
            assert answer.json()["parse_status"] == "ok"


@pytest.mark.parametrize("case", range(len(CASES)), ids=IDS)
def test_stub_every_surface_sends_the_trainers_messages(case: int, tmp_path: Path,
                                                        default_model_path: Path) -> None:
    from transformers import AutoTokenizer

    from judgeforge.benchmarks.judges import parse_judge_spec
    from judgeforge.graders.runner import GraderConfig, GradingRunner, record_mapper

    name, records, template = CASES[case]
    trained = trainer_messages(records, template)
    assert len(trained) == len(records)
    folder = _card_folder(tmp_path, template)
    rows = _raw_rows(name, records)
    sent: dict[str, list[list[dict[str, str]]]] = {}

    model = _stub(template)
    _grade_cli(folder, rows, tmp_path, model)
    sent["judgeforge grade"] = _sent(model)

    model = _stub(template)
    grader = LLMGrader.from_pretrained(folder, model, mode="sample")
    asyncio.run(GradingRunner({"g": GraderConfig(grader, record_mapper)}, show_progress=False)
                .arun(rows))
    sent["from_pretrained + runner"] = _sent(model)

    model = _stub(template)
    _endpoint(folder, rows, model)
    sent["endpoint"] = _sent(model)

    if not template.multi:  # the quality benchmark grades one dimension
        (dim, scale), = template.dimensions.items()
        model = _stub(template)
        bench = LLMGrader(model, template=parse_judge_spec(str(folder)).template(dim, scale))
        asyncio.run(GradingRunner({"g": GraderConfig(bench, record_mapper)},
                                  show_progress=False).arun(rows))
        sent["bench quality"] = _sent(model)

    tok = AutoTokenizer.from_pretrained(str(default_model_path))

    def ids(messages: list[dict[str, str]]) -> list[int]:
        return list(tok.apply_chat_template(messages, add_generation_prompt=True, tokenize=True,
                                            return_dict=False))

    trained_ids = [ids(m) for m in trained]
    for surface, messages in sent.items():
        # the runner may finish rows out of order: match them by content, then compare all
        assert sorted(map(json.dumps, messages)) == sorted(map(json.dumps, trained)), surface
        assert sorted(ids(m) for m in messages) == sorted(trained_ids), surface


def test_limits_and_conversation_really_reach_the_prompt() -> None:
    """The cases exercise what they claim: cut texts, a system turn, the whole conversation."""
    by_name = {name: (records, template) for name, records, template in CASES}
    records, template = by_name["long texts with limits"]
    body = trainer_messages(records, template)[1][-1]["content"]
    assert "characters omitted ..." in body and "<think>" in body
    records, template = by_name["system + multi-turn"]
    messages = trainer_messages(records, template)[0]
    assert messages[0] == {"role": "system", "content": "You grade answers."}
    assert "<conversation>" in messages[-1]["content"]
    assert "System: You are a careful assistant." in messages[-1]["content"]
