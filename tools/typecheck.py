#!/usr/bin/env python3
"""Run mypy on the ``judgeforge`` package (settings: ``[tool.mypy]`` in pyproject.toml).

The package's folders are not named like its modules (``sdk/`` is ``judgeforge``, ``graders/`` is
``judgeforge.graders``, ...: see ``[tool.setuptools.package-dir]``), and the editable install is
an import hook mypy cannot follow, so this lays out a tree of symbolic links named like the
modules under ``build/typecheck/`` and checks ``-p judgeforge`` there. Error paths are printed
relative to the checkout. Extra arguments go to mypy. Exit status: mypy's.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def link_tree(dest: Path) -> Path:
    """``dest/judgeforge`` mirroring the package layout with links into the checkout."""
    dirs = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"][
        "package-dir"]
    if dest.exists():
        shutil.rmtree(dest)
    top = dest / "judgeforge"
    top.mkdir(parents=True)
    for entry in (ROOT / dirs["judgeforge"]).iterdir():
        if entry.name != "__pycache__":
            (top / entry.name).symlink_to(entry)
    for module, folder in dirs.items():
        if module != "judgeforge":
            link = dest.joinpath(*module.split("."))
            if link.is_symlink() or link.exists():
                link.unlink()
            link.symlink_to(ROOT / folder, target_is_directory=True)
    return dest


def main(argv: list[str]) -> int:
    tree = link_tree(ROOT / "build" / "typecheck")
    dirs = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"][
        "package-dir"]
    cmd = [sys.executable, "-m", "mypy", "--config-file", str(ROOT / "pyproject.toml"),
           "--cache-dir", str(ROOT / "build" / "mypy-cache"), "-p", "judgeforge", *argv]
    proc = subprocess.run(cmd, cwd=tree, capture_output=True, text=True,
                          env={**os.environ, "MYPYPATH": ""})
    # judgeforge/graders/x.py -> graders/x.py, judgeforge/data/io.py -> sdk/data/io.py
    prefixes = sorted(dirs.items(), key=lambda kv: -len(kv[0]))

    def real(match: re.Match[str]) -> str:
        module_path = match.group(0)
        for module, folder in prefixes:
            head = module.replace(".", "/")
            if module_path == head or module_path.startswith(head + "/"):
                return folder + module_path[len(head):]
        return module_path

    for stream, text in ((sys.stdout, proc.stdout), (sys.stderr, proc.stderr)):
        stream.write(re.sub(r"^judgeforge(/[\w/.-]+)?", real, text, flags=re.M))
    return proc.returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
