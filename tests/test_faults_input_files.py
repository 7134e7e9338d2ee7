"""Issue 18, cases 10 and 12: CSV and Parquet files that would lose rows silently.

Real files (csv module, pyarrow); every damaged file is either read whole or a DataError that
names the row (CSV) or the row counts (Parquet).
"""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from judgeforge.cli.main import main
from judgeforge.data.io import iter_raw_rows, load_records, write_records
from judgeforge.errors import DataError

HEADER = "query,response,score\n"


def _csv(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "rows.csv"
    path.write_text(HEADER + body, encoding="utf-8")
    return path


# -- case 10: CSV ----------------------------------------------------------------------------------
def test_csv_stray_opening_quote_is_an_error_naming_the_row(tmp_path):
    path = _csv(tmp_path, 'q1,r1,1\nq2,"r2 oops,2\nq3,r3,3\nq4,r4,4\n')
    with pytest.raises(DataError, match=r"row 1 \(line 3\): unreadable CSV") as info:
        list(iter_raw_rows(path))
    assert info.value.errors[0].index == 1 and info.value.errors[0].line == 3


def test_csv_stray_quote_closed_later_is_an_error_too(tmp_path):
    path = _csv(tmp_path, 'q1,r1,1\nq2,"r2 oops,2\nq3,r3,3\nq4,"r4",4\n')
    with pytest.raises(DataError, match=r"row 1 \(line 3\)"):
        list(iter_raw_rows(path))


def test_csv_stray_quote_through_convert_exits_1_without_writing(tmp_path, capsys):
    path = _csv(tmp_path, 'q1,r1,1\nq2,"r2 oops,2\nq3,r3,3\nq4,r4,4\n')
    out = tmp_path / "out.jsonl"
    code = main(["data", "convert", "generic", str(path), "--out", str(out), "--map",
                 "query=query", "--map", "response=response", "--label", "helpfulness=score"])
    assert code == 1 and not out.exists()
    assert "row 1 (line 3)" in capsys.readouterr().err


def test_csv_quoted_multiline_cells_still_read(tmp_path):
    path = _csv(tmp_path, 'q1,"line one\nline two, with comma",1\nq2,"say ""hi""",2\n')
    rows = [r.data for r in iter_raw_rows(path)]
    assert rows == [{"query": "q1", "response": "line one\nline two, with comma", "score": "1"},
                    {"query": "q2", "response": 'say "hi"', "score": "2"}]


def test_csv_duplicate_header_is_an_error_naming_the_column(tmp_path):
    path = tmp_path / "rows.csv"
    path.write_text("query,response,query\nq,r,other\n")
    with pytest.raises(DataError, match=r"column 'query' appears twice \(columns 1 and 3\)"):
        list(iter_raw_rows(path))


def test_csv_huge_cell_is_an_error_naming_the_row(tmp_path):
    limit = csv.field_size_limit()
    path = _csv(tmp_path, "q1,r1,1\nq2,r2,2\nq3," + "x" * (limit + 1) + ",3\n")
    with pytest.raises(DataError, match=r"row 2 \(line 4\).*field larger than field limit"):
        list(iter_raw_rows(path))


# -- case 12: corrupted Parquet --------------------------------------------------------------------
def test_every_one_bit_flip_of_a_parquet_file_loads_whole_or_fails(tmp_path):
    """Before: offsets 29, 462, 736 and 1137 (XOR 1) of this 2,313-byte file loaded as 0 rows,
    0 skipped, no error. Now the footer's row count is compared with the rows read."""
    rows = [{"input": [{"role": "user", "content": f"q{i}"}],
             "output": {"content": "r", "label": {"helpfulness": i % 5}},
             "data_source": "unit"} for i in range(20)]
    good = write_records(tmp_path / "good.parquet", rows)
    data = good.read_bytes()
    bad = tmp_path / "bad.parquet"
    lost = []
    for offset in range(len(data)):
        flipped = bytearray(data)
        flipped[offset] ^= 1
        bad.write_bytes(bytes(flipped))
        try:
            result = load_records(bad, skip_invalid=True)
        except DataError as exc:
            assert exc.errors
            continue
        if len(result.records) + result.skipped != 20:
            lost.append((offset, len(result.records), result.skipped))
    assert lost == []


def test_parquet_with_fewer_rows_than_its_footer_names_both_counts(tmp_path, monkeypatch):
    import judgeforge.data.io as io

    rows = [{"input": [{"role": "user", "content": f"q{i}"}],
             "output": {"content": "r", "label": {"helpfulness": 1}},
             "data_source": "unit"} for i in range(5)]
    path = write_records(tmp_path / "d.parquet", rows)
    real = io._batch_rows
    monkeypatch.setattr(io, "_batch_rows", lambda batch: real(batch)[:3])  # a short page
    with pytest.raises(DataError, match="footer says 5 row.*3 could be read"):
        load_records(path)
