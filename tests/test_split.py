"""Seeded, stratified train/test split and the `data split` command."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from judgeforge.cli.main import main
from judgeforge.data.converters.prometheus import convert_prometheus
from judgeforge.data.io import INFO_KEY, load_records, read_info, write_records
from judgeforge.data.schema import PointwiseRecord
from judgeforge.data.split import stratified_split, strata
from judgeforge.errors import ConfigError, DataError
from tests.fixtures_data import make_row, shared_data  # noqa: F401  (fixture)


def _records(labels: list[int], dim: str = "helpfulness") -> list[PointwiseRecord]:
    return [PointwiseRecord.model_validate(dict(make_row(f"q{i}", "r", **{dim: v}), id=f"r{i}"))
            for i, v in enumerate(labels)]


@pytest.fixture(scope="module")
def mt_bench(shared_data: Path) -> list[PointwiseRecord]:  # noqa: F811
    return convert_prometheus(shared_data / "prometheus-absolute" / "mt_bench_eval.json").records


def test_same_seed_same_split_and_order_kept(mt_bench: list[PointwiseRecord]) -> None:
    a = stratified_split(mt_bench, test_size=0.2, seed=0)
    b = stratified_split(mt_bench, test_size=0.2, seed=0)
    c = stratified_split(mt_bench, test_size=0.2, seed=1)
    assert a == b and a[1] != c[1]
    train, test = a
    assert len(test) == 64 and len(train) == 256
    ids = [r.id for r in mt_bench]
    assert sorted(ids.index(r.id) for r in train) == [ids.index(r.id) for r in train]
    assert {r.id for r in train}.isdisjoint({r.id for r in test})
    assert {r.id for r in train} | {r.id for r in test} == set(ids)


def test_split_is_stratified_by_label(mt_bench: list[PointwiseRecord]) -> None:
    _, test = stratified_split(mt_bench, test_size=0.2, seed=3)
    whole = Counter(r.label["quality"] for r in mt_bench)
    part = Counter(r.label["quality"] for r in test)
    for label, n in whole.items():
        assert abs(part[label] - n * 0.2) <= 1, (label, part[label], n)


def test_a_count_as_test_size() -> None:
    train, test = stratified_split(_records([0, 1] * 10), test_size=4, seed=0)
    assert len(test) == 4 and Counter(r.label["helpfulness"] for r in test) == {0: 2, 1: 2}


def test_singleton_labels_do_not_break_the_split() -> None:
    labels = [0] * 8 + [1] * 8 + [2, 3, 4]
    train, test = stratified_split(_records(labels), test_size=0.25, seed=0)
    assert len(train) + len(test) == len(labels) and len(test) == 5
    assert strata(_records([0, 0, 1, 1, 2]), "helpfulness") == ["0", "0", "1", "1", "0"]
    assert strata(_records([0, 0, 1, 2]), "helpfulness") == ["0", "0", "<rare>", "<rare>"]


def test_falls_back_when_stratifying_is_impossible(caplog: pytest.LogCaptureFixture) -> None:
    train, test = stratified_split(_records([0, 0, 1, 1, 2, 2, 3, 3]), test_size=2, seed=0)
    assert len(test) == 2 and len(train) == 6
    assert "splitting without stratification" in caplog.text


def test_dimension_choice() -> None:
    recs = [PointwiseRecord.model_validate(make_row(f"q{i}", "r", a=i % 2, b=int(i < 5)))
            for i in range(10)]
    _, test = stratified_split(recs, test_size=0.4, seed=0, dimension="b")
    assert Counter(r.label["b"] for r in test) == {0: 2, 1: 2}


@pytest.mark.parametrize("size", [0.0, 1.0, 1.5, 0, 10, -1, "0.2"])
def test_bad_test_sizes(size: object) -> None:
    with pytest.raises(ConfigError):
        stratified_split(_records([0, 1] * 5), test_size=size)  # type: ignore[arg-type]


def test_too_few_records() -> None:
    with pytest.raises(DataError):
        stratified_split(_records([1]), test_size=0.5)


@pytest.mark.parametrize("suffix", ["parquet", "jsonl"])
def test_cli_split_writes_train_and_test_with_the_same_info(
        mt_bench: list[PointwiseRecord], tmp_path: Path, suffix: str,
        capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / f"mt.{suffix}"
    info = convert_prometheus([]).info.model_copy(update={"name": "mt_bench"})
    write_records(src, mt_bench, info)
    out = tmp_path / "split"
    assert main(["data", "split", str(src), "--test-size", "0.2", "--seed", "0",
                 "--out-dir", str(out)]) == 0
    capsys.readouterr()
    train, test = load_records(out / f"train.{suffix}"), load_records(out / f"test.{suffix}")
    assert train.info == test.info == info == read_info(out / f"test.{suffix}")
    assert len(test.records) == 64 and len(train.records) == 256
    expected = stratified_split(mt_bench, test_size=0.2, seed=0)
    assert (train.records, test.records) == expected
    if suffix == "parquet":
        assert INFO_KEY in pq.read_schema(out / "train.parquet").metadata


def test_cli_split_options(mt_bench: list[PointwiseRecord], tmp_path: Path,
                           capsys: pytest.CaptureFixture[str]) -> None:
    src = write_records(tmp_path / "mt.jsonl", mt_bench[:40], convert_prometheus([]).info)
    assert main(["data", "split", str(src), "--test-size", "10", "--out-dir",
                 str(tmp_path / "o"), "--format", "parquet"]) == 0
    assert len(load_records(tmp_path / "o" / "test.parquet").records) == 10
    assert main(["data", "split", str(src), "--out-dir", str(tmp_path / "o"),
                 "--dimension", "nope"]) == 1
    assert "unknown dimension 'nope'" in capsys.readouterr().err
