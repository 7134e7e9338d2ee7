"""Comparisons of two responses: a pairwise judge and the preference of a pointwise one.

    from judgeforge.graders import PairwiseGrader
    result = await PairwiseGrader(model).aevaluate(query="...", response_a="...",
                                                  response_b="...")
    result.preference  # "a", "b" or "tie"

:func:`pairwise_mapper` feeds either grader from a
:class:`~judgeforge.data.pairwise.PairwiseRecord` (or its dict form) in the
:class:`~judgeforge.graders.runner.GradingRunner`.
"""

from __future__ import annotations

from typing import Any

from judgeforge.graders.pairwise.from_pointwise import (
    MARGIN_METRICS,
    PointwisePreferenceGrader,
    fit_margin,
    preference_from_diff,
)
from judgeforge.graders.pairwise.grader import PAIRWISE_MODES, PairwiseGrader, PairwiseMode, decide

__all__ = ["PairwiseGrader", "PairwiseMode", "PAIRWISE_MODES", "PointwisePreferenceGrader",
           "fit_margin", "preference_from_diff", "decide", "pairwise_mapper", "MARGIN_METRICS"]


def pairwise_mapper(row: Any) -> dict[str, Any]:
    """Keywords for a pairwise record (or its dict form): :func:`judgeforge.pairwise_prompt.
    pairwise_inputs` without the absent rubric/reference; a row that is not one is a
    :class:`~judgeforge.graders.runner.MappingError` (an error value for that row)."""
    from judgeforge.graders.runner.config import MappingError
    from judgeforge.pairwise_prompt import pairwise_inputs

    try:
        kw = pairwise_inputs(row)
    except (KeyError, IndexError, TypeError, AttributeError) as exc:
        raise MappingError(f"not a pairwise record (needs input messages, response_a and "
                           f"response_b): {type(exc).__name__}: {exc}") from exc
    return {k: v for k, v in kw.items() if v is not None}
