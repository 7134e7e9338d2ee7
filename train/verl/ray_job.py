"""Shipping a training run to a running Ray cluster through the Ray Jobs API.

The job's runtime environment carries what the cluster lacks:

* ``py_modules``: the ``judgeforge`` package, assembled from the source tree when it is
  installed in editable mode (``judgeforge.train`` etc. live outside ``sdk/``), so the driver and
  every worker can import ``judgeforge.train.reward`` and ``judgeforge.train.verl.dataset``;
* ``working_dir``: a staging folder holding copies of the local data files under ``data/`` (the
  overrides name them by these relative paths);
* ``pip``: judgeforge's core requirements (verl, vLLM and torch must already be on the cluster);
* ``env_vars``: where tensorboard/file logs go.

Only :func:`submit` needs ``ray`` (imported when called).
"""

from __future__ import annotations

import asyncio
import importlib.metadata
import importlib.util
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from judgeforge._extras import require

__all__ = ["JobFiles", "core_requirements", "package_sources", "plan_files", "stage",
           "submit", "FALLBACK_REQUIREMENTS"]

#: Used when judgeforge's installed metadata cannot be read.
FALLBACK_REQUIREMENTS = ["pydantic>=2.6", "pyarrow>=14", "numpy>=1.24", "scipy>=1.10",
                         "scikit-learn>=1.3", "openai>=1.40", "httpx>=0.25", "tenacity>=8.2",
                         "tqdm>=4.66", "pyyaml>=6", "matplotlib>=3.7"]
_SUBPACKAGES = ("train", "graders", "benchmarks")
_IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc", "*.pyo")


def core_requirements() -> list[str]:
    """judgeforge's own requirements without extras (the cluster's pip list)."""
    try:
        reqs = importlib.metadata.requires("judgeforge") or []
    except importlib.metadata.PackageNotFoundError:
        return list(FALLBACK_REQUIREMENTS)
    core = [r.split(";")[0].strip() for r in reqs if "extra ==" not in r.replace("'", '"')
            and "extra==" not in r]
    return core or list(FALLBACK_REQUIREMENTS)


def package_sources() -> list[tuple[str, Path]]:
    """(sub-path inside ``judgeforge/``, source folder): the package and its remapped parts."""
    spec = importlib.util.find_spec("judgeforge")
    if spec is None or not spec.origin:
        raise RuntimeError("judgeforge is not importable")  # cannot happen: we are in it
    root = Path(spec.origin).resolve().parent
    out = [("", root)]
    for sub in _SUBPACKAGES:
        sub_spec = importlib.util.find_spec(f"judgeforge.{sub}")
        if sub_spec is None or not sub_spec.submodule_search_locations:
            continue
        loc = Path(list(sub_spec.submodule_search_locations)[0]).resolve()
        if loc != root / sub:
            out.append((sub, loc))
    return out


@dataclass
class JobFiles:
    """Where staged things go: ``stage_dir/judgeforge`` and ``stage_dir/work/data/...``."""

    stage_dir: Path
    data: dict[str, str] = field(default_factory=dict)  # local file -> path inside working_dir

    @property
    def package_dir(self) -> Path:
        return self.stage_dir / "judgeforge"

    @property
    def working_dir(self) -> Path:
        return self.stage_dir / "work"

    def remote(self, path: str) -> str:
        """The path a data file has inside the job (unchanged when it is not shipped)."""
        return self.data.get(path, path)


def plan_files(files: list[str], stage_dir: Path) -> JobFiles:
    """Which data files ship with the job: every one that exists here (URLs stay as they are)."""
    plan = JobFiles(stage_dir)
    for i, name in enumerate(dict.fromkeys(files)):
        p = Path(name).expanduser()
        if "://" not in name and p.is_file():
            plan.data[name] = f"data/{i}-{p.name}"
    return plan


def stage(plan: JobFiles) -> None:
    """Copy the package and the data files into ``plan.stage_dir``."""
    for sub, src in package_sources():
        dest = plan.package_dir / sub if sub else plan.package_dir
        shutil.copytree(src, dest, ignore=_IGNORE, dirs_exist_ok=True)
    for local, remote in plan.data.items():
        src = Path(local).expanduser()
        dest = plan.working_dir / remote
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, dest)
        sidecar = src.with_name(src.name + ".info.json")
        if sidecar.is_file():
            shutil.copy2(sidecar, dest.with_name(dest.name + ".info.json"))
    plan.working_dir.mkdir(parents=True, exist_ok=True)


async def _follow(client: Any, job_id: str, echo: Callable[[str], None]) -> None:
    async for lines in client.tail_job_logs(job_id):
        echo(lines.rstrip("\n"))


def submit(address: str, entrypoint: str, runtime_env: dict[str, Any], *, wait: bool = True,
           metadata: dict[str, str] | None = None, echo: Callable[[str], None] = print) -> int:
    """Submit ``entrypoint`` as a Ray job; with ``wait`` stream its logs and return 0 on success."""
    jobs = require("ray.job_submission", "verl", "the Ray Jobs client comes with ray")
    client = jobs.JobSubmissionClient(address)
    job_id = client.submit_job(entrypoint=entrypoint, runtime_env=runtime_env,
                               metadata=metadata or {})
    echo(f"submitted Ray job {job_id} to {address} "
         f"(logs: ray job logs -f {job_id} --address {address})")
    if not wait:
        return 0
    asyncio.run(_follow(client, job_id, echo))
    status = client.get_job_status(job_id)
    echo(f"Ray job {job_id}: {status}")
    return 0 if status == jobs.JobStatus.SUCCEEDED else 1
