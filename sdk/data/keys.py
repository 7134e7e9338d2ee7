"""Stable row keys: a record's ``id`` if it has one, else a hash of what is being graded.

The crash-safe runner uses :func:`record_key` to know which rows are done, so the key of a row
must not change between runs, processes or Python versions (no ``hash()``, no dict order).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

from judgeforge.data.schema import PointwiseRecord
from judgeforge.errors import UsageError

__all__ = ["canonical_json", "content_hash", "record_key", "unique_ids"]


def canonical_json(value: Any) -> str:
    """JSON with sorted keys, no spaces and raw Unicode: equal values give equal text."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      default=str)


def _messages(value: Any) -> list[dict[str, Any]]:
    if not isinstance(value, list):
        return [{"value": value}]
    out = []
    for msg in value:
        if isinstance(msg, Mapping):
            out.append({"role": msg.get("role"), "content": msg.get("content")})
        elif hasattr(msg, "role"):
            out.append({"role": msg.role, "content": getattr(msg, "content", None)})
        else:
            out.append({"value": msg})
    return out


def _response(output: Any) -> Any:
    if isinstance(output, list) and len(output) == 1:
        output = output[0]
    if isinstance(output, Mapping):
        return output.get("content")
    return getattr(output, "content", output)


def content_hash(input_messages: Any, response: Any, *, length: int = 40) -> str:
    """sha1 hex digest of the canonical JSON of the messages (role, content) and response."""
    payload = canonical_json({"input": _messages(input_messages), "response": response})
    # surrogatepass: a lone surrogate (legal in JSON text) must not make hashing fail.
    digest = hashlib.sha1(payload.encode("utf-8", "surrogatepass")).hexdigest()
    return digest[:length]


def record_key(record_or_row: PointwiseRecord | Mapping[str, Any]) -> str:
    """The row's ``id`` when present and non-empty, else a stable content hash.

    The hash covers the input messages (role and content only) and the response text, not the
    label or ``extra_info``: the key names *what is graded*. A record and its dict form (either
    output form, dict or one-element list) get the same key. The hash form is 40 hex digits.
    """
    rid: Any
    messages: Any
    output: Any
    if isinstance(record_or_row, PointwiseRecord):
        rid, messages, output = record_or_row.id, record_or_row.input, record_or_row.output
    elif isinstance(record_or_row, Mapping):
        rid = record_or_row.get("id")
        messages, output = record_or_row.get("input"), record_or_row.get("output")
    else:
        raise UsageError(f"record_key needs a PointwiseRecord or a dict, got {type(record_or_row)}")
    if rid is not None and not isinstance(rid, bool) and str(rid) != "":
        return str(rid)
    return content_hash(messages, _response(output))


def unique_ids(ids: list[str]) -> list[str]:
    """``ids`` with repeats made unique by a ``-2``, ``-3``... suffix (first one unchanged)."""
    seen: dict[str, int] = {}
    taken = set(ids)
    out = []
    for rid in ids:
        n = seen.get(rid, 0) + 1
        seen[rid] = n
        if n == 1:
            out.append(rid)
            continue
        new = f"{rid}-{n}"
        while new in taken:
            n += 1
            new = f"{rid}-{n}"
        seen[rid] = n
        taken.add(new)
        out.append(new)
    return out
