"""The judge card: round trip, template rebuild, and clear errors for unreadable cards."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from judgeforge.calibration import fit_calibration
from judgeforge.card import CARD_FILE, JudgeCard, ScoringSettings, data_fingerprint
from judgeforge.data.schema import PointwiseRecord, Scale
from judgeforge.errors import ConfigError
from judgeforge.prompt import PromptTemplate


def _template() -> PromptTemplate:
    return PromptTemplate({"quality": Scale(min=1, max=5)}, thinking=True, system_prompt="S",
                          max_query_chars=50, max_response_chars=40, task="Summaries",
                          use_reference=False, descriptions={"quality": "how good"})


def test_card_round_trip_rebuilds_the_training_template(tmp_path: Path) -> None:
    cal = fit_calibration([1.0, 2.0, 4.0], [1, 3, 5], low=1, high=5)
    card = JudgeCard.from_template(_template(), scoring=ScoringSettings(mode="expected"),
                                   calibration=cal, base_model="base",
                                   metrics={"mae": 0.5, "bad": float("nan")})
    path = card.write(tmp_path)
    assert path.name == CARD_FILE
    data = json.loads(path.read_text())
    assert data["version"] == 1 and data["dimensions"] == {"quality": [1, 5]}
    assert data["prompt"]["max_response_chars"] == 40 and data["metrics"]["bad"] is None
    back = JudgeCard.read(tmp_path)
    assert back is not None and back.template() == _template()
    assert back.calibration == cal and back.scoring.mode == "expected"
    assert back.grader_kwargs()["template"] == _template()


def test_folder_without_card_reads_as_none(tmp_path: Path) -> None:
    assert JudgeCard.read(tmp_path) is None


@pytest.mark.parametrize("patch, key", [
    ({"version": 2}, "'version'"),
    ({"dimensions": {"quality": [5, 1]}}, "'dimensions.quality'"),
    ({"prompt": {"max_response_chars": 0}}, "'prompt.max_response_chars'"),
    ({"prompt": {"template_version": 9}}, "'prompt.template_version'"),
    ({"scoring": {"mode": "guess"}}, "'scoring.mode'"),
    ({"calibration": {"x": [1]}}, "'calibration."),
    ({"surprise": 1}, "'surprise'"),
])
def test_bad_card_names_file_and_key(tmp_path: Path, patch: dict, key: str) -> None:
    data = JudgeCard.from_template(_template()).to_dict()
    data.update(patch)
    (tmp_path / CARD_FILE).write_text(json.dumps(data))
    with pytest.raises(ConfigError) as err:
        JudgeCard.read(tmp_path)
    assert str(tmp_path / CARD_FILE) in str(err.value) and key in str(err.value)


def test_unparsable_card_names_the_file(tmp_path: Path) -> None:
    (tmp_path / CARD_FILE).write_text("{not json")
    with pytest.raises(ConfigError, match=CARD_FILE):
        JudgeCard.read(tmp_path)


def test_fingerprint_is_order_independent_and_content_sensitive() -> None:
    recs = [PointwiseRecord.model_validate({"input": [{"role": "user", "content": q}],
                                            "output": {"content": "a", "label": {"q": 1}},
                                            "data_source": "t"}) for q in ("x", "y")]
    assert data_fingerprint(recs) == data_fingerprint(recs[::-1])
    assert data_fingerprint(recs) != data_fingerprint(recs[:1])
    assert data_fingerprint(recs).startswith("sha256:")


# ------------------------------------------------------------ graders built from a card (stub)
def _choice(probs: dict[str, float]):  # type: ignore[no-untyped-def]
    import math

    from judgeforge.models.base import ChatChoice, TokenLogprob

    top = {t: math.log(p) for t, p in probs.items()}
    tok = max(probs, key=lambda t: probs[t])
    return ChatChoice(text=tok, finish_reason="length",
                      logprobs=[TokenLogprob(token=tok, logprob=top[tok], top=top)])


async def test_stub_from_pretrained_grades_with_card_and_calibration(tmp_path: Path) -> None:
    from judgeforge.graders.llm_grader import LLMGrader
    from judgeforge.models.mock import ScriptedChatModel

    cal = fit_calibration([2.0, 3.0, 4.0], [1, 4, 5], low=1, high=5)
    JudgeCard.from_template(_template(), scoring=ScoringSettings(mode="expected"),
                            calibration=cal).write(tmp_path)
    model = ScriptedChatModel([_choice({"3": 0.5, "4": 0.5})])
    grader = LLMGrader.from_pretrained(tmp_path, model)
    assert grader.template == _template() and grader.mode == "expected"
    result = await grader.aevaluate(query="Q" * 80, response="R" * 80)
    assert result.metadata["raw_score"] == pytest.approx(3.5)
    assert result.score == pytest.approx(cal(3.5)) and result.score != pytest.approx(3.5)
    sent = model.calls[0].messages
    assert sent[0] == {"role": "system", "content": "S"} and "characters omitted" in sent[1][
        "content"]
    raw = LLMGrader.from_pretrained(tmp_path, model, calibration=None, mode="sample")
    assert raw.calibration is None and raw.mode == "sample"
    rescaled = LLMGrader.from_pretrained(tmp_path, model, scale=Scale(min=0, max=4))
    assert rescaled.calibration is None  # fitted on another scale: dropped
    assert dict(rescaled.dimensions) == {"quality": Scale(min=0, max=4)}


def test_stub_folder_without_card_keeps_the_default_grader(tmp_path: Path) -> None:
    from judgeforge.graders.llm_grader import LLMGrader
    from judgeforge.models.mock import ScriptedChatModel

    grader = LLMGrader.from_pretrained(tmp_path, ScriptedChatModel(["<score>1</score>"]))
    assert grader.template == PromptTemplate() and grader.calibration is None


def test_stub_builtin_graders_take_the_template_limits() -> None:
    from judgeforge.graders.builtin import HelpfulnessGrader, MultiDimensionGrader, get_grader
    from judgeforge.models.mock import ScriptedChatModel

    model = ScriptedChatModel(["<score>1</score>"])
    grader = HelpfulnessGrader(model, max_response_chars=400, task="Support chats")
    assert grader.template.max_response_chars == 400 and grader.template.task == "Support chats"
    tpl = PromptTemplate({"helpfulness": Scale()}, max_query_chars=50)
    assert HelpfulnessGrader(model, template=tpl).template is tpl
    assert get_grader("politeness", model, max_response_chars=9).template.max_response_chars == 9
    multi = MultiDimensionGrader(model, dimensions=["a", "b"], thinking=True)
    assert multi.template.thinking
    with pytest.raises(ConfigError, match="not both"):
        HelpfulnessGrader(model, template=tpl, max_response_chars=4)
    with pytest.raises(ConfigError, match="template grades"):
        HelpfulnessGrader(model, template=_template())


def test_stub_explicit_cli_options_override_the_card() -> None:
    import argparse

    from judgeforge.graders import cli_grade
    from judgeforge.graders.serving import cli_serve
    from judgeforge.models.mock import ScriptedChatModel

    card = JudgeCard.from_template(_template(), scoring=ScoringSettings(mode="expected"))
    parser = argparse.ArgumentParser()
    subs = parser.add_subparsers()
    cli_grade.register(subs)
    cli_serve.register(subs)
    model = ScriptedChatModel(["<score>1</score>"])

    def grader(*flags: str):  # type: ignore[no-untyped-def]
        args = parser.parse_args(["grade", "--data", "x.jsonl", *flags])
        return cli_grade._build_grader(args, model, card)

    assert grader().template == _template() and grader().mode == "expected"
    changed = grader("--scale", "0-4", "--mode", "sample", "--no-thinking")
    assert dict(changed.dimensions) == {"quality": Scale(min=0, max=4)}
    assert changed.mode == "sample" and not changed.template.thinking
    assert changed.template.max_response_chars == 40  # the rest of the card stays
    assert grader("--grader", "helpfulness").template == PromptTemplate()  # not the card's

    def settings(*flags: str):  # type: ignore[no-untyped-def]
        return cli_serve.settings_from_args(parser.parse_args(["serve", *flags]), card)

    s = settings()
    assert s.graders == ("quality",) and s.default_mode == "expected"
    assert s.scale_of("quality") == Scale(min=1, max=5)
    s = settings("--grader", "quality", "--scale", "quality=0-4", "--mode", "sample")
    assert s.scale_of("quality") == Scale(min=0, max=4) and s.default_mode == "sample"
    plain = cli_serve.settings_from_args(parser.parse_args(["serve"]))
    assert plain.graders == ("helpfulness",) and plain.default_mode == "expected"
