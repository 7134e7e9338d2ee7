"""Grader result values: OpenJudge's field names, JSON round trips, no silent zeros."""

from __future__ import annotations

import json
import math
import typing

import pytest
from pydantic import ValidationError

from judgeforge.graders.results import (
    GraderError,
    GraderScore,
    from_dict,
    is_error,
    is_score,
    to_dict,
)


def _norm(annotation: object) -> object:
    origin = typing.get_origin(annotation)
    return (origin, typing.get_args(annotation)) if origin else annotation


def test_fields_match_openjudge_schema() -> None:
    schema = pytest.importorskip("openjudge.graders.schema")
    assert set(GraderScore.model_fields) == set(schema.GraderScore.model_fields)
    assert set(GraderError.model_fields) == set(schema.GraderError.model_fields)
    for ours, theirs in ((GraderScore, schema.GraderScore), (GraderError, schema.GraderError)):
        for name, field in ours.model_fields.items():
            other = theirs.model_fields[name].annotation
            assert _norm(field.annotation) == _norm(other), name


def test_openjudge_results_read_ours_and_back() -> None:
    schema = pytest.importorskip("openjudge.graders.schema")
    ours = GraderScore(name="helpfulness", score=3, reason="good", metadata={"raw_output": "x"})
    theirs = schema.GraderScore(**ours.model_dump())
    assert (theirs.name, theirs.score, theirs.reason) == ("helpfulness", 3.0, "good")
    err = schema.GraderError(name="relevance", error="boom", reason="why")
    back = from_dict(to_dict(err))
    assert isinstance(back, GraderError) and (back.error, back.reason) == ("boom", "why")
    assert is_error(err) and not is_score(err) and is_score(theirs)


def test_score_round_trip_through_json() -> None:
    s = GraderScore(name="h", score=2.5, reason="r",
                    metadata={"distribution": {"2": 0.5, "3": 0.5}, "tokens": {"total": 9},
                              "bad": float("nan"), "tuple": (1, 2)})
    line = json.dumps(s.to_dict())
    back = from_dict(json.loads(line))
    assert isinstance(back, GraderScore)
    assert back.score == 2.5 and back.metadata["distribution"] == {"2": 0.5, "3": 0.5}
    assert back.metadata["bad"] is None and back.metadata["tuple"] == [1, 2]


def test_error_round_trip_keeps_raw_output_and_status() -> None:
    e = GraderError(name="h", error="no_score: no <score> tag", reason="unparsable",
                    metadata={"raw_output": "Your response is not helpful.",
                              "parse_status": "no_score", "retryable": False})
    back = from_dict(json.loads(json.dumps(to_dict(e))))
    assert isinstance(back, GraderError)
    assert back.metadata["raw_output"] == "Your response is not helpful."
    assert not back.retryable
    assert not hasattr(back, "score")


def test_error_is_never_a_zero_score() -> None:
    e = GraderError(name="h", error="x")
    assert is_error(e) and not is_score(e)
    with pytest.raises(ValueError):
        from_dict({"name": "h", "reason": "no score, no error"})
    with pytest.raises(TypeError):
        to_dict(object())


def test_score_requires_a_number() -> None:
    with pytest.raises(ValidationError):
        GraderScore(name="h", score="not a number")  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        GraderScore(name="h", score=1.0, extra_field=1)  # type: ignore[call-arg]
    assert math.isclose(GraderScore(name="h", score=1).score, 1.0)
