"""``curves.png``: the training curves of a CPU run (matplotlib, Agg backend, no display)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["plot_curves"]

_PANELS = (
    ("sft", "loss", "SFT loss"),
    ("grpo", "reward", "GRPO mean reward"),
    ("grpo", "parse_rate", "GRPO parse rate (samples)"),
    ("grpo", "mae", "GRPO MAE (samples)"),
    ("grpo", "kl", "KL to reference"),
    ("grpo", "entropy", "entropy (collapse -> 0)"),
    ("grpo", "frac_reward_zero_std", "frac groups with zero reward std"),
    ("eval", "mae", "validation MAE (greedy)"),
    ("eval", "spearman", "validation Spearman"),
    ("eval", "accuracy", "validation verdict accuracy (pairwise)"),
    ("eval", "position_consistency", "validation position consistency (pairwise)"),
)


def plot_curves(rows: Sequence[dict[str, Any]], path: str | Path) -> Path | None:
    """Draw one panel per logged quantity; returns the path, or None when nothing was logged."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = []
    for stage, key, title in _PANELS:
        pts = [(r["step"], r[key]) for r in rows
               if r.get("stage") == stage and r.get(key) is not None and "step" in r]
        if pts:
            panels.append((title, pts, stage))
    if not panels:
        return None
    cols = 3
    nrows = (len(panels) + cols - 1) // cols
    fig, axes = plt.subplots(nrows, cols, figsize=(4.2 * cols, 3.0 * nrows), squeeze=False)
    for ax, (title, pts, stage) in zip(axes.flat, panels):
        xs, ys = zip(*sorted(pts))
        ax.plot(xs, ys, marker="o" if stage == "eval" else None, markersize=3, linewidth=1)
        ax.set_title(title, fontsize=9)
        ax.set_xlabel(f"{stage} step", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(panels):]:
        ax.axis("off")
    fig.tight_layout()
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out
