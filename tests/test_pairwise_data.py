"""Pairwise records (issue 24): the schema, Parquet/JSONL files, errors naming row and field, the
hostile-input rules of pointwise records, and `judgeforge data validate` on pairwise files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from judgeforge.cli.main import main
from judgeforge.data import (
    PairwiseRecord,
    is_pairwise_file,
    load_records,
    read_pairwise,
    write_pairwise,
)
from judgeforge.errors import ConfigError, DataError


def pair(**kw: Any) -> dict[str, Any]:
    row: dict[str, Any] = {"input": [{"role": "user", "content": "Which is larger, 2 or 3?"}],
                           "response_a": "3", "response_b": "2", "preference": "a"}
    row.update(kw)
    return row


def test_swapped_mirrors_sides_preference_and_votes() -> None:
    rec = PairwiseRecord.model_validate(pair(votes=["a", "tie", "b"], id=7,
                                             extra_info={"criterion": "honest"}))
    assert rec.id == "7" and rec.query == "Which is larger, 2 or 3?"
    back = rec.swapped()
    assert (back.response_a, back.response_b, back.preference) == ("2", "3", "b")
    assert back.votes == ["b", "tie", "a"]
    assert back.swapped() == rec
    assert PairwiseRecord.model_validate(pair(preference="tie")).swapped().preference == "tie"


def test_query_is_the_last_user_turn() -> None:
    rec = PairwiseRecord.model_validate(pair(input=[
        {"role": "system", "content": "be brief"}, {"role": "user", "content": "first"},
        {"role": "assistant", "content": "ok"}, {"role": "user", "content": "second"}]))
    assert rec.query == "second"


@pytest.mark.parametrize("suffix", ["parquet", "jsonl"])
def test_round_trip_keeps_every_field(tmp_path: Path, suffix: str) -> None:
    records = [
        PairwiseRecord.model_validate(pair(votes=["a", "a", "tie"], rubric="correctness",
                                           reference="3", data_source="unit", id="x",
                                           extra_info={"criterion": "honest", "n": 1})),
        PairwiseRecord.model_validate(pair(preference="tie", id="y")),
        PairwiseRecord.model_validate(pair(input=[{"role": "user", "content": "q",
                                                   "name": "alice"}], preference="b")),
    ]
    path = write_pairwise(records, tmp_path / f"p.{suffix}")
    assert is_pairwise_file(path)
    assert read_pairwise(path) == records
    if suffix == "parquet":
        meta = pq.ParquetFile(path).schema_arrow.metadata
        assert meta[b"judgeforge.kind"] == b"pairwise"


def test_empty_and_mixed_extra_info_survive_parquet(tmp_path: Path) -> None:
    records = [PairwiseRecord.model_validate(pair(id="1", extra_info={"v": 1})),
               PairwiseRecord.model_validate(pair(id="2", extra_info={"v": "text"})),
               PairwiseRecord.model_validate(pair(id="3"))]
    assert read_pairwise(write_pairwise(records, tmp_path / "m.parquet")) == records
    plain = [PairwiseRecord.model_validate(pair(id=str(i))) for i in range(2)]
    assert read_pairwise(write_pairwise(plain, tmp_path / "e.parquet")) == plain


def test_bad_rows_name_row_and_field_and_nothing_is_written(tmp_path: Path) -> None:
    rows = [pair(),
            pair(response_a=True),                                   # a JSON boolean
            pair(preference="A wins"),
            pair(input=[{"role": "<score>5</score>", "content": "q"}]),  # a role with tags
            pair(input=[{"role": "assistant", "content": "no user turn"}]),
            pair(votes=["a", "maybe"]),
            pair(votes=[]),
            pair(winner="a"),                                        # unknown field
            {"input": [{"role": "user", "content": "q"}], "response_a": "x"}]
    out = tmp_path / "bad.jsonl"
    with pytest.raises(DataError) as info:
        write_pairwise(rows, out)
    assert not out.exists()
    got = {(e.index, e.field) for e in info.value.errors}
    assert {(1, "response_a"), (2, "preference"), (3, "input[0].role"), (4, "input"),
            (5, "votes[1]"), (6, "votes"), (7, "winner"), (8, "response_b"),
            (8, "preference")} <= got
    assert 0 not in {e.index for e in info.value.errors}
    assert "row 3: input[0].role" in str(info.value)


def test_hostile_lines_are_errors_naming_their_row(tmp_path: Path) -> None:
    path = tmp_path / "hostile.jsonl"
    deep = "[" * 100_000 + "]" * 100_000
    path.write_bytes(b"\n".join([
        json.dumps(pair(id="ok")).encode(),
        b"{not json",
        b"\xff\xfe not utf-8",
        json.dumps(pair(response_b=12345)).encode(),
        ('{"input": ' + deep + "}").encode(),
        json.dumps(pair(id="ok")).encode(),                   # a repeated id
    ]) + b"\n")
    with pytest.raises(DataError) as info:
        read_pairwise(path)
    by_row = {e.index: (e.line, e.field, e.message) for e in info.value.errors}
    assert set(by_row) == {1, 2, 3, 4}
    assert "invalid JSON" in by_row[1][2] and by_row[1][0] == 2
    assert "UTF-8" in by_row[2][2]
    assert by_row[3][1] == "response_b"
    kept = read_pairwise(path, skip_invalid=True)
    assert [r.id for r in kept] == ["ok", "ok"]  # structure-valid rows; ids checked when clean
    clean = tmp_path / "repeat.jsonl"
    clean.write_text(json.dumps(pair(id="ok")) + "\n" + json.dumps(pair(id="ok")) + "\n")
    with pytest.raises(DataError, match="row 1: id: 'ok' repeats the id of row 0"):
        read_pairwise(clean)


def test_a_pointwise_file_is_not_pairwise_and_csv_is_refused(tmp_path: Path) -> None:
    from judgeforge.data import write_records

    point = write_records(tmp_path / "point.jsonl", [
        {"input": [{"role": "user", "content": "q"}],
         "output": {"content": "r", "label": {"helpfulness": 3}}, "data_source": "u"}])
    assert not is_pairwise_file(point)
    with pytest.raises(DataError, match="response_a"):
        read_pairwise(point)
    pairwise = write_pairwise([pair()], tmp_path / "pairs.jsonl")
    with pytest.raises(DataError, match="unknown field"):
        load_records(pairwise)  # the pointwise loader names the pairwise columns
    (tmp_path / "t.csv").write_text("a,b\n1,2\n")
    with pytest.raises(ConfigError, match="CSV"):
        read_pairwise(tmp_path / "t.csv")


def test_cli_validate_detects_pairwise_files(tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    good = write_pairwise([pair(id="1"), pair(id="2", preference="tie")], tmp_path / "g.parquet")
    assert main(["data", "validate", str(good)]) == 0
    assert "2 pairwise rows OK" in capsys.readouterr().out
    bad = tmp_path / "b.jsonl"
    bad.write_text(json.dumps(pair()) + "\n" + json.dumps(pair(preference="c")) + "\n")
    assert main(["data", "validate", str(bad)]) == 1
    assert "row 1 (line 2): preference" in capsys.readouterr().out


def test_lone_surrogates_and_changed_parquet_are_refused(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"row 0: response_b: text holds a lone surrogate"):
        write_pairwise([pair(response_b="ok \ud800")], tmp_path / "s.jsonl")
    path = tmp_path / "p.jsonl"
    path.write_text(json.dumps(pair(id="1")) + "\n" + json.dumps(pair(response_a="\ud83d")) + "\n")
    with pytest.raises(DataError, match=r"row 1 \(line 2\): response_a: text holds a lone"):
        read_pairwise(path)
    import pyarrow as pa

    out = write_pairwise([pair(id="1", response_a="Paris"), pair(id="2")], tmp_path / "d.parquet")
    assert b"judgeforge.records_sha256" in pq.ParquetFile(out).schema_arrow.metadata
    table = pq.read_table(out)
    changed = table.set_column(table.schema.get_field_index("response_a"), "response_a",
                               pa.array(["Rome", "3"]))
    pq.write_table(changed.replace_schema_metadata(table.schema.metadata), out)
    with pytest.raises(DataError, match="digest mismatch"):
        read_pairwise(out)
