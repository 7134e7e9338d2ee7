"""The public API: every exported name resolves, nothing private is exported, nothing public is
left out (httpx's tests/test_exported_members.py), lazy packages have an eager ``TYPE_CHECKING``
copy for type checkers, and every public module declares ``__all__``."""

from __future__ import annotations

import ast
import importlib
import inspect
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
#: packages whose __init__ only gathers the API of their modules (httpx's rule applies in full)
FACADES = ("judgeforge", "judgeforge.data", "judgeforge.models", "judgeforge.graders",
           "judgeforge.graders.runner", "judgeforge.train", "judgeforge.benchmarks")
PACKAGES = (*FACADES, "judgeforge.datasets", "judgeforge.train.presets")
FOLDERS = {"judgeforge": ROOT / "sdk", "judgeforge.graders": ROOT / "graders",
           "judgeforge.train": ROOT / "train", "judgeforge.benchmarks": ROOT / "benchmarks"}
#: exported although they start with "_"
PRIVATE_OK = {"__version__"}
#: names a module binds for its own use that are not API (typing helpers, lazy-import machinery)
HELPERS = {"annotations", "TYPE_CHECKING", "Any", "importlib"}


def _source(module: str) -> Path:
    for prefix in sorted(FOLDERS, key=len, reverse=True):
        if module == prefix or module.startswith(prefix + "."):
            rel = module[len(prefix):].lstrip(".").split(".") if module != prefix else []
            base = FOLDERS[prefix].joinpath(*rel)
            return base / "__init__.py" if base.is_dir() else base.with_suffix(".py")
    raise AssertionError(module)


@pytest.mark.parametrize("name", PACKAGES)
def test_every_exported_name_resolves_and_nothing_private_leaks(name: str) -> None:
    module = importlib.import_module(name)
    exported = module.__all__
    assert isinstance(exported, list) and len(set(exported)) == len(exported), name
    assert not [n for n in exported if n.startswith("_") and n not in PRIVATE_OK]
    for member in exported:
        assert getattr(module, member) is not None, f"{name}.{member}"
    if name not in FACADES:
        return
    # after resolving every export: whatever looks public is exported (or is a submodule)
    public = {k for k, v in vars(module).items()
              if not k.startswith("_") and not inspect.ismodule(v)} - HELPERS
    assert sorted(public - set(exported)) == [], f"{name}: public but not in __all__"


def _lazy_table(tree: ast.Module) -> set[str] | None:
    """The keys of a module-level ``{name: module}`` dict that ``__getattr__`` resolves."""
    for node in tree.body:
        target = node.target if isinstance(node, ast.AnnAssign) else (
            node.targets[0] if isinstance(node, ast.Assign) else None)
        if (isinstance(target, ast.Name) and target.id in ("_EXPORTS", "_LAZY", "_WHERE")
                and isinstance(node.value, ast.Dict)):
            return {k.value for k in node.value.keys if isinstance(k, ast.Constant)}
    return None


def _type_checking_names(tree: ast.Module) -> set[str]:
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.If) and ast.unparse(node.test) == "TYPE_CHECKING":
            for sub in ast.walk(node):
                if isinstance(sub, ast.ImportFrom):
                    names |= {a.asname or a.name for a in sub.names}
    return names


@pytest.mark.parametrize("name", PACKAGES)
def test_lazy_names_have_an_eager_copy_for_type_checkers(name: str) -> None:
    tree = ast.parse(_source(name).read_text())
    lazy = _lazy_table(tree)
    if lazy is None:
        pytest.skip(f"{name} imports its names eagerly")
    assert sorted(lazy - _type_checking_names(tree)) == [], \
        f"{name}: resolved lazily but invisible to type checkers (add them under TYPE_CHECKING)"
    literal = next((n.value for n in tree.body if isinstance(n, ast.Assign)
                    and ast.unparse(n.targets[0]) == "__all__"), None)
    assert isinstance(literal, ast.List) and all(isinstance(e, ast.Constant)
                                                 for e in literal.elts), \
        f"{name}: __all__ should be a literal list of strings (type checkers read it)"
    assert lazy <= {e.value for e in literal.elts}, f"{name}: lazy names missing from __all__"


def _modules() -> list[tuple[str, Path]]:
    found = []
    for prefix, folder in FOLDERS.items():
        for path in sorted(folder.rglob("*.py")):
            rel = path.relative_to(folder).with_suffix("").parts
            if rel and rel[-1] == "__init__":
                rel = rel[:-1]
            if any(part.startswith("_") for part in rel) or "__pycache__" in path.parts:
                continue
            if prefix == "judgeforge" and rel and rel[0] in ("graders", "train", "benchmarks"):
                continue
            found.append((".".join((prefix, *rel)), path))
    return found


def _is_script(tree: ast.Module) -> bool:
    return any(isinstance(n, ast.If) and "__main__" in ast.unparse(n.test) for n in tree.body)


def _bound_names(tree: ast.Module) -> set[str]:
    """Names bound at module level (anywhere but inside functions and classes)."""
    names: set[str] = set()
    stack: list[ast.AST] = list(tree.body)
    while stack:
        node = stack.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names |= {(a.asname or a.name).split(".")[0] for a in node.names}
        elif isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for t in targets:
                names |= {n.id for n in ast.walk(t) if isinstance(n, ast.Name)}
        elif isinstance(node, (ast.If, ast.Try, ast.With)):
            stack.extend(ast.iter_child_nodes(node))
        elif isinstance(node, ast.ExceptHandler):
            stack.extend(node.body)
    return names


@pytest.mark.parametrize("name,path", _modules(), ids=[m for m, _ in _modules()])
def test_every_public_module_declares_all(name: str, path: Path) -> None:
    tree = ast.parse(path.read_text())
    declared = next((n for n in tree.body if isinstance(n, (ast.Assign, ast.AnnAssign)) and
                     ast.unparse(n.targets[0] if isinstance(n, ast.Assign) else n.target)
                     == "__all__"), None)
    if declared is None:
        assert _is_script(tree), f"{name} ({path.relative_to(ROOT)}) has no __all__"
        return
    if not isinstance(declared.value, ast.List):  # computed: checked by importing, above
        return
    value = {e.value for e in declared.value.elts if isinstance(e, ast.Constant)}
    lazy = _lazy_table(tree) or set()
    missing = set(value) - _bound_names(tree) - lazy - PRIVATE_OK
    if any(isinstance(n, ast.FunctionDef) and n.name == "__getattr__" for n in tree.body):
        missing -= _type_checking_names(tree)
    assert sorted(missing) == [], f"{name}: __all__ names nothing defines"
