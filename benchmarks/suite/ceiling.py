"""A human ceiling: how well one rater agrees with the others (leave-one-rater-out).

For each rater position ``j`` (first, second, ... score in ``extra_info.rater_scores``), the
Spearman correlation between rater ``j``'s score and the mean of the other raters' scores, over
the rows with at least two scores; the ceiling is the mean over positions. Crowd sets do not
keep rater identities across rows, so a "rater" is a position, as usual for such data. A judge
compared with the mean of *all* raters can exceed this (the mean is less noisy than one rater).
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from typing import Any

__all__ = ["loro_ceiling"]


def loro_ceiling(records: Sequence[Any], *, key: str = "rater_scores") -> dict[str, Any] | None:
    """``{"spearman", "per_rater", "rows", "raters"}`` or None when no row has two scores."""
    from scipy import stats

    rows = [list(map(float, (r.extra_info or {}).get(key) or [])) for r in records]
    rows = [s for s in rows if len(s) >= 2]
    if len(rows) < 3:
        return None
    width = max(len(s) for s in rows)
    per_rater: list[float] = []
    for j in range(width):
        mine, others = [], []
        for s in rows:
            if j < len(s):
                mine.append(s[j])
                others.append(statistics.fmean(s[:j] + s[j + 1:]))
        if len(mine) >= 3 and len(set(mine)) > 1 and len(set(others)) > 1:
            rho = float(stats.spearmanr(mine, others).statistic)
            if rho == rho:
                per_rater.append(rho)
    if not per_rater:
        return None
    return {"spearman": statistics.fmean(per_rater), "per_rater": per_rater, "rows": len(rows),
            "raters": width,
            "method": "mean over rater positions of Spearman(rater, mean of the other raters)"}
