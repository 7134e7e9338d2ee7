"""The inputs every pairwise grader needs, checked in one place."""

from __future__ import annotations

from typing import Any

from judgeforge.graders.results import GraderError

__all__ = ["missing_pair_input"]


def missing_pair_input(name: str, query: Any, response_a: Any,
                       response_b: Any) -> GraderError | None:
    """A final error naming what is missing when the query or a response is None, else None."""
    missing = [k for k, v in (("query", query), ("response_a", response_a),
                              ("response_b", response_b)) if v is None]
    if not missing:
        return None
    return GraderError(name=name, error=f"missing input(s): {', '.join(missing)}",
                       reason="the grader needs a query and two responses",
                       metadata={"error_type": "MissingInput", "retryable": False})
