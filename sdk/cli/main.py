"""The `judgeforge` command. Subcommands are plugins found through the entry-point group
``judgeforge.commands`` (see pyproject.toml), so the sdk never imports graders/train/benchmarks.

A plugin is ``register(subparsers) -> None`` that adds one sub-parser and sets ``func`` (a
callable taking the parsed ``argparse.Namespace`` and returning an exit code).
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from collections.abc import Sequence
from importlib.metadata import entry_points

from judgeforge.errors import JudgeforgeError

__all__ = ["HelpFormatter", "build_parser", "main"]


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """``--help`` with "(default: X)" only where it tells something: not for None, False or empty
    defaults, and not after a help text that already names its default."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default
        if ("default" in text.lower() or default is None or default is False
                or default is argparse.SUPPRESS or (isinstance(default, (list, tuple, str, dict))
                                                   and not default)):
            return text
        return super()._get_help_string(action) or text


def _use_help_formatter(parser: argparse.ArgumentParser) -> None:
    """Give every sub-parser that asked for argparse's defaults formatter this one instead."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                if sub.formatter_class is argparse.ArgumentDefaultsHelpFormatter:
                    sub.formatter_class = HelpFormatter
                _use_help_formatter(sub)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="judgeforge",
        description="Train, serve and use generative pointwise reward models (LLM judges).",
        formatter_class=HelpFormatter,
    )
    parser.add_argument("-v", "--verbose", action="count", default=0,
                        help="more logging (-v info, -vv debug)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    eps = sorted(entry_points(group="judgeforge.commands"), key=lambda e: e.name)
    for ep in eps:
        try:
            register = ep.load()
        except ImportError as exc:  # a plugin whose stack is missing must not break the others
            _register_broken(sub, ep.name, exc)
            continue
        register(sub)
    _use_help_formatter(parser)
    return parser


def _register_broken(sub: argparse._SubParsersAction[argparse.ArgumentParser], name: str,
                     exc: ImportError) -> None:
    parser = sub.add_parser(name, help=f"(unavailable: {exc})")

    def fail(_args: argparse.Namespace) -> int:
        print(f"judgeforge {name}: unavailable: {exc}", file=sys.stderr)
        return 1

    parser.set_defaults(func=fail)


def _terminate_as_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: Sequence[str] | None = None) -> int:
    """Run one subcommand. SIGTERM is handled like Ctrl-C, so every command's cleanup runs
    (servers it started are stopped, files closed) when it is terminated rather than killed."""
    if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
        signal.signal(signal.SIGTERM, _terminate_as_interrupt)
    parser = build_parser()
    args = parser.parse_args(argv)
    level = [logging.WARNING, logging.INFO, logging.DEBUG][min(args.verbose, 2)]
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except JudgeforgeError as exc:
        print(f"judgeforge {args.command}: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"judgeforge {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
