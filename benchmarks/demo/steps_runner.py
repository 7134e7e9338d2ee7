"""Runs named steps with timing, a log file each, and a state file so reruns skip finished steps.

Every step prints what it is doing and how long it took; a failing step names itself and its log.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from judgeforge.errors import JudgeforgeError

__all__ = ["Step", "StepFailed", "StepRunner", "run_logged"]


class StepFailed(JudgeforgeError):
    """A demo step failed; the message names the step and its log file."""


@dataclass(frozen=True)
class Step:
    key: str
    title: str
    fn: Callable[[Path], dict[str, Any]]  # (log path) -> outputs recorded in the state file


def run_logged(args: Sequence[str], log: Path, *, echo: bool = True,
               env: dict[str, str] | None = None) -> None:
    """Run a command, copying its output to ``log`` (and the terminal when ``echo``)."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as fh:
        fh.write(f"\n$ {' '.join(args)}\n".encode())
        fh.flush()
        proc = subprocess.Popen(list(args), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                env={**os.environ, **(env or {})})
        assert proc.stdout is not None
        try:
            while chunk := proc.stdout.read1(4096):  # type: ignore[attr-defined]
                fh.write(chunk)
                fh.flush()
                if echo:
                    sys.stdout.buffer.write(chunk)
                    sys.stdout.flush()
            code = proc.wait()
        except BaseException:
            proc.terminate()
            proc.wait(timeout=30)
            raise
    if code != 0:
        raise StepFailed(f"command failed with exit code {code}: {' '.join(args)}")


def judgeforge_cli(*args: str) -> list[str]:
    """The judgeforge console script of this interpreter's environment."""
    script = Path(sys.executable).parent / "judgeforge"
    if script.is_file():
        return [str(script), *args]
    return [sys.executable, "-m", "judgeforge.cli.main", *args]


class StepRunner:
    """Keeps ``<workdir>/state.json``: per step, done flag, seconds and outputs."""

    def __init__(self, workdir: Path, *, redo: Sequence[str] = ()) -> None:
        self.workdir = workdir
        self.state_file = workdir / "state.json"
        self.logs = workdir / "logs"
        self.redo = set(redo)
        self.state: dict[str, Any] = {}
        if self.state_file.exists():
            self.state = json.loads(self.state_file.read_text())

    def outputs(self, key: str) -> dict[str, Any]:
        return dict(self.state.get(key, {}).get("outputs", {}))

    def done(self, key: str) -> bool:
        return bool(self.state.get(key, {}).get("done")) and key not in self.redo

    def run(self, steps: Sequence[Step]) -> None:
        total = len(steps)
        for i, step in enumerate(steps, 1):
            head = f"[{i}/{total}] {step.title}"
            if self.done(step.key):
                took = self.state[step.key].get("seconds", 0.0)
                print(f"{head}: already done ({took:.0f} s last time), skipping", flush=True)
                continue
            log = self.logs / f"{i:02d}-{step.key}.log"
            print(f"\n{head} ... (log: {log})", flush=True)
            started = time.monotonic()
            try:
                outputs = step.fn(log)
            except KeyboardInterrupt:
                raise
            except Exception as exc:
                raise StepFailed(f"step {i} '{step.key}' ({step.title}) failed: {exc}\n"
                                 f"see its log: {log}") from exc
            seconds = time.monotonic() - started
            self.state[step.key] = {"done": True, "seconds": round(seconds, 1),
                                    "outputs": outputs or {}}
            self.workdir.mkdir(parents=True, exist_ok=True)
            self.state_file.write_text(json.dumps(self.state, indent=2))
            print(f"{head}: done in {_human(seconds)}", flush=True)

    def total_seconds(self) -> float:
        return sum(float(v.get("seconds", 0.0)) for v in self.state.values())


def _human(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.1f} min"
