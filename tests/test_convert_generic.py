"""Generic column-mapping converter: CSV, JSONL, JSON and Parquet tables, errors, the CLI."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from judgeforge.cli.main import main
from judgeforge.data.converters.generic import ColumnMapping, convert_generic
from judgeforge.data.converters.helpsteer2 import HELPSTEER2_DIMENSIONS, convert_helpsteer2
from judgeforge.data.io import load_records
from judgeforge.data.schema import Scale
from judgeforge.errors import ConfigError, DataError
from tests.fixtures_data import shared_data  # noqa: F401  (fixture)

MAPPING = ColumnMapping.from_specs(["query=prompt", "response=answer"], ["helpfulness=score"])
ROWS = [
    {"prompt": "What is 2+2?", "answer": "4", "score": 4},
    {"prompt": "Capital of France?", "answer": "Lyon", "score": 0},
    {"prompt": "Write a haiku\nabout rain", "answer": "Drops fall...", "score": 3},
]


def _csv(path: Path, rows: list[dict], header: list[str] | None = None) -> Path:
    with path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=header or list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def _write(path: Path, rows: list[dict]) -> Path:
    if path.suffix == ".csv":
        return _csv(path, rows)
    if path.suffix == ".parquet":
        pq.write_table(pa.Table.from_pylist(rows), path)
    elif path.suffix == ".json":
        path.write_text(json.dumps(rows))
    else:
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.mark.parametrize("suffix", ["csv", "jsonl", "json", "parquet"])
def test_every_format_converts_the_same(tmp_path: Path, suffix: str) -> None:
    result = convert_generic(_write(tmp_path / f"t.{suffix}", ROWS), MAPPING)
    assert [r.query for r in result] == [r["prompt"] for r in ROWS]
    assert [r.response for r in result] == [r["answer"] for r in ROWS]
    assert [r.label for r in result] == [{"helpfulness": r["score"]} for r in ROWS]
    assert {r.data_source for r in result} == {"t"}
    assert result.info.dimensions == {"helpfulness": Scale()}
    ids = [r.id for r in result]
    assert len(set(ids)) == 3 and all(i.startswith("t-") for i in ids)


def test_optional_roles_go_to_their_places(tmp_path: Path) -> None:
    rows = [{"q": "hi", "a": "hello", "s1": "5", "s2": "2", "sys": "be brief", "key": 17,
             "src": "forum", "rub": "Is it polite?", "ref": "Hello there!", "lang": "en"}]
    mapping = ColumnMapping.from_specs(
        ["query=q", "response=a", "system=sys", "id=key", "data_source=src", "rubric=rub",
         "reference=ref"], ["quality=s1", "s2"], extra=["lang"])
    rec = convert_generic(_write(tmp_path / "t.jsonl", rows), mapping,
                          scale=["quality=1-5", "0-4"]).records[0]
    assert [(m.role, m.content) for m in rec.input] == [("system", "be brief"), ("user", "hi")]
    assert rec.label == {"quality": 5, "s2": 2}
    assert rec.id == "17" and rec.data_source == "forum"
    assert rec.extra_info == {"rubric": "Is it polite?", "reference": "Hello there!",
                              "lang": "en"}


def test_query_cell_holding_chat_messages(tmp_path: Path) -> None:
    rows = [{"chat": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"},
                      {"role": "user", "content": "c"}], "answer": "d", "score": 1}]
    mapping = ColumnMapping.from_specs(["query=chat", "response=answer"], ["score"])
    rec = convert_generic(rows, mapping).records[0]
    assert [m.content for m in rec.input] == ["a", "b", "c"] and rec.label == {"score": 1}


def test_bad_csv_rows_are_named_with_line_and_column(tmp_path: Path) -> None:
    rows = ROWS + [
        {"prompt": "q", "answer": "a", "score": "7"},
        {"prompt": "q", "answer": "a", "score": "good"},
        {"prompt": "q", "answer": "a", "score": "2.5"},
        {"prompt": "q", "answer": "a", "score": "3.0"},
    ]
    with pytest.raises(DataError) as info:
        convert_generic(_csv(tmp_path / "t.csv", rows), MAPPING)
    # the third data row spans two lines, so later rows start one line further down
    assert [str(e) for e in info.value.errors] == [
        "row 3 (line 6): score: 7 is outside the scale 0-4 (label helpfulness)",
        "row 4 (line 7): score: 'good' is not an integer score (label helpfulness)",
        "row 5 (line 8): score: '2.5' is not an integer score (label helpfulness)",
    ]
    result = convert_generic(tmp_path / "t.csv", MAPPING, skip_invalid=True)
    assert len(result.records) == 4 and result.skipped == 3
    assert result.records[-1].label == {"helpfulness": 3}


def test_scale_changes_the_range(tmp_path: Path) -> None:
    rows = [{"prompt": "q", "answer": "a", "score": 5}, {"prompt": "q", "answer": "b", "score": 0}]
    with pytest.raises(DataError) as info:
        convert_generic(rows, MAPPING, scale="1-5")
    assert [str(e) for e in info.value.errors] == [
        "row 1: score: 0 is outside the scale 1-5 (label helpfulness)"]


def test_a_mapped_column_no_row_has_is_a_file_error(tmp_path: Path) -> None:
    path = _write(tmp_path / "t.parquet", ROWS)
    mapping = ColumnMapping.from_specs(["query=question", "response=answer"], ["score"])
    with pytest.raises(DataError) as info:
        convert_generic(path, mapping)
    assert [str(e) for e in info.value.errors] == [
        "file: question: column not found (mapped to query)"]


def test_rows_missing_a_column_or_with_wrong_types(tmp_path: Path) -> None:
    rows = [ROWS[0], {"prompt": "q", "score": 1}, {"prompt": 5, "answer": "a", "score": 1},
            "not an object", {"prompt": "q", "answer": "a", "score": None}]
    with pytest.raises(DataError) as info:
        convert_generic(_write(tmp_path / "t.jsonl", rows), MAPPING)
    assert [str(e) for e in info.value.errors] == [
        "row 1 (line 2): answer: column missing (mapped to response)",
        "row 2 (line 3): prompt: expected text for query, got int",
        "row 3 (line 4): expected an object, got str",
        "row 4 (line 5): score: None is not an integer score (label helpfulness)",
    ]


def test_duplicate_given_ids_are_errors() -> None:
    rows = [dict(r, key="same") for r in ROWS]
    mapping = ColumnMapping.from_specs(["query=prompt", "response=answer", "id=key"], ["score"])
    with pytest.raises(DataError) as info:
        convert_generic(rows, mapping)
    assert [str(e) for e in info.value.errors] == [
        "row 1: id: duplicate id 'same' (first at row 0)",
        "row 2: id: duplicate id 'same' (first at row 0)",
    ]


@pytest.mark.parametrize("maps,labels", [
    (["query=prompt"], ["score"]),                       # no response
    (["query=prompt", "response=answer"], []),           # no label
    (["query=prompt", "response=answer", "oops=x"], ["score"]),
    (["query", "response=answer"], ["score"]),
])
def test_bad_mappings_are_config_errors(maps: list[str], labels: list[str]) -> None:
    with pytest.raises(ConfigError):
        ColumnMapping.from_specs(maps, labels)


def test_real_helpsteer2_rows_as_a_flat_csv_match_the_dedicated_converter(
        shared_data: Path, tmp_path: Path) -> None:  # noqa: F811
    dedicated = convert_helpsteer2(shared_data / "helpsteer2-rows" / "test-rm.jsonl")
    flat = [{"system": r.input[0].content, "prompt": r.query, "response": r.response, **r.label}
            for r in dedicated]
    mapping = ColumnMapping.from_specs(["query=prompt", "response=response", "system=system"],
                                       list(HELPSTEER2_DIMENSIONS))
    generic = convert_generic(_csv(tmp_path / "hs.csv", flat), mapping, data_source="helpsteer2")
    assert [(r.input, r.response, r.label) for r in generic] == [
        (r.input, r.response, r.label) for r in dedicated]


def test_cli_generic_convert(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = _csv(tmp_path / "answers.csv", ROWS)
    out = tmp_path / "out.parquet"
    assert main(["data", "convert", "generic", str(src), "--out", str(out),
                 "--map", "query=prompt", "--map", "response=answer",
                 "--label", "helpfulness=score", "--scale", "0-4"]) == 0
    assert "wrote 3 records" in capsys.readouterr().out
    loaded = load_records(out)
    assert [r.label["helpfulness"] for r in loaded] == [4, 0, 3]
    assert loaded.info.name == "answers"
    assert main(["data", "convert", "generic", str(src), "--out", str(out),
                 "--map", "query=prompt", "--map", "response=answer",
                 "--label", "helpfulness=score", "--scale", "1-5"]) == 1
    err = capsys.readouterr().err
    assert "row 1 (line 3): score: 0 is outside the scale 1-5" in err
    assert main(["data", "convert", "generic", str(src), "--out", str(out),
                 "--map", "query=prompt", "--label", "score"]) == 1
    assert "map the response column" in capsys.readouterr().err
