"""HelpSteer2 -> pointwise records, keeping all five 0-4 dimensions.

Sources (:func:`convert_helpsteer2` picks by what it is given):

* the hub name ``nvidia/HelpSteer2`` (or a local dataset folder), through ``datasets``
  (the ``hub`` extra, imported only then);
* a local Parquet/JSONL/JSON file, or any iterable of dicts (e.g. a ``datasets.Dataset``), in
  either shape:
  - columns ``prompt, response, helpfulness, correctness, coherence, complexity, verbosity``
    (the hub's). A multi-turn ``prompt`` holds earlier turns joined by
    ``\\n<extra_id_1>Assistant\\n`` and ``\\n<extra_id_1>User\\n``; they become separate messages;
  - the SteerLM regression-RM transcript ``{"text": ..., "label": [9 floats]}``:
    ``<extra_id_0>System\\n<system>\\n<extra_id_1>User\\n<prompt>\\n<extra_id_1>Assistant\\n
    <response>\\n<extra_id_2>``; ``label`` is four ``-100`` placeholders (OASST attributes) then
    helpfulness, correctness, coherence, complexity, verbosity. The final assistant turn is the
    graded response, earlier turns the input; the system turn is kept when non-empty.

Ids are ``helpsteer2-<16 hex of sha1(input, response)>`` (made unique with ``-2``... suffixes).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from judgeforge._extras import require
from judgeforge.data.converters.base import RowProblem, convert_rows, row_object
from judgeforge.data.io import LoadResult, iter_raw_rows
from judgeforge.data.keys import content_hash
from judgeforge.data.schema import DatasetInfo, Scale
from judgeforge.data.validate import RawRow, coerce_score
from judgeforge.errors import ConfigError, DataError

__all__ = [
    "HELPSTEER2_DIMENSIONS",
    "HUB_NAME",
    "convert_helpsteer2",
    "helpsteer2_info",
    "load_hub_rows",
    "parse_steerlm_transcript",
    "split_prompt_turns",
]

HUB_NAME = "nvidia/HelpSteer2"
HELPSTEER2_DIMENSIONS = ("helpfulness", "correctness", "coherence", "complexity", "verbosity")
_SCALE = Scale(min=0, max=4)
_PLACEHOLDER = -100
_TURN = re.compile(r"\n?<extra_id_1>(User|Assistant)\n")
_SYSTEM = "<extra_id_0>System"
_ATTRS = "<extra_id_2>"
_FILE_SUFFIXES = {".jsonl", ".ndjson", ".json", ".parquet", ".pq"}


def helpsteer2_info(dimensions: Sequence[str] = HELPSTEER2_DIMENSIONS) -> DatasetInfo:
    """The DatasetInfo of converted HelpSteer2: the chosen dimensions, each 0-4."""
    return DatasetInfo(
        name="helpsteer2",
        dimensions={d: _SCALE for d in dimensions},
        source=HUB_NAME,
        license="CC-BY-4.0",
        description="NVIDIA HelpSteer2: human 0-4 ratings of responses on five attributes.",
    )


def _clean_assistant(text: str) -> str:
    # SteerLM marks where attributes go with <extra_id_2>: a leading "<extra_id_2>attrs\n"
    # line (SFT data) or a trailing "\n<extra_id_2>" (regression-RM data).
    if text.startswith(_ATTRS):
        text = text.partition("\n")[2]
    if text.endswith(_ATTRS):
        text = text[: -len(_ATTRS)]
        if text.endswith("\n"):
            text = text[:-1]
    return text


def _turns(pieces: list[str]) -> list[dict[str, str]]:
    # pieces: [prefix, role, content, role, content, ...] from _TURN.split
    out = []
    for role, content in zip(pieces[1::2], pieces[2::2]):
        if role == "Assistant":
            out.append({"role": "assistant", "content": _clean_assistant(content)})
        else:
            out.append({"role": "user", "content": content})
    return out


def split_prompt_turns(prompt: str) -> list[dict[str, str]]:
    """A hub ``prompt`` -> messages (one user message, or the turns of a multi-turn prompt)."""
    return _turns(_TURN.split("<extra_id_1>User\n" + prompt))


def parse_steerlm_transcript(text: str) -> tuple[list[dict[str, str]], str]:
    """A SteerLM transcript -> (input messages, final assistant response).

    Raises ``ValueError`` when the text is not a transcript ending in an assistant turn.
    """
    pieces = _TURN.split(text)
    prefix = pieces[0]
    messages: list[dict[str, str]] = []
    if prefix.startswith(_SYSTEM):
        system = prefix[len(_SYSTEM):]
        system = system[1:] if system.startswith("\n") else system
        if system.strip():
            messages.append({"role": "system", "content": system})
    elif prefix.strip():
        raise DataError("text does not start with '<extra_id_0>System' or a turn tag")
    turns = _turns(pieces)
    if not turns or turns[-1]["role"] != "assistant":
        raise DataError("transcript does not end with an '<extra_id_1>Assistant' turn")
    return messages + turns[:-1], turns[-1]["content"]


def _score(field: str, value: Any) -> int:
    try:
        score = coerce_score(value)
    except ValueError as exc:
        raise RowProblem(field, str(exc)) from None
    if score not in _SCALE:
        raise RowProblem(field, f"{score} is outside the scale {_SCALE}")
    return score


def _from_transcript(row: Mapping[str, Any], dims: Sequence[str]
                     ) -> tuple[list[dict[str, str]], str, dict[str, int]]:
    text, labels = row.get("text"), row.get("label")
    if not isinstance(text, str):
        raise RowProblem("text", f"expected a string, got {type(text).__name__}")
    if not isinstance(labels, (list, tuple)) or len(labels) not in (5, 9):
        raise RowProblem("label", "expected a list of 9 values (4 placeholders + 5 scores) "
                                  "or of 5 scores")
    try:
        messages, response = parse_steerlm_transcript(text)
    except ValueError as exc:
        raise RowProblem("text", str(exc)) from None
    offset = len(labels) - len(HELPSTEER2_DIMENSIONS)
    label = {}
    for pos, dim in enumerate(HELPSTEER2_DIMENSIONS, start=offset):
        if dim in dims and labels[pos] != _PLACEHOLDER:
            label[dim] = _score(f"label[{pos}] ({dim})", labels[pos])
    return messages, response, label


def _from_columns(row: Mapping[str, Any], dims: Sequence[str]
                  ) -> tuple[list[dict[str, str]], str, dict[str, int]]:
    prompt, response = row.get("prompt"), row.get("response")
    for name, value in (("prompt", prompt), ("response", response)):
        if not isinstance(value, str):
            raise RowProblem(name, f"expected a string, got {type(value).__name__}")
    label = {}
    for dim in dims:
        if dim not in row:
            raise RowProblem(dim, "column missing")
        label[dim] = _score(dim, row[dim])
    assert isinstance(prompt, str) and isinstance(response, str)  # checked above
    return split_prompt_turns(prompt), response, label


def _convert_row(raw: RawRow, dims: Sequence[str], data_source: str) -> dict[str, Any]:
    row = row_object(raw)
    if "prompt" in row or "response" in row:
        messages, response, label = _from_columns(row, dims)
    elif "text" in row:
        messages, response, label = _from_transcript(row, dims)
    else:
        keys = ", ".join(map(str, list(row)[:8]))
        raise RowProblem(None, f"neither prompt/response columns nor a text transcript "
                               f"(fields: {keys})")
    rid = f"helpsteer2-{content_hash(messages, response, length=16)}"
    return {"input": messages, "output": {"content": response, "label": label},
            "data_source": data_source, "id": rid}


def load_hub_rows(name: str = HUB_NAME, split: str = "train") -> Iterator[RawRow]:
    """Rows of ``name`` (hub id or local dataset folder) through ``datasets.load_dataset``."""
    datasets = require("datasets", "hub", "needed to read HelpSteer2 from the Hugging Face hub")
    try:
        ds = datasets.load_dataset(name, split=split)
    except (OSError, ValueError) as exc:  # offline, unknown dataset or split
        raise DataError(f"cannot load {name!r} (split {split!r}) with datasets: {exc}") from exc
    for i, row in enumerate(ds):
        yield RawRow(i, None, row)


def _raw_rows(source: Any, split: str) -> tuple[Iterable[RawRow], str]:
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if path.is_file():
            return iter_raw_rows(path), str(path)
        if path.suffix.lower() in _FILE_SUFFIXES:
            raise DataError(f"{path}: no such file")
        return load_hub_rows(str(source), split), f"{source} (split {split})"
    if isinstance(source, Mapping):
        raise ConfigError("give an iterable of rows, a file or a dataset name, not one dict")
    return (RawRow(i, None, r) for i, r in enumerate(source)), "rows"


def convert_helpsteer2(
    source: str | os.PathLike[str] | Iterable[Mapping[str, Any]] = HUB_NAME,
    *,
    split: str = "train",
    dimensions: Sequence[str] = HELPSTEER2_DIMENSIONS,
    data_source: str = "helpsteer2",
    skip_invalid: bool = False,
) -> LoadResult:
    """Convert HelpSteer2 (hub name, dataset folder, local file or rows) to records.

    ``split`` is used only for the hub/folder source. Raises DataError naming every row that
    cannot be converted (field and reason) unless ``skip_invalid``.
    """
    unknown = [d for d in dimensions if d not in HELPSTEER2_DIMENSIONS]
    if unknown or not dimensions:
        raise ConfigError(f"unknown HelpSteer2 dimension(s) {unknown}; "
                          f"choose from {', '.join(HELPSTEER2_DIMENSIONS)}")
    info = helpsteer2_info(dimensions)
    rows, where = _raw_rows(source, split)
    return convert_rows(rows, lambda raw: _convert_row(raw, dimensions, data_source), info,
                        skip_invalid=skip_invalid, source=where)
