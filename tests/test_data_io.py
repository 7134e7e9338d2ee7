"""Reading/writing Parquet and JSONL, dataset info storage, row/field error reports, the CLI."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from judgeforge.cli.main import main
from judgeforge.data.io import (
    INFO_KEY,
    info_sidecar,
    iter_raw_rows,
    load_records,
    read_info,
    write_records,
)
from judgeforge.data.keys import record_key
from judgeforge.data.schema import DatasetInfo, PointwiseRecord, Scale
from judgeforge.data.validate import RowError, validate_rows
from judgeforge.errors import ConfigError, DataError
from tests.fixtures_data import make_row

INFO = DatasetInfo(name="mixed", dimensions={"helpfulness": Scale(), "quality": "1-5"})


def _records() -> list[PointwiseRecord]:
    rows = [
        make_row("q0", "r0", helpfulness=0, quality=1),
        dict(make_row("q1", "r1", helpfulness=4), id="a-1", extra_info={"rubric": "R", "n": 2}),
        make_row("q2", "r2", data_source="other", quality=5),
    ]
    rows[2]["input"] = [{"role": "system", "content": "sys"}, {"role": "user", "content": "q2"},
                        {"role": "assistant", "content": "a"}, {"role": "user", "content": "q2b"}]
    return [PointwiseRecord.model_validate(r) for r in rows]


def _jsonl(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _strs(errors: list[RowError]) -> list[str]:
    return [str(e) for e in errors]


# ------------------------------------------------------------------ round trips


@pytest.mark.parametrize("suffix", ["parquet", "jsonl"])
def test_round_trip_keeps_records_and_info(tmp_path: Path, suffix: str) -> None:
    path = write_records(tmp_path / f"d.{suffix}", _records(), INFO)
    loaded = load_records(path)
    assert loaded.records == _records()
    assert loaded.info == INFO and read_info(path) == INFO
    assert loaded.skipped == 0 and loaded.errors == []


def test_parquet_layout_reads_back_as_dicts_with_pyarrow_and_pandas(tmp_path: Path) -> None:
    path = write_records(tmp_path / "d.parquet", _records(), INFO)
    table = pq.read_table(path)
    assert table.schema.field("input").type == pa.list_(
        pa.struct([("role", pa.string()), ("content", pa.string())]))
    label_type = table.schema.field("output").type.field("label").type
    assert pa.types.is_struct(label_type)
    assert {label_type.field(i).type for i in range(label_type.num_fields)} == {pa.int64()}
    assert json.loads(table.schema.metadata[INFO_KEY]) == INFO.model_dump(mode="json")
    first = table.to_pylist()[0]
    assert first["output"] == {"content": "r0", "label": {"helpfulness": 0, "quality": 1}}

    pd = pytest.importorskip("pandas")
    frame = pd.read_parquet(path)
    row = frame.iloc[1]
    assert isinstance(row["output"], dict) and row["output"]["content"] == "r1"
    assert row["output"]["label"]["helpfulness"] == 4
    assert [dict(m) for m in row["input"]] == [{"role": "user", "content": "q1"}]
    assert row["extra_info"]["rubric"] == "R"


def test_parquet_reads_back_with_datasets(tmp_path: Path) -> None:
    datasets = pytest.importorskip("datasets")
    path = write_records(tmp_path / "d.parquet", _records(), INFO)
    ds = datasets.Dataset.from_parquet(str(path), cache_dir=str(tmp_path / "cache"))
    assert ds[0]["output"]["label"] == {"helpfulness": 0, "quality": 1}
    assert ds[2]["input"][-1] == {"role": "user", "content": "q2b"}


def test_jsonl_stores_info_in_a_sidecar(tmp_path: Path) -> None:
    path = write_records(tmp_path / "d.jsonl", _records(), INFO)
    side = info_sidecar(path)
    assert side.name == "d.jsonl.info.json"
    assert DatasetInfo.model_validate_json(side.read_text()) == INFO
    assert len(path.read_text().splitlines()) == 3


def test_seed_pandas_parquet_with_list_form_output_loads(tmp_path: Path) -> None:
    pd = pytest.importorskip("pandas")
    data = [make_row("What is Python?", "A language.", data_source="custom", helpfulness=4),
            make_row("What is Python?", "A snake.", data_source="custom", helpfulness=1)]
    data[1]["output"] = [data[1]["output"]]  # the seed's list form
    pd.DataFrame(data[:1]).to_parquet(tmp_path / "a.parquet")
    pd.DataFrame(data[1:]).to_parquet(tmp_path / "b.parquet")
    assert load_records(tmp_path / "a.parquet").records[0].label == {"helpfulness": 4}
    loaded = load_records(tmp_path / "b.parquet")
    assert loaded.records[0].label == {"helpfulness": 1}
    assert loaded.info.dimensions == {"helpfulness": Scale()}


def test_map_typed_labels_from_other_tools_load(tmp_path: Path) -> None:
    message = pa.struct([("role", pa.string()), ("content", pa.string())])
    output = pa.struct([("content", pa.string()),
                        ("label", pa.map_(pa.string(), pa.int64()))])
    table = pa.table({
        "input": pa.array([[{"role": "user", "content": "q"}]], type=pa.list_(message)),
        "output": pa.array([{"content": "r", "label": [("helpfulness", 2)]}], type=output),
        "data_source": ["x"],
    })
    pq.write_table(table, tmp_path / "m.parquet")
    assert load_records(tmp_path / "m.parquet").records[0].label == {"helpfulness": 2}


def test_extra_info_that_arrow_cannot_type_is_stored_as_json(tmp_path: Path) -> None:
    recs = [PointwiseRecord.model_validate(dict(make_row(), extra_info={"idx": 1})),
            PointwiseRecord.model_validate(dict(make_row(), extra_info={"idx": "one"})),
            PointwiseRecord.model_validate(dict(make_row(), extra_info={}))]
    path = write_records(tmp_path / "d.parquet", recs)
    assert load_records(path).records == recs


def test_empty_dataset_round_trips(tmp_path: Path) -> None:
    for suffix in ("parquet", "jsonl"):
        path = write_records(tmp_path / f"e.{suffix}", [], INFO)
        loaded = load_records(path)
        assert loaded.records == [] and loaded.info == INFO


def test_write_refuses_labels_outside_the_scale_and_writes_nothing(tmp_path: Path) -> None:
    recs = [PointwiseRecord.model_validate(make_row(quality=0))]
    with pytest.raises(DataError) as info:
        write_records(tmp_path / "d.parquet", recs, INFO)
    assert _strs(info.value.errors) == ["row 0: output.label.quality: 0 is outside the scale 1-5"]
    assert not (tmp_path / "d.parquet").exists()


def test_write_validates_dicts(tmp_path: Path) -> None:
    with pytest.raises(DataError) as info:
        write_records(tmp_path / "d.jsonl", [make_row(), {"input": []}])
    assert any(e.index == 1 and e.field == "output" for e in info.value.errors)


def test_unknown_suffix_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError):
        load_records(tmp_path / "d.txt")
    with pytest.raises(ConfigError):
        write_records(tmp_path / "d.csv", [])


# ------------------------------------------------------------------ info and scales


def test_without_info_dimensions_are_inferred_with_the_default_scale(tmp_path: Path) -> None:
    path = _jsonl(tmp_path / "d.jsonl", [json.dumps(make_row(helpfulness=4)),
                                         json.dumps(make_row(correctness=0))])
    info = load_records(path).info
    assert info.name == "d"
    assert info.dimensions == {"helpfulness": Scale(), "correctness": Scale()}


def test_scale_option_sets_all_or_one_dimension(tmp_path: Path) -> None:
    path = _jsonl(tmp_path / "d.jsonl", [json.dumps(make_row(quality=5, helpfulness=0))])
    with pytest.raises(DataError) as info:
        load_records(path)
    assert _strs(info.value.errors) == [
        "row 0 (line 1): output.label.quality: 5 is outside the scale 0-4"]
    with pytest.raises(DataError):
        load_records(path, scale="1-5")  # helpfulness 0 is now outside
    loaded = load_records(path, scale=["quality=1-5"])
    assert loaded.info.dimensions == {"quality": Scale(min=1, max=5), "helpfulness": Scale()}
    assert load_records(path, scale={"quality": "1-5"}).info == loaded.info


def test_stored_info_is_used_and_unknown_dimensions_are_errors(tmp_path: Path) -> None:
    path = write_records(tmp_path / "d.jsonl", _records(), INFO)
    with path.open("a") as fh:
        fh.write(json.dumps(make_row(honesty=1)) + "\n")
    with pytest.raises(DataError) as info:
        load_records(path)
    assert _strs(info.value.errors) == [
        "row 3 (line 4): output.label.honesty: unknown dimension "
        "(the dataset describes: helpfulness, quality)"]


def test_invalid_scale_text_is_a_config_error(tmp_path: Path) -> None:
    path = _jsonl(tmp_path / "d.jsonl", [json.dumps(make_row())])
    with pytest.raises(ConfigError):
        load_records(path, scale="five")


def test_corrupt_sidecar_is_a_data_error(tmp_path: Path) -> None:
    path = _jsonl(tmp_path / "d.jsonl", [json.dumps(make_row())])
    info_sidecar(path).write_text('{"dimensions": {"h": {"min": 4, "max": 0}}}')
    with pytest.raises(DataError, match="invalid dataset info"):
        load_records(path)


# ------------------------------------------------------------------ malformed files

BAD_LINES = [
    json.dumps(make_row()),                                             # row 0 (line 1): good
    json.dumps({k: v for k, v in make_row().items() if k != "output"}),  # row 1 (line 2)
    "",                                                                 # blank: not a row
    '{"input": [{"role": "user", "content": "q"}], "output": ',        # row 2 (line 4)
    json.dumps(make_row(helpfulness=7)),                                # row 3 (line 5)
    json.dumps(dict(make_row(), input=[{"role": "system", "content": "s"}])),  # row 4 (line 6)
    json.dumps(dict(make_row(), input="just text")),                    # row 5 (line 7)
    json.dumps(make_row(helpfulness="3")),                              # row 6 (line 8)
    json.dumps([1, 2]),                                                 # row 7 (line 9)
    json.dumps(dict(make_row(), data_source=5)),                        # row 8 (line 10)
    json.dumps(make_row(helpfulness=2.5)),                              # row 9 (line 11)
    json.dumps(make_row()),                                             # row 10 (line 12): good
]

EXPECTED = [
    "row 1 (line 2): output: field required",
    "row 2 (line 4): invalid JSON: Expecting value (column 57)",
    "row 3 (line 5): output.label.helpfulness: 7 is outside the scale 0-4",
    "row 4 (line 6): input: no user turn (roles: system)",
    "row 5 (line 7): input: should be a valid list (got 'just text')",
    "row 6 (line 8): output.label.helpfulness: should be a valid integer (got '3')",
    "row 7 (line 9): expected an object (a dict), got list",
    "row 8 (line 10): data_source: should be a valid string (got 5)",
    "row 9 (line 11): output.label.helpfulness: should be a valid integer (got 2.5)",
]


def test_every_bad_jsonl_row_is_named_with_line_and_field(tmp_path: Path) -> None:
    path = _jsonl(tmp_path / "bad.jsonl", BAD_LINES)
    with pytest.raises(DataError) as info:
        load_records(path)
    assert _strs(info.value.errors) == EXPECTED
    message = str(info.value)
    assert message.startswith(f"{path}: 9 invalid row(s) of 11:")
    assert all(line in message for line in EXPECTED)


def test_skip_invalid_counts_and_lists_what_it_skips(tmp_path: Path,
                                                     caplog: pytest.LogCaptureFixture) -> None:
    path = _jsonl(tmp_path / "bad.jsonl", BAD_LINES)
    loaded = load_records(path, skip_invalid=True)
    assert len(loaded.records) == 2 and loaded.skipped == 9
    assert _strs(loaded.errors) == EXPECTED
    assert "skipped 9 invalid row(s) of 11" in caplog.text


def test_one_row_can_have_several_bad_fields(tmp_path: Path) -> None:
    row = {"input": [{"role": "robot", "content": 1}], "output": {"content": "r", "label": {}},
           "data_source": ""}
    path = _jsonl(tmp_path / "d.jsonl", [json.dumps(row)])
    with pytest.raises(DataError) as info:
        load_records(path)
    fields = [e.field for e in info.value.errors]
    assert fields == ["input[0].role", "input[0].content", "output.label", "data_source"]
    assert {e.index for e in info.value.errors} == {0}


def test_invalid_utf8_and_bom(tmp_path: Path) -> None:
    path = tmp_path / "d.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + json.dumps(make_row()).encode() + b"\n\xff\xfe{}\n")
    with pytest.raises(DataError) as info:
        load_records(path)
    assert _strs(info.value.errors) == [
        "row 1 (line 2): not valid UTF-8 (byte 0: invalid start byte)"]


def _table(**columns: Any) -> pa.Table:
    return pa.table(columns)


def test_parquet_missing_output_column_names_every_row(tmp_path: Path) -> None:
    pq.write_table(_table(input=[[{"role": "user", "content": "q"}]] * 3,
                          data_source=["x"] * 3), tmp_path / "d.parquet")
    with pytest.raises(DataError) as info:
        load_records(tmp_path / "d.parquet")
    assert _strs(info.value.errors) == [f"row {i}: output: field required" for i in range(3)]


def test_parquet_wrong_types_out_of_range_and_no_user_turn(tmp_path: Path) -> None:
    rows = [make_row(), make_row(helpfulness=9), make_row(),
            dict(make_row(), input=[{"role": "assistant", "content": "a"}])]
    rows[2]["output"] = {"content": "r", "label": {"helpfulness": "high"}}
    # one column type per field: label values are strings in every row
    for r in rows:
        r["output"]["label"] = {"helpfulness": str(r["output"]["label"]["helpfulness"])}
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "d.parquet")
    with pytest.raises(DataError) as info:
        load_records(tmp_path / "d.parquet")
    assert _strs(info.value.errors) == [
        "row 0: output.label.helpfulness: should be a valid integer (got '3')",
        "row 1: output.label.helpfulness: should be a valid integer (got '9')",
        "row 2: output.label.helpfulness: should be a valid integer (got 'high')",
        "row 3: input: no user turn (roles: assistant)",
        "row 3: output.label.helpfulness: should be a valid integer (got '3')",
    ]
    rows = [make_row(), make_row(helpfulness=9)]
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "e.parquet")
    with pytest.raises(DataError) as info:
        load_records(tmp_path / "e.parquet")
    assert _strs(info.value.errors) == [
        "row 1: output.label.helpfulness: 9 is outside the scale 0-4"]


@pytest.mark.parametrize("content", [b"", b"PAR1", b"not a parquet file at all" * 10])
def test_unreadable_parquet_is_one_file_error(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "d.parquet"
    path.write_bytes(content)
    with pytest.raises(DataError) as info:
        load_records(path)
    assert len(info.value.errors) == 1
    assert str(info.value.errors[0]).startswith("file: unreadable Parquet file")


def test_missing_file_is_a_data_error(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no such file"):
        load_records(tmp_path / "none.jsonl")


def test_iter_raw_rows_numbers_rows_and_lines(tmp_path: Path) -> None:
    path = _jsonl(tmp_path / "d.jsonl", ["{}", "", "  ", "[", "{}"])
    rows = list(iter_raw_rows(path))
    assert [(r.index, r.line, r.error is None) for r in rows] == [
        (0, 1, True), (1, 4, False), (2, 5, True)]
    csv_path = tmp_path / "d.csv"
    csv_path.write_text('a,b\n1,"two\nlines"\n3,4,5\n6\n')
    rows = list(iter_raw_rows(csv_path))
    assert [(r.index, r.line) for r in rows] == [(0, 2), (1, 4), (2, 5)]
    assert rows[0].data == {"a": "1", "b": "two\nlines"} and rows[1].error
    assert rows[2].data == {"a": "6", "b": None}


def test_validate_rows_accepts_plain_dicts() -> None:
    records, errors = validate_rows([make_row(), make_row(helpfulness=5)],
                                    DatasetInfo(dimensions={"helpfulness": "0-5"}))
    assert len(records) == 2 and errors == []
    records, errors = validate_rows([make_row(), make_row(helpfulness=6)])
    assert len(records) == 1 and _strs(errors) == [
        "row 1: output.label.helpfulness: 6 is outside the scale 0-4"]


# ------------------------------------------------------------------ record keys


def test_record_key_is_the_id_or_a_stable_content_hash() -> None:
    row = make_row("q", "r")
    rec = PointwiseRecord.model_validate(row)
    key = record_key(rec)
    assert len(key) == 40 and int(key, 16) >= 0
    assert record_key(row) == key == record_key(dict(row, output=[row["output"]]))
    # the label and extra_info are not part of what is graded
    assert record_key(make_row("q", "r", helpfulness=0)) == key
    assert record_key(dict(row, extra_info={"a": 1})) == key
    assert record_key(make_row("q", "r2")) != key
    assert record_key(dict(row, id="x-1")) == "x-1"
    assert record_key(dict(row, id="")) == key
    assert record_key(PointwiseRecord.model_validate(dict(row, id=3))) == "3"
    # fixed value: the key must not change between versions (results files are resumed by it);
    # sha1 of '{"input":[{"content":"q","role":"user"}],"response":"r"}'
    assert key == "4b3e333cd0eaaa81ca0a655a7bee047997caebec"


# ------------------------------------------------------------------ CLI


def test_cli_validate_ok(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_records(tmp_path / "d.parquet", _records(), INFO)
    assert main(["data", "validate", str(path)]) == 0
    assert "3 rows OK" in capsys.readouterr().out


def test_cli_validate_prints_every_bad_row_and_exits_1(tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    path = _jsonl(tmp_path / "bad.jsonl", BAD_LINES)
    assert main(["data", "validate", str(path)]) == 1
    captured = capsys.readouterr()
    assert captured.out.splitlines() == EXPECTED
    assert "9 invalid row(s) of 11" in captured.err and "Traceback" not in captured.err
    assert main(["data", "validate", str(path), "--max-errors", "2"]) == 1
    assert capsys.readouterr().out.splitlines() == EXPECTED[:2] + ["... and 7 more"]


def test_cli_validate_unreadable_and_missing_files(tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "x.parquet").write_bytes(b"garbage")
    assert main(["data", "validate", str(tmp_path / "x.parquet")]) == 1
    out = capsys.readouterr()
    assert "unreadable Parquet file" in out.out + out.err and "Traceback" not in out.err
    assert main(["data", "validate", str(tmp_path / "nope.jsonl")]) == 1
    assert "no such file" in "".join(capsys.readouterr())


def test_cli_validate_with_scale(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _jsonl(tmp_path / "d.jsonl", [json.dumps(make_row(quality=5))])
    assert main(["data", "validate", str(path)]) == 1
    assert "output.label.quality: 5 is outside the scale 0-4" in capsys.readouterr().out
    assert main(["data", "validate", str(path), "--scale", "quality=1-5"]) == 0
    assert main(["data", "validate", str(path), "--scale", "oops"]) == 1
    assert "invalid scale" in capsys.readouterr().err


def test_cli_info(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_records(tmp_path / "d.jsonl", _records(), INFO)
    assert main(["data", "info", str(path)]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["rows"] == 3 and report["info"]["name"] == "mixed"
    assert report["label_counts"] == {"helpfulness": {"0": 1, "4": 1}, "quality": {"1": 1, "5": 1}}


def test_cli_help_texts_cover_every_option() -> None:
    import argparse

    from judgeforge.cli.main import build_parser

    def walk(parser: argparse.ArgumentParser) -> None:
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for sub in action.choices.values():
                    walk(sub)
            elif not isinstance(action, argparse._HelpAction):
                assert action.help, f"{parser.prog}: {action.option_strings or action.dest}"

    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    walk(sub.choices["data"])


def test_unreadable_values_and_repeated_map_keys_name_their_row(tmp_path: Path) -> None:
    message = pa.struct([("role", pa.string()), ("content", pa.string())])
    output = pa.struct([("content", pa.string()),
                        ("label", pa.map_(pa.string(), pa.int64()))])
    table = pa.table({
        "input": pa.array([[{"role": "user", "content": "q"}]] * 3, type=pa.list_(message)),
        "output": pa.array([{"content": "r", "label": [("h", 1)]},
                            {"content": "r", "label": [("h", 1), ("h", 2)]},
                            {"content": "r", "label": [("h", 3)]}], type=output),
        "data_source": ["x"] * 3,
        "extra_info": pa.array([{"t": 0}, {"t": 0}, {"t": 2**62}],
                               type=pa.struct([("t", pa.timestamp("ms"))])),
    })
    pq.write_table(table, tmp_path / "d.parquet")
    loaded = load_records(tmp_path / "d.parquet", skip_invalid=True)
    assert loaded.skipped == 2 and len(loaded.records) == 1
    first, second = _strs(loaded.errors)
    assert first.startswith("row 1: a value cannot be read: ") and "duplicate" in first
    assert second.startswith("row 2: a value cannot be read: ")
