"""The inputs every pairwise grader needs, checked in one place."""

from __future__ import annotations

from typing import Any

from judgeforge.graders.results import GraderError
from judgeforge.graders.runner.config import MappingError, check_plain_inputs

__all__ = ["pair_input_problem"]

_TEXT_FIELDS = ("response_a", "response_b", "rubric", "reference")


def pair_input_problem(name: str, query: Any, response_a: Any, response_b: Any,
                       rubric: Any = None, reference: Any = None) -> GraderError | None:
    """A final error when the query or a response is missing or any input has the wrong type
    (a list response is never graded as its Python repr), else None.

    The types follow the plain-row rule (:func:`check_plain_inputs`): the query is text or a
    list of chat messages, the responses, rubric and reference are text without lone
    surrogates. The model is never called for such a pair.
    """
    missing = [k for k, v in (("query", query), ("response_a", response_a),
                              ("response_b", response_b)) if v is None]
    if missing:
        return GraderError(name=name, error=f"missing input(s): {', '.join(missing)}",
                           reason="the grader needs a query and two responses",
                           metadata={"error_type": "MissingInput", "retryable": False})
    try:
        check_plain_inputs({"query": query, "response_a": response_a, "response_b": response_b,
                            "rubric": rubric, "reference": reference}, _TEXT_FIELDS)
    except MappingError as exc:
        return GraderError(name=name, error=str(exc),
                           reason="an input has the wrong type: the pair is not graded",
                           metadata={"error_type": "InvalidInput", "retryable": False})
    return None
