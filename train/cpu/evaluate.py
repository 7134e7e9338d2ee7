"""Greedy validation of a judge being trained: generate, parse, score against labels.

Runs in the training process with transformers ``generate`` (left padding, no sampling), parses
with :func:`judgeforge.parsing.parse_score` and reports :func:`judgeforge.metrics.compute_metrics`
(a parse failure counts as the worst error, never as a score).
"""

from __future__ import annotations

from typing import Any, Sequence

from judgeforge._extras import require
from judgeforge.data.schema import Scale
from judgeforge.metrics import compute_metrics
from judgeforge.parsing import ParsedScore, parse_score

__all__ = ["prompt_texts", "generate_greedy", "evaluate_rows", "summary"]

SUMMARY_KEYS = ("parse_rate", "mae", "exact_acc", "within1_acc", "spearman", "pearson", "qwk")


def prompt_texts(tokenizer: Any, rows: Sequence[dict[str, Any]]) -> list[str]:
    """Each row's chat prompt rendered with the generation prompt (assistant turn opened)."""
    return [tokenizer.apply_chat_template(r["prompt"], add_generation_prompt=True, tokenize=False)
            for r in rows]


def generate_greedy(model: Any, tokenizer: Any, rows: Sequence[dict[str, Any]], *,
                    max_new_tokens: int = 8, batch_size: int = 16,
                    progress: bool = False) -> list[str]:
    """Greedy completions (decoded, special tokens removed) for ``rows``."""
    torch = require("torch", "train")
    texts = prompt_texts(tokenizer, rows)
    outputs: list[str] = []
    was_training = model.training
    model.eval()
    batches = range(0, len(texts), batch_size)
    if progress:
        from tqdm.auto import tqdm
        batches = tqdm(batches, desc="evaluate", unit="batch", leave=False)
    try:
        with torch.no_grad():
            for start in batches:
                enc = tokenizer(texts[start:start + batch_size], return_tensors="pt", padding=True,
                                padding_side="left", add_special_tokens=False)
                out = model.generate(**enc, max_new_tokens=max_new_tokens, do_sample=False,
                                     pad_token_id=tokenizer.pad_token_id,
                                     eos_token_id=tokenizer.eos_token_id)
                new = out[:, enc["input_ids"].shape[1]:]
                outputs += tokenizer.batch_decode(new, skip_special_tokens=True)
    finally:
        if was_training:
            model.train()
    return outputs


def summary(metrics: dict[str, Any]) -> dict[str, float | None]:
    """The headline numbers of a :func:`compute_metrics` result (parse rate instead of failures)."""
    out = {k: metrics.get(k) for k in SUMMARY_KEYS if k != "parse_rate"}
    out["parse_rate"] = 1.0 - float(metrics["parse_failure_rate"]) if metrics.get("n") else None
    out["n"] = metrics.get("n")
    return out


def score_completions(completions: Sequence[str], labels: Sequence[int], dimension: str,
                      scale: Scale, bootstrap: int = 0) -> tuple[list[int | None], dict[str, Any]]:
    """(predictions, metrics) for completions against labels."""
    preds: list[int | None] = []
    for text in completions:
        parsed = parse_score(text, dimensions={dimension: scale})
        preds.append(parsed.scores[dimension] if isinstance(parsed, ParsedScore) else None)
    return preds, compute_metrics(preds, list(labels), scale, bootstrap=bootstrap)


def evaluate_rows(model: Any, tokenizer: Any, rows: Sequence[dict[str, Any]], dimension: str,
                  scale: Scale, *, max_new_tokens: int = 8, batch_size: int = 16,
                  bootstrap: int = 0, progress: bool = False) -> dict[str, Any]:
    """Greedy-evaluate ``rows``: ``{"summary", "metrics", "predictions", "completions"}``."""
    completions = generate_greedy(model, tokenizer, rows, max_new_tokens=max_new_tokens,
                                  batch_size=batch_size, progress=progress)
    preds, metrics = score_completions(completions, [r["label"] for r in rows], dimension,
                                       scale, bootstrap)
    return {"summary": summary(metrics), "metrics": metrics, "predictions": preds,
            "completions": completions}
