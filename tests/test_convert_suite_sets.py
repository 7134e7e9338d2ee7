"""The suite's converters on the real files (``../shared/data``) and on the shipped copies:
counts and label spreads as in the data README, bad rows named, the pieces each record keeps."""

from __future__ import annotations

import copy
import gzip
import json
from collections import Counter
from pathlib import Path

import pytest

from judgeforge.cli.main import main
from judgeforge.data.converters.feedbackqa import convert_feedbackqa
from judgeforge.data.converters.judge_bench import (
    convert_judge_bench,
    metric_prompt,
    split_instance,
)
from judgeforge.data.converters.lamp import convert_lamp, pair_groups
from judgeforge.datasets import shipped_path
from judgeforge.errors import ConfigError, DataError
from tests.fixtures_data import shared_data  # noqa: F401  (a fixture)

ROSCOE = {"cosmos": 195, "drop": 210, "esnli": 151, "gsm8k": 200}


def _spread(result, dim: str) -> dict[int, int]:  # type: ignore[no-untyped-def]
    return dict(sorted(Counter(r.label[dim] for r in result.records).items()))


# ------------------------------------------------------------------ JUDGE-BENCH

def test_newsroom_relevance_spread_and_parts(shared_data: Path) -> None:  # noqa: F811
    path = shared_data / "judge-bench" / "newsroom.json"
    result = convert_judge_bench(path, metric="Relevance")
    assert len(result.records) == 420 and result.skipped == 0
    assert _spread(result, "relevance") == {1: 6, 2: 45, 3: 110, 4: 215, 5: 44}
    assert result.info.dimensions["relevance"].max == 5
    assert "Apache-2.0" in result.info.license and "JUDGE-BENCH" in result.info.source
    raw = json.loads(path.read_text())["instances"][0]
    rec = result.records[0]
    assert rec.extra_info["rater_scores"] == raw["annotations"]["Relevance"][
        "individual_human_scores"]
    assert rec.response in raw["instance"] and rec.query in raw["instance"]
    assert "### Source Article" not in rec.query and "### Generated Summary" not in rec.response
    assert raw["instance"].index(rec.response) < raw["instance"].index(rec.query)
    assert rec.id == "judge-bench/newsroom-1"
    for metric in ("Informativeness", "Fluency", "Coherence"):
        assert len(convert_judge_bench(path, metric=metric).records) == 420


def test_roscoe_overall_counts_and_chain_split(shared_data: Path) -> None:  # noqa: F811
    for name, count in ROSCOE.items():
        result = convert_judge_bench(shared_data / "judge-bench" / f"roscoe-{name}-overall.json",
                                     metric="Overall Quality")
        assert len(result.records) == count, name
        assert result.info.dimension_names == ["overall_quality"]
        assert "MIT" in result.info.license
        rec = result.records[0]
        assert rec.response.startswith("Step 1") and "GENERATED RESPONSE" not in rec.query
        assert "JUDGE THE GENERATED RESPONSE" in rec.extra_info["instructions"]
        assert len(rec.extra_info["rater_scores"]) == 1
    gsm = convert_judge_bench(shared_data / "judge-bench" / "roscoe-gsm8k-overall.json",
                              metric="Overall Quality")
    assert _spread(gsm, "overall_quality") == {1: 38, 2: 51, 3: 2, 4: 5, 5: 104}


def test_judge_bench_metric_choice_and_task_prompt(shared_data: Path) -> None:  # noqa: F811
    path = shared_data / "judge-bench" / "roscoe-drop-overall.json"
    assert convert_judge_bench(path).info.dimension_names == ["overall_quality"]  # first graded
    with pytest.raises(ConfigError, match="not a graded metric.*Missing Steps.*not graded"):
        convert_judge_bench(path, metric="Missing Steps")
    task = metric_prompt(path, "Overall Quality")
    assert "{{" not in task and task.startswith("Does the generated response answer")
    news = metric_prompt(shared_data / "judge-bench" / "newsroom.json", "Fluency")
    assert "well-written and grammatical" in news and "instance" not in news


