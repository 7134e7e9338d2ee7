"""The judge card's pairwise block: written, read back strictly, and the grader it builds."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from judgeforge.card import JudgeCard, PairwiseSettings
from judgeforge.data.schema import Scale
from judgeforge.errors import ConfigError
from judgeforge.graders import PairwiseGrader
from judgeforge.models.mock import ScriptedChatModel
from judgeforge.pairwise_prompt import PairwisePromptTemplate


def _card() -> JudgeCard:
    template = PairwisePromptTemplate(criterion="which answer is more correct",
                                      max_response_chars=300)
    block = PairwiseSettings.from_template(template, mode="sample", tie_margin=0.1,
                                           both_orders=False)
    return JudgeCard(dimensions={"quality": Scale(min=1, max=5)}, kind="pairwise",
                     pairwise=block)


def test_pairwise_block_round_trips_through_the_file(tmp_path: Path) -> None:
    card = _card()
    card.write(tmp_path)
    back = JudgeCard.read(tmp_path)
    assert back == card and back is not None and back.pairwise is not None
    assert back.pairwise.template().max_response_chars == 300


def test_pointwise_cards_are_written_as_before() -> None:
    card = JudgeCard(dimensions={"quality": Scale(min=1, max=5)})
    assert "pairwise" not in card.to_dict() and card.pairwise is None


@pytest.mark.parametrize("change, key", [
    ({"pairwise": None}, "'pairwise'"),
    ({"pairwise.bogus": 1}, "'pairwise.bogus'"),
    ({"pairwise.mode": "vote"}, "'pairwise.mode'"),
    ({"pairwise.tie_margin": 2.0}, "'pairwise.tie_margin'"),
    ({"pairwise.both_orders": "yes"}, "'pairwise.both_orders'"),
    ({"pairwise.template_version": 99}, "'pairwise.template_version'"),
])
def test_bad_pairwise_blocks_are_refused_naming_the_key(tmp_path: Path, change: dict[str, object],
                                                        key: str) -> None:
    data = _card().to_dict()
    for dotted, value in change.items():
        if "." in dotted:
            section, name = dotted.split(".")
            data[section][name] = value
        else:
            data[dotted] = value
    (tmp_path / "judge_config.json").write_text(json.dumps(data))
    with pytest.raises(ConfigError, match=key):
        JudgeCard.read(tmp_path)


async def test_stub_grader_from_a_pairwise_card_uses_its_settings() -> None:
    model = ScriptedChatModel(["<verdict>B</verdict>"])
    grader = PairwiseGrader.from_card(_card(), model)
    assert (grader.mode, grader.both_orders, grader.tie_margin) == ("sample", False, 0.1)
    result = await grader.aevaluate(query="q", response_a="x" * 1000, response_b="y")
    assert result.preference == "b"  # type: ignore[union-attr]
    text = model.calls[0].messages[-1]["content"]
    assert "which answer is more correct" in text and "characters omitted" in text
    assert len(model.calls) == 1  # one order, as the card says


def test_a_pointwise_card_builds_no_pairwise_grader() -> None:
    card = JudgeCard(dimensions={"quality": Scale(min=1, max=5)})
    with pytest.raises(ConfigError, match="no pairwise settings"):
        PairwiseGrader.from_card(card, ScriptedChatModel(["x"]))


def test_bench_preference_pointwise_column_of_a_pairwise_card_uses_the_default_prompt(
        tmp_path: Path) -> None:
    # a pairwise-trained folder's dimensions are a placeholder: its pointwise-derived column must
    # not grade on them (it did: a 'quality' 1-5 scale the judge never learned)
    from judgeforge.benchmarks.judges import JudgeSpec
    from judgeforge.benchmarks.preference import _graders
    from judgeforge.graders.llm_grader import LLMGrader

    _card().write(tmp_path)
    spec = JudgeSpec(label="trained", target=str(tmp_path), kind="path")
    built = _graders(spec, ScriptedChatModel(["x"]), "expected", True, None)
    default = LLMGrader(ScriptedChatModel(["x"]), mode="expected")
    assert built["pointwise"].pointwise.template == default.template
    assert built["pairwise"].template.criterion == "which answer is more correct"
