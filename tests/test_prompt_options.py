"""The prompt options a training run chooses are named once (judgeforge.prompt.
TRAINING_PROMPT_OPTIONS): the training config's prompt section, verl's data.judgeforge options
and the parity overrides all read that list."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from judgeforge.prompt import TRAINING_PROMPT_OPTIONS, PromptTemplate
from judgeforge.train.config import PromptSection, TrainConfig
from judgeforge.train.verl.overrides import build_overrides
from tests.parity_cases import prompt_overrides


def test_the_list_names_template_settings_and_the_config_section() -> None:
    template_fields = {f.name: f for f in dataclasses.fields(PromptTemplate)}
    assert set(TRAINING_PROMPT_OPTIONS) <= set(PromptTemplate().settings())
    assert tuple(PromptSection.model_fields) == TRAINING_PROMPT_OPTIONS
    for name in TRAINING_PROMPT_OPTIONS:  # the section's defaults are the template's
        assert PromptSection.model_fields[name].default == template_fields[name].default, name


def test_config_settings_build_the_same_template() -> None:
    cfg = TrainConfig.for_cpu().with_overrides(
        ["prompt.thinking=true", "prompt.max_response_chars=123", "prompt.system_prompt=Be fair"])
    settings = cfg.prompt.settings()
    assert list(settings) == list(TRAINING_PROMPT_OPTIONS)
    template = PromptTemplate.from_settings({"quality": PromptTemplate().dimensions["helpfulness"]},
                                            settings)
    assert template.thinking and template.max_response_chars == 123
    assert template.system_prompt == "Be fair"


def test_verl_overrides_carry_every_set_prompt_option(tmp_path: Path) -> None:
    data = tmp_path / "train.parquet"
    data.write_bytes(b"")
    cfg = TrainConfig.for_gpu().with_overrides(
        [f"data.train_files=[{data}]", "prompt.system_prompt=Judge", "prompt.max_query_chars=50",
         "prompt.max_response_chars=60", "prompt.max_reference_chars=70", "prompt.thinking=true"])
    ov = build_overrides(cfg, model_path="m", experiment_name="t")
    got = {o.split("=", 1)[0].removeprefix("+").removeprefix("data.judgeforge."): o
           for o in ov if "data.judgeforge." in o}
    assert set(TRAINING_PROMPT_OPTIONS) <= set(got)


def test_parity_overrides_are_the_list() -> None:
    template = PromptTemplate(max_query_chars=9, thinking=True)
    ov = prompt_overrides(template)
    assert [o.split("=", 1)[0] for o in ov] == [f"prompt.{k}" for k in TRAINING_PROMPT_OPTIONS]
    assert "prompt.max_query_chars=9" in ov and f"prompt.thinking={json.dumps(True)}" in ov
