"""The declared ``requires-python`` minimum is what the code needs: every source file parses with
that grammar, and the newest standard-library API the code uses came in that version.

The table holds the standard-library names added in 3.11-3.13 that code here is likely to use; a
use of a newer one (``itertools.batched``: 3.12) fails the first test until the minimum is raised,
and dropping every 3.11 API (``tomllib``, ``asyncio.timeout``) fails the second."""

from __future__ import annotations

import ast
import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SOURCES = ("sdk", "graders", "train", "benchmarks", "tests")

#: (module, name or None for the module itself) -> the Python version that added it.
ADDED: dict[tuple[str, str | None], tuple[int, int]] = {
    **{("tomllib", None): (3, 11), ("wsgiref.types", None): (3, 11)},
    **{("asyncio", n): (3, 11) for n in ("timeout", "timeout_at", "TaskGroup", "Runner",
                                           "Timeout", "Barrier")},
    **{("typing", n): (3, 11) for n in ("Self", "LiteralString", "Never", "assert_never",
                                          "assert_type", "reveal_type", "Required",
                                          "NotRequired", "dataclass_transform", "TypeVarTuple",
                                          "Unpack")},
    ("enum", "StrEnum"): (3, 11), ("datetime", "UTC"): (3, 11),
    ("hashlib", "file_digest"): (3, 11), ("contextlib", "chdir"): (3, 11),
    ("builtins", "ExceptionGroup"): (3, 11), ("builtins", "BaseExceptionGroup"): (3, 11),
    ("itertools", "batched"): (3, 12), ("typing", "override"): (3, 12),
    ("typing", "TypeAliasType"): (3, 12), ("os.path", "splitroot"): (3, 12),
    ("copy", "replace"): (3, 13), ("warnings", "deprecated"): (3, 13),
    ("typing", "ReadOnly"): (3, 13), ("typing", "TypeIs"): (3, 13),
    ("os", "process_cpu_count"): (3, 13),
}


def declared_minimum() -> tuple[int, int]:
    spec = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    match = re.fullmatch(r">=\s*3\.(\d+)", spec.strip())
    assert match, f"requires-python should be '>=3.N', not {spec!r}"
    return (3, int(match.group(1)))


def _files() -> list[Path]:
    return sorted(p for d in SOURCES for p in (ROOT / d).rglob("*.py")
                  if "__pycache__" not in p.parts)


def uses(tree: ast.AST) -> set[tuple[str, str | None]]:
    """The (module, name) pairs of ADDED that ``tree`` imports or reads as ``module.name``."""
    found: set[tuple[str, str | None]] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {(a.name, None) for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add((node.module, None))
            found |= {(node.module, a.name) for a in node.names}
        elif isinstance(node, ast.Attribute):
            parts = [node.attr]
            value: ast.expr = node.value
            while isinstance(value, ast.Attribute):
                parts.append(value.attr)
                value = value.value
            if isinstance(value, ast.Name):
                dotted = ".".join([value.id, *reversed(parts[1:])])
                found.add((dotted, node.attr))
        elif isinstance(node, ast.Name) and node.id in ("ExceptionGroup", "BaseExceptionGroup"):
            found.add(("builtins", node.id))
    return found & set(ADDED)


def newest_api_used() -> dict[tuple[str, str | None], list[str]]:
    where: dict[tuple[str, str | None], list[str]] = {}
    for path in _files():
        for key in uses(ast.parse(path.read_text(), filename=str(path))):
            where.setdefault(key, []).append(str(path.relative_to(ROOT)))
    return where


def test_sources_parse_with_the_declared_grammar() -> None:
    minimum = declared_minimum()
    for path in _files():
        ast.parse(path.read_text(), filename=str(path), feature_version=minimum)


def test_no_api_newer_than_the_declared_minimum() -> None:
    minimum = declared_minimum()
    newer = {f"{m}.{n or ''} ({'.'.join(map(str, ADDED[(m, n)]))}): {files[:3]}"
             for (m, n), files in newest_api_used().items() if ADDED[(m, n)] > minimum}
    assert not newer, f"requires-python is {minimum} but the code uses {sorted(newer)}"


def test_declared_minimum_is_needed() -> None:
    """The code really uses the declared version's APIs (so the minimum is not set too high,
    and a lower one would break: on 3.10 ``asyncio.timeout`` is an AttributeError)."""
    minimum = declared_minimum()
    used = newest_api_used()
    assert any(ADDED[key] == minimum for key in used), sorted(used)
    assert ("asyncio", "timeout") in used and ("tomllib", None) in used


def test_the_scan_sees_what_it_looks_for() -> None:
    tree = ast.parse("import tomllib\nimport itertools\nfrom typing import override\n"
                     "async def f():\n    async with asyncio.timeout(1):\n        pass\n"
                     "x = itertools.batched([1], 1)\ntry:\n    pass\n"
                     "except ExceptionGroup:\n    pass\n")
    assert uses(tree) == {("tomllib", None), ("typing", "override"), ("asyncio", "timeout"),
                          ("itertools", "batched"), ("builtins", "ExceptionGroup")}
