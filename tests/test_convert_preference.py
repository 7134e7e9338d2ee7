"""Pairwise converters on the real sets (issue 24): PandaLM (999, majority, the six JSON
booleans, the published verdicts joined by id), HHH (221, parts of the Prometheus prompt,
criteria, seeded sides), prompt/chosen/rejected tables, and pairs derived from pointwise labels
that never cross a group split."""

from __future__ import annotations

import gzip
import json
from collections import Counter
from pathlib import Path

import pytest

from judgeforge.cli.main import main
from judgeforge.data import PairwiseRecord, read_pairwise
from judgeforge.data.converters.chosen_rejected import convert_chosen_rejected
from judgeforge.data.converters.hhh import convert_hhh
from judgeforge.data.converters.pandalm import convert_pandalm, majority, published_verdicts
from judgeforge.data.converters.pointwise_pairs import derive_pairs
from judgeforge.data.converters.prometheus import convert_prometheus
from judgeforge.data.split import group_of, group_split
from judgeforge.datasets import PANDALM_VERDICT_FILES, PREFERENCE_FILES, shipped_path
from judgeforge.errors import DataError
from tests.fixtures_data import shared_data  # noqa: F401  (a fixture)

BOOLEAN_IDX = {157, 158, 159, 161, 162, 164}


def _longer(rec: PairwiseRecord) -> str:
    la, lb = len(rec.response_a), len(rec.response_b)
    return "a" if la > lb else "b" if lb > la else "tie"


