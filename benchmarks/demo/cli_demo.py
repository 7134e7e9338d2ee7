"""``judgeforge demo``: run the whole loop on the embedded default, resumably."""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

__all__ = ["register"]


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "demo", help="run the main job: data -> trained judge -> served -> graded -> benchmarked",
        description=(
            "The main job on CPU with the shipped small model and data: prepare SmolLM2, convert "
            "the Prometheus sets into train/test splits, train the CPU recipe (SFT warm-up + "
            "GRPO), benchmark the base model (raw, and calibrated on the training run's "
            "validation rows), serve the trained judge with vLLM and the scoring API, "
            "grade a few pairs (aevaluate, GradingRunner, HTTP), benchmark it and print base vs "
            "trained side by side. Each step logs to <workdir>/logs; rerunning skips finished "
            "steps."),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--quick", action="store_true",
                   help="a few-minute version: fewer test rows and training steps")
    p.add_argument("--workdir", type=Path, default=None,
                   help="work folder (default: runs/demo, or runs/demo-quick with --quick)")
    p.add_argument("--data", type=Path, action="append", default=[],
                   help="Prometheus-format file(s) to use instead of the shipped sets (repeat)")
    p.add_argument("--test-rows", type=int, default=None,
                   help="rows held out for benchmarking, whole questions (default: 128, the CPU "
                        "recipe's test split; 24 with --quick)")
    p.add_argument("--redo", action="append", default=[], metavar="STEP",
                   help="run STEP again even if done (check, model, data, train, bench-base, "
                        "serve, bench-trained); repeat for several")
    p.add_argument("--fresh", action="store_true",
                   help="delete the work folder first and start over")
    p.add_argument("--train-override", action="append", default=[], metavar="KEY=VALUE",
                   help="training config override passed to `judgeforge train` (repeat)")
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from judgeforge.benchmarks.demo.pipeline import Demo, DemoOptions
    from judgeforge.benchmarks.demo.steps_runner import StepRunner
    from judgeforge.benchmarks.demo.summary import side_by_side, write_summary

    work = args.workdir or Path("runs") / ("demo-quick" if args.quick else "demo")
    if args.fresh and work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True, exist_ok=True)
    demo = Demo(DemoOptions(workdir=work, quick=args.quick, data=args.data,
                            test_rows=args.test_rows, redo=args.redo,
                            train_overrides=args.train_override))
    runner = StepRunner(work.resolve(), redo=args.redo)
    try:
        runner.run(demo.build_steps())
    finally:
        demo.close()
    report = write_summary(work.resolve(), runner.total_seconds() / 60)
    print("\n" + side_by_side(work.resolve(), "sample") + "\n")
    print(side_by_side(work.resolve(), "expected") + "\n")
    print(f"report: {report}")
    return 0
