"""One model-spec parser: the same string means the same judge in every command and the API."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from judgeforge.errors import ConfigError
from judgeforge.models.spec import ModelSpec, parse_model_spec


def _folder(tmp_path: Path) -> Path:
    folder = tmp_path / "judge"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    return folder


def test_kinds_labels_and_normal_forms(tmp_path: Path) -> None:
    folder = _folder(tmp_path)
    assert parse_model_spec("http://h:1") == ModelSpec("url", "http://h:1/v1")
    assert parse_model_spec(" https://h:1/v1/ ") == ModelSpec("url", "https://h:1/v1")
    assert parse_model_spec("base=http://h:1/v1?x=1").label == "base"
    assert parse_model_spec("http://h:1/v1?x=1").label is None  # '=' inside a URL
    assert parse_model_spec(None) == parse_model_spec("default") == ModelSpec("default",
                                                                                "default")
    assert parse_model_spec(str(folder)) == ModelSpec("path", str(folder.resolve()))
    spec = parse_model_spec(f"mine={folder}")
    assert (spec.kind, spec.label, spec.display) == ("path", "mine", "mine")
    assert parse_model_spec(str(folder)).display == "judge"


def test_a_folder_whose_name_has_an_equals_sign_is_a_folder(tmp_path: Path) -> None:
    odd = tmp_path / "lr=1e-5"
    odd.mkdir()
    assert parse_model_spec(str(odd)).kind == "path"


def test_unknown_strings_are_errors_unless_names_are_allowed(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="--model 'nope' is neither a URL"):
        parse_model_spec("nope")
    with pytest.raises(ConfigError, match="empty"):
        parse_model_spec("  ")
    with pytest.raises(ConfigError, match="not an http"):
        parse_model_spec("http://")
    assert parse_model_spec("gpt-4o-mini", names=True) == ModelSpec("name", "gpt-4o-mini")


def test_every_surface_reads_a_string_the_same_way(tmp_path: Path) -> None:
    """OpenAIChatModel, the benchmarks' judge specs, serve-model and grade agree."""
    from judgeforge.benchmarks.judges import parse_judge_spec
    from judgeforge.graders import cli_grade
    from judgeforge.models.cli_model import register_serve, server_from_args
    from judgeforge.models.openai_chat import OpenAIChatModel

    folder = _folder(tmp_path)
    for text in (str(folder), f"mine={folder}"):
        spec = parse_model_spec(text)
        model = OpenAIChatModel(model=text)
        assert model.managed and str(model.model_path) == spec.target
        assert model.name == spec.display if spec.label else model.name == "judge"
        bench = parse_judge_spec(text)
        assert (bench.kind, bench.target, bench.label) == ("path", spec.target, spec.display)
    url_model = OpenAIChatModel(model="http://127.0.0.1:9")
    assert url_model.base_url == "http://127.0.0.1:9/v1" and not url_model.managed
    assert parse_judge_spec("http://127.0.0.1:9").target == url_model.base_url
    assert OpenAIChatModel(model="default").uses_default_model

    parser = argparse.ArgumentParser()
    subs = parser.add_subparsers()
    register_serve(subs)
    cli_grade.register(subs)
    server = server_from_args(parser.parse_args(["serve-model", str(folder)]))
    assert Path(server.model_path).resolve() == folder.resolve()
    with pytest.raises(ConfigError, match="not a URL"):
        server_from_args(parser.parse_args(["serve-model", "http://127.0.0.1:9/v1"]))
    args = parser.parse_args(["grade", "--data", "x.jsonl", "--model", "http://127.0.0.1:9"])
    model = cli_grade._build_model(args, parse_model_spec("http://127.0.0.1:9"))
    assert model.base_url == url_model.base_url


def test_a_folder_spec_brings_its_judge_card(tmp_path: Path) -> None:
    from judgeforge.card import JudgeCard
    from judgeforge.data.schema import Scale
    from judgeforge.prompt import PromptTemplate

    folder = _folder(tmp_path)
    assert parse_model_spec(str(folder)).card() is None
    JudgeCard.from_template(PromptTemplate({"quality": Scale(min=1, max=5)})).write(folder)
    card = parse_model_spec(f"mine={folder}").card()
    assert card is not None and list(card.dimensions) == ["quality"]
    assert parse_model_spec("http://h:1").card() is None and parse_model_spec(None).card() is None