def test_judge_bench_bad_instances_are_named(shared_data: Path) -> None:  # noqa: F811
    doc = json.loads((shared_data / "judge-bench" / "newsroom.json").read_text())
    doc = copy.deepcopy(doc)
    doc["instances"] = doc["instances"][:4]
    doc["instances"][1]["instance"] = "a summary with no section markers"
    doc["instances"][2]["annotations"]["Relevance"]["individual_human_scores"] = [4, 9, 1]
    del doc["instances"][3]["annotations"]["Relevance"]
    with pytest.raises(DataError) as err:
        convert_judge_bench(doc, metric="Relevance")
    text = str(err.value)
    assert "3 row(s) of 4" in text
    assert "row 1" in text and "instance: no known layout" in text
    assert "row 2" in text and "individual_human_scores[1]: 9 is outside the scale 1-5" in text
    assert "row 3" in text and "annotations.Relevance: missing" in text
    kept = convert_judge_bench(doc, metric="Relevance", skip_invalid=True)
    assert len(kept.records) == 1 and kept.skipped == 3


def test_split_instance_rejects_an_empty_part() -> None:
    with pytest.raises(ValueError, match="response part is empty"):
        split_instance("### Generated Summary\n\n\n### Source Article\n\nText")


# ------------------------------------------------------------------ FeedbackQA

def test_feedbackqa_all_files_rating_counts(shared_data: Path) -> None:  # noqa: F811
    files = sorted((shared_data / "feedbackqa").glob("*_feedback_*.json"))
    assert len(files) == 9
    results = [convert_feedbackqa(f) for f in files]
    records = [r for res in results for r in res.records]
    assert len(records) == 3924
    ratings = Counter(x for r in records for x in r.extra_info["ratings"])
    assert ratings == {"Bad": 3506, "Excellent": 3124, "Acceptable": 1636,
                       "Could be Improved": 1577}
    levels = {"Bad": 0, "Could be Improved": 1, "Acceptable": 2, "Excellent": 3}
    for r in records:
        names = r.extra_info["ratings"]
        assert r.extra_info["rater_scores"] == [levels[n] for n in names]
        assert len(r.extra_info["explanations"]) == len(names)
        assert r.extra_info["question"] == r.query
        twice_mean = 2 * sum(r.extra_info["rater_scores"]) / len(names)
        assert r.label["quality"] == int(twice_mean + 1) // 2  # the mean rounded half up
    assert results[0].records[0].data_source == "feedbackqa/Australia-test"
    assert "Apache-2.0" in results[0].info.license


def test_feedbackqa_half_rounds_up_and_bad_rows_are_named() -> None:
    row = {"question": "Q?", "passage": {"reference": {"section_content": "An answer."}},
           "rating": ["Excellent", "Acceptable"], "feedback": ["good", "ok"]}
    assert convert_feedbackqa([row]).records[0].label == {"quality": 3}
    bad = [dict(row, rating=["Excellent", "Great"]), dict(row, feedback=["only one"]),
           dict(row, passage={})]
    with pytest.raises(DataError) as err:
        convert_feedbackqa(bad)
    text = str(err.value)
    assert "row 0" in text and "rating[1]: 'Great' is not one of" in text
    assert "row 1" in text and "feedback: 1 explanations for 2 ratings" in text
    assert "row 2" in text and "passage.reference: missing" in text


def test_feedbackqa_question_groups_never_cross_a_split(shared_data: Path) -> None:  # noqa: F811
    from judgeforge.data.split import group_split

    records = convert_feedbackqa(shared_data / "feedbackqa" / "WHO_feedback_test.json").records
    train, test = group_split(records, test_size=0.3, seed=0, group_key="question")
    assert {r.extra_info["question"] for r in train}.isdisjoint(
        {r.extra_info["question"] for r in test})


# ------------------------------------------------------------------ LAMP-R

def test_lamp_test_spread_and_pairs(shared_data: Path) -> None:  # noqa: F811
    result = convert_lamp(shared_data / "lamp-r" / "test.jsonl")
    assert len(result.records) == 130
    assert _spread(result, "quality") == {2: 7, 3: 15, 4: 23, 5: 20, 6: 34, 7: 22, 8: 6, 9: 1,
                                          10: 2}
    assert "BSD-3-Clause" in result.info.license
    pairs = Counter(r.extra_info["pair"] for r in result.records)
    paired = sum(n for n in pairs.values() if n > 1)
    assert paired / len(result.records) >= 0.87  # the README: about 87% have a twin
    rec = result.records[0]
    raw = json.loads((shared_data / "lamp-r" / "test.jsonl").read_text().splitlines()[0])
    assert rec.response in raw["messages"][1]["content"]
    assert rec.label["quality"] == json.loads(raw["messages"][2]["content"])["score"]
    assert rec.extra_info["instruction"].startswith("You are given a paragraph")


