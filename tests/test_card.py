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
    ({"prompt": {"max_response_chars": 0}}, "'prompt'"),
    ({"prompt": {"template_version": 9}}, "'prompt'"),
    ({"scoring": {"mode": "guess"}}, "'scoring'"),
    ({"calibration": {"x": [1]}}, "'calibration'"),
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
