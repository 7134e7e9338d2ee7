"""Greedy validation of a judge being trained: generate, parse, score against labels.

Runs in the training process with transformers ``generate`` (left padding, no sampling), parses
with :func:`judgeforge.parsing.parse_score` and reports :func:`judgeforge.metrics.compute_metrics`
(a parse failure counts as the worst error, never as a score).

Each row is parsed and scored on its own dimension and scale (``extra_info["judgeforge"]``, the
row's :class:`~judgeforge.train.rows.RowSpec`). Rows on several scales (a training mix) are
scored per scale group (``summary["groups"]``, keyed ``"quality 1-5"``), and the headline
numbers are then on normalized scores: ``mae`` is the mean absolute error divided by each
row's scale range (0-1; a failure counts as that row's worst error), the other metrics are the
mean of the groups' values (each group counts once), and ``summary["normalized"]`` is True.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from judgeforge._extras import require
from judgeforge.data.schema import Scale
from judgeforge.errors import ConfigError
from judgeforge.metrics import compute_metrics
from judgeforge.parsing import ParsedScore, parse_score

from ..rows import read_row_spec, row_group

__all__ = ["prompt_texts", "generate_greedy", "evaluate_rows", "summary", "score_distributions",
           "distribution_summaries", "expected_score", "expected_scores"]

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


def summary(metrics: dict[str, Any]) -> dict[str, Any]:
    """The headline numbers of a :func:`compute_metrics` result (parse rate instead of failures)."""
    out = {k: metrics.get(k) for k in SUMMARY_KEYS if k != "parse_rate"}
    out["parse_rate"] = 1.0 - float(metrics["parse_failure_rate"]) if metrics.get("n") else None
    out["n"] = metrics.get("n")
    if metrics.get("groups"):
        out["normalized"] = True
        out["groups"] = metrics["groups"]
    return out


def _row_scale(row: dict[str, Any] | None, dimension: str, scale: Scale) -> tuple[str, Scale]:
    """The row's own (dimension, scale) from its spec, else the given ones."""
    spec = read_row_spec((row or {}).get("extra_info"))
    if spec is None or len(spec["dimensions"]) != 1:
        return dimension, scale
    dim, (lo, hi) = next(iter(spec["dimensions"].items()))
    return dim, Scale(min=lo, max=hi)


def _grouped(preds: Sequence[int | None], labels: Sequence[int],
             rows: Sequence[dict[str, Any]], dimension: str, scale: Scale,
             bootstrap: int) -> dict[str, Any]:
    """Metrics of a mix: per scale group, plus the normalized headline (module docstring)."""
    import statistics

    groups: dict[str, list[int]] = {}
    for i, r in enumerate(rows):
        groups.setdefault(row_group(r), []).append(i)
    per: dict[str, dict[str, Any]] = {}
    errors = []
    for name, idx in groups.items():
        _, s = _row_scale(rows[idx[0]], dimension, scale)
        per[name] = compute_metrics([preds[i] for i in idx], [labels[i] for i in idx], s,
                                    bootstrap=bootstrap)
        span = max(1, s.max - s.min)
        for i in idx:
            p, t = preds[i], labels[i]
            errors.append((max(t - s.min, s.max - t) if p is None else abs(p - t)) / span)
    out: dict[str, Any] = {"n": len(labels), "normalized": True,
                           "parse_failure_rate": sum(p is None for p in preds) / len(preds),
                           "mae": statistics.fmean(errors),
                           "groups": {k: summary(m) for k, m in per.items()}}
    for key in SUMMARY_KEYS:
        if key in ("parse_rate", "mae"):
            continue
        vals = [float(v) for v in (m.get(key) for m in per.values())
                if isinstance(v, (int, float)) and v == v]
        out[key] = statistics.fmean(vals) if vals else None
    return out


