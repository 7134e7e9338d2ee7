"""verl FSDP checkpoints: find the latest, merge it into a Hugging Face folder (pure + subprocess).

verl 0.9.1 writes ``<default_local_dir>/global_step_N/actor/`` (``fsdp_config.json``,
``model_world_size_W_rank_R.pt`` shards, ``huggingface/`` with config and tokenizer) and
``<default_local_dir>/latest_checkpointed_iteration.txt``. Merging runs verl's own merger,
``python -m verl.model_merger merge --backend fsdp --local_dir ACTOR --target_dir OUT``, with an
interpreter that has verl (:func:`find_verl_python`), so the caller's environment needs no verl.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from judgeforge.errors import ConfigError, JudgeforgeError, MissingExtraError

__all__ = ["VERL_PYTHON_ENV", "MERGE_MARKER", "find_verl_python", "is_actor_dir",
           "latest_checkpoint", "merge_command", "merge_checkpoint", "checkpoint_fingerprint"]

#: An interpreter with verl 0.9.1 (used to merge checkpoints from environments without verl).
VERL_PYTHON_ENV = "JUDGEFORGE_VERL_PYTHON"
#: Written into a merged folder: which actor checkpoint it came from.
MERGE_MARKER = "judgeforge-merged.json"
_STEP = re.compile(r"^global_step_(\d+)$")
_TAIL = 4000


def _repo_roots() -> list[Path]:
    roots = []
    spec = importlib.util.find_spec("judgeforge")
    if spec is not None and spec.origin:
        roots.append(Path(spec.origin).resolve().parents[1])  # editable: <repo>/sdk/__init__.py
    roots.append(Path.cwd())
    return roots


def find_verl_python() -> str:
    """An interpreter that can run verl: ``$JUDGEFORGE_VERL_PYTHON``, else this one if it has
    verl, else ``<repo>/.venv-verl/bin/python``; raises :class:`MissingExtraError` (extra
    ``verl``) when there is none."""
    env = os.environ.get(VERL_PYTHON_ENV)
    if env:
        if not (Path(env).is_file() and os.access(env, os.X_OK)):
            raise ConfigError(f"${VERL_PYTHON_ENV}={env} is not an executable file")
        return env
    if importlib.util.find_spec("verl") is not None:
        return sys.executable
    for root in _repo_roots():
        candidate = root / ".venv-verl" / "bin" / "python"
        if candidate.is_file():
            return str(candidate)
    raise MissingExtraError("verl", "verl", f"or point ${VERL_PYTHON_ENV} at a Python that has "
                                            "verl 0.9.1, e.g. <repo>/.venv-verl/bin/python")


def is_actor_dir(path: str | os.PathLike[str]) -> bool:
    """True if ``path`` holds a verl FSDP actor checkpoint (fsdp_config.json + rank-0 shard)."""
    p = Path(path)
    return (p / "fsdp_config.json").is_file() and any(p.glob("model_world_size_*_rank_0.pt"))


def latest_checkpoint(run_dir: str | os.PathLike[str]) -> Path | None:
    """The newest ``global_step_N/actor`` under ``run_dir`` (verl's tracker file first), or None."""
    run = Path(run_dir)
    tracker = run / "latest_checkpointed_iteration.txt"
    if tracker.is_file():
        text = tracker.read_text().strip()
        if text.isdigit() and is_actor_dir(run / f"global_step_{text}" / "actor"):
            return run / f"global_step_{text}" / "actor"
    steps = []
    for child in run.glob("global_step_*"):
        match = _STEP.match(child.name)
        if match and is_actor_dir(child / "actor"):
            steps.append((int(match.group(1)), child / "actor"))
    return max(steps)[1] if steps else None


def checkpoint_fingerprint(actor_dir: Path) -> dict[str, list[int]]:
    """Size and mtime (ns) of each model shard: a merged folder is stale when these change."""
    return {f.name: [f.stat().st_size, f.stat().st_mtime_ns]
            for f in sorted(actor_dir.glob("model_world_size_*_rank_*.pt"))}


def merge_command(actor_dir: str | os.PathLike[str], target: str | os.PathLike[str],
                  python: str = "python") -> list[str]:
    """verl's merger command line for one actor checkpoint."""
    return [python, "-m", "verl.model_merger", "merge", "--backend", "fsdp",
            "--local_dir", str(actor_dir), "--target_dir", str(target)]


def _step_of(actor_dir: Path) -> int | None:
    match = _STEP.match(actor_dir.parent.name)
    return int(match.group(1)) if match else None


def _copy_card(actor: Path, folder: Path) -> None:
    """Put the run's judge card (``<run>/judge_config.json``, written by the training dataset)
    into the merged ``folder``, with the checkpoint's step in its metrics."""
    import dataclasses

    from judgeforge.card import JudgeCard

    card = JudgeCard.read(actor.parent.parent)
    if card is None:
        return
    step = _step_of(actor)
    metrics = {**card.metrics, **({"step": step} if step is not None else {})}
    dataclasses.replace(card, metrics=metrics).write(folder)


def merge_checkpoint(actor_dir: str | os.PathLike[str], target: str | os.PathLike[str], *,
                     python: str | None = None, timeout: float | None = None) -> Path:
    """Merge the FSDP checkpoint ``actor_dir`` into the HF folder ``target`` (replaced atomically).

    Runs verl's merger with ``python`` (default :func:`find_verl_python`) into a temporary
    sibling folder, writes :data:`MERGE_MARKER`, then renames it into place. Raises
    :class:`JudgeforgeError` with the merger's output when it fails.
    """
    actor = Path(actor_dir).resolve()
    if not is_actor_dir(actor):
        raise ConfigError(f"{actor} is not a verl FSDP actor checkpoint (no fsdp_config.json and "
                          "model_world_size_*_rank_0.pt)")
    dest = Path(target).resolve()
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.parent / f".{dest.name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    exe = python or find_verl_python()
    cmd = merge_command(actor, tmp, exe)
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
        if proc.returncode != 0 or not (tmp / "config.json").is_file():
            tail = (proc.stdout + proc.stderr)[-_TAIL:]
            raise JudgeforgeError(f"verl's model merger failed (exit {proc.returncode}) on "
                                  f"{actor}:\n{tail}")
        marker = {"source": str(actor), "step": _step_of(actor),
                  "fingerprint": checkpoint_fingerprint(actor), "command": cmd}
        (tmp / MERGE_MARKER).write_text(json.dumps(marker, indent=2) + "\n")
        _copy_card(actor, tmp)
        old = dest.parent / f".{dest.name}.old-{os.getpid()}"
        if dest.exists():
            os.replace(dest, old)
        os.replace(tmp, dest)
        shutil.rmtree(old, ignore_errors=True)
    except subprocess.TimeoutExpired as exc:
        raise JudgeforgeError(f"verl's model merger timed out after {timeout}s on {actor}") from exc
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return dest
