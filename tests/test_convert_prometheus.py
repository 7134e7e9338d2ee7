"""Prometheus absolute-grading converter on the real MT-Bench and Vicuna files."""

from __future__ import annotations

import json
import math
import statistics
from collections import Counter
from fractions import Fraction
from pathlib import Path

import pytest

from judgeforge.cli.main import main
from judgeforge.data.converters.prometheus import (
    convert_prometheus,
    parse_prometheus_prompt,
    round_half_up,
)
from judgeforge.data.io import load_records
from judgeforge.data.schema import Scale
from judgeforge.errors import DataError
from tests.fixtures_data import shared_data  # noqa: F401  (fixture)

COUNTS = {
    "mt_bench": {1: 35, 2: 52, 3: 35, 4: 122, 5: 76},
    "vicuna": {1: 4, 2: 12, 3: 24, 4: 170, 5: 110},
}


def _file(shared: Path, name: str) -> Path:
    return shared / "prometheus-absolute" / f"{name}_eval.json"


@pytest.mark.parametrize("name", sorted(COUNTS))
def test_label_counts_match_the_published_spread(shared_data: Path,  # noqa: F811
                                                 name: str) -> None:
    result = convert_prometheus(_file(shared_data, name))
    assert len(result.records) == 320 and result.skipped == 0
    assert dict(Counter(r.label["quality"] for r in result)) == COUNTS[name]
    assert result.info.dimensions == {"quality": Scale(min=1, max=5)}
    assert {r.data_source for r in result} == {f"prometheus/{name}"}
    assert len({r.id for r in result}) == 320


@pytest.mark.parametrize("name", sorted(COUNTS))
def test_the_rounding_rule_is_what_reproduces_the_counts(shared_data: Path,  # noqa: F811
                                                         name: str) -> None:
    scores = [item["gpt4_score"] for item in json.loads(_file(shared_data, name).read_text())]
    scores = [json.loads(s) if isinstance(s, str) else s for s in scores]

    def spread(rule: object) -> dict[int, int]:
        return dict(Counter(rule(s) for s in scores))  # type: ignore[operator]

    assert spread(lambda s: round_half_up(Fraction(sum(s), len(s)))) == COUNTS[name]
    # three integer scores never average to exactly .5, so half-to-even agrees ...
    assert spread(lambda s: round(sum(s) / len(s))) == COUNTS[name]
    # ... while flooring or ceiling do not reproduce the published spread
    assert spread(lambda s: math.floor(sum(s) / len(s))) != COUNTS[name]
    assert spread(lambda s: math.ceil(sum(s) / len(s))) != COUNTS[name]
    # the median of the three happens to agree on Vicuna, not on MT-Bench
    median = spread(lambda s: int(statistics.median(s)))
    assert (median == COUNTS[name]) == (name == "vicuna")


def test_round_half_up() -> None:
    assert [round_half_up(x) for x in (2.5, 3.5, 0.5, 1.49, Fraction(7, 3), Fraction(8, 3))] == [
        3, 4, 1, 1, 2, 3]


def test_sections_are_split_out_of_the_real_prompt(shared_data: Path) -> None:  # noqa: F811
    items = json.loads(_file(shared_data, "mt_bench").read_text())
    rec = convert_prometheus(_file(shared_data, "mt_bench")).records[0]
    item = items[0]
    assert rec.id == f"prometheus/mt_bench-{item['idx']}-{item['response_source']}"
    assert [m.role for m in rec.input] == ["user"]
    assert rec.query.startswith("Here is a previous dialogue between an assistant and an user.")
    assert rec.query.endswith("Take your previous response and rephrase it as a limerick.\n\n"
                              "Assistant:")
    assert rec.response.startswith("Sure, here's a limerick comparing two smartphone models:")
    assert rec.response.endswith("But one was a better buy, so fine.")
    extra = rec.extra_info or {}
    assert extra["reference"].startswith("In this blog, two phones we'll compare,")
    assert extra["rubric"].startswith("[Does the response properly address the specific request")
    assert extra["rubric"].endswith("thorough consideration of the original question.")
    assert extra["idx"] == item["idx"] and extra["category"] == item["category"]
    assert extra["response_source"] == item["response_source"]
    assert extra["gpt4_scores"] == [3, 2, 3] and rec.label == {"quality": 3}


@pytest.mark.parametrize("name", sorted(COUNTS))
def test_no_section_header_leaks_into_any_field(shared_data: Path, name: str) -> None:  # noqa: F811
    for rec in convert_prometheus(_file(shared_data, name)):
        extra = rec.extra_info or {}
        for text in (rec.query, rec.response, extra["rubric"], extra["reference"]):
            assert text and text == text.strip()
            assert "###" not in text


def test_dimension_and_data_source_are_configurable(shared_data: Path) -> None:  # noqa: F811
    result = convert_prometheus(_file(shared_data, "vicuna"), dimension="score",
                                data_source="vicuna-bench")
    assert result.info.dimension_names == ["score"]
    assert result.records[0].data_source == "vicuna-bench"
    assert result.records[0].id.startswith("vicuna-bench-")


def test_score_as_a_string_holding_a_list(shared_data: Path) -> None:  # noqa: F811
    item = json.loads(_file(shared_data, "mt_bench").read_text())[0]
    rec = convert_prometheus([dict(item, gpt4_score=json.dumps(item["gpt4_score"]))]).records[0]
    assert rec.label == {"quality": 3}


def test_bad_rows_are_all_named(shared_data: Path) -> None:  # noqa: F811
    item = json.loads(_file(shared_data, "mt_bench").read_text())[0]
    rows = [
        item,
        dict(item, gpt4_score=[3, 6, 3]),
        dict(item, gpt4_score="not a list"),
        dict(item, instruction=item["instruction"].replace("###Score Rubrics:", "###Rubric")),
        dict(item, instruction=None),
        dict(item, gpt4_score=[]),
    ]
    with pytest.raises(DataError) as info:
        convert_prometheus(rows)
    assert [str(e) for e in info.value.errors] == [
        "row 1: gpt4_score[1]: 6 is outside the scale 1-5",
        "row 2: gpt4_score: 'not a list' is not a JSON list",
        "row 3: instruction: section '###Score Rubrics?:' not found",
        "row 4: instruction: expected the prompt text, got NoneType",
        "row 5: gpt4_score: expected a non-empty list of scores",
    ]


def test_parse_prompt_requires_sections_in_order() -> None:
    with pytest.raises(ValueError, match="Response to evaluate"):
        parse_prometheus_prompt("###The instruction to evaluate:\nq\n###Score Rubrics:\nr")


def test_cli_convert_and_info(shared_data: Path, tmp_path: Path,  # noqa: F811
                              capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "mt.jsonl"
    assert main(["data", "convert", "prometheus", str(_file(shared_data, "mt_bench")),
                 "--out", str(out), "--dimension", "score"]) == 0
    capsys.readouterr()
    assert main(["data", "info", str(out)]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["info"]["dimensions"] == {"score": {"min": 1, "max": 5}}
    assert report["label_counts"]["score"] == {str(k): v for k, v in COUNTS["mt_bench"].items()}
    assert load_records(out).records[5].extra_info["rubric"]
