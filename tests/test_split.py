"""Seeded, stratified, group-aware train/test splits and the `data split` command."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from judgeforge.cli.main import main
from judgeforge.data.converters.prometheus import convert_prometheus
from judgeforge.data.io import INFO_KEY, load_records, read_info, write_records
from judgeforge.data.schema import PointwiseRecord
from judgeforge.data.split import group_of, group_split, shared_groups, strata, stratified_split
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
    expected = group_split(mt_bench, test_size=0.2, seed=0)
    assert (train.records, test.records) == expected
    assert not shared_groups(train.records, test.records)
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


# ---- group-aware split ---------------------------------------------------------------------

@pytest.fixture(scope="module")
def prometheus(shared_data: Path) -> list[PointwiseRecord]:  # noqa: F811
    root = shared_data / "prometheus-absolute"
    return (convert_prometheus(root / "mt_bench_eval.json").records
            + convert_prometheus(root / "vicuna_eval.json").records)


def test_rowwise_split_leaks_queries_the_group_split_does_not(
        prometheus: list[PointwiseRecord]) -> None:
    train, test = stratified_split(prometheus, test_size=0.2, seed=0)
    assert shared_groups(train, test)  # the leak the group split exists for
    for seed in (0, 1, 2):
        for size in (0.2, 120, 0.5):
            train, test = group_split(prometheus, test_size=size, seed=seed)
            assert not shared_groups(train, test), (seed, size)
            assert {r.id for r in train}.isdisjoint({r.id for r in test})
            assert len(train) + len(test) == len(prometheus)


def test_group_split_keeps_label_proportions(prometheus: list[PointwiseRecord]) -> None:
    whole = Counter(r.label["quality"] for r in prometheus)
    for seed in (0, 1):
        _, test = group_split(prometheus, test_size=0.2, seed=seed)
        assert abs(len(test) - 0.2 * len(prometheus)) <= 4  # whole groups: within one group
        part = Counter(r.label["quality"] for r in test)
        for label, n in whole.items():
            want = n * len(test) / len(prometheus)
            assert abs(part[label] - want) <= max(2.0, 0.1 * want), (seed, label, part, want)


def test_group_split_is_deterministic_and_keeps_order(prometheus: list[PointwiseRecord]) -> None:
    a = group_split(prometheus, test_size=120, seed=0)
    assert a == group_split(prometheus, test_size=120, seed=0)
    assert a[1] != group_split(prometheus, test_size=120, seed=1)[1]
    ids = [r.id for r in prometheus]
    for part in a:
        assert [ids.index(r.id) for r in part] == sorted(ids.index(r.id) for r in part)


def test_group_key_from_extra_info(prometheus: list[PointwiseRecord]) -> None:
    # Group by the response's source model: every model ends on one side.
    train, test = group_split(prometheus, test_size=0.3, seed=0, group_key="response_source")
    assert not shared_groups(train, test, "response_source")
    assert {r.extra_info["response_source"] for r in test}.isdisjoint(  # type: ignore[index]
        {r.extra_info["response_source"] for r in train})  # type: ignore[index]
    bad = [PointwiseRecord.model_validate(make_row(f"q{i}", "r", helpfulness=i % 2))
           for i in range(4)]
    with pytest.raises(DataError, match=r"row 0: extra_info has no group key 'topic'"):
        group_split(bad, test_size=0.5, group_key="topic")


def test_group_is_the_text_of_all_user_turns() -> None:
    a = PointwiseRecord.model_validate({"input": [{"role": "user", "content": "x"},
                                                  {"role": "assistant", "content": "y"},
                                                  {"role": "user", "content": "z"}],
                                        "output": {"content": "r", "label": {"q": 1}},
                                        "data_source": "t"})
    b = a.model_copy(update={"input": a.input[2:]})
    assert group_of(a) != group_of(b) and "x" in group_of(a) and "z" in group_of(a)


def test_group_split_unstratified_and_too_few_groups() -> None:
    recs = _records([0, 1] * 10)
    train, test = group_split(recs, test_size=5, seed=0, stratify=False)
    assert len(test) == 5 and len(train) == 15
    same = [PointwiseRecord.model_validate(make_row("one question", f"r{i}", helpfulness=i % 2))
            for i in range(6)]
    with pytest.raises(DataError, match="at least 2 groups"):
        group_split(same, test_size=0.5)


def test_cli_split_group_key_and_by_row(prometheus: list[PointwiseRecord], tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    src = write_records(tmp_path / "p.jsonl", prometheus, convert_prometheus([]).info)
    assert main(["data", "split", str(src), "--out-dir", str(tmp_path / "g"),
                 "--group-key", "response_source"]) == 0
    tr, te = (load_records(tmp_path / "g" / f"{p}.jsonl").records for p in ("train", "test"))
    assert not shared_groups(tr, te, "response_source")
    assert main(["data", "split", str(src), "--out-dir", str(tmp_path / "r"), "--by-row"]) == 0
    tr, te = (load_records(tmp_path / "r" / f"{p}.jsonl").records for p in ("train", "test"))
    assert (tr, te) == stratified_split(prometheus, test_size=0.2, seed=0)
    assert main(["data", "split", str(src), "--out-dir", str(tmp_path / "x"),
                 "--group-key", "nope"]) == 1
    assert "extra_info has no group key 'nope'" in capsys.readouterr().err


def test_training_validation_holdout_is_group_aware(prometheus: list[PointwiseRecord]) -> None:
    from judgeforge.train.config import TrainConfig
    from judgeforge.train.cpu.data import holdout, load_dataset

    train, val = holdout(prometheus, 40, 0, "quality")
    assert not shared_groups(train, val) and abs(len(val) - 40) <= 4
    train, val = holdout(prometheus, 40, 0, "quality", group_key="response_source")
    assert not shared_groups(train, val, "response_source")
    cfg = TrainConfig.for_cpu().with_overrides(["cpu.eval_rows=40", "data.scale=1-5"])
    ds = load_dataset(cfg, train_records=prometheus)
    assert len(ds.train) + len(ds.val) == len(prometheus) and len(ds.val) <= 40
    with pytest.raises(DataError, match="no group key 'topic'"):  # the config's key is used
        load_dataset(cfg.with_overrides(["data.group_key=topic"]), train_records=prometheus)
