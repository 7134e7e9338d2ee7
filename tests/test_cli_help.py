"""``--help`` of every command and sub-command: "(default: X)" appears only where it tells
something (never "(default: None)", never after a text that already names its default). That
every option has a help text: tests/test_packaging.py."""

from __future__ import annotations

import argparse

import pytest

from judgeforge.cli.main import HelpFormatter, build_parser


def _parsers(parser: argparse.ArgumentParser, path: str = "judgeforge"
             ) -> list[tuple[str, argparse.ArgumentParser]]:
    found = [(path, parser)]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            seen: set[int] = set()
            for name, sub in action.choices.items():
                if id(sub) not in seen:
                    seen.add(id(sub))
                    found += _parsers(sub, f"{path} {name}")
    return found


PARSERS = _parsers(build_parser())


@pytest.mark.parametrize("path,parser", PARSERS, ids=[p for p, _ in PARSERS])
def test_help_has_no_empty_or_repeated_defaults(path: str, parser: argparse.ArgumentParser,
                                                ) -> None:
    text = " ".join(parser.format_help().split())
    assert "(default: None)" not in text, path
    assert "(default: False)" not in text, path
    assert "(default: [])" not in text, path
    formatter = parser._get_formatter()
    for action in parser._actions:
        if not action.help or action.help is argparse.SUPPRESS:
            continue
        shown = formatter._get_help_string(action) or ""  # what --help prints, unexpanded
        added = shown[len(action.help):] if shown.startswith(action.help) else shown
        if "default" in action.help.lower():
            assert not added, f"{path} {action.dest}: {action.help!r} + {added!r}"


def test_the_formatter_keeps_defaults_that_tell_something() -> None:
    parser = argparse.ArgumentParser(formatter_class=HelpFormatter)
    parser.add_argument("--rows", type=int, default=80, help="rows")
    parser.add_argument("--seed", type=int, default=0, help="seed")
    parser.add_argument("--model", default=None, help="model")
    parser.add_argument("--workdir", default="runs", help="folder (default: runs/demo)")
    text = " ".join(parser.format_help().split())
    assert "rows (default: 80)" in text and "seed (default: 0)" in text
    assert "model (default" not in text and "(default: runs/demo) (default" not in text
