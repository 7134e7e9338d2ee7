"""The score parser: formats it reads, failures it reports, and what it never does (return 0)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from judgeforge.data.schema import Scale
from judgeforge.parsing import ParsedScore, ParseFailure, ParseFailureKind, parse_score


@pytest.mark.parametrize("text, expected", [
    ("<score>3</score>", 3),
    ("<SCORE> 4 </Score>", 4),
    ("< score >\n2\n</ score >", 2),
    ("Good answer.\n<score>1</score>", 1),
    ("<score>1</score> then revised <score>2</score>", 2),       # last tag wins
    ("<think>maybe <score>0</score></think> final <score>4</score>", 4),  # think ignored
    ("reasoning</think><score>3</score>", 3),                      # prefilled <think>
    ("<score>3.0</score>", 3),
    ("<score>+2</score>", 2),
    ("It deserves <score>3", 3),                                   # stopped at </score>
])
def test_reads_scores(text: str, expected: int) -> None:
    result = parse_score(text)
    assert isinstance(result, ParsedScore), result
    assert result.score == expected


@pytest.mark.parametrize("text, kind", [
    ("", ParseFailureKind.NO_SCORE),
    (None, ParseFailureKind.NO_SCORE),
    ("Your response is not helpful.", ParseFailureKind.NO_SCORE),
    ("<think><score>3</score></think> no final answer", ParseFailureKind.NO_SCORE),
    ("<think>unfinished <score>3</score>", ParseFailureKind.NO_SCORE),
    ("<score>three</score>", ParseFailureKind.NOT_INTEGER),
    ("<score>2.5</score>", ParseFailureKind.NOT_INTEGER),
    ("<score></score>", ParseFailureKind.NOT_INTEGER),
    ("<score>5</score>", ParseFailureKind.OUT_OF_RANGE),
    ("<score>-1</score>", ParseFailureKind.OUT_OF_RANGE),
])
def test_reports_typed_failures(text: str | None, kind: ParseFailureKind) -> None:
    result = parse_score(text)
    assert isinstance(result, ParseFailure)
    assert result.kind is kind
    assert result.raw == (text or "")
    assert not result.ok


def test_scale_is_respected() -> None:
    assert parse_score("<score>5</score>", scale=Scale(min=1, max=5)).score == 5
    assert parse_score("<score>0</score>", scale=Scale(min=1, max=5)).kind is \
        ParseFailureKind.OUT_OF_RANGE


def test_multi_dimension_tags() -> None:
    dims = {"helpfulness": Scale(), "correctness": Scale()}
    ok = parse_score("<helpfulness>3</helpfulness>\n<correctness>2</correctness>", dimensions=dims)
    assert isinstance(ok, ParsedScore) and ok.scores == {"helpfulness": 3, "correctness": 2}
    missing = parse_score("<helpfulness>3</helpfulness>", dimensions=dims)
    assert isinstance(missing, ParseFailure)
    assert missing.kind is ParseFailureKind.MISSING_DIMENSION
    assert missing.partial == {"helpfulness": 3}


def test_single_dimension_reported_under_its_name() -> None:
    result = parse_score("<score>2</score>", dimensions={"relevance": Scale()})
    assert isinstance(result, ParsedScore) and result.scores == {"relevance": 2}


def test_reason_is_text_outside_the_tag() -> None:
    result = parse_score("Accurate and complete. <score>4</score>")
    assert isinstance(result, ParsedScore) and result.reason == "Accurate and complete."
    thought = parse_score("<think>covers all points</think><score>4</score>")
    assert isinstance(thought, ParsedScore) and thought.reason == "covers all points"


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_fuzz_never_crashes_and_never_invents_zero(text: str) -> None:
    result = parse_score(text)
    if isinstance(result, ParsedScore):
        # a score is only ever read from a tag the output really contains
        assert "score" in text.lower()
        assert 0 <= result.score <= 4
    else:
        assert isinstance(result, ParseFailure) and result.raw == text


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.characters(blacklist_characters="<>")), st.integers(0, 4),
       st.text(alphabet=st.characters(blacklist_characters="<>")))
def test_fuzz_round_trip(prefix: str, value: int, suffix: str) -> None:
    result = parse_score(f"{prefix}<score>{value}</score>{suffix}")
    assert isinstance(result, ParsedScore) and result.score == value
