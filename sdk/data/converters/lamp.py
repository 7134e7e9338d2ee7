"""LAMP-R (salesforce/creativity_eval) expert-rated paragraphs -> pointwise records, scale 1-10.

Each raw row is a chat: ``{"messages": [system, user, assistant]}``. The user turn is the
scoring instruction with the paragraph (``... Paragraph:\\n<text>\\n\\nYou must produce your
answer ...``); the assistant turn is ``{"score": N}`` (1-10, professional writers). The paragraph
becomes the graded response; the query is the writing request the paragraph answers (none is
given: a fixed "Write a paragraph of creative writing."); the instruction's first sentence is
kept as ``extra_info.instruction`` (the benchmark suite's task description).

About 87% of paragraphs have a near-identical twin (an LLM draft and its writer-edited version).
:func:`pair_groups` links each paragraph to its most similar one in the same file when their
word-trigram Jaccard similarity is at least ``PAIR_THRESHOLD`` (measured on the test file:
twins score 0.12-0.83, unrelated paragraphs 0.00-0.04); linked paragraphs share
``extra_info.pair`` (``<data_source>-pair-<first index>``), the group key for splitting.
"""

from __future__ import annotations

import json
import os
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from judgeforge.data.converters.base import (
    Converted,
    RowProblem,
    convert_rows,
    row_object,
    source_rows,
)
from judgeforge.data.converters.sources import plain_name
from judgeforge.data.io import LoadResult
from judgeforge.data.schema import DatasetInfo, Scale
from judgeforge.data.validate import RawRow, RowError, coerce_score

__all__ = ["LAMP_QUERY", "LAMP_SCALE", "PAIR_THRESHOLD", "convert_lamp", "lamp_info",
           "pair_groups"]

LAMP_SCALE = Scale(min=1, max=10)
LAMP_QUERY = "Write a paragraph of creative writing."
PAIR_THRESHOLD = 0.1
LAMP_SOURCE = ("salesforce/creativity_eval @ fced0ab2d3068244152d1302a8bd8e9f538440f5, "
               "WritingRewards/training/Llama/data/lamp-R/<split>_dataset.json")
_PARAGRAPH = re.compile(r"Paragraph:\s*\n(?P<text>.*?)\n\s*\nYou must produce your answer", re.S)


def lamp_info(name: str = "lamp-r", dimension: str = "quality") -> DatasetInfo:
    """DatasetInfo of converted LAMP-R rows: one dimension on the 1-10 scale."""
    return DatasetInfo(
        name=name,
        dimensions={dimension: LAMP_SCALE},
        source=LAMP_SOURCE,
        license="BSD-3-Clause (repository licence)",
        description="LAMP-R creative-writing paragraphs scored 1-10 by professional writers; "
                    "drafts and their edited versions share extra_info.pair (split by pair).",
    )


def _shingles(text: str) -> set[tuple[str, ...]]:
    words = re.findall(r"\w+", text.lower())
    return set(zip(words, words[1:], words[2:])) if len(words) >= 3 else {tuple(words)}


def pair_groups(texts: Sequence[str], threshold: float = PAIR_THRESHOLD) -> list[int]:
    """For each text, the index of the first text of its near-duplicate group.

    Each text is linked to its most similar other text (word-trigram Jaccard, found through an
    index of shared trigrams) when the similarity reaches ``threshold``; linked texts form
    groups (union-find). A text with no twin is its own group.
    """
    sets = [_shingles(t) for t in texts]
    index: dict[tuple[str, ...], list[int]] = {}
    for i, s in enumerate(sets):
        for sh in s:
            index.setdefault(sh, []).append(i)
    parent = list(range(len(texts)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i, s in enumerate(sets):
        shared: Counter[int] = Counter()
        for sh in s:
            shared.update(j for j in index[sh] if j != i)
        best, best_sim = -1, 0.0
        for j, n in shared.items():
            sim = n / (len(s) + len(sets[j]) - n)
            if sim > best_sim or (sim == best_sim and j < best):
                best, best_sim = j, sim
        if best >= 0 and best_sim >= threshold:
            a, b = root(i), root(best)
            parent[max(a, b)] = min(a, b)
    return [root(i) for i in range(len(texts))]


def _message(messages: list[Any], role: str, field: str) -> str:
    for i, m in enumerate(messages):
        if isinstance(m, Mapping) and m.get("role") == role:
            if not isinstance(m.get("content"), str):
                raise RowProblem(f"messages[{i}].content", "expected text")
            return str(m["content"])
    raise RowProblem(field, f"no {role} message")


def _convert_row(raw: RawRow, dimension: str, data_source: str) -> dict[str, Any]:
    messages = row_object(raw).get("messages")
    if not isinstance(messages, list):
        raise RowProblem("messages", "expected a list of chat messages")
    user = _message(messages, "user", "messages")
    match = _PARAGRAPH.search(user)
    if not match or not match.group("text").strip():
        raise RowProblem("messages.user", "no 'Paragraph:' section before the answer format")
    answer = _message(messages, "assistant", "messages")
    try:
        parsed = json.loads(answer)
        score = coerce_score(parsed["score"] if isinstance(parsed, Mapping) else parsed)
    except (ValueError, KeyError, TypeError) as exc:
        raise RowProblem("messages.assistant", f"no score in {answer[:40]!r} ({exc})") from None
    if score not in LAMP_SCALE:
        raise RowProblem("messages.assistant", f"{score} is outside the scale {LAMP_SCALE}")
    instruction = user[: user.find("Paragraph:")].strip()
    extra = {"instruction": instruction.split("\n")[0].strip()}
    return {"input": [{"role": "user", "content": LAMP_QUERY}],
            "output": {"content": match.group("text").strip(), "label": {dimension: score}},
            "data_source": data_source, "id": f"{data_source}-{raw.index}",
            "extra_info": {k: v for k, v in extra.items() if v is not None}}


def _pair_ids(kept: list[Converted], errors: list[RowError]) -> list[Converted]:
    groups = pair_groups([data["output"]["content"] for _, data in kept])
    for (_, data), first in zip(kept, groups):
        data["extra_info"]["pair"] = f"{data['data_source']}-pair-{kept[first][0].index}"
    return kept


def _split_name(path: str | os.PathLike[str]) -> str:
    """``test_dataset.json`` / ``test.jsonl.gz`` -> ``test``."""
    return re.sub(r"_dataset$", "", Path(plain_name(path)).stem)


def convert_lamp(
    source: str | os.PathLike[str] | Iterable[Mapping[str, Any]],
    *,
    dimension: str = "quality",
    data_source: str | None = None,
    skip_invalid: bool = False,
) -> LoadResult:
    """Convert a LAMP-R file (JSON lines, plain or .gz) or its rows to records (1-10).

    ``data_source`` defaults to ``lamp-r/<split>`` from the file name. Draft/edit twins share
    ``extra_info.pair``. Raises DataError naming every bad row unless ``skip_invalid``.
    """
    rows, where, is_file = source_rows(source)
    data_source = data_source or (f"lamp-r/{_split_name(where)}" if is_file else "lamp-r")
    info = lamp_info(data_source.replace("/", "_"), dimension)
    return convert_rows(rows, lambda raw: _convert_row(raw, dimension, data_source), info,
                        assign_ids=_pair_ids, skip_invalid=skip_invalid, source=where)
