"""``judgeforge train``: run the training recipe from a preset (cpu, cpu-quick, gpu) or a YAML.

    judgeforge train PRESET|CONFIG [--backend cpu|verl] [--dry-run] [--quick] [key=value ...]
    judgeforge train --explain

``--backend cpu`` trains here (SFT warm-up, then TRL GRPO); ``--backend verl`` launches verl on
GPUs. ``--dry-run`` prints the resolved config and the plan (cpu) or the verl command (verl).
Exit codes: 0 success, 1 error (bad config, missing data, failed run), 2 usage.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

__all__ = ["register", "run"]


def register(subparsers: Any) -> None:
    """Add the ``train`` sub-command."""
    p = subparsers.add_parser(
        "train", help="train a judge (CPU: SFT + TRL GRPO; GPU: verl)",
        description=__doc__.split("\n\n")[0],
        epilog="Overrides are dotted YAML values, e.g. grpo.learning_rate=1e-6 "
               "data.train_files=[train.parquet]. Exit status: 0 success, 1 error, 2 usage.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("config", nargs="?", default=None,
                   help="a preset name (cpu, cpu-quick, gpu) or a TrainConfig YAML path; "
                        "optional with --explain")
    p.add_argument("overrides", nargs="*", help="section.key=value overrides applied last")
    p.add_argument("--backend", choices=("cpu", "verl"), default=None,
                   help="training backend; default: the config's backend")
    p.add_argument("--dry-run", action="store_true",
                   help="print the resolved config and the plan (cpu) or command (verl); "
                        "train nothing")
    p.add_argument("--quick", action="store_true",
                   help="the ~2-4 minute variant of the CPU recipe (CI, smoke runs)")
    p.add_argument("--explain", action="store_true",
                   help="print every config key with its default and help text, then exit")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(func=run)
    _allow_intermixed(p)


def _allow_intermixed(parser: argparse.ArgumentParser) -> None:
    """Let overrides follow flags (``CONFIG --dry-run a=b``): the host CLI parses sub-commands
    with ``parse_known_args``, which stops filling positionals at the first flag."""

    def parse_known_args(args: Any = None, namespace: Any = None) -> Any:
        del parser.parse_known_args  # the class method again, which the intermixed parse calls
        try:
            return parser.parse_known_intermixed_args(args, namespace)
        finally:
            parser.parse_known_args = parse_known_args  # type: ignore[method-assign]

    parser.parse_known_args = parse_known_args  # type: ignore[method-assign]


def _explain() -> int:
    from .config import explain

    print("\n".join(explain()))
    return 0


def run(args: argparse.Namespace) -> int:
    """Execute ``judgeforge train`` for parsed ``args``."""
    from judgeforge.errors import ConfigError

    from .config import TrainConfig

    if args.explain:
        try:
            return _explain()
        except BrokenPipeError:  # `| head`
            return 0
    if not args.config:
        print("judgeforge train: a preset (cpu, cpu-quick, gpu) or a CONFIG file is required "
              "(or --explain)", file=sys.stderr)
        return 2
    if "=" in args.config:
        raise ConfigError(f"{args.config!r} looks like an override: give the CONFIG file first")
    overrides = list(args.overrides)
    if args.quick:
        from .cpu import QUICK_OVERRIDES

        overrides = QUICK_OVERRIDES + overrides
    cfg = TrainConfig.from_yaml(args.config, overrides, backend=args.backend)
    if cfg.backend == "verl":
        from .verl.launch import launch

        return int(launch(cfg, dry_run=args.dry_run) or 0)
    if args.dry_run:
        from .cpu import plan

        print("# resolved config")
        print(cfg.to_yaml())
        print("# plan")
        print("\n".join(f"- {line}" for line in plan(cfg)))
        return 0
    from .api import train

    result = train(cfg)
    if args.json:
        print(json.dumps(result.to_dict(), indent=2, default=str))
    else:
        _print_result(result)
    return int(result.exit_code)


def _print_result(result: Any) -> None:
    m = result.metrics
    print(f"trained in {result.minutes:.1f} min with {result.threads} thread(s)")
    if getattr(result, "stopped_by", None):
        print(f"  NOTE: ended by a safety stop, not the step budget: {result.stopped_by}")
    for key in ("sft", "final", "best"):
        s = m.get(key)
        if s:
            print(f"  {key:5s} step {s.get('step')}: parse {s.get('parse_rate')}, MAE "
                  f"{s.get('mae')}, exact {s.get('exact_acc')}, Spearman {s.get('spearman')}")
    print(f"final model: {result.final}")
    if result.best:
        print(f"best model:  {result.best}")
    print(f"log: {result.log}  curves: {result.curves}")
