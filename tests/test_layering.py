"""The layering rule, read from the sources: graders -> sdk; train -> sdk, graders; benchmarks ->
sdk, graders; sdk imports none of them; train and benchmarks never import each other; and no
import cycle between modules.

Every import counts: at module top, inside functions (the lazy ones), under ``TYPE_CHECKING``,
relative ones, and ``importlib.import_module("judgeforge....")`` with a literal name. Entry points
(pyproject.toml) are how the sdk's CLI reaches the others, so they are not imports.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
#: layer -> (its folder, the package it is)
LAYERS = {"sdk": (ROOT / "sdk", "judgeforge"), "graders": (ROOT / "graders", "judgeforge.graders"),
          "train": (ROOT / "train", "judgeforge.train"),
          "benchmarks": (ROOT / "benchmarks", "judgeforge.benchmarks")}
#: layer -> the layers it may import
ALLOWED = {"sdk": {"sdk"}, "graders": {"sdk", "graders"}, "train": {"sdk", "graders", "train"},
           "benchmarks": {"sdk", "graders", "benchmarks"}}


def module_files() -> dict[str, Path]:
    """Every module of the package: dotted name -> file."""
    found: dict[str, Path] = {}
    for folder, package in LAYERS.values():
        for path in sorted(folder.rglob("*.py")):
            if "__pycache__" in path.parts:
                continue
            parts = list(path.relative_to(folder).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join([package, *parts])] = path
    return found


def layer_of(module: str) -> str:
    for layer in ("graders", "train", "benchmarks"):
        package = LAYERS[layer][1]
        if module == package or module.startswith(package + "."):
            return layer
    return "sdk"


def imports_of(module: str, path: Path, known: set[str]) -> list[tuple[int, str]]:
    """(line, imported judgeforge module) for every import in ``path``, wherever it is."""
    is_package = path.name == "__init__.py"
    tree = ast.parse(path.read_text(), filename=str(path))
    out: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".")
                base = base if is_package else base[:-1]
                base = base[: len(base) - (node.level - 1)]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            targets = [f"{source}.{a.name}" if f"{source}.{a.name}" in known else source
                       for a in node.names]
        elif (isinstance(node, ast.Call) and ast.unparse(node.func) in
              ("importlib.import_module", "import_module", "__import__") and node.args
              and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)):
            targets = [node.args[0].value]
        out += [(node.lineno, t) for t in targets  # type: ignore[attr-defined]
                if t == "judgeforge" or t.startswith("judgeforge.")]
    return out


def _graph() -> dict[str, list[tuple[int, str]]]:
    files = module_files()
    known = set(files)
    return {m: imports_of(m, p, known) for m, p in files.items()}


def test_layers_point_one_way() -> None:
    files = module_files()
    broken = []
    for module, imported in _graph().items():
        src = layer_of(module)
        for line, target in imported:
            if layer_of(target) not in ALLOWED[src]:
                where = files[module].relative_to(ROOT)
                broken.append(f"{where}:{line}: {src} imports {target} ({layer_of(target)})")
    assert not broken, "layering broken:\n" + "\n".join(broken)


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


def test_no_import_cycles_between_modules() -> None:
    """Between modules that hold code (a package's ``__init__`` re-exporting its own modules is
    a facade, not a dependency, so imports of packages are left out)."""
    files = module_files()
    modules = {m for m, p in files.items() if p.name != "__init__.py"}
    edges = {m: {t for _, t in imported if t in modules and t != m}
             for m, imported in _graph().items() if m in modules}
    cycles = _cycles(edges)
    assert not cycles, f"import cycles: {cycles}"


@pytest.mark.parametrize("source,expected", [
    ("from judgeforge.train import api\n", ["judgeforge.train.api"]),
    ("def f():\n    from ..train.cpu import trainer\n", ["judgeforge.train.cpu.trainer"]),
    ("import importlib\nimportlib.import_module('judgeforge.benchmarks.quality')\n",
     ["judgeforge.benchmarks.quality"]),
    ("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import judgeforge.train\n",
     ["judgeforge.train"]),
])
def test_the_scan_sees_lazy_relative_and_dynamic_imports(tmp_path: Path, source: str,
                                                         expected: list[str]) -> None:
    path = tmp_path / "mod.py"
    path.write_text(source)
    known = {"judgeforge.train.api", "judgeforge.train.cpu.trainer",
             "judgeforge.benchmarks.quality"}
    found = [t for _, t in imports_of("judgeforge.graders.mod", path, known)]
    assert found == expected
    assert layer_of(found[0]) in ("train", "benchmarks")  # both forbidden from graders
