"""Greedy validation of a pairwise judge being trained: generate, read the verdict, score.

Each validation row is one order of one pair (:mod:`.pairwise_data`). The summary:

- ``accuracy``: exact verdicts over all rows (a parse failure counts as wrong, never as a side),
- ``tie_rate``: the share of parsed verdicts that are ``tie``,
- ``parse_rate`` and ``parse_failures`` (rows without a ``<verdict>`` tag),
- ``position_consistency``: over pairs whose two orders both parsed, the share whose verdicts
  mirror (``a`` in one order, ``b`` in the other; ``tie`` in both), None when no pair has both,
- ``n`` (rows) and ``pairs`` (pairs with both orders parsed).

The best checkpoint is chosen on ``accuracy`` (higher is better).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..pairwise_rows import read_pairwise_spec
from ..pairwise_score import read_verdict
from .evaluate import generate_greedy

__all__ = ["evaluate_pairwise_rows", "score_verdicts", "BEST_KEY"]

#: The validation metric a pairwise run keeps its best checkpoint by (higher is better).
BEST_KEY = "accuracy"
_MIRROR = {"a": "b", "b": "a", "tie": "tie"}


def score_verdicts(completions: Sequence[str], rows: Sequence[dict[str, Any]]
                   ) -> tuple[list[str | None], dict[str, Any]]:
    """(verdicts, summary) of ``completions`` against the rows' gold verdicts
    (``ground_truth``); see the module docstring."""
    verdicts = [read_verdict(text) for text in completions]
    n = len(rows)
    parsed = [v for v in verdicts if v is not None]
    correct = sum(v is not None and v == r["ground_truth"] for v, r in zip(verdicts, rows))
    orders: dict[str, dict[str, str | None]] = {}
    for v, r in zip(verdicts, rows):
        spec = read_pairwise_spec(r.get("extra_info"))
        if spec is not None:
            orders.setdefault(spec["pair"], {})[spec["order"]] = v
    both = [(o["ab"], o["ba"]) for o in orders.values()
            if o.get("ab") is not None and o.get("ba") is not None]
    consistent = sum(ba == _MIRROR[ab] for ab, ba in both if ab is not None)
    return verdicts, {
        "accuracy": correct / n if n else None,
        "tie_rate": sum(v == "tie" for v in parsed) / len(parsed) if parsed else None,
        "parse_rate": len(parsed) / n if n else None,
        "parse_failures": n - len(parsed),
        "position_consistency": consistent / len(both) if both else None,
        "n": n, "pairs": len(both)}


def evaluate_pairwise_rows(model: Any, tokenizer: Any, rows: Sequence[dict[str, Any]], *,
                           max_new_tokens: int = 12, batch_size: int = 16,
                           progress: bool = False) -> dict[str, Any]:
    """Greedy-evaluate pairwise ``rows``: ``{"summary", "verdicts", "completions"}``."""
    completions = generate_greedy(model, tokenizer, rows, max_new_tokens=max_new_tokens,
                                  batch_size=batch_size, progress=progress)
    verdicts, summary = score_verdicts(completions, rows)
    return {"summary": summary, "verdicts": verdicts, "completions": completions}