def test_lamp_train_names_its_one_bad_row(shared_data: Path) -> None:  # noqa: F811
    with pytest.raises(DataError, match=r"row 564 \(line 565\): messages.assistant: 0 is "
                                        r"outside the scale 1-10"):
        convert_lamp(shared_data / "lamp-r" / "train.jsonl")
    kept = convert_lamp(shared_data / "lamp-r" / "train.jsonl", skip_invalid=True)
    assert len(kept.records) == 1995 and kept.skipped == 1


def test_pair_groups_links_a_draft_and_its_edit_only() -> None:
    draft = "The rain fell on the old town while Maria waited by the window for news."
    edit = "The rain fell on the old town as Maria waited at the window for any news."
    other = "A dog ran across the field chasing a red ball under a bright summer sky."
    assert pair_groups([draft, other, edit]) == [0, 1, 0]


# ------------------------------------------------------------------ shipped copies, CLI

@pytest.mark.parametrize("shipped,source", [
    ("judge-bench/newsroom.json.gz", "judge-bench/newsroom.json"),
    ("judge-bench/roscoe-esnli-overall.json.gz", "judge-bench/roscoe-esnli-overall.json"),
    ("judge-bench/results/roscoe-gsm8k.json.gz", "judge-bench/results/roscoe-gsm8k.json"),
    ("feedbackqa/CDC_feedback_test.json.gz", "feedbackqa/CDC_feedback_test.json"),
    ("lamp-r/test.jsonl.gz", "lamp-r/test.jsonl"),
])
def test_shipped_copies_equal_the_sources(shared_data: Path, shipped: str,  # noqa: F811
                                          source: str) -> None:
    path = shipped_path(shipped)
    assert gzip.decompress(path.read_bytes()) == (shared_data / source).read_bytes()
    folder = shipped_path(shipped.split("/")[0])
    assert (folder / "LICENSE").is_file() and (folder / "PROVENANCE.md").is_file()


def test_shipped_files_convert_like_the_sources(shared_data: Path) -> None:  # noqa: F811
    a = convert_lamp(shipped_path("lamp-r/test.jsonl.gz"))
    b = convert_lamp(shared_data / "lamp-r" / "test.jsonl")
    assert [r.model_dump() for r in a.records] == [r.model_dump() for r in b.records]
    c = convert_judge_bench(shipped_path("judge-bench/newsroom.json.gz"), metric="Coherence")
    d = convert_judge_bench(shared_data / "judge-bench" / "newsroom.json", metric="Coherence")
    assert [r.model_dump() for r in c.records] == [r.model_dump() for r in d.records]
    shipped_fq = sum(len(convert_feedbackqa(shipped_path(f"feedbackqa/{d}_feedback_test.json.gz"))
                         .records) for d in ("Australia", "CDC", "UK", "WHO"))
    assert shipped_fq == 474 + 573 + 765 + 183


def test_cli_convert_prints_the_label_spread(shared_data: Path, tmp_path: Path,  # noqa: F811
                                             capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "news.jsonl"
    assert main(["data", "convert", "judge-bench", str(shared_data / "judge-bench" /
                 "newsroom.json"), "--metric", "Relevance", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "wrote 420 records" in text
    assert 'label spread relevance: {"1": 6, "2": 45, "3": 110, "4": 215, "5": 44}' in text
    fq = [str(shared_data / "feedbackqa" / f"{d}_feedback_test.json") for d in ("UK", "WHO")]
    assert main(["data", "convert", "feedbackqa", *fq, "--out", str(tmp_path / "fq.jsonl")]) == 0
    assert "wrote 948 records" in capsys.readouterr().out
    assert main(["data", "convert", "lamp", str(shared_data / "lamp-r" / "train.jsonl"),
                 "--out", str(tmp_path / "l.jsonl")]) == 1
    assert "row 564" in capsys.readouterr().err
