"""Data and presets shipped as package data: found by importlib.resources, gzip read
transparently, the same rows as the source files, licence and provenance beside them."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from judgeforge.cli.main import main
from judgeforge.data.converters.prometheus import convert_prometheus
from judgeforge.data.io import iter_raw_rows
from judgeforge.datasets import prometheus_files, shipped_path, shipped_sets
from judgeforge.errors import ConfigError, DataError
from judgeforge.train import TrainConfig
from judgeforge.train.presets import preset_names, preset_path, resolve_config
from tests.fixtures_data import shared_data  # noqa: F401  (a fixture)


def test_every_shipped_set_has_licence_and_provenance() -> None:
    assert "prometheus-absolute" in shipped_sets()
    for name in shipped_sets():
        folder = shipped_path(name)
        assert (folder / "LICENSE").is_file(), name
        provenance = (folder / "PROVENANCE.md").read_text()
        assert "@" in provenance and "icen" in provenance, name  # repo @ commit, licence


def test_shipped_prometheus_equals_the_source_files(shared_data: Path) -> None:  # noqa: F811
    for shipped in prometheus_files():
        assert shipped.name.endswith(".json.gz")
        source = shared_data / "prometheus-absolute" / shipped.name.removesuffix(".gz")
        assert gzip.decompress(shipped.read_bytes()) == source.read_bytes()
        from_gz, from_json = convert_prometheus(shipped), convert_prometheus(source)
        assert len(from_gz.records) == 320
        assert [r.model_dump() for r in from_gz.records] == \
            [r.model_dump() for r in from_json.records]
        assert from_gz.info == from_json.info


def test_missing_shipped_file_names_the_sets() -> None:
    with pytest.raises(DataError, match="prometheus-absolute"):
        shipped_path("prometheus-absolute/nope.json.gz")
    with pytest.raises(DataError):
        shipped_path("../__init__.py")


def test_gzipped_jsonl_rows_and_a_broken_gzip(tmp_path: Path) -> None:
    good = tmp_path / "rows.jsonl.gz"
    good.write_bytes(gzip.compress(b'{"a": 1}\nnot json\n'))
    rows = list(iter_raw_rows(good))
    assert [r.data for r in rows] == [{"a": 1}, None]
    assert rows[1].error and rows[1].line == 2
    bad = tmp_path / "broken.json.gz"
    bad.write_bytes(b"this is not gzip")
    with pytest.raises(DataError, match="broken.json.gz.*decompress"):
        list(iter_raw_rows(bad))


def test_presets_by_name_and_by_path(tmp_path: Path) -> None:
    assert {"cpu", "cpu-quick", "gpu"} <= set(preset_names())
    assert TrainConfig.from_yaml("gpu").backend == "verl"
    assert TrainConfig.from_yaml("cpu-quick") == TrainConfig.from_yaml(preset_path("cpu-quick"))
    own = tmp_path / "mine.yaml"
    own.write_text("preset: cpu\nsft:\n  steps: 3\n")
    assert TrainConfig.from_yaml(str(own)).sft.steps == 3
    assert resolve_config(own) == own
    with pytest.raises(ConfigError, match="cpu-quick"):  # names the presets
        TrainConfig.from_yaml("cpuu")


def test_train_cli_takes_a_preset_name(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["train", "cpu-quick", "--dry-run", "sft.steps=5"]) == 0
    out = capsys.readouterr().out
    assert "sft: 5 steps" in out


def test_demo_and_recipe_defaults_are_the_shipped_files() -> None:
    from judgeforge.benchmarks.demo.pipeline import DemoOptions, default_data_files

    assert default_data_files() == prometheus_files()
    assert DemoOptions(workdir=Path("w"), quick=True).train_config == "cpu-quick"
    assert json.loads(gzip.decompress(default_data_files()[0].read_bytes()))[0]["gpt4_score"]
