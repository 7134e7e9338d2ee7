"""Issue 18, case 11: a managed model server dies with its owner, whatever kills the owner.

The owner is a separate Python process that starts a server through :class:`VLLMServer` and
then waits; the test SIGKILLs the owner (no handler, no atexit, no finaliser can run) and checks
that the server's process group is gone. The stub test runs the stub server of
tests/test_vllm_server_lifecycle.py (a script that answers /health and spawns a child); the
slow one starts real vLLM (its own server: the test is about starting and stopping servers).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from judgeforge.models.vllm_server import process_group_alive
from tests.test_vllm_server_lifecycle import _alive, stub  # noqa: F401  (fixture)

OWNER = r'''
import sys, time
from judgeforge.models.vllm_server import VLLMServer
kw = dict(device="cpu", startup_timeout=600)
if sys.argv[2] != "-":
    kw["python"] = sys.argv[2]
if len(sys.argv) > 3:
    kw.update(home=sys.argv[3])
if sys.argv[4:5] == ["real"]:
    kw.update(enforce_eager=True, dtype="bfloat16", kv_cache_gib=1, max_model_len=1024)
srv = VLLMServer(sys.argv[1], **kw).start()
print(srv.pid, srv.port, flush=True)
time.sleep(3600)
'''


def _wait_gone(pgid: int, timeout: float) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if not process_group_alive(pgid):
            return True
        time.sleep(0.5)
    return not process_group_alive(pgid)


def _start_owner(args: list[str], env: dict[str, str]) -> tuple[subprocess.Popen[str], int]:
    owner = subprocess.Popen([sys.executable, "-c", OWNER, *args], stdout=subprocess.PIPE,
                             text=True, env=env)
    line = owner.stdout.readline() if owner.stdout else ""
    assert line.strip(), f"the owner did not start a server (exit {owner.poll()})"
    return owner, int(line.split()[0])


def test_stub_server_dies_when_its_owner_is_sigkilled(stub: dict) -> None:  # noqa: F811
    env = {**os.environ, "STUB_MODE": "ok", "STUB_OUT": str(stub["out"])}
    owner, pgid = _start_owner([str(stub["model"]), stub["python"], str(stub["home"])], env)
    try:
        child = int(stub["out"].read_text())
        assert process_group_alive(pgid) and _alive(child)
        owner.send_signal(signal.SIGKILL)
        owner.wait(timeout=30)
        assert _wait_gone(pgid, 60), "the server outlived its SIGKILLed owner"
        assert not _alive(child)
    finally:
        if owner.poll() is None:
            owner.kill()
        if process_group_alive(pgid):
            os.killpg(pgid, signal.SIGKILL)


def test_stub_server_ignoring_sigterm_still_dies_with_its_owner(stub: dict) -> None:  # noqa: F811
    env = {**os.environ, "STUB_MODE": "ignore_term", "STUB_OUT": str(stub["out"])}
    owner, pgid = _start_owner([str(stub["model"]), stub["python"], str(stub["home"])], env)
    try:
        owner.send_signal(signal.SIGKILL)
        owner.wait(timeout=30)
        assert _wait_gone(pgid, 90), "a server ignoring SIGTERM outlived its owner"
    finally:
        if process_group_alive(pgid):
            os.killpg(pgid, signal.SIGKILL)


@pytest.mark.slow
@pytest.mark.vllm
def test_real_vllm_dies_when_its_owner_is_sigkilled(default_model_path: Path,
                                                    tmp_path: Path) -> None:
    import importlib.util

    if importlib.util.find_spec("vllm") is None:
        pytest.skip("vllm is not installed")
    owner, pgid = _start_owner([str(default_model_path), "-", str(tmp_path), "real"],
                               dict(os.environ))
    try:
        assert process_group_alive(pgid)
        owner.send_signal(signal.SIGKILL)
        owner.wait(timeout=30)
        assert _wait_gone(pgid, 120), "real vLLM outlived its SIGKILLed owner"
    finally:
        if owner.poll() is None:
            owner.kill()
        if process_group_alive(pgid):
            os.killpg(pgid, signal.SIGKILL)