def score_completions(completions: Sequence[str], labels: Sequence[int], dimension: str,
                      scale: Scale, bootstrap: int = 0,
                      rows: Sequence[dict[str, Any]] | None = None,
                      ) -> tuple[list[int | None], dict[str, Any]]:
    """(predictions, metrics) for completions against labels; with ``rows``, each completion is
    parsed on its row's own dimension and scale, and rows on several scales are scored per
    group with a normalized headline (module docstring)."""
    preds: list[int | None] = []
    for i, text in enumerate(completions):
        dim, s = _row_scale(rows[i] if rows else None, dimension, scale)
        parsed = parse_score(text, dimensions={dim: s})
        preds.append(parsed.scores[dim] if isinstance(parsed, ParsedScore) else None)
    if rows and len({row_group(r) for r in rows}) > 1:
        return preds, _grouped(preds, labels, rows, dimension, scale, bootstrap)
    if rows:
        dimension, scale = _row_scale(rows[0], dimension, scale)
    return preds, compute_metrics(preds, list(labels), scale, bootstrap=bootstrap)


def evaluate_rows(model: Any, tokenizer: Any, rows: Sequence[dict[str, Any]], dimension: str,
                  scale: Scale, *, max_new_tokens: int = 8, batch_size: int = 16,
                  bootstrap: int = 0, progress: bool = False) -> dict[str, Any]:
    """Greedy-evaluate ``rows``: ``{"summary", "metrics", "predictions", "completions"}``."""
    completions = generate_greedy(model, tokenizer, rows, max_new_tokens=max_new_tokens,
                                  batch_size=batch_size, progress=progress)
    preds, metrics = score_completions(completions, [r["label"] for r in rows], dimension,
                                       scale, bootstrap, rows)
    return {"summary": summary(metrics), "metrics": metrics, "predictions": preds,
            "completions": completions}


def score_distributions(model: Any, tokenizer: Any, rows: Sequence[dict[str, Any]],
                        scale: Scale, *, batch_size: int = 16) -> list[list[float]]:
    """P(score = v) for v on ``scale``, read from the logits after a prefilled ``<score>``.

    One forward pass per row (no generation). Needs every score to be a single token (true for
    SmolLM2 and 0-9 scales); raises ValueError otherwise.
    """
    torch = require("torch", "train")
    values = list(range(scale.min, scale.max + 1))
    ids = []
    for v in values:
        toks = tokenizer(str(v), add_special_tokens=False)["input_ids"]
        if len(toks) != 1:
            raise ConfigError(f"score {v} is not a single token; use greedy evaluation")
        ids.append(toks[0])
    texts = [t + "<score>" for t in prompt_texts(tokenizer, rows)]
    out: list[list[float]] = []
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            for start in range(0, len(texts), batch_size):
                enc = tokenizer(texts[start:start + batch_size], return_tensors="pt",
                                padding=True, padding_side="left", add_special_tokens=False)
                pos = (enc["attention_mask"].cumsum(-1) - 1).clamp(min=0)
                logits = model(**enc, position_ids=pos, logits_to_keep=1).logits[:, -1, :]
                probs = torch.softmax(logits.float()[:, ids], dim=-1)
                out += probs.tolist()
    finally:
        if was_training:
            model.train()
    return out


def expected_score(probs: Sequence[float], scale: Scale) -> float:
    """E[score] of one distribution over the scale's values (:func:`score_distributions`)."""
    return sum(v * q for v, q in zip(range(scale.min, scale.max + 1), probs))


def expected_scores(model: Any, tokenizer: Any, rows: Sequence[dict[str, Any]], scale: Scale, *,
                    batch_size: int = 16) -> list[float]:
    """The expected score of each row: the raw input of the judge's calibration."""
    return [expected_score(p, scale)
            for p in score_distributions(model, tokenizer, rows, scale, batch_size=batch_size)]


def distribution_summaries(probs: Sequence[Sequence[float]], labels: Sequence[int],
                           scale: Scale) -> dict[str, dict[str, Any]]:
    """Metrics of the expected score (mean) and of the median of each score distribution.

    The median minimises the expected absolute error, so it is the MAE-optimal point
    prediction; greedy decoding takes the mode.
    """
    values = list(range(scale.min, scale.max + 1))
    expected, median = [], []
    for p in probs:
        expected.append(expected_score(p, scale))
        acc = 0.0
        for v, q in zip(values, p):
            acc += q
            if acc >= 0.5:
                median.append(v)
                break
        else:
            median.append(values[-1])
    return {"expected": summary(compute_metrics(expected, list(labels), scale, bootstrap=0)),
            "median": summary(compute_metrics(median, list(labels), scale, bootstrap=0))}
