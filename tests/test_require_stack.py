"""``make test`` fails, instead of skipping, when a stack its environment promises is missing.

Runs pytest in a subprocess on one small test of this suite with ``JUDGEFORGE_REQUIRE_STACK``
naming a module that does not exist, then naming one that does (tests/conftest.py).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import MAIN_STACK, VERL_STACK, required_stack

ROOT = Path(__file__).resolve().parents[1]
ONE_TEST = "tests/test_hostile_input.py::test_finite_score_accepts_numbers"


def _pytest(env_value: str | None, ci: bool = False) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("CI", "JUDGEFORGE_REQUIRE_STACK")}
    if env_value is not None:
        env["JUDGEFORGE_REQUIRE_STACK"] = env_value
    if ci:
        env["CI"] = "true"
    return subprocess.run([sys.executable, "-m", "pytest", ONE_TEST, "-q", "-p",
                           "no:cacheprovider"], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=600)


def test_a_missing_promised_package_fails_the_run() -> None:
    out = _pytest("judgeforge_no_such_stack_xyz")
    assert out.returncode != 0
    assert "judgeforge_no_such_stack_xyz" in out.stdout + out.stderr
    assert "promises" in out.stdout + out.stderr


def test_present_packages_and_no_variable_run_normally() -> None:
    assert _pytest("json,hypothesis").returncode == 0
    assert _pytest(None).returncode == 0


def test_the_default_stack_depends_on_what_runs(monkeypatch) -> None:
    monkeypatch.delenv("JUDGEFORGE_REQUIRE_STACK", raising=False)
    monkeypatch.delenv("CI", raising=False)
    assert required_stack(["tests"], ROOT) == ()
    monkeypatch.setenv("CI", "true")
    assert required_stack(["tests", "--ignore=tests/verl"], ROOT) == MAIN_STACK
    assert required_stack([str(ROOT / "tests" / "verl")], ROOT) == VERL_STACK
    monkeypatch.setenv("JUDGEFORGE_REQUIRE_STACK", "vllm, trl")
    assert required_stack(["tests"], ROOT) == ("vllm", "trl")