def test_cli_pandalm_writes_999_and_says_what_it_coerced(
        shared_data: Path, tmp_path: Path,  # noqa: F811
        capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "p.parquet"
    assert main(["data", "convert", "pandalm", str(shared_data / "pandalm/testset-v1.json"),
                 "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "wrote 999 pairwise records" in printed
    assert "coerced 6 JSON boolean response(s)" in printed and "idx 164 response1" in printed
    records = read_pairwise(out)
    assert len(records) == 999
    assert Counter(r.preference for r in records) == {"b": 472, "a": 422, "tie": 105}
    assert sum(len(set(r.votes or [])) == 1 for r in records) == 879  # unanimous
    coerced = {int(r.id) for r in records  # type: ignore[arg-type]
               if "True" in (r.response_a, r.response_b) and int(r.id) in BOOLEAN_IDX}
    assert coerced == BOOLEAN_IDX
    # the length baseline of the data README (equal length = tie): 0.611
    assert round(sum(_longer(r) == r.preference for r in records) / 999, 3) == 0.611
    # idx 466: a blank instruction, the input is the query
    assert next(r for r in records if r.id == "466").query == "Truthfulness"


def test_cli_pandalm_refuse_names_the_six_rows(shared_data: Path, tmp_path: Path,  # noqa: F811
                                               capsys: pytest.CaptureFixture[str]) -> None:
    src = str(shared_data / "pandalm/testset-v1.json")
    assert main(["data", "convert", "pandalm", src, "--out", str(tmp_path / "x.parquet"),
                 "--non-text", "refuse"]) == 1
    err = capsys.readouterr().err
    for idx in BOOLEAN_IDX:
        assert f"row {idx}: response" in err
    assert not (tmp_path / "x.parquet").exists()
    assert main(["data", "convert", "pandalm", src, "--out", str(tmp_path / "y.parquet"),
                 "--non-text", "refuse", "--skip-invalid"]) == 0
    assert "wrote 993 pairwise records" in capsys.readouterr().out
    assert not {int(r.id) for r in read_pairwise(tmp_path / "y.parquet")} & BOOLEAN_IDX  # type: ignore[arg-type]


def test_pandalm_without_majority_is_refused_not_a_tie() -> None:
    row = {"idx": 5, "instruction": "Say hi", "input": "", "response1": "hi", "response2": "yo",
           "annotator1": 1, "annotator2": 2, "annotator3": 0}
    assert majority(["a", "b", "tie"]) is None and majority(["a", "tie", "a"]) == "a"
    with pytest.raises(DataError, match="no majority"):
        convert_pandalm([row])
    result = convert_pandalm([row, {**row, "idx": 6, "annotator3": 2}], skip_invalid=True)
    assert [r.id for r in result] == ["6"] and result.skipped == 1
    with pytest.raises(DataError, match="annotator2: expected 1, 2 or 0"):
        convert_pandalm([{**row, "annotator2": True}])


def test_published_verdicts_reproduce_the_readme(shared_data: Path) -> None:  # noqa: F811
    records = convert_pandalm(shared_data / "pandalm/testset-v1.json").records
    accuracy = {}
    for name, rel in PANDALM_VERDICT_FILES.items():
        verdicts = published_verdicts(shipped_path(rel))
        assert set(verdicts) == {r.id for r in records}
        accuracy[name] = round(sum(verdicts[r.id] == r.preference  # type: ignore[index]
                                   for r in records) / len(records), 3)
    assert accuracy == {"GPT-3.5": 0.698, "PandaLM-7B": 0.668}
    gpt = published_verdicts(shipped_path(PANDALM_VERDICT_FILES["GPT-3.5"]))
    assert sum(v is None for v in gpt.values()) == 25  # "garbage": None, counted wrong


def test_shipped_preference_sets_equal_the_sources(shared_data: Path) -> None:  # noqa: F811
    sources = {"pandalm": shared_data / "pandalm/testset-v1.json",
               "hhh": shared_data / "hhh-alignment/hhh_alignment_eval.json"}
    for name, rel in PREFERENCE_FILES.items():
        assert gzip.decompress(shipped_path(rel).read_bytes()) == sources[name].read_bytes()
    for rel in PANDALM_VERDICT_FILES.values():
        assert gzip.decompress(shipped_path(rel).read_bytes()) == \
            (shared_data / "pandalm" / Path(rel).name.removesuffix(".gz")).read_bytes()
    assert len(convert_pandalm(shipped_path(PREFERENCE_FILES["pandalm"]))) == 999
    assert len(convert_hhh(shipped_path(PREFERENCE_FILES["hhh"]))) == 221


def test_cli_hhh_writes_221_with_criteria_and_seeded_sides(
        shared_data: Path, tmp_path: Path,  # noqa: F811
        capsys: pytest.CaptureFixture[str]) -> None:
    src = str(shared_data / "hhh-alignment/hhh_alignment_eval.json")
    out = tmp_path / "h.parquet"
    assert main(["data", "convert", "hhh", src, "--out", str(out)]) == 0
    assert "wrote 221 pairwise records" in capsys.readouterr().out
    records = read_pairwise(out)
    assert Counter(r.extra_info["criterion"] for r in records) == \
        {"harmless": 58, "helpful": 59, "honest": 61, "other": 43}
    sides = Counter(r.preference for r in records)
    assert sides["tie"] == 0 and 90 < sides["a"] < 131  # not "a always wins"
    assert round(sum(_longer(r) == r.preference for r in records) / 221, 3) == 0.629
    first = records[0]
    assert first.query.startswith("Can you tell me what kind of knife")
    chosen = first.response_a if first.preference == "a" else first.response_b
    assert chosen.startswith("Sorry, I'm not interested in helping you with that.")
    assert first.rubric and first.rubric.startswith("[Does the model's response avoid causing")
    assert "###" not in first.query + first.response_a + first.response_b + first.rubric
    again = convert_hhh(src).records
    assert [r.preference for r in again] == [r.preference for r in records]  # same seed
    other = convert_hhh(src, seed=1).records
    assert [r.preference for r in other] != [r.preference for r in records]


def test_hhh_prompts_that_differ_beyond_the_response_are_refused(shared_data: Path) -> None:  # noqa: F811
    item = json.loads((shared_data / "hhh-alignment/hhh_alignment_eval.json").read_text())[0]
    bad = {**item, "rejected_instruction": item["rejected_instruction"].replace(
        "###The instruction to evaluate:\n", "###The instruction to evaluate:\nEdited. ")}
    with pytest.raises(DataError, match="row 1: rejected_instruction: its query differs"):
        convert_hhh([item, bad])
    with pytest.raises(DataError, match="row 0: chosen_instruction: section"):
        convert_hhh([{**item, "chosen_instruction": "no sections"}])


def test_chosen_rejected_text_and_chat_columns(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = [
        {"prompt": "2+2?", "chosen": "4", "rejected": "5", "id": "t"},
        {"prompt": [{"role": "system", "content": "math"}, {"role": "user", "content": "3+3?"}],
         "chosen": [{"role": "assistant", "content": "6"}],
         "rejected": [{"role": "assistant", "content": "7"}]},
    ]
    jsonl = tmp_path / "prefs.jsonl"
    jsonl.write_text("".join(json.dumps(r) + "\n" for r in rows))
    parquet = tmp_path / "prefs.parquet"
    pq.write_table(pa.Table.from_pylist([{"prompt": "2+2?", "chosen": "4", "rejected": "5"}]),
                   parquet)
    result = convert_chosen_rejected(jsonl)
    first, second = result.records
    assert first.id == "t" and first.query == "2+2?"
    assert {first.response_a, first.response_b} == {"4", "5"}
    assert (first.response_a if first.preference == "a" else first.response_b) == "4"
    assert [m.role for m in second.input] == ["system", "user"] and second.query == "3+3?"
    assert (second.response_a if second.preference == "a" else second.response_b) == "6"
    assert len(convert_chosen_rejected(parquet)) == 1
    # HH-RLHF shape: whole conversations, no prompt column
    hh = tmp_path / "hh.jsonl"
    convo = [{"role": "user", "content": "hi"}]
    hh.write_text(json.dumps({"chosen": convo + [{"role": "assistant", "content": "hello"}],
                              "rejected": convo + [{"role": "assistant", "content": "go"}]})
                  + "\n" + json.dumps({"chosen": "x"}) + "\n")
    with pytest.raises(DataError) as info:
        convert_chosen_rejected(hh)
    assert [(e.index, e.field) for e in info.value.errors] == [(1, "rejected")]
    only = convert_chosen_rejected(hh, skip_invalid=True).records
    assert len(only) == 1 and only[0].query == "hi"


def test_cli_pairs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "t.jsonl"
    src.write_text(json.dumps({"q": "2+2?", "good": "4", "bad": "5", "topic": "math"}) + "\n")
    out = tmp_path / "o.jsonl"
    assert main(["data", "convert", "pairs", str(src), "--prompt-col", "q", "--chosen-col",
                 "good", "--rejected-col", "bad", "--extra", "topic", "--out", str(out)]) == 0
    assert "wrote 1 pairwise records" in capsys.readouterr().out
    (rec,) = read_pairwise(out)
    assert rec.extra_info == {"topic": "math"} and rec.data_source == "t"


def test_derived_pairs_never_cross_the_group_split(tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    from judgeforge.datasets import prometheus_files

    records = [r for f in prometheus_files() for r in convert_prometheus(f).records]
    train, test = group_split(records, test_size=0.2, seed=0, group_key="idx")
    pairs_train = derive_pairs(train, group_key="idx").records
    pairs_test = derive_pairs(test, group_key="idx").records
    assert len(pairs_train) > 100 and pairs_test
    assert not {p.query for p in pairs_train} & {p.query for p in pairs_test}
    assert not {group_of(p, "group") for p in pairs_train} & \
        {group_of(p, "group") for p in pairs_test}
    by_id = {r.id: r for r in records}
    for p in pairs_train:
        a_id, b_id = p.extra_info["source_ids"]
        a, b = by_id[a_id], by_id[b_id]
        assert (a.response, b.response) == (p.response_a, p.response_b)
        assert a.query == b.query == p.query  # same query, not just the same group
        assert a.label["quality"] != b.label["quality"]
        want = "a" if a.label["quality"] > b.label["quality"] else "b"
        assert p.preference == want
    assert Counter(p.preference for p in pairs_train)["a"] not in (0, len(pairs_train))
    # the CLI on a split's train file: the same pairs
    split_dir = tmp_path / "split"
    assert main(["data", "convert", "prometheus", str(prometheus_files()[1]),
                 "--out", str(tmp_path / "v.parquet")]) == 0
    assert main(["data", "split", str(tmp_path / "v.parquet"), "--out-dir", str(split_dir),
                 "--group-key", "idx"]) == 0
    for part in ("train", "test"):
        assert main(["data", "convert", "pairs-from-pointwise", str(split_dir / f"{part}.parquet"),
                     "--group-key", "idx", "--out", str(tmp_path / f"{part}-pairs.parquet")]) == 0
    capsys.readouterr()
    tr, te = (read_pairwise(tmp_path / f"{p}-pairs.parquet") for p in ("train", "test"))
    assert tr and te
    assert not {group_of(p, "group") for p in tr} & {group_of(p, "group") for p in te}


def test_derived_pairs_gap_cap_and_rubric() -> None:
    def rec(i: int, label: int, rubric: str = "R") -> dict:
        return {"input": [{"role": "user", "content": "q"}],
                "output": {"content": f"r{i}", "label": {"quality": label}},
                "data_source": "u", "id": f"r{i}", "extra_info": {"rubric": rubric}}

    from judgeforge.data.schema import PointwiseRecord

    records = [PointwiseRecord.model_validate(rec(i, lab)) for i, lab in
               enumerate([1, 2, 2, 5])]
    every = derive_pairs(records).records
    assert len(every) == 5  # 6 combinations, the two 2s make none
    assert all(p.rubric == "R" for p in every)
    assert len(derive_pairs(records, min_gap=3).records) == 3
    capped = derive_pairs(records, max_pairs_per_query=1).records
    assert len(capped) == 1 and sorted(capped[0].extra_info["labels"]) == [1, 5]
