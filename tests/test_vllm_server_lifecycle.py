"""VLLMServer lifecycle: start, /health wait, failure messages, stopping the whole process group.

Most tests run a stub server (a small Python script passed as ``python=``; it takes vLLM's argv,
spawns a child process and answers /health) because the failure modes under test (a server that
ignores SIGTERM, never gets healthy, leaves children) cannot be produced on demand with real vLLM,
and only one real vLLM server may run at a time here. One test starts real vLLM on a broken folder
to check the error quotes the real log. The real server's clean stop is asserted by the session
fixture ``vllm_server`` (tests/conftest.py).
"""

from __future__ import annotations

import importlib.util
import os
import socket
import stat
import sys
from pathlib import Path

import pytest

from judgeforge.errors import ServerError
from judgeforge.models.vllm_server import ServerPool, VLLMServer, process_group_alive

STUB = r'''
import http.server, os, signal, subprocess, sys, time
args = sys.argv[1:]
port = int(args[args.index("--port") + 1])
mode = os.environ.get("STUB_MODE", "ok")
out = os.environ["STUB_OUT"]
print("stub vllm starting", args, flush=True)
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
open(out, "w").write(str(child.pid))
if mode == "die":
    print("RuntimeError: stub failure: not enough KV cache memory", flush=True)
    child.kill()
    sys.exit(3)
if mode == "ignore_term":
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
if mode == "never_healthy":
    time.sleep(600)

class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200 if self.path == "/health" else 404)
        self.end_headers()
    def log_message(self, *a):
        pass

srv = http.server.HTTPServer(("127.0.0.1", port), H)
def term(*_):
    child.terminate()
    sys.exit(0)
if mode != "ignore_term":
    signal.signal(signal.SIGTERM, term)
srv.serve_forever()
'''


@pytest.fixture
def stub(tmp_path: Path) -> dict:
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text("{}")
    script = tmp_path / "stub_vllm.py"
    script.write_text(STUB)
    py = tmp_path / "fakepython"
    py.write_text(f"#!/bin/sh\nshift 2\nexec {sys.executable} {script} \"$@\"\n")
    py.chmod(py.stat().st_mode | stat.S_IEXEC)
    return {"model": model, "python": str(py), "out": tmp_path / "child.pid", "home": tmp_path}


def _server(stub: dict, mode: str, **kw: object) -> VLLMServer:
    return VLLMServer(stub["model"], python=stub["python"], home=stub["home"], device="cpu",
                      env={"STUB_MODE": mode, "STUB_OUT": str(stub["out"])}, **kw)


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state not in ("Z", "X")


def test_stub_server_starts_healthy_and_stop_leaves_no_process(stub: dict) -> None:
    with _server(stub, "ok", startup_timeout=60) as srv:
        assert srv.is_running() and srv.health()
        assert srv.base_url == f"http://127.0.0.1:{srv.port}/v1"
        assert srv.model_name == "model"
        assert srv.log_path == stub["home"] / "logs" / f"vllm-{srv.port}.log"
        child = int(stub["out"].read_text())
        assert _alive(child)
        pgid = srv.pgid
        assert pgid == srv.pid
    assert not srv.is_running()
    assert not process_group_alive(pgid)
    assert not _alive(child)
    with socket.socket() as s:  # nothing listens on the port any more
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", srv.port))
        s.listen()
    assert "stub vllm starting" in srv.log_tail()


def test_stub_server_that_dies_raises_server_error_with_log_tail(stub: dict) -> None:
    srv = _server(stub, "die", startup_timeout=60)
    with pytest.raises(ServerError) as info:
        srv.start()
    err = info.value
    assert "exited with code 3" in str(err)
    assert "stub failure: not enough KV cache memory" in err.log_tail
    assert "stub failure" in str(err) and str(srv.log_path) in str(err)
    assert not process_group_alive(srv.pid)


def test_stub_server_never_healthy_times_out_and_is_stopped(stub: dict) -> None:
    srv = _server(stub, "never_healthy", startup_timeout=3, shutdown_timeout=1)
    with pytest.raises(ServerError, match="not healthy"):
        srv.start()
    assert not process_group_alive(srv.pid)
    assert not _alive(int(stub["out"].read_text()))


def test_stub_server_ignoring_sigterm_is_killed(stub: dict) -> None:
    srv = _server(stub, "ignore_term", startup_timeout=60).start()
    child = int(stub["out"].read_text())
    srv.stop(timeout=1.0)
    assert not process_group_alive(srv.pid)
    assert not _alive(child)
    assert srv.returncode is not None and srv.returncode < 0  # killed by a signal


def test_given_port_in_use_is_an_error_before_starting(stub: dict) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        srv = _server(stub, "ok", port=port)
        with pytest.raises(ServerError, match="already in use"):
            srv.start()
        assert srv.pid is None


def test_stub_pool_shares_a_server_until_the_last_release(stub: dict) -> None:
    pool = ServerPool()
    opts = {"python": stub["python"], "home": stub["home"], "device": "cpu",
            "env": {"STUB_MODE": "ok", "STUB_OUT": str(stub["out"])}}
    a = pool.acquire(stub["model"], **opts)
    b = pool.acquire(stub["model"], **opts)
    assert a is b and pool.running() == [a]
    pool.release(a)
    assert a.is_running()
    pool.release(b)
    assert not a.is_running() and not process_group_alive(a.pgid)
    assert pool.running() == []


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("vllm") is None, reason="vllm not installed")
def test_real_vllm_on_a_broken_folder_quotes_its_log(tmp_path: Path) -> None:
    model = tmp_path / "broken"
    model.mkdir()
    (model / "config.json").write_text('{"model_type": "no-such-architecture"}')
    srv = VLLMServer(model, home=tmp_path, startup_timeout=300, env={"OMP_NUM_THREADS": "1"})
    with pytest.raises(ServerError) as info:
        srv.start()
    assert "exited with code" in str(info.value)
    assert info.value.log_tail.strip()
    assert "no-such-architecture" in info.value.log_tail or "Error" in info.value.log_tail
    assert not process_group_alive(srv.pid)
    assert os.path.exists(info.value.log_path or "")


def test_stub_serve_model_cli_stops_cleanly_on_sigterm(stub: dict) -> None:
    """``judgeforge serve-model`` runs until SIGTERM, then leaves no process behind."""
    import signal
    import subprocess

    env = {**os.environ, "JUDGEFORGE_VLLM_PYTHON": stub["python"], "STUB_MODE": "ok",
           "STUB_OUT": str(stub["out"]), "JUDGEFORGE_HOME": str(stub["home"])}
    proc = subprocess.Popen(
        [sys.executable, "-m", "judgeforge.cli.main", "serve-model", str(stub["model"]),
         "--device", "cpu", "--served-model-name", "judge"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        line = proc.stdout.readline() if proc.stdout else ""
        assert "serving 'judge' at http://127.0.0.1:" in line, line
        child = int(stub["out"].read_text())
        server_pid = int(line.split("(pid ")[1].split(",")[0])
        assert _alive(child) and _alive(server_pid)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    assert not process_group_alive(server_pid)
    assert not _alive(child)
