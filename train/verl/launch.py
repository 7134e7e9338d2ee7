"""Run verl GRPO for a :class:`TrainConfig`: locally or as a Ray job, then merge the checkpoint.

* Local (``verl.ray_address`` empty): ``<verl python> -m verl.trainer.main_ppo <overrides>``
  (``main_ppo`` starts its own Ray), then the newest ``global_step_N/actor`` is merged into
  ``<output_dir>/hf`` with verl's model merger.
* Ray cluster: the same command, followed by ``python3 -m judgeforge.train.verl.servable
  <output_dir>`` (the merge), is submitted through the Ray Jobs API with a runtime environment
  that ships judgeforge and the data (see :mod:`judgeforge.train.verl.ray_job`).

``launch(cfg, dry_run=True)`` prints the exact command and the resolved overrides and runs
nothing. This module imports neither verl, ray nor torch.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from judgeforge.errors import ConfigError
from judgeforge.models.default_model import DEFAULT_MODEL_DIRNAME, judgeforge_home
from judgeforge.train.config import TrainConfig
from judgeforge.train.verl import ray_job
from judgeforge.train.verl.checkpoints import (
    find_verl_python,
    latest_checkpoint,
    merge_checkpoint,
    merge_command,
)
from judgeforge.train.verl.overrides import (
    absolute,
    build_overrides,
    default_experiment_name,
    logger_env,
)

__all__ = ["LaunchPlan", "build_command", "runtime_env", "plan", "launch", "latest_checkpoint",
           "merge_checkpoint", "find_verl_python", "resolve_model_path", "MAIN_PPO",
           "REMOTE_PYTHON"]

MAIN_PPO = "verl.trainer.main_ppo"
#: The interpreter named in a Ray job's entrypoint (the cluster's own Python).
REMOTE_PYTHON = "python3"


def resolve_model_path(cfg: TrainConfig, *, prepare: bool = False) -> tuple[str, str | None]:
    """(model path, note): ``model.path``, else the default SmolLM2 folder.

    With ``prepare`` the default model is prepared if missing (needs the ``model`` extra);
    otherwise its expected path is returned with a note saying it is not prepared yet.
    """
    if cfg.model.path:
        return cfg.model.path, None
    from judgeforge.models.default_model import is_complete_model_dir, prepare_default_model

    path = judgeforge_home() / "models" / DEFAULT_MODEL_DIRNAME
    if is_complete_model_dir(path):
        return str(path), None
    if prepare:
        return str(prepare_default_model()), None
    return str(path), "the default model is not prepared yet; it is prepared at launch"


def _remote(cfg: TrainConfig, remote: bool | None) -> bool:
    return bool(cfg.verl.ray_address) if remote is None else remote


@dataclass
class LaunchPlan:
    """Everything a launch does, resolved: printable (dry run) and runnable."""

    cfg: TrainConfig
    overrides: list[str]
    command: list[str]
    env: dict[str, str]
    output_dir: str
    experiment_name: str
    files: ray_job.JobFiles | None = None
    runtime_env: dict[str, Any] | None = None
    notes: tuple[str, ...] = ()

    @property
    def remote(self) -> bool:
        return self.runtime_env is not None

    @property
    def entrypoint(self) -> str:
        """The Ray job's shell entrypoint: train, then merge the newest checkpoint."""
        merge = [REMOTE_PYTHON, "-m", "judgeforge.train.verl.servable", self.output_dir]
        return f"{shlex.join(self.command)} && {shlex.join(merge)}"

    def text(self) -> str:
        """The dry-run report: command, overrides, environment and (Ray) runtime env."""
        where = f"Ray cluster {self.cfg.verl.ray_address}" if self.remote else "this machine"
        lines = [f"# judgeforge verl GRPO run on {where}: experiment {self.experiment_name}"]
        lines += [f"# note: {n}" for n in self.notes]
        lines.append("# command:")
        env = [f"{k}={shlex.quote(v)}" for k, v in self.env.items()] if not self.remote else []
        head = " ".join(env + [shlex.quote(a) for a in self.command[:3]])
        lines.append(" \\\n    ".join([head] + [shlex.quote(a) for a in self.command[3:]]))
        lines.append(f"# resolved overrides ({len(self.overrides)}):")
        lines += [f"  {o}" for o in self.overrides]
        if self.remote:
            lines.append("# Ray job runtime environment:")
            lines.append(json.dumps(self.runtime_env, indent=2))
            lines.append("# equivalent CLI (after staging):")
            lines.append(shlex.join(["ray", "job", "submit", "--address",
                                     str(self.cfg.verl.ray_address), "--runtime-env-json",
                                     json.dumps(self.runtime_env), "--", self.entrypoint]))
        else:
            target = f"{self.output_dir}/hf"
            lines.append("# after training, the newest checkpoint is merged:")
            lines.append(shlex.join(merge_command(f"{self.output_dir}/global_step_N/actor",
                                                  target, "python")))
        return "\n".join(lines) + "\n"


def runtime_env(cfg: TrainConfig, *, files: ray_job.JobFiles | None = None,
                pip: list[str] | None = None) -> dict[str, Any]:
    """The Ray job's runtime environment (paths inside ``files.stage_dir``; staged at submit)."""
    if files is None:
        files = ray_job.plan_files(list(cfg.data.train_files) + list(cfg.data.val_files),
                                   Path(tempfile.gettempdir()) / "judgeforge-ray-job")
    env = {"PYTHONUNBUFFERED": "1", **logger_env(cfg)}
    return {"working_dir": str(files.working_dir), "py_modules": [str(files.package_dir)],
            "pip": list(pip) if pip is not None else ray_job.core_requirements(),
            "env_vars": env}


