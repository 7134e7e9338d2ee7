"""FeedbackQA (McGill-NLP) rated answers -> pointwise records, scale 0-3.

Each raw row is ``{"question", "passage": {..., "reference": {"section_content", ...}},
"rating": [level, ...], "feedback": [explanation, ...]}``: a public-health FAQ question, the
candidate answer passage, and about two crowd ratings each with a written explanation. The
ordered levels map to ``Bad`` 0, ``Could be Improved`` 1, ``Acceptable`` 2, ``Excellent`` 3; the
label (dimension ``quality`` by default) is the mean of a row's levels rounded half up (exactly,
with fractions: ``[Excellent, Acceptable]`` -> 2.5 -> 3).

``extra_info`` keeps what training and the human ceiling need: ``ratings`` (the level names),
``rater_scores`` (0-3, same order), ``explanations`` (the raters' written explanations, same
order: rationales for judges that explain their score), ``question`` (the group key: split by
question, never by row), ``domain``, ``passage_id``, ``page_title``, ``uri``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from fractions import Fraction
from pathlib import Path
from typing import Any

from judgeforge.data.converters.base import RowProblem, convert_rows, row_object, source_rows
from judgeforge.data.converters.prometheus import round_half_up
from judgeforge.data.converters.sources import plain_name
from judgeforge.data.io import LoadResult
from judgeforge.data.schema import DatasetInfo, Scale
from judgeforge.data.validate import RawRow

__all__ = ["FEEDBACKQA_LEVELS", "FEEDBACKQA_SCALE", "convert_feedbackqa", "feedbackqa_info"]

FEEDBACKQA_SCALE = Scale(min=0, max=3)
FEEDBACKQA_LEVELS: dict[str, int] = {"Bad": 0, "Could be Improved": 1, "Acceptable": 2,
                                     "Excellent": 3}
FEEDBACKQA_SOURCE = ("McGill-NLP/feedbackqa @ 0e37bee3c27aaf9269bf9c2946be0426e07c64fe, "
                     "experiments/feedbackQA_data/<domain>/feedback_<split>.json")


def feedbackqa_info(name: str = "feedbackqa", dimension: str = "quality") -> DatasetInfo:
    """DatasetInfo of converted FeedbackQA rows: one dimension on the 0-3 scale."""
    return DatasetInfo(
        name=name,
        dimensions={dimension: FEEDBACKQA_SCALE},
        source=FEEDBACKQA_SOURCE,
        license="Apache-2.0 (the dataset's card; the repository has no LICENSE file)",
        description="FeedbackQA answer ratings (Bad 0, Could be Improved 1, Acceptable 2, "
                    "Excellent 3): label = mean of the crowd ratings rounded half up; ratings, "
                    "rater_scores and the raters' explanations in extra_info; group by "
                    "extra_info.question.",
    )


def _text(value: Any, field: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise RowProblem(field, f"expected non-empty text, got {type(value).__name__}")
    return value.strip()


def _ratings(row: Mapping[str, Any]) -> tuple[list[str], list[int], list[str]]:
    ratings = row.get("rating")
    if not isinstance(ratings, list) or not ratings:
        raise RowProblem("rating", "expected a non-empty list of ratings")
    levels = []
    for i, name in enumerate(ratings):
        if name not in FEEDBACKQA_LEVELS:
            raise RowProblem(f"rating[{i}]", f"{name!r} is not one of {list(FEEDBACKQA_LEVELS)}")
        levels.append(FEEDBACKQA_LEVELS[name])
    feedback = row.get("feedback")
    if feedback is None:
        feedback = []
    if not isinstance(feedback, list) or not all(isinstance(f, str) for f in feedback):
        raise RowProblem("feedback", "expected a list of explanation texts")
    if feedback and len(feedback) != len(ratings):
        raise RowProblem("feedback", f"{len(feedback)} explanations for {len(ratings)} ratings")
    return list(ratings), levels, [f.strip() for f in feedback]


def _convert_row(raw: RawRow, dimension: str, data_source: str, domain: str) -> dict[str, Any]:
    row = row_object(raw)
    question = _text(row.get("question"), "question")
    passage = row.get("passage")
    reference = passage.get("reference") if isinstance(passage, Mapping) else None
    if not isinstance(reference, Mapping):
        raise RowProblem("passage.reference", "missing")
    answer = _text(reference.get("section_content"), "passage.reference.section_content")
    names, levels, explanations = _ratings(row)
    label = round_half_up(Fraction(sum(levels), len(levels)))
    assert isinstance(passage, Mapping)
    extra: dict[str, Any] = {"question": question, "domain": domain, "ratings": names,
                             "rater_scores": levels, "explanations": explanations,
                             "passage_id": passage.get("passage_id"),
                             "page_title": reference.get("page_title"),
                             "uri": passage.get("uri")}
    return {"input": [{"role": "user", "content": question}],
            "output": {"content": answer, "label": {dimension: label}},
            "data_source": data_source, "id": f"{data_source}-{raw.index}",
            "extra_info": {k: v for k, v in extra.items() if v is not None}}


def _domain_split(path: str | os.PathLike[str]) -> tuple[str, str]:
    """``WHO_feedback_test.json`` or ``WHO/feedback_test.json`` -> (``WHO``, ``test``)."""
    p = Path(path)
    stem = Path(plain_name(p)).stem
    match = re.match(r"^(?:(?P<domain>.+?)_)?feedback_(?P<split>\w+)$", stem)
    if not match:
        return p.parent.name or "feedbackqa", stem
    return match.group("domain") or p.parent.name or "feedbackqa", match.group("split")


def convert_feedbackqa(
    source: str | os.PathLike[str] | Iterable[Mapping[str, Any]],
    *,
    dimension: str = "quality",
    data_source: str | None = None,
    skip_invalid: bool = False,
) -> LoadResult:
    """Convert one FeedbackQA file (JSON list, plain or .gz) or its rows to records.

    ``data_source`` defaults to ``feedbackqa/<domain>-<split>`` from the file name (e.g.
    ``feedbackqa/WHO-test``). Raises DataError naming every bad row unless ``skip_invalid``.
    """
    rows, where, is_file = source_rows(source)
    domain, split = _domain_split(where) if is_file else ("feedbackqa", "")
    data_source = data_source or (f"feedbackqa/{domain}-{split}" if is_file else "feedbackqa")
    info = feedbackqa_info(data_source.replace("/", "_"), dimension)
    return convert_rows(rows, lambda raw: _convert_row(raw, dimension, data_source, domain),
                        info, skip_invalid=skip_invalid, source=where)

