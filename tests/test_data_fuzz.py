"""Property tests: whatever a JSONL or Parquet file holds, the loader either returns records or
raises DataError, never anything else, and every bad row is named (no row vanishes silently)."""

from __future__ import annotations

import json
import string
import uuid
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from judgeforge.data.io import load_records, write_records
from judgeforge.data.validate import RowError
from judgeforge.errors import DataError

SETTINGS = settings(max_examples=120, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])

# ------------------------------------------------------------------ strategies

ROLES = st.sampled_from(["user", "system", "assistant", "tool", "User", ""])
SHORT_TEXT = st.text(max_size=12)
JSON_SCALARS = (st.none() | st.booleans() | st.integers(min_value=-(2**70), max_value=2**70)
                | st.floats(allow_nan=False, allow_infinity=False) | SHORT_TEXT)
JSON_VALUES = st.recursive(JSON_SCALARS, lambda kids: st.lists(kids, max_size=3)
                           | st.dictionaries(SHORT_TEXT, kids, max_size=3), max_leaves=8)
LABEL_VALUES = (st.integers(-2, 7) | st.floats(allow_nan=True) | SHORT_TEXT | st.none()
                | st.booleans())


@st.composite
def near_records(draw: st.DrawFn) -> dict[str, Any]:
    """Record-shaped dicts, valid or broken in one or more fields."""
    row: dict[str, Any] = {
        "input": draw(st.lists(st.fixed_dictionaries({"role": ROLES, "content": SHORT_TEXT}),
                               max_size=3)),
        "output": {"content": draw(SHORT_TEXT),
                   "label": draw(st.dictionaries(st.sampled_from(["helpfulness", "quality"]),
                                                 LABEL_VALUES, max_size=2))},
        "data_source": draw(st.sampled_from(["unit", "", 3])),
    }
    if draw(st.booleans()):
        row["output"] = [row["output"]]
    if draw(st.booleans()):
        row["id"] = draw(SHORT_TEXT | st.integers())
    if draw(st.booleans()):
        row["extra_info"] = draw(st.dictionaries(SHORT_TEXT, JSON_VALUES, max_size=3))
    for key in draw(st.sets(st.sampled_from(sorted(row) + ["junk"]), max_size=2)):
        if key in row and draw(st.booleans()):
            del row[key]
        else:
            row[key] = draw(JSON_VALUES)
    return row


@st.composite
def valid_records(draw: st.DrawFn) -> dict[str, Any]:
    """Valid record dicts with arbitrary text, dimensions, ids and extra_info."""
    messages = draw(st.lists(st.fixed_dictionaries({"role": ROLES.filter(bool).filter(
        lambda r: r[0].islower()), "content": st.text(max_size=20)}), max_size=3))
    messages.append({"role": "user", "content": draw(st.text(max_size=20))})
    if draw(st.booleans()):  # an extra message field, allowed by the model
        messages[0]["name"] = draw(JSON_VALUES)
    row: dict[str, Any] = {
        "input": messages,
        "output": {"content": draw(st.text(max_size=20)),
                   "label": draw(st.dictionaries(st.sampled_from(["helpfulness", "quality", "x"]),
                                                 st.integers(0, 4), min_size=1, max_size=3))},
        "data_source": draw(st.text(min_size=1, max_size=8)),
    }
    if draw(st.booleans()):
        row["id"] = draw(st.text(max_size=8))
    if draw(st.booleans()):
        row["extra_info"] = draw(st.dictionaries(SHORT_TEXT, JSON_VALUES, max_size=3))
    return row


def _line(value: Any) -> bytes:
    return json.dumps(value).encode()


JSONL_LINES = st.lists(
    near_records().map(_line)
    | JSON_VALUES.map(_line)
    | st.binary(max_size=30)
    | st.text(alphabet=string.printable, max_size=30).map(str.encode),
    max_size=12,
)


# ------------------------------------------------------------------ invariants


def _rows_in(data: bytes) -> int:
    return sum(1 for line in data.split(b"\n") if line.strip())


def _check_named(errors: list[RowError], n_rows: int) -> set[int]:
    bad = set()
    for err in errors:
        assert isinstance(err, RowError)
        assert str(err)  # renders
        assert err.index is not None, f"file-level error on a readable file: {err}"
        assert 0 <= err.index < n_rows
        bad.add(err.index)
    return bad


def _check_load(path: Path, n_rows: int) -> None:
    result = load_records(path, skip_invalid=True)
    bad = _check_named(result.errors, n_rows)
    assert result.skipped == len(bad)
    assert len(result.records) + result.skipped == n_rows
    try:
        strict = load_records(path)
    except DataError as exc:
        assert _check_named(exc.errors, n_rows) == bad and bad
    else:
        assert not bad and strict.records == result.records


def _unique(folder: Path, suffix: str) -> Path:
    return folder / f"{uuid.uuid4().hex}.{suffix}"


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


# ------------------------------------------------------------------ JSONL


@SETTINGS
@given(lines=JSONL_LINES)
def test_jsonl_loader_names_every_bad_row(folder: Path, lines: list[bytes]) -> None:
    data = b"\n".join(lines)
    path = _unique(folder, "jsonl")
    path.write_bytes(data)
    _check_load(path, _rows_in(data))