def _notes(cfg: TrainConfig, remote: bool, model_note: str | None) -> list[str]:
    notes = [model_note] if model_note else []
    if remote and not cfg.model.path:
        notes.append("model.path is empty: the default model's local folder must also exist on "
                     "the cluster's nodes (or set model.path to a hub name / shared path)")
    if remote and not Path(cfg.output_dir).is_absolute() and "://" not in cfg.output_dir:
        notes.append(f"output_dir {cfg.output_dir!r} is relative: on the cluster it lands in the "
                     "job's temporary working_dir; use an absolute path on shared storage")
    if cfg.sft.steps:
        notes.append(f"sft.steps={cfg.sft.steps} is not run by the verl backend: warm the model "
                     "up first (e.g. the CPU backend's SFT) and set model.path to the result")
    if not cfg.data.val_files:
        notes.append("no data.val_files: the training files stand in for verl's required "
                     "val_files and validation is off")
    return notes


def plan(cfg: TrainConfig, *, remote: bool | None = None, prepare_model: bool = False,
         experiment_name: str | None = None, stage_dir: Path | None = None,
         python: str | None = None) -> LaunchPlan:
    """Resolve paths, model, overrides, command and (Ray) runtime environment for ``cfg``."""
    is_remote = _remote(cfg, remote)
    name = experiment_name or cfg.verl.experiment_name or default_experiment_name()
    model, note = resolve_model_path(cfg, prepare=prepare_model)
    notes = _notes(cfg, is_remote, note)
    if is_remote:
        if stage_dir is None:
            notes.append("the staging folder below is a placeholder: launch() stages into a "
                         "fresh temporary folder when it submits the job")
        out = cfg.output_dir
        files = ray_job.plan_files(list(cfg.data.train_files) + list(cfg.data.val_files),
                                   stage_dir or Path(tempfile.gettempdir()) / "judgeforge-ray-job")
        train = [files.remote(f) for f in cfg.data.train_files]
        val = [files.remote(f) for f in cfg.data.val_files]
        exe = REMOTE_PYTHON
    else:
        out = absolute(cfg.output_dir)
        files = None
        train = [absolute(f) for f in cfg.data.train_files]
        val = [absolute(f) for f in cfg.data.val_files]
        model = absolute(model) if Path(model).expanduser().exists() else model
        exe = python or _local_python()
    overrides = build_overrides(cfg, model_path=model, train_files=train, val_files=val,
                                output_dir=out, experiment_name=name)
    command = [exe, "-m", MAIN_PPO, *overrides]
    env = logger_env(cfg, out)
    renv = runtime_env(cfg, files=files) if files is not None else None
    return LaunchPlan(cfg, overrides, command, env, out, name, files, renv, tuple(notes))


def _local_python() -> str:
    try:
        return find_verl_python()
    except ImportError:  # MissingExtraError: shown in a dry run, raised by a real launch
        return "<python with verl 0.9.1>"


def build_command(cfg: TrainConfig, *, remote: bool | None = None, python: str | None = None,
                  experiment_name: str | None = None) -> list[str]:
    """The ``python -m verl.trainer.main_ppo <overrides>`` argv for ``cfg`` (nothing is run)."""
    return plan(cfg, remote=remote, python=python, experiment_name=experiment_name).command


def _run_local(p: LaunchPlan, echo: Callable[[str], None]) -> int:
    if p.command[0].startswith("<"):
        find_verl_python()  # raises MissingExtraError naming the extra
    Path(p.output_dir).mkdir(parents=True, exist_ok=True)
    echo(f"running verl locally; checkpoints in {p.output_dir}")
    rc = subprocess.run(p.command, env={**os.environ, **p.env}, check=False).returncode
    if rc != 0:
        echo(f"verl exited with status {rc}")
        return rc
    actor = latest_checkpoint(p.output_dir)
    if actor is None:
        echo(f"training finished but no checkpoint was found in {p.output_dir}")
        return 1
    from judgeforge.train.verl.servable import resolve_servable

    echo(f"merged {actor} -> {resolve_servable(p.output_dir)}")
    return 0


def launch(cfg: TrainConfig, dry_run: bool = False, *, wait: bool = True,
           out: TextIO | None = None) -> int:
    """Train with verl; returns an exit status (0 = trained and merged, or job succeeded).

    ``dry_run`` prints :meth:`LaunchPlan.text` and runs nothing. A local run needs an interpreter
    with verl (see :func:`find_verl_python`) and GPUs; a Ray run needs ``ray`` here and a cluster
    with verl, vLLM and GPUs. With ``wait=False`` a Ray job is submitted and left running.
    """
    stream = out or sys.stdout

    def echo(line: str) -> None:
        print(line, file=stream, flush=True)

    if cfg.backend != "verl":
        raise ConfigError(f"backend is {cfg.backend!r}; the verl launcher needs backend=verl")
    if dry_run:
        echo(plan(cfg).text().rstrip("\n"))
        return 0
    if not _remote(cfg, None):
        return _run_local(plan(cfg, prepare_model=True), echo)
    stage_dir = Path(tempfile.mkdtemp(prefix="judgeforge-ray-job-"))
    p = plan(cfg, stage_dir=stage_dir)
    for note in p.notes:
        echo(f"note: {note}")
    if p.files is None or p.runtime_env is None:
        raise RuntimeError("a Ray plan always has staged files and a runtime env")
    ray_job.stage(p.files)
    return ray_job.submit(str(cfg.verl.ray_address), p.entrypoint, p.runtime_env, wait=wait,
                          metadata={"judgeforge": "train", "experiment": p.experiment_name},
                          echo=echo)
