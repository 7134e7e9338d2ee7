"""HelpSteer2 converter: the real SteerLM rows, hub columns, the datasets code path, errors."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from judgeforge.cli.main import main
from judgeforge.data.converters.helpsteer2 import (
    HELPSTEER2_DIMENSIONS,
    convert_helpsteer2,
    parse_steerlm_transcript,
    split_prompt_turns,
)
from judgeforge.data.io import load_records
from judgeforge.data.schema import Scale
from judgeforge.errors import ConfigError, DataError, MissingExtraError
from tests.fixtures_data import shared_data  # noqa: F401  (fixture)

SYSTEM = ("A chat between a curious user and an artificial intelligence assistant. The assistant "
          "gives helpful, detailed, and polite answers to the user's questions.")


def _rm_file(shared: Path) -> Path:
    return shared / "helpsteer2-rows" / "test-rm.jsonl"


def _hub_rows() -> list[dict]:
    return [
        {"prompt": "Name a prime.", "response": "7", "helpfulness": 4, "correctness": 4,
         "coherence": 4, "complexity": 0, "verbosity": 1},
        {"prompt": "hi\n<extra_id_1>Assistant\nHello! How can I help?\n<extra_id_1>User\n"
                   "Tell me a joke.", "response": "Why did the chicken...", "helpfulness": 2,
         "correctness": 3, "coherence": 4, "complexity": 1, "verbosity": 2},
    ]


def test_real_steerlm_rows_keep_all_five_dimensions(shared_data: Path) -> None:  # noqa: F811
    path = _rm_file(shared_data)
    raw = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    result = convert_helpsteer2(path)
    assert len(result.records) == len(raw) == 8 and result.skipped == 0
    assert result.info.dimensions == {d: Scale(min=0, max=4) for d in HELPSTEER2_DIMENSIONS}
    for rec, row in zip(result.records, raw):
        assert rec.label == {d: int(v) for d, v in zip(HELPSTEER2_DIMENSIONS, row["label"][4:])}
        assert [m.role for m in rec.input] == ["system", "user"]
        assert rec.input[0].content == SYSTEM
        assert rec.data_source == "helpsteer2"
        assert "<extra_id" not in rec.response and "<extra_id" not in rec.query
        assert row["text"].endswith(rec.response + "\n<extra_id_2>")
    first = result.records[0]
    assert first.query == "explain master slave replication nsql"
    assert first.response.startswith("In the context of NoSQL databases, master-slave")
    assert first.label == {"helpfulness": 4, "correctness": 4, "coherence": 4,
                           "complexity": 3, "verbosity": 2}


def test_ids_are_stable_unique_and_prefixed(shared_data: Path) -> None:  # noqa: F811
    a = [r.id for r in convert_helpsteer2(_rm_file(shared_data))]
    b = [r.id for r in convert_helpsteer2(_rm_file(shared_data))]
    assert a == b and len(set(a)) == 8
    assert all(i.startswith("helpsteer2-") and len(i) == len("helpsteer2-") + 16 for i in a)


def test_duplicate_rows_get_suffixed_ids() -> None:
    rows = _hub_rows()[:1] * 3
    ids = [r.id for r in convert_helpsteer2(rows)]
    assert ids[1] == ids[0] + "-2" and ids[2] == ids[0] + "-3"


def test_multi_turn_transcript_and_empty_system() -> None:
    text = ("<extra_id_0>System\n\n<extra_id_1>User\nu1\n<extra_id_1>Assistant\na1\n"
            "<extra_id_1>User\nu2\n\n<extra_id_1>Assistant\nfinal answer\n<extra_id_2>")
    messages, response = parse_steerlm_transcript(text)
    assert messages == [{"role": "user", "content": "u1"},
                        {"role": "assistant", "content": "a1"},
                        {"role": "user", "content": "u2\n"}]
    assert response == "final answer"
    rec = convert_helpsteer2([{"text": text, "label": [-100] * 4 + [1, 2, 3, 4, 0]}]).records[0]
    assert [m.role for m in rec.input] == ["user", "assistant", "user"]
    assert rec.label == {"helpfulness": 1, "correctness": 2, "coherence": 3, "complexity": 4,
                         "verbosity": 0}


def test_steerlm_attribute_line_is_not_part_of_the_response() -> None:
    text = ("<extra_id_1>User\nq\n<extra_id_1>Assistant\n<extra_id_2>quality:4,toxicity:0\n"
            "the answer")
    assert parse_steerlm_transcript(text) == ([{"role": "user", "content": "q"}], "the answer")


def test_multi_turn_hub_prompt_becomes_messages() -> None:
    assert split_prompt_turns(_hub_rows()[1]["prompt"]) == [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "Hello! How can I help?"},
        {"role": "user", "content": "Tell me a joke."},
    ]
    assert split_prompt_turns("plain") == [{"role": "user", "content": "plain"}]


def test_hub_columns_through_a_datasets_dataset() -> None:
    datasets = pytest.importorskip("datasets")
    ds = datasets.Dataset.from_list(_hub_rows())
    result = convert_helpsteer2(ds)
    assert [r.label["helpfulness"] for r in result] == [4, 2]
    assert [m.role for m in result.records[1].input] == ["user", "assistant", "user"]
    assert result.records[1].response == "Why did the chicken..."


def test_hub_code_path_with_load_dataset_on_a_local_folder(tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """``datasets.load_dataset(name, split=...)``, as for nvidia/HelpSteer2, offline."""
    datasets = pytest.importorskip("datasets")
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "cache")
    folder = tmp_path / "HelpSteer2"
    folder.mkdir()
    pq.write_table(pa.Table.from_pylist(_hub_rows()), folder / "train.parquet")
    result = convert_helpsteer2(str(folder), split="train")
    assert [r.label for r in result] == [
        {"helpfulness": 4, "correctness": 4, "coherence": 4, "complexity": 0, "verbosity": 1},
        {"helpfulness": 2, "correctness": 3, "coherence": 4, "complexity": 1, "verbosity": 2}]
    with pytest.raises(DataError, match="cannot load"):
        convert_helpsteer2(str(folder), split="validation")


def test_without_datasets_the_hub_path_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "datasets", None)  # makes `import datasets` fail
    with pytest.raises(MissingExtraError, match=r"judgeforge\[hub\]"):
        convert_helpsteer2("nvidia/HelpSteer2")


@pytest.mark.parametrize("suffix", ["parquet", "jsonl"])
def test_local_files_with_hub_columns(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"hs.{suffix}"
    if suffix == "parquet":
        pq.write_table(pa.Table.from_pylist(_hub_rows()), path)
    else:
        path.write_text("".join(json.dumps(r) + "\n" for r in _hub_rows()))
    assert [r.label["verbosity"] for r in convert_helpsteer2(path)] == [1, 2]


def test_dimension_subset_and_unknown_dimension() -> None:
    result = convert_helpsteer2(_hub_rows(), dimensions=["helpfulness"])
    assert result.info.dimension_names == ["helpfulness"]
    assert all(list(r.label) == ["helpfulness"] for r in result)
    with pytest.raises(ConfigError):
        convert_helpsteer2(_hub_rows(), dimensions=["honesty"])


def test_bad_rows_are_all_named_with_their_field() -> None:
    rows = _hub_rows() + [
        dict(_hub_rows()[0], helpfulness=5),
        dict(_hub_rows()[0], correctness=2.5),
        {k: v for k, v in _hub_rows()[0].items() if k != "verbosity"},
        {"text": "no tags here", "label": [-100] * 4 + [1] * 5},
        {"text": "<extra_id_1>User\nq\n<extra_id_1>Assistant\na", "label": [1, 2]},
        {"something": "else"},
    ]
    with pytest.raises(DataError) as info:
        convert_helpsteer2(rows)
    assert [str(e) for e in info.value.errors] == [
        "row 2: helpfulness: 5 is outside the scale 0-4",
        "row 3: correctness: 2.5 is not an integer score",
        "row 4: verbosity: column missing",
        "row 5: text: text does not start with '<extra_id_0>System' or a turn tag",
        "row 6: label: expected a list of 9 values (4 placeholders + 5 scores) or of 5 scores",
        "row 7: neither prompt/response columns nor a text transcript (fields: something)",
    ]
    skipped = convert_helpsteer2(rows, skip_invalid=True)
    assert len(skipped.records) == 2 and skipped.skipped == 6 and len(skipped.errors) == 6


def test_missing_local_file_is_a_data_error(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no such file"):
        convert_helpsteer2(tmp_path / "nope.jsonl")


def test_cli_convert_then_validate(shared_data: Path, tmp_path: Path,  # noqa: F811
                                   capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "hs.parquet"
    assert main(["data", "convert", "helpsteer2", str(_rm_file(shared_data)),
                 "--out", str(out)]) == 0
    assert "wrote 8 records" in capsys.readouterr().out
    loaded = load_records(out)
    assert len(loaded.records) == 8 and loaded.info.name == "helpsteer2"
    assert main(["data", "validate", str(out)]) == 0


def test_cli_convert_bad_rows_exit_1_without_writing(tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "bad.jsonl"
    src.write_text(json.dumps(dict(_hub_rows()[0], helpfulness=9)) + "\n")
    out = tmp_path / "out.jsonl"
    assert main(["data", "convert", "helpsteer2", str(src), "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert "row 0 (line 1): helpfulness: 9 is outside the scale 0-4" in err
    assert "Traceback" not in err and not out.exists()
