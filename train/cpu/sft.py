"""Supervised warm-up: teach the score format (and the labels) before GRPO.

A plain loop (AdamW, bf16 autocast on CPU): each example is the chat prompt with the assistant
turn opened, then the completion ``<score>y</score><|im_end|>`` (with ``sft.target=reason``, a
short reason from the record's ``extra_info.feedback`` first); the loss covers the completion
tokens only, and logits are computed for those positions only (left padding puts every
completion at the end), so memory stays well under the 7 GiB budget. Prompt and completion are
tokenized separately and concatenated, the way TRL's GRPO trainer sees them (prompt ids, then
generated ids).
"""

from __future__ import annotations

import json
import logging
import random
import re
import time
from collections.abc import Callable, Sequence
from typing import Any

from judgeforge._extras import require

from ..config import TrainConfig
from .callbacks import peak_rss_gb
from .data import balance
from .evaluate import prompt_texts

__all__ = ["encode_sft_batch", "completion_loss", "run_sft", "reason_completion", "short_reason"]

log = logging.getLogger(__name__)


def encode_sft_batch(tokenizer: Any, rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Left-padded input_ids/attention_mask/position_ids, labels (-100 outside the completion)
    and ``keep``: how many final positions hold every completion (the loss needs logits there
    only, which keeps memory small: full logits are rows x tokens x 49k vocab)."""
    torch = require("torch", "train")
    prompts = prompt_texts(tokenizer, rows)
    seqs: list[list[int]] = []
    n_completion: list[int] = []
    for text, row in zip(prompts, rows):
        p_ids = tokenizer(text, add_special_tokens=False)["input_ids"]
        c_ids = tokenizer(row["completion"], add_special_tokens=False)["input_ids"]
        c_ids = c_ids + [tokenizer.eos_token_id]
        seqs.append(p_ids + c_ids)
        n_completion.append(len(c_ids))
    width = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), width), tokenizer.pad_token_id, dtype=torch.long)
    attn = torch.zeros((len(seqs), width), dtype=torch.long)
    labels = torch.full((len(seqs), width), -100, dtype=torch.long)
    for i, (s, c) in enumerate(zip(seqs, n_completion)):
        ids[i, width - len(s):] = torch.tensor(s)
        attn[i, width - len(s):] = 1
        labels[i, width - c:] = torch.tensor(s[-c:])
    position_ids = (attn.cumsum(-1) - 1).clamp(min=0)
    return {"input_ids": ids, "attention_mask": attn, "position_ids": position_ids,
            "labels": labels, "keep": max(n_completion) + 1}


def completion_loss(model: Any, batch: dict[str, Any]) -> Any:
    """Mean cross-entropy over the completion tokens (logits computed for the last positions)."""
    torch = require("torch", "train")
    keep = batch["keep"]
    out = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                position_ids=batch["position_ids"], logits_to_keep=keep)
    logits = out.logits[:, :-1, :].float()
    target = batch["labels"][:, -keep + 1:]
    return torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]),
                                             target.reshape(-1), ignore_index=-100)


def short_reason(text: str, limit: int) -> str:
    """The first sentences of ``text`` that fit in ``limit`` characters, on one line (the first
    sentence cut at a word boundary, with "...", when it alone is longer)."""
    text = " ".join(text.split())
    out = ""
    for sentence in re.split(r"(?<=[.!?])\s+", text):
        if len(out) + len(sentence) + (1 if out else 0) > limit:
            break
        out = f"{out} {sentence}" if out else sentence
    if not out:
        out = text[:limit].rsplit(" ", 1)[0].rstrip(",;:") + "..."
    return out


def reason_completion(row: dict[str, Any], limit: int, thinking: bool) -> str:
    """``row``'s SFT target with a short reason first: the record's ``extra_info.feedback``
    (e.g. Prometheus's GPT-4 feedback), then the score tags; in ``<think>`` when ``thinking``.
    A row without feedback keeps its plain target."""
    raw = (row.get("extra_info") or {}).get("source_extra")
    try:
        feedback = json.loads(raw).get("feedback") if raw else None
    except (ValueError, AttributeError):
        feedback = None
    if not isinstance(feedback, str) or not feedback.strip():
        return str(row["completion"])
    reason = short_reason(feedback, limit)
    if thinking:
        return f"<think>{reason}</think>\n{row['completion']}"
    return f"{reason}\n{row['completion']}"


def _batches(rows: list[dict[str, Any]], cfg: TrainConfig) -> list[list[dict[str, Any]]]:
    n = cfg.sft.steps * cfg.sft.batch_size
    if cfg.sft.balance_labels:
        stream = balance(rows, n, cfg.seed)
    else:
        rng = random.Random(cfg.seed)
        stream = []
        while len(stream) < n:
            epoch = list(rows)
            rng.shuffle(epoch)
            stream += epoch
    if cfg.sft.target == "reason":
        stream = [dict(r, completion=reason_completion(r, cfg.sft.reason_chars,
                                                       cfg.prompt.thinking)) for r in stream]
    if cfg.sft.target == "random":
        rng = random.Random(cfg.seed + 1)
        labels = sorted({r["label"] for r in rows})
        stream = [dict(r, completion=f"<score>{rng.choice(labels)}</score>") for r in stream]
    bs = cfg.sft.batch_size
    return [stream[i:i + bs] for i in range(0, n, bs)]


def run_sft(model: Any, tokenizer: Any, rows: list[dict[str, Any]], cfg: TrainConfig,
            on_step: Callable[[dict[str, Any]], None] | None = None) -> list[dict[str, Any]]:
    """Train ``model`` in place for ``cfg.sft.steps`` steps; returns the per-step log rows."""
    torch = require("torch", "train")
    from tqdm.auto import tqdm

    if cfg.sft.steps <= 0:
        return []
    torch.manual_seed(cfg.seed)
    batches = _batches(rows, cfg)
    params = [p for p in model.parameters() if p.requires_grad]  # the adapter alone with LoRA
    optim = torch.optim.AdamW(params, lr=cfg.sft.learning_rate, weight_decay=0.0)
    warmup = max(1, len(batches) // 10)

    def lr_at(step: int) -> float:  # linear warm-up, then linear decay to 10%
        if step < warmup:
            return (step + 1) / warmup
        return 1.0 - 0.9 * (step - warmup) / max(1, len(batches) - warmup)

    sched = torch.optim.lr_scheduler.LambdaLR(optim, lr_at)
    use_bf16 = cfg.model.dtype == "bfloat16"
    model.train()
    logs: list[dict[str, Any]] = []
    bar = tqdm(batches, desc="sft", unit="step")
    for step, batch in enumerate(bar, start=1):
        t0 = time.perf_counter()
        micro = cfg.sft.micro_batch_size
        loss_sum, tokens = 0.0, 0
        for start in range(0, len(batch), micro):  # gradient accumulation bounds memory
            part = batch[start:start + micro]
            enc = encode_sft_batch(tokenizer, part)
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=use_bf16):
                loss = completion_loss(model, enc) * (len(part) / len(batch))
            loss.backward()
            loss_sum += float(loss.detach())
            tokens += int(enc["attention_mask"].sum())
        grad_norm = float(torch.nn.utils.clip_grad_norm_(params, 1.0))
        optim.step()
        sched.step()
        optim.zero_grad(set_to_none=True)
        row = {"stage": "sft", "step": step, "loss": loss_sum,
               "grad_norm": grad_norm, "learning_rate": sched.get_last_lr()[0],
               "seconds_per_step": time.perf_counter() - t0,
               "tokens": tokens, "peak_rss_gb": peak_rss_gb()}
        logs.append(row)
        bar.set_postfix(loss=f"{row['loss']:.3f}")
        if on_step is not None:
            on_step(row)
    model.eval()
    return logs
