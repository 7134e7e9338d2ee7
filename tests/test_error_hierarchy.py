"""Every error raised on purpose derives from JudgeforgeError (read from the sources).

A ``raise`` of a builtin exception class is allowed only where the builtin is the contract:
inside pydantic validators (pydantic wants ValueError and wraps it in a ValidationError), for
``AssertionError``/``NotImplementedError`` (bugs, not errors), re-raises, and in scripts."""

from __future__ import annotations

import ast
import builtins
from pathlib import Path

import judgeforge.errors as errors

ROOT = Path(__file__).resolve().parents[1]
FOLDERS = ("sdk", "graders", "train", "benchmarks")
BUILTIN_ERRORS = {name for name, v in vars(builtins).items()
                  if isinstance(v, type) and issubclass(v, BaseException)}
ALLOWED = {"AssertionError", "NotImplementedError", "StopIteration", "StopAsyncIteration",
           "KeyboardInterrupt", "SystemExit", "GeneratorExit"}
#: (file, builtin) pairs kept on purpose
EXEMPT = {
    ("train/verl/gpu_smoke.py", "RuntimeError"),  # a GPU smoke script, not library code
    ("train/verl/launch.py", "RuntimeError"),  # an internal invariant ("always has ...")
    ("train/verl/ray_job.py", "RuntimeError"),  # "cannot happen: we are in it"
}


def _validators(tree: ast.AST) -> set[ast.AST]:
    found: set[ast.AST] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and any(
                "validator" in ast.unparse(d) for d in node.decorator_list):
            found |= set(ast.walk(node))
    return found


def _caught_locally(tree: ast.AST) -> set[tuple[ast.AST, str]]:
    """(raise node, name) pairs inside a ``try`` whose handlers catch that name."""
    found: set[tuple[ast.AST, str]] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Try):
            caught = {n.id for h in node.handlers if h.type is not None
                      for n in ast.walk(h.type) if isinstance(n, ast.Name)}
            for stmt in node.body:
                found |= {(r, name) for r in ast.walk(stmt) if isinstance(r, ast.Raise)
                          for name in caught}
    return found


def _module_getattr(tree: ast.AST) -> set[ast.AST]:
    """Nodes of a module-level ``__getattr__`` (AttributeError is its protocol)."""
    return {n for f in ast.walk(tree) if isinstance(f, ast.FunctionDef)
            and f.name in ("__getattr__", "__dir__") for n in ast.walk(f)}


def builtin_raises(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text())
    inside_validators = _validators(tree)
    caught = _caught_locally(tree)
    getattr_nodes = _module_getattr(tree)
    out = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Raise) or node.exc is None or node in inside_validators:
            continue
        exc = node.exc.func if isinstance(node.exc, ast.Call) else node.exc
        name = exc.id if isinstance(exc, ast.Name) else None
        if name is None or name not in BUILTIN_ERRORS or name in ALLOWED:
            continue
        if (node, name) in caught or (name == "AttributeError" and node in getattr_nodes):
            continue
        out.append((node.lineno, name))
    return out


def test_raised_on_purpose_means_a_judgeforge_error() -> None:
    found = []
    for folder in FOLDERS:
        for path in sorted((ROOT / folder).rglob("*.py")):
            rel = str(path.relative_to(ROOT))
            found += [f"{rel}:{line}: raise {name}" for line, name in builtin_raises(path)
                      if (rel, name) not in EXEMPT]
    assert not found, "raise a judgeforge.errors class instead:\n" + "\n".join(found)


def test_every_error_class_refines_judgeforge_error_and_is_exported() -> None:
    import judgeforge

    classes = [v for v in vars(errors).values()
               if isinstance(v, type) and issubclass(v, BaseException)
               and v.__module__ == errors.__name__]
    assert all(issubclass(c, errors.JudgeforgeError) for c in classes)
    assert {c.__name__ for c in classes} == set(errors.__all__)
    assert set(errors.__all__) <= set(judgeforge.__all__)


def test_the_scan_sees_a_builtin_raise(tmp_path: Path) -> None:
    path = tmp_path / "m.py"
    path.write_text("from pydantic import field_validator\n"
                    "def f():\n    raise ValueError('x')\n"
                    "class M:\n    @field_validator('a')\n    def v(cls, x):\n"
                    "        raise ValueError('pydantic wants this')\n"
                    "def g():\n    raise AssertionError('unreachable')\n"
                    "def h():\n    try:\n        raise OSError(0, 'short')\n"
                    "    except OSError:\n        pass\n")
    assert builtin_raises(path) == [(3, "ValueError")]
