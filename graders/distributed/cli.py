"""``judgeforge grade --engine ray``: the grade command's options and body for Ray.

    judgeforge grade --engine ray --data s3://bucket/pairs.parquet --output out/ \\
        --model http://10.0.0.1:8000/v1 --model http://10.0.0.2:8000/v1 --mode expected

Repeated ``--model URL``: replicas of one judge (backend a, requests spread over them, at most
``--concurrency`` in flight per endpoint). ``--model FOLDER`` with ``--replicas N
--tensor-parallel-size T``: vLLM engines inside Ray Data on GPUs (backend b). ``--output`` is a
folder of Parquet shards; rerunning the same command resumes. Ray is imported only here, when the
command runs (``pip install 'judgeforge[ray]'``); ``RAY_ADDRESS`` selects a running cluster.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any

from judgeforge.errors import ConfigError

__all__ = ["add_ray_arguments", "run_grade_ray", "build_job"]


def add_ray_arguments(p: argparse.ArgumentParser, positive: Callable[[str], int]) -> None:
    """The ``grade`` options that only ``--engine ray`` reads (``positive``: the command's
    positive-integer argument type)."""
    _positive = positive
    p.add_argument("--engine", choices=("local", "ray"), default="local",
                   help="local: GradingRunner in this process; ray: a Ray Data job over one or "
                        "more --model URLs (or vLLM engines for a --model folder); needs "
                        "judgeforge[ray] and a folder as --output")
    p.add_argument("--replicas", type=_positive, default=1,
                   help="--engine ray with a model folder: vLLM engines (default: 1)")
    p.add_argument("--tensor-parallel-size", type=_positive, default=1,
                   help="--engine ray with a model folder: GPUs per engine (default: 1)")
    p.add_argument("--actors", type=_positive, default=1,
                   help="--engine ray with URLs: grading actors (default: 1; the work is HTTP)")
    p.add_argument("--batch-size", type=_positive, default=32,
                   help="--engine ray: rows per Ray Data batch (default: 32)")


def build_job(args: argparse.Namespace, build_grader: Callable[..., Any]) -> Any:
    """The job for parsed ``grade`` arguments (URLs -> endpoints, a folder -> vLLM engines);
    ``build_grader(args, model, card)`` is the ``grade`` command's grader builder."""
    from pathlib import Path

    from judgeforge.graders.distributed.job import RayGradingJob, RayVLLMEngineJob

    targets = list(args.model or [])
    if not targets:
        raise ConfigError("--engine ray needs --model: one or more URLs, or a judge folder")
    urls = [t for t in targets if t.startswith(("http://", "https://"))]
    if urls and len(urls) != len(targets):
        raise ConfigError("--engine ray: give either URLs or one model folder, not both")
    if urls:
        from judgeforge.models.openai_chat import OpenAIChatModel

        model = OpenAIChatModel(model=args.model_name, base_url=urls[0], api_key=args.api_key,
                                timeout=args.timeout)
        grader = build_grader(args, model, None)
        return RayGradingJob(grader, urls, name=args.grader, concurrency=args.concurrency,
                             actors=args.actors, batch_size=args.batch_size,
                             retry_errors=not args.no_retry_errors, api_key=args.api_key,
                             show_progress=not args.no_progress, on_stale=_on_stale(args))
    if len(targets) != 1 or not Path(targets[0]).expanduser().is_dir():
        raise ConfigError(f"--engine ray: {targets[0]!r} is neither URLs nor one model folder")
    from judgeforge.card import JudgeCard
    from judgeforge.graders.distributed.vllm_engine import _CaptureModel

    card = JudgeCard.read(targets[0])
    grader = build_grader(args, _CaptureModel(), card)
    return RayVLLMEngineJob(grader, str(Path(targets[0]).expanduser().resolve()),
                            name=args.grader, replicas=args.replicas,
                            tensor_parallel_size=args.tensor_parallel_size,
                            batch_size=args.batch_size, retry_errors=not args.no_retry_errors,
                            show_progress=not args.no_progress, on_stale=_on_stale(args))


def _on_stale(args: argparse.Namespace) -> str:
    return "refuse" if getattr(args, "refuse_stale", False) else "regrade"


def run_grade_ray(args: argparse.Namespace, build_grader: Callable[..., Any]) -> int:
    """The command's body with ``--engine ray``: run the job, print the summary."""
    if not args.output:
        raise ConfigError("--engine ray writes Parquet shards: give --output FOLDER")
    job = build_job(args, build_grader)
    summary = job.run(args.data, args.output, limit=args.limit)
    print(f"judgeforge grade: {summary}", file=sys.stderr)
    if summary.by_endpoint:
        spread = ", ".join(f"{u}: {n}" for u, n in sorted(summary.by_endpoint.items()))
        print(f"judgeforge grade: rows per endpoint: {spread}", file=sys.stderr)
    return 1 if args.strict and summary.graded > summary.scored else 0
