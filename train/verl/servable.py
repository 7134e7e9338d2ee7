"""Turn a verl checkpoint into a folder vLLM/transformers can serve: :func:`resolve_servable`.

Accepted: a ``global_step_N/actor`` folder, its ``global_step_N`` parent, its config-only
``actor/huggingface`` child, or a run folder holding ``global_step_*`` (the newest is used). The
merged model is cached: ``global_step_N/huggingface_merged`` for one step, ``<run>/hf`` for a run
folder, and is rebuilt only when the checkpoint's shards change. Anything else (a Hugging Face
folder, a hub name) comes back unchanged.

``python -m judgeforge.train.verl.servable PATH`` prints the resolved folder (the Ray job runs it
after training).
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import os
from collections.abc import Iterator
from pathlib import Path

from judgeforge.train.verl.checkpoints import (
    MERGE_MARKER,
    checkpoint_fingerprint,
    is_actor_dir,
    latest_checkpoint,
    merge_checkpoint,
)

__all__ = ["resolve_servable", "servable_target", "is_merged_from"]

RUN_TARGET = "hf"
STEP_TARGET = "huggingface_merged"


def servable_target(path: str | os.PathLike[str]) -> tuple[Path, Path] | None:
    """(actor checkpoint, merged folder) for ``path``, or None if it is no verl checkpoint."""
    p = Path(path).expanduser()
    if p.name == "huggingface" and is_actor_dir(p.parent):
        p = p.parent
    if is_actor_dir(p):
        return p, p.parent / STEP_TARGET
    if is_actor_dir(p / "actor"):
        return p / "actor", p / STEP_TARGET
    if p.is_dir() and any(p.glob("global_step_*")):
        actor = latest_checkpoint(p)
        if actor is not None:
            return actor, p / RUN_TARGET
    return None


def is_merged_from(folder: Path, actor: Path) -> bool:
    """True if ``folder`` is a complete merge of ``actor`` as it is now."""
    marker = folder / MERGE_MARKER
    if not (marker.is_file() and (folder / "config.json").is_file()
            and any(folder.glob("*.safetensors"))):
        return False
    try:
        data = json.loads(marker.read_text())
    except (OSError, json.JSONDecodeError):
        return False
    return (data.get("source") == str(actor.resolve())
            and data.get("fingerprint") == checkpoint_fingerprint(actor.resolve()))


@contextlib.contextmanager
def _lock(target: Path) -> Iterator[None]:
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target.parent / f".{target.name}.lock", "a+") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def resolve_servable(path: str | os.PathLike[str], *, python: str | None = None) -> Path:
    """A servable HF folder for ``path``: merged (and cached) if it is a verl FSDP checkpoint.

    The merge runs verl's model merger with ``python`` (default: ``$JUDGEFORGE_VERL_PYTHON``,
    this interpreter if it has verl, or ``<repo>/.venv-verl/bin/python``); without any, a verl
    checkpoint raises :class:`~judgeforge.errors.MissingExtraError` naming the ``verl`` extra.
    Concurrent callers wait on a file lock and reuse one merge.
    """
    found = servable_target(path)
    if found is None:
        return Path(path)
    actor, target = found
    if is_merged_from(target, actor):
        return target
    with _lock(target):
        if not is_merged_from(target, actor):
            merge_checkpoint(actor, target, python=python)
    return target


def main(argv: list[str] | None = None) -> int:
    """CLI: print the servable folder of a checkpoint (merging it if needed)."""
    parser = argparse.ArgumentParser(prog="python -m judgeforge.train.verl.servable",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("path", help="verl run folder, global_step_N(/actor) or an HF folder")
    args = parser.parse_args(argv)
    print(resolve_servable(args.path))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
