"""Logging, validation, best-checkpoint and time-limit hooks for the CPU backend.

:class:`TrainLog` appends one JSON object per line to ``<output_dir>/train_log.jsonl`` (SFT
steps, GRPO steps, evaluations). The TRL callbacks translate the GRPO trainer's logs into that
file, evaluate greedily every ``grpo.test_freq`` steps, keep the checkpoint with the best
validation MAE in ``<output_dir>/best``. The training length is ``grpo.max_steps``; the optional
``grpo.max_minutes`` is a safety stop only: when it fires it writes a ``{"stage": "stop",
"reason": "grpo.max_minutes", ...}`` row (:data:`STOP_STAGE`), which the result and the reports
name (:func:`stop_reason`).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from judgeforge._extras import require

__all__ = ["TrainLog", "BestTracker", "make_callbacks", "stop_reason", "GRPO_LOG_KEYS",
           "STOP_STAGE", "peak_rss_gb"]

STOP_STAGE = "stop"

log = logging.getLogger(__name__)

# TRL log key -> train_log.jsonl key
GRPO_LOG_KEYS = {
    "loss": "loss", "reward": "reward", "reward_std": "reward_std",
    "judge/parse_rate": "parse_rate", "judge/accuracy": "accuracy", "judge/mae": "mae",
    "kl": "kl", "entropy": "entropy", "frac_reward_zero_std": "frac_reward_zero_std",
    "clip_ratio/region_mean": "clip_ratio", "grad_norm": "grad_norm",
    "learning_rate": "learning_rate", "completions/mean_length": "completion_length",
}


def peak_rss_gb() -> float:
    """This process's peak resident memory so far, in GB (0.0 where it cannot be read)."""
    try:
        import resource
    except ImportError:  # not on POSIX
        return 0.0
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6, 2)  # KiB on Linux


class TrainLog:
    """Append-only JSONL log; also keeps the rows of this process in memory."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.rows: list[dict[str, Any]] = []

    def reset(self) -> None:
        """Start the log over (a run whose SFT stage never finished has nothing to keep)."""
        self.rows.clear()
        self.path.unlink(missing_ok=True)

    def write(self, row: dict[str, Any]) -> None:
        row = {"time": round(time.time(), 3), **row}
        self.rows.append(row)
        with self.path.open("a") as fh:
            fh.write(json.dumps(row, default=float) + "\n")

    def read_all(self) -> list[dict[str, Any]]:
        """Every row in the file (earlier runs that were resumed included)."""
        if not self.path.exists():
            return []
        out = []
        for line in self.path.read_text().splitlines():
            if line.strip():
                try:
                    out.append(json.loads(line))
                except json.JSONDecodeError:
                    continue  # a line cut by a crash
        return out


def stop_reason(rows: list[dict[str, Any]]) -> str | None:
    """``"grpo.max_minutes (10 min) at step 14"`` when a safety stop ended a run in ``rows``
    (the last one, as rows of resumed runs accumulate), else None."""
    stops = [r for r in rows if r.get("stage") == STOP_STAGE]
    if not stops:
        return None
    s = stops[-1]
    return f"{s.get('reason')} ({s.get('limit_minutes')} min) at step {s.get('step')}"


class BestTracker:
    """Remembers the best validation value of ``key`` (MAE by default, lower is better; a
    pairwise run: ``accuracy`` with ``higher_is_better``) and saves the model when it improves."""

    def __init__(self, save: Callable[[Any, dict[str, Any]], None], best_mae: float | None = None,
                 best_step: int | None = None, *, key: str = "mae",
                 higher_is_better: bool = False) -> None:
        self.save = save
        self.best_mae = best_mae  # the best value of ``key`` (named for the default key)
        self.best_step = best_step
        self.key, self.higher_is_better = key, higher_is_better

    def offer(self, step: int, summary: dict[str, Any], model: Any) -> bool:
        """Save ``model`` as the best when its validation ``key`` beats the best so far."""
        value = summary.get(self.key)
        if value is None:
            return False
        if self.best_mae is not None and (value <= self.best_mae if self.higher_is_better
                                          else value >= self.best_mae):
            return False
        self.best_mae, self.best_step = float(value), step
        self.save(model, {"step": step, **summary})
        return True


def make_callbacks(*, train_log: TrainLog, evaluate: Callable[[Any], dict[str, Any]],
                   best: BestTracker | None, test_freq: int, max_minutes: float | None,
                   logging_steps: int = 1) -> list[Any]:
    """The TRL ``TrainerCallback`` instances the GRPO stage needs."""
    transformers = require("transformers", "train")
    base = transformers.TrainerCallback
    eval_time = [0.0]  # evaluation seconds since the last log, kept out of seconds_per_step

    class _Log(base):  # type: ignore[misc, valid-type]
        def __init__(self) -> None:
            self.last = time.perf_counter()

        def on_log(self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None,
                   **kw: Any) -> None:
            if not logs or "reward" not in logs:
                return
            now = time.perf_counter()
            spent = now - self.last - eval_time[0]
            row: dict[str, Any] = {"stage": "grpo", "step": state.global_step,
                                   "seconds_per_step": spent / logging_steps,
                                   "peak_rss_gb": peak_rss_gb()}
            self.last, eval_time[0] = now, 0.0
            row.update({out: logs[k] for k, out in GRPO_LOG_KEYS.items() if k in logs})
            train_log.write(row)

    class _Eval(base):  # type: ignore[misc, valid-type]
        def on_step_end(self, args: Any, state: Any, control: Any, model: Any = None,
                        **kw: Any) -> None:
            if test_freq <= 0 or state.global_step % test_freq != 0 or model is None:
                return
            t0 = time.perf_counter()
            summary = evaluate(model)
            improved = best.offer(state.global_step, summary, model) if best else False
            spent = time.perf_counter() - t0
            eval_time[0] += spent
            train_log.write({"stage": "eval", "step": state.global_step, **summary,
                             "eval_seconds": spent, "best": improved})
            log.info("step %d validation %s%s", state.global_step, summary,
                     " (best)" if improved else "")

    class _SafetyStop(base):  # type: ignore[misc, valid-type]
        def __init__(self) -> None:
            self.start = time.monotonic()

        def on_step_end(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            spent = time.monotonic() - self.start
            if not max_minutes or spent <= max_minutes * 60:
                return
            if state.max_steps and state.global_step >= state.max_steps:
                return  # the step budget ends here anyway: not a safety stop
            log.warning("grpo: safety stop grpo.max_minutes=%s reached at step %d of %s; the "
                        "step count now depends on the machine's speed", max_minutes,
                        state.global_step, state.max_steps)
            train_log.write({"stage": STOP_STAGE, "reason": "grpo.max_minutes",
                             "limit_minutes": max_minutes, "step": state.global_step,
                             "planned_steps": state.max_steps, "minutes": spent / 60})
            control.should_training_stop = True
            control.should_save = True

    return [_Log(), _Eval(), _SafetyStop()]
