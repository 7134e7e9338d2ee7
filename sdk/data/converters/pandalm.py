"""PandaLM's human-annotated test set -> pairwise records, and its published judges' verdicts.

``testset-v1.json`` holds 999 items ``{idx, motivation_app, cmp_key, instruction, input,
response1, response2, annotator1, annotator2, annotator3}``; each annotator says 1 (response1
is better), 2 (response2) or 0 (tie). A record is::

    input       one user turn: the instruction, then a blank line and the input when there is one
    response_a  response1           response_b  response2
    votes       the three annotators' verdicts (1 -> "a", 2 -> "b", 0 -> "tie")
    preference  their majority: the verdict more than half of them gave
    id          str(idx)            extra_info  {idx, motivation_app, cmp_key}

Rules, applied by name:

* **No majority** (the three annotators all differ): the row is refused (a
  :class:`~judgeforge.data.validate.RowError` naming ``annotator1..3``), never turned into a
  tie; the shipped file has no such item (every item has a majority: 2: 472, 1: 422, 0: 105).
* **Responses that are not text**: six responses (idx 157, 158, 159, 161, 162, 164, the task
  "Verify the correctness of the given statement") are JSON booleans ``true``: the model's
  answer "True" parsed as a boolean when the set was built. By default (``non_text="coerce"``)
  a boolean becomes the text Python writes for it (``"True"``), counted in the result's notes;
  ``non_text="refuse"`` refuses those rows instead (named by row and field). Any other non-text
  value (a number, null, a list) is always refused.

:func:`published_verdicts` reads GPT-3.5's (``gpt-3.5-turbo-testset-v1.json``) or PandaLM-7B's
(``pandalm-7b-testset-v1.json``) verdicts keyed by the same id as the records.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any, Literal

from judgeforge.data.converters.base import RowProblem, row_object, source_rows
from judgeforge.data.converters.pairwise_base import PairwiseResult, convert_pairwise_rows
from judgeforge.data.pairwise import Verdict
from judgeforge.data.validate import RawRow
from judgeforge.errors import ConfigError, DataError

__all__ = ["ANNOTATORS", "convert_pandalm", "majority", "pandalm_query", "published_verdicts"]

ANNOTATORS = ("annotator1", "annotator2", "annotator3")
_VOTE: dict[Any, Verdict] = {1: "a", 2: "b", 0: "tie", "1": "a", "2": "b", "0": "tie",
                             "Tie": "tie", "tie": "tie"}
NonText = Literal["coerce", "refuse"]


def majority(votes: list[Verdict]) -> Verdict | None:
    """The verdict more than half of ``votes`` gave, else None (no majority)."""
    if not votes:
        return None
    verdict, count = Counter(votes).most_common(1)[0]
    return verdict if count * 2 > len(votes) else None


def pandalm_query(instruction: str, input_text: str | None) -> str:
    """The user turn of an item: the instruction, then the input after a blank line if any
    (either may be blank: idx 466's instruction is a space, its input "Truthfulness")."""
    parts = [t.strip() for t in (instruction, input_text or "") if t.strip()]
    return "\n\n".join(parts)


def _text(row: Mapping[str, Any], key: str, non_text: NonText, coerced: list[str]) -> str:
    value = row.get(key)
    if isinstance(value, str):
        return value
    if isinstance(value, bool) and non_text == "coerce":
        coerced.append(f"idx {row.get('idx')} {key}")
        return str(value)
    raise RowProblem(key, f"expected text, got JSON {type(value).__name__} {value!r}"
                          + (" (non_text='coerce' would turn a boolean into its text)"
                             if isinstance(value, bool) else ""))


def _convert_row(raw: RawRow, non_text: NonText, coerced: list[str]) -> dict[str, Any]:
    row = row_object(raw)
    instruction = row.get("instruction")
    if not isinstance(instruction, str):
        raise RowProblem("instruction", f"expected text, got {type(instruction).__name__}")
    input_text = row.get("input")
    if input_text is not None and not isinstance(input_text, str):
        raise RowProblem("input", f"expected text, got {type(input_text).__name__}")
    if not pandalm_query(instruction, input_text):
        raise RowProblem("instruction", "instruction and input are both empty")
    votes: list[Verdict] = []
    for key in ANNOTATORS:
        value = row.get(key)
        if isinstance(value, bool) or value not in _VOTE:
            raise RowProblem(key, f"expected 1, 2 or 0, got {value!r}")
        votes.append(_VOTE[value])
    preference = majority(votes)
    if preference is None:
        raise RowProblem(",".join(ANNOTATORS), f"no majority among the annotators ({votes}): "
                                               "refused, not counted as a tie")
    # both responses are read before any coercion is counted, so a refused row counts none
    mine: list[str] = []
    first = _text(row, "response1", non_text, mine)
    second = _text(row, "response2", non_text, mine)
    coerced.extend(mine)
    idx = row.get("idx", raw.index)
    extra = {"idx": idx}
    for key in ("motivation_app", "cmp_key"):
        if isinstance(row.get(key), str):
            extra[key] = row[key]
    return {"input": [{"role": "user", "content": pandalm_query(instruction, input_text)}],
            "response_a": first, "response_b": second, "preference": preference,
            "votes": votes, "data_source": "pandalm", "id": str(idx), "extra_info": extra}


def convert_pandalm(
    source: str | os.PathLike[str] | Iterable[Mapping[str, Any]],
    *,
    non_text: NonText = "coerce",
    skip_invalid: bool = False,
) -> PairwiseResult:
    """Convert PandaLM's ``testset-v1.json`` (or its rows) to pairwise records (see the module
    doc for the majority and non-text rules). The result's notes say what was coerced."""
    if non_text not in ("coerce", "refuse"):
        raise ConfigError(f"non_text must be 'coerce' or 'refuse', got {non_text!r}")
    rows, where, _ = source_rows(source)
    coerced: list[str] = []
    result = convert_pairwise_rows(rows, lambda raw: _convert_row(raw, non_text, coerced),
                                   skip_invalid=skip_invalid, source=where)
    if coerced:
        result.notes.append(f"coerced {len(coerced)} JSON boolean response(s) to text "
                            f"('True'/'False'): {', '.join(coerced)}")
    return result


def published_verdicts(path: str | os.PathLike[str]) -> dict[str, Verdict | None]:
    """A published judge's verdict per record id (``str(idx)``), from PandaLM's
    ``gpt-3.5-turbo-testset-v1.json`` (``gpt_result`` "1"/"2"/"Tie"/"garbage") or
    ``pandalm-7b-testset-v1.json`` (``pandalm_result`` 1/2/0).

    An unparsable verdict (GPT-3.5's 25 "garbage") maps to ``None``: count it as wrong, as the
    published accuracy (0.698) does. A row without idx or verdict field raises DataError naming
    it.
    """
    from judgeforge.data.io import iter_raw_rows

    out: dict[str, Verdict | None] = {}
    for raw in iter_raw_rows(path):
        try:
            row = row_object(raw)
        except RowProblem as exc:
            raise DataError(f"{path}: row {raw.index}: {exc}") from None
        field = next((k for k in ("gpt_result", "pandalm_result") if k in row), None)
        if field is None or "idx" not in row:
            raise DataError(f"{path}: row {raw.index}: expected idx and gpt_result or "
                            "pandalm_result")
        value = row[field]
        out[str(row["idx"])] = None if isinstance(value, bool) else _VOTE.get(value)
    return out
