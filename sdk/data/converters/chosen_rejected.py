"""The common preference-data layout ``prompt / chosen / rejected`` -> pairwise records.

Reads any JSONL, JSON list or Parquet table (``datasets``' preference sets are this shape) with
three columns (names configurable):

* ``prompt``: text, or a list of chat messages (``[{"role": "user", "content": ...}, ...]``);
  the column may be absent when ``chosen`` and ``rejected`` are whole conversations (the
  HH-RLHF shape), and then their shared turns before the last one are the prompt;
* ``chosen`` / ``rejected``: text, or a list of chat messages whose last turn is the
  assistant's response.

Each pair's chosen response lands on side ``a`` or ``b`` by a fair coin seeded with ``seed``
and the row's index (so "a always wins" cannot be learnt); ``preference`` says which. An
``id`` column is kept when there is one (else ``<data_source>-<index>``); other columns named
with ``extra`` are copied into ``extra_info``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from judgeforge.data.converters.base import RowProblem, row_object
from judgeforge.data.converters.pairwise_base import (
    PairwiseResult,
    convert_pairwise_rows,
    place_pair,
)
from judgeforge.data.validate import RawRow

__all__ = ["convert_chosen_rejected"]


def _messages(value: Any, field: str) -> list[dict[str, Any]]:
    if isinstance(value, str):
        return [{"role": "user", "content": value}]
    if isinstance(value, Sequence) and value and all(isinstance(m, Mapping) for m in value):
        return [dict(m) for m in value]
    raise RowProblem(field, "expected text or a non-empty list of chat messages, got "
                            f"{type(value).__name__}")


def _response(value: Any, field: str) -> tuple[list[dict[str, Any]], str]:
    """(the turns before the response, the response text) of a chosen/rejected cell."""
    if isinstance(value, str):
        return [], value
    messages = _messages(value, field)
    last = messages[-1]
    if last.get("role") != "assistant":
        raise RowProblem(f"{field}[{len(messages) - 1}].role",
                         f"the last turn must be the assistant's response, got "
                         f"{str(last.get('role'))[:40]!r}")
    content = last.get("content")
    if not isinstance(content, str):
        raise RowProblem(f"{field}[{len(messages) - 1}].content",
                         f"expected text, got {type(content).__name__}")
    return messages[:-1], content


def _convert_row(raw: RawRow, columns: tuple[str, str, str], seed: int, data_source: str,
                 extra: Sequence[str]) -> dict[str, Any]:
    row = row_object(raw)
    prompt_col, chosen_col, rejected_col = columns
    for col in (chosen_col, rejected_col):
        if col not in row:
            raise RowProblem(col, "column missing")
    chosen_turns, chosen = _response(row[chosen_col], chosen_col)
    rejected_turns, rejected = _response(row[rejected_col], rejected_col)
    if chosen_turns != rejected_turns:
        raise RowProblem(rejected_col, f"the turns before the response differ from "
                                       f"{chosen_col!r}'s (both must answer the same prompt)")
    if row.get(prompt_col) is not None:
        prompt = _messages(row[prompt_col], prompt_col)
        # turns in chosen/rejected continue the prompt, unless they repeat it whole
        prompt = chosen_turns if chosen_turns[:len(prompt)] == prompt else prompt + chosen_turns
    elif chosen_turns:
        prompt = chosen_turns
    else:
        raise RowProblem(prompt_col, "column missing (and chosen holds no conversation)")
    record: dict[str, Any] = {
        "input": prompt, **place_pair(chosen, rejected, seed, str(raw.index)),
        "data_source": str(row.get("data_source") or data_source),
        "id": str(row["id"]) if row.get("id") not in (None, "") else f"{data_source}-{raw.index}",
        "extra_info": {k: row[k] for k in extra if k in row}}
    return record


def convert_chosen_rejected(
    path: str | os.PathLike[str],
    *,
    prompt: str = "prompt",
    chosen: str = "chosen",
    rejected: str = "rejected",
    extra: Sequence[str] = (),
    seed: int = 0,
    data_source: str | None = None,
    skip_invalid: bool = False,
) -> PairwiseResult:
    """Convert a ``prompt/chosen/rejected`` Parquet/JSONL/JSON table (see the module doc)."""
    from judgeforge.data.io import iter_raw_rows

    source = data_source or Path(path).name.split(".")[0]
    result = convert_pairwise_rows(
        iter_raw_rows(path),
        lambda raw: _convert_row(raw, (prompt, chosen, rejected), seed, source, extra),
        skip_invalid=skip_invalid, source=str(path))
    result.notes.append(f"chosen response placed by a coin seeded {seed}: side a "
                        f"{sum(r.preference == 'a' for r in result)}, side b "
                        f"{sum(r.preference == 'b' for r in result)}")
    return result