@SETTINGS
@given(rows=st.lists(valid_records(), min_size=1, max_size=8))
def test_loaded_records_survive_a_write_and_reload(folder: Path, rows: list[dict]) -> None:
    path = _unique(folder, "jsonl")
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    loaded = load_records(path)
    assert len(loaded.records) == len(rows)
    for suffix in ("jsonl", "parquet"):
        out = write_records(_unique(folder, suffix), loaded.records, loaded.info)
        again = load_records(out)
        # the dict form (None values left out, see PointwiseRecord.to_dict) is what round-trips
        assert [r.to_dict() for r in again] == [r.to_dict() for r in loaded]
        assert again.info == loaded.info


@SETTINGS
@given(data=st.binary(max_size=200))
def test_garbage_bytes_as_jsonl(folder: Path, data: bytes) -> None:
    path = _unique(folder, "jsonl")
    path.write_bytes(data)
    _check_load(path, _rows_in(data))


# ------------------------------------------------------------------ Parquet

MESSAGE = pa.struct([("role", pa.string()), ("content", pa.string())])
ARROW_TYPES = [
    pa.string(), pa.int64(), pa.float64(), pa.bool_(), pa.binary(), pa.null(),
    pa.timestamp("ms"), pa.date32(),
    pa.list_(MESSAGE), pa.list_(pa.string()), pa.list_(pa.struct([("role", pa.string())])),
    pa.struct([("content", pa.string()), ("label", pa.struct([("helpfulness", pa.int64())]))]),
    pa.struct([("content", pa.string()), ("label", pa.map_(pa.string(), pa.int64()))]),
    pa.struct([("content", pa.string()), ("label", pa.struct([("quality", pa.float64())]))]),
    pa.struct([("content", pa.int64()), ("label", pa.string())]),
    pa.list_(pa.struct([("content", pa.string()),
                        ("label", pa.struct([("helpfulness", pa.int64())]))])),
    pa.map_(pa.string(), pa.string()),
    pa.struct([("rubric", pa.string()), ("n", pa.int64())]),
]


def _values(t: pa.DataType) -> st.SearchStrategy[Any]:
    if pa.types.is_null(t):
        return st.none()
    if pa.types.is_string(t):
        base: st.SearchStrategy[Any] = ROLES | SHORT_TEXT
    elif pa.types.is_int64(t):
        base = st.integers(-3, 8) | st.integers(-(2**63), 2**63 - 1)
    elif pa.types.is_floating(t):
        base = st.floats(allow_nan=True) | st.integers(0, 5).map(float)
    elif pa.types.is_boolean(t):
        base = st.booleans()
    elif pa.types.is_binary(t):
        base = st.binary(max_size=8)
    elif pa.types.is_timestamp(t):
        base = st.integers(-(2**62), 2**62)  # also far outside Python's datetime range
    elif pa.types.is_date32(t):
        base = st.integers(-(2**30), 2**30)
    elif pa.types.is_map(t):
        base = st.lists(st.tuples(ROLES | SHORT_TEXT, _values(t.item_type)), max_size=3)
    elif pa.types.is_list(t):
        base = st.lists(_values(t.value_type), max_size=3)
    elif pa.types.is_struct(t):
        base = st.fixed_dictionaries({t.field(i).name: _values(t.field(i).type)
                                      for i in range(t.num_fields)})
    else:  # pragma: no cover - every type above is handled
        raise AssertionError(t)
    return st.none() | base


@st.composite
def arrow_tables(draw: st.DrawFn) -> pa.Table:
    n = draw(st.integers(0, 6))
    names = draw(st.lists(st.sampled_from(["input", "output", "data_source", "id",
                                           "extra_info", "junk"]), unique=True, max_size=6))
    columns = {}
    for name in names:
        t = draw(st.sampled_from(ARROW_TYPES))
        columns[name] = pa.array(draw(st.lists(_values(t), min_size=n, max_size=n)), type=t)
    if not columns:
        return pa.table({"input": pa.array([None] * n, type=pa.list_(MESSAGE))})
    return pa.table(columns)


@SETTINGS
@given(table=arrow_tables())
def test_parquet_loader_names_every_bad_row(folder: Path, table: pa.Table) -> None:
    path = _unique(folder, "parquet")
    pq.write_table(table, path)
    _check_load(path, table.num_rows)


@SETTINGS
@given(data=st.binary(max_size=300), magic=st.booleans())
def test_garbage_bytes_as_parquet_raise_only_data_error(folder: Path, data: bytes,
                                                        magic: bool) -> None:
    path = _unique(folder, "parquet")
    path.write_bytes(b"PAR1" + data + b"PAR1" if magic else data)
    try:
        result = load_records(path, skip_invalid=True)
    except DataError as exc:
        assert exc.errors and all(str(e) for e in exc.errors)
    else:
        assert len(result.records) + result.skipped >= 0


@SETTINGS
@given(cut=st.integers(min_value=0, max_value=10_000), flip=st.integers(0, 255))
def test_truncated_or_corrupted_parquet(folder: Path, cut: int, flip: int) -> None:
    rows = [{"input": [{"role": "user", "content": f"q{i}"}],
             "output": {"content": "r", "label": {"helpfulness": i % 5}},
             "data_source": "unit"} for i in range(20)]
    good = write_records(_unique(folder, "parquet"), rows)
    data = bytearray(good.read_bytes())
    cut %= len(data)
    corrupted = bytes(data[:cut]) if flip % 2 else bytes(
        data[:cut] + bytes([data[cut] ^ (flip | 1)]) + data[cut + 1:])
    path = _unique(folder, "parquet")
    path.write_bytes(corrupted)
    try:
        result = load_records(path, skip_invalid=True)
    except DataError as exc:
        assert exc.errors
    else:
        assert len(result.records) + result.skipped == 20  # no row lost without an error
