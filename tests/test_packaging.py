"""The distribution: exactly the judgeforge packages, importable from a wheel, and light."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("torch", "vllm", "verl", "ray", "transformers", "trl")


def _declared_packages() -> list[str]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]


def test_declared_packages_match_the_source_tree() -> None:
    roots = {"judgeforge": ROOT / "sdk", "judgeforge.graders": ROOT / "graders",
             "judgeforge.train": ROOT / "train", "judgeforge.benchmarks": ROOT / "benchmarks"}
    found = set()
    for name, folder in roots.items():
        for init in folder.rglob("__init__.py"):
            rel = init.parent.relative_to(folder).parts
            found.add(".".join((name, *rel)))
    assert sorted(found) == sorted(_declared_packages())


@pytest.mark.slow
def test_wheel_holds_exactly_the_packages_and_imports_from_a_temp_dir(tmp_path: Path) -> None:
    # build from a copy, so the checkout's own (editable-install) metadata is left untouched
    src = tmp_path / "src"
    for part in ("sdk", "graders", "train", "benchmarks"):
        shutil.copytree(ROOT / part, src / part, ignore=shutil.ignore_patterns("__pycache__"))
    for part in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / part, src / part)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                    "-q", "-w", str(tmp_path / "dist"), str(src)], check=True)
    wheel = next((tmp_path / "dist").glob("judgeforge-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    packages = {str(Path(n).parent).replace("/", ".") for n in names if n.endswith("__init__.py")}
    assert packages == set(_declared_packages())
    assert "judgeforge/py.typed" in names
    assert not any(n.startswith(("sdk/", "tests/", "graders/", "train/", "benchmarks/"))
                   for n in names)
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target",
                    str(target), str(wheel)], check=True)
    probe = (
        "import sys, judgeforge, judgeforge.graders, judgeforge.train, judgeforge.benchmarks\n"
        f"assert judgeforge.__file__.startswith({str(target)!r}), judgeforge.__file__\n"
        f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, capture_output=True,
                         text=True, env={"PYTHONPATH": str(target), "PATH": "/usr/bin:/bin"})
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_core_imports_no_heavy_stack() -> None:
    probe = (
        "import sys, judgeforge, judgeforge.graders, judgeforge.benchmarks, judgeforge.train\n"
        "import judgeforge.parsing, judgeforge.metrics, judgeforge.prompt, judgeforge.rewards\n"
        "import judgeforge.train.reward, judgeforge.cli.main\n"
        "judgeforge.cli.main.build_parser()\n"
        "for name in judgeforge.__all__: getattr(judgeforge, name)\n"
        f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "[]"


def test_missing_extra_error_names_the_extra() -> None:
    from judgeforge._extras import require
    from judgeforge.errors import MissingExtraError

    with pytest.raises(MissingExtraError, match=r"judgeforge\[train\]"):
        require("definitely_not_installed_pkg_xyz", "train")


def test_every_cli_option_has_help() -> None:
    import argparse

    from judgeforge.cli.main import build_parser

    def walk(parser: argparse.ArgumentParser, path: str) -> list[str]:
        missing = []
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    missing += walk(sub, f"{path} {name}")
            elif not isinstance(action, argparse._HelpAction) and not action.help:
                missing.append(f"{path} {'/'.join(action.option_strings) or action.dest}")
        return missing

    assert walk(build_parser(), "judgeforge") == []
