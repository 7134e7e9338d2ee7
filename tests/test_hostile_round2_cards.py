"""Issue 23, cases 1-6: a judge card is untrusted input, checked by one strict schema at load.

Real card files in tmp_path read by ``JudgeCard.read`` (the reader of every grading surface) and
by the ``judgeforge serve``/``grade`` CLIs in a subprocess (they must fail before any model
server starts); graders built from cards run on the project's scripted model (``..._stub_...``).
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from judgeforge.calibration import Calibration, fit_calibration
from judgeforge.card import CARD_FILE, JudgeCard, PromptSettings, ScoringSettings
from judgeforge.data.schema import Scale
from judgeforge.errors import ConfigError
from judgeforge.prompt import PromptTemplate

JUDGEFORGE = [sys.executable, "-m", "judgeforge.cli.main"]


def _card(**kw: Any) -> JudgeCard:
    return JudgeCard.from_template(PromptTemplate({"quality": Scale(min=1, max=5)}),
                                   scoring=ScoringSettings(mode="expected"), **kw)


def _write(folder: Path, data: dict[str, Any]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / CARD_FILE).write_text(json.dumps(data))
    return folder


def _patched(**patch: Any) -> dict[str, Any]:
    data = _card().to_dict()
    for dotted, value in patch.items():
        *path, last = dotted.split("__")
        node = data
        for part in path:
            node = node[part]
        node[last] = value
    return data


def _refused(folder: Path, *keys: str) -> str:
    with pytest.raises(ConfigError) as err:
        JudgeCard.read(folder)
    text = str(err.value)
    assert str(folder / CARD_FILE) in text
    for key in keys:
        assert f"'{key}'" in text, text
    return text


def _choice(probs: dict[str, float]):  # type: ignore[no-untyped-def]
    from judgeforge.models.base import ChatChoice, TokenLogprob

    top = {t: math.log(p) for t, p in probs.items()}
    tok = max(probs, key=lambda t: probs[t])
    return ChatChoice(text=tok, finish_reason="length",
                      logprobs=[TokenLogprob(token=tok, logprob=top[tok], top=top)])


# -- case 1: a calibrated score stays on the scale ------------------------------------------------
def test_case01_calibration_off_scale_card_is_refused(tmp_path: Path) -> None:
    cal = {"kind": "isotonic", "x": [1.0, 5.0], "y": [100.0, 200.0], "low": 1.0, "high": 5.0,
           "rows": 10}
    _refused(_write(tmp_path, _patched(calibration=cal)), "calibration.y")
    wide = dict(cal, y=[1.0, 5.0], low=0.0, high=500.0)
    _refused(_write(tmp_path, _patched(calibration=wide)), "calibration.low")


def test_case01_calibration_off_scale_card_stops_serve_before_any_server(tmp_path: Path) -> None:
    cal = {"x": [1.0, 5.0], "y": [100.0, 200.0], "low": 100.0, "high": 200.0}
    folder = _write(tmp_path / "judge", _patched(calibration=cal))
    (folder / "config.json").write_text("{}")
    for argv in (["serve", str(folder), "--port", "1"],
                 ["grade", "--data", str(tmp_path / "none.jsonl"), "--model", str(folder)]):
        proc = subprocess.run(JUDGEFORGE + argv, capture_output=True, text=True, timeout=300)
        assert proc.returncode != 0 and "calibration.y" in proc.stderr, proc.stderr[-2000:]
        assert "Traceback" not in proc.stderr


async def test_case01_stub_calibration_built_in_code_is_clamped_and_says_so() -> None:
    from judgeforge.graders.llm_grader import LLMGrader
    from judgeforge.models.mock import ScriptedChatModel

    off = Calibration(x=(1.0, 5.0), y=(100.0, 200.0), low=100.0, high=200.0)
    grader = LLMGrader(ScriptedChatModel([_choice({"3": 0.5, "4": 0.5})]),
                       template=PromptTemplate({"quality": Scale(min=1, max=5)}),
                       mode="expected", calibration=off)
    result = await grader.aevaluate(query="q", response="r")
    assert result.score == 5.0 and result.metadata["normalized_score"] == 1.0
    assert result.metadata["calibration_clamped"] == pytest.approx(162.5)  # 3.5 -> 162.5


# -- case 2: wrong types fail at load, naming the key ---------------------------------------------
@pytest.mark.parametrize("patch, key", [
    ({"prompt__max_response_chars": 1.5}, "prompt.max_response_chars"),
    ({"prompt__descriptions": "abc"}, "prompt.descriptions"),
    ({"prompt__rubric": {"a": 1}}, "prompt.rubric"),
    ({"prompt__thinking": "no"}, "prompt.thinking"),
    ({"scoring__constrained": "yes"}, "scoring.constrained"),
    ({"scoring__n": True}, "scoring.n"),
    ({"scoring__temperature": "0.5"}, "scoring.temperature"),
    ({"dimensions": {"quality": [False, True]}}, "dimensions.quality"),
    ({"dimensions": {"quality": [1.0, 5.5]}}, "dimensions.quality"),
    ({"dimensions": {"quality": "1-5"}}, "dimensions.quality"),
    ({"base_model": 7}, "base_model"),
    ({"metrics": [1, 2]}, "metrics"),
    ({"kind": "listwise"}, "kind"),
    ({"adapter": {"r": 8, "alpha": 16, "target_modules": "q_proj"}}, "adapter.target_modules"),
    ({"base_model_sha256": "abc"}, "base_model_sha256"),
])
def test_case02_wrong_types_are_refused_at_load(tmp_path: Path, patch: dict[str, Any],
                                                key: str) -> None:
    _refused(_write(tmp_path, _patched(**patch)), key)


def test_case02_cards_of_todays_trainers_still_load(tmp_path: Path) -> None:
    """A card as the trainers wrote it before ``kind``/``adapter``/``base_model_sha256``."""
    cal = fit_calibration([1.0, 2.0, 4.0], [1, 3, 5], low=1, high=5)
    old = {"version": 1, "dimensions": {"quality": [1, 5]},
           "prompt": {"template_version": 1, "rubric": None, "thinking": False,
                      "system_prompt": None, "descriptions": {}, "task": None,
                      "max_query_chars": 300, "max_response_chars": 400,
                      "max_reference_chars": None, "use_rubric": True, "use_reference": False},
           "scoring": {"mode": "expected", "constrained": False, "temperature": None,
                       "max_tokens": None, "n": 5, "vote": "mean", "top_logprobs": 20},
           "calibration": cal.to_dict(), "base_model": "/models/SmolLM2-135M-Instruct",
           "data_fingerprint": "sha256:00", "metrics": {"val_mae": 0.8, "val_n": 40}}
    card = JudgeCard.read(_write(tmp_path, old))
    assert card is not None and card.kind == "pointwise" and card.adapter is None
    assert card.calibration == cal and card.template().max_response_chars == 400
    assert JudgeCard.from_dict(card.to_dict()) == card


def test_case02_adapter_and_sha_round_trip(tmp_path: Path) -> None:
    adapter = {"r": 16, "alpha": 32.0, "target_modules": ["q_proj", "v_proj"], "dropout": 0.05}
    card = JudgeCard.from_dict(_patched(adapter=adapter, base_model_sha256="ab" * 32))
    card.write(tmp_path)
    back = JudgeCard.read(tmp_path)
    assert back == card and back is not None and back.adapter is not None
    assert back.adapter.r == 16 and back.adapter.target_modules == ["q_proj", "v_proj"]


def test_case02_prompt_schema_matches_the_template_settings() -> None:
    assert set(PromptSettings.model_fields) == set(PromptTemplate().settings())


# -- case 3: deep nesting is an error, not a RecursionError ---------------------------------------
def test_case03_metrics_nested_100k_deep_is_a_config_error(tmp_path: Path) -> None:
    body = json.dumps(_card().to_dict())[:-1]
    deep = '"metrics": ' + '{"a": ' * 100_000 + "1" + "}" * 100_000
    (tmp_path / CARD_FILE).write_text(body.replace('"metrics": {}', deep) + "}")
    with pytest.raises(ConfigError, match="nested too deeply"):
        JudgeCard.read(tmp_path)


def test_case03_metrics_nested_deeper_than_the_bound_names_metrics(tmp_path: Path) -> None:
    nested: Any = 1
    for _ in range(40):
        nested = {"a": nested}
    _refused(_write(tmp_path, _patched(metrics={"deep": nested})), "metrics")


# -- case 4: bounds -------------------------------------------------------------------------------
@pytest.mark.parametrize("patch, key", [
    ({"scoring__n": 1_000_000}, "scoring.n"),
    ({"scoring__top_logprobs": 1000}, "scoring.top_logprobs"),
    ({"scoring__max_tokens": 10**9}, "scoring.max_tokens"),
    ({"scoring__temperature": 1e308}, "scoring.temperature"),
    ({"dimensions": {"quality": [0, 10**18]}}, "dimensions"),
    ({"dimensions": {"quality": [0, 101]}}, "dimensions"),
    ({"dimensions": {"quality": [-5000, -4990]}}, "dimensions"),
])
def test_case04_unbounded_settings_are_refused(tmp_path: Path, patch: dict[str, Any],
                                               key: str) -> None:
    data = _patched(**patch)
    if "dimensions" in patch:
        data["scoring"]["mode"] = "sample"
    _refused(_write(tmp_path, data), key)


def test_case04_wide_scales_are_refused_by_every_prompt() -> None:
    from judgeforge.graders.builtin import get_grader
    from judgeforge.models.mock import ScriptedChatModel

    with pytest.raises(ConfigError, match="too wide"):
        get_grader("quality", ScriptedChatModel(["x"]), scale=Scale(min=0, max=3_000_000))
    assert len(PromptTemplate({"q": Scale(min=0, max=100)}).score_regex()) < 1000


# -- case 5: dimension names ----------------------------------------------------------------------
@pytest.mark.parametrize("dims", [{"": [1, 5]}, {"think": [1, 5]}, {"Think": [1, 5]},
                                  {"quality": [1, 5], "Quality": [1, 5]},
                                  {"a<b": [1, 5]}, {" q": [1, 5]}, {"x" * 65: [1, 5]},
                                  {"response": [1, 5], "quality": [1, 5]}])
def test_case05_bad_dimension_names_are_refused(tmp_path: Path, dims: dict[str, Any]) -> None:
    data = _patched(dimensions=dims)
    data["scoring"]["mode"] = "sample"
    _refused(_write(tmp_path, data), "dimensions")


def test_case05_the_name_rule_is_get_graders() -> None:
    from judgeforge.graders.builtin import get_grader
    from judgeforge.models.mock import ScriptedChatModel

    model = ScriptedChatModel(["<score>1</score>"])
    for name in ("think", "", "a<b>", "not a name!"):
        with pytest.raises(ConfigError):
            get_grader(name, model)
    with pytest.raises(ConfigError, match="differ only in case"):
        get_grader("multi", model, dimensions=["quality", "QUALITY"])
    assert get_grader("score", model).template.tags() == {"score": "score"}


# -- case 6: a changed calibration regrades stored rows -------------------------------------------
def test_case06_stub_changed_calibration_regrades_stored_rows(tmp_path: Path) -> None:
    from judgeforge.graders.llm_grader import LLMGrader
    from judgeforge.graders.runner import GradingRunner
    from judgeforge.models.mock import ScriptedChatModel

    rows = [{"id": f"r{i}", "query": f"q{i}", "response": f"a{i}"} for i in range(3)]
    out = tmp_path / "results.jsonl"
    scores = []
    for labels in ([1, 3, 5], [1, 2, 3]):
        folder = tmp_path / "judge"
        folder.mkdir(exist_ok=True)
        _card(calibration=fit_calibration([2.0, 3.0, 4.0], labels, low=1, high=5)).write(folder)
        model = ScriptedChatModel([_choice({"3": 0.5, "4": 0.5})], cycle=True)
        grader = LLMGrader.from_pretrained(folder, model)
        result = GradingRunner({"g": grader}, show_progress=False, output=out).run(rows)
        assert len(model.calls) == 3  # every row graded again, none reused
        scores.append([r.score for r in result["g"]])
    assert scores[0] != scores[1]
    assert scores[1] == [pytest.approx(2.5)] * 3
