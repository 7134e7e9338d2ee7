"""Anthropic's HHH alignment pairs, in Prometheus' absolute-grading format -> pairwise records.

``hhh_alignment_eval.json`` (prometheus-eval's copy) holds 221 items ``{source,
chosen_instruction, rejected_instruction}``; each ``*_instruction`` is a whole Prometheus
absolute prompt, the two differing only in the response. Each is split by
:func:`~judgeforge.data.converters.prometheus.parse_prometheus_prompt` (no reference section):

    input      the instruction to evaluate (one user turn; both prompts must agree)
    rubric     the score rubric (the source's criterion, 1-5 descriptions; both must agree)
    responses  the chosen and the rejected response
    extra_info {"criterion": source (harmless/helpful/honest/other), "index": row index}
    id         "hhh-<index>"

**Sides are randomised**: the chosen response lands on side ``a`` or ``b`` by a fair coin seeded
with ``seed`` and the pair's index (:func:`~judgeforge.data.converters.pairwise_base.chosen_side`),
so a judge cannot score well by always answering "a"; the same seed gives the same file. There
are no ties and no votes (one gold label per pair).
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

from judgeforge.data.converters.base import RowProblem, row_object, source_rows
from judgeforge.data.converters.pairwise_base import (
    PairwiseResult,
    convert_pairwise_rows,
    place_pair,
)
from judgeforge.data.converters.prometheus import parse_prometheus_prompt
from judgeforge.data.validate import RawRow

__all__ = ["HHH_CRITERIA", "convert_hhh"]

HHH_CRITERIA = ("harmless", "helpful", "honest", "other")


def _parts(row: Mapping[str, Any], key: str) -> dict[str, str]:
    text = row.get(key)
    if not isinstance(text, str):
        raise RowProblem(key, f"expected the prompt text, got {type(text).__name__}")
    try:
        return parse_prometheus_prompt(text, require_reference=False)
    except ValueError as exc:
        raise RowProblem(key, str(exc)) from None


def _convert_row(raw: RawRow, seed: int) -> dict[str, Any]:
    row = row_object(raw)
    criterion = row.get("source")
    if not isinstance(criterion, str) or not criterion.strip():
        raise RowProblem("source", f"expected the criterion name, got {criterion!r}")
    chosen = _parts(row, "chosen_instruction")
    rejected = _parts(row, "rejected_instruction")
    for part in ("query", "rubric"):
        if chosen[part] != rejected[part]:
            raise RowProblem("rejected_instruction", f"its {part} differs from the chosen "
                                                     "prompt's (the two must differ only in "
                                                     "the response)")
    record: dict[str, Any] = {
        "input": [{"role": "user", "content": chosen["query"]}],
        **place_pair(chosen["response"], rejected["response"], seed, str(raw.index)),
        "rubric": chosen["rubric"], "data_source": "hhh-alignment",
        "id": f"hhh-{raw.index}", "extra_info": {"criterion": criterion, "index": raw.index}}
    return record


def convert_hhh(
    source: str | os.PathLike[str] | Iterable[Mapping[str, Any]],
    *,
    seed: int = 0,
    skip_invalid: bool = False,
) -> PairwiseResult:
    """Convert ``hhh_alignment_eval.json`` (or its rows) to pairwise records, the chosen side
    randomised with ``seed`` (see the module doc)."""
    rows, where, _ = source_rows(source)
    result = convert_pairwise_rows(rows, lambda raw: _convert_row(raw, seed),
                                   skip_invalid=skip_invalid, source=where)
    sides = Counter(r.preference for r in result.records)
    result.notes.append(f"chosen response placed by a coin seeded {seed}: side a {sides['a']}, "
                        f"side b {sides['b']}")
    return result
