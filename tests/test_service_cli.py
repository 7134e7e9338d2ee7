"""``judgeforge serve`` as a subprocess against the session's real vLLM server."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from judgeforge.graders.serving.server import insecure_warning
from judgeforge.graders.serving.settings import ServiceSettings
from tests.service_support import free_port, port_open

# Subprocesses run outside the repository root: a stale judgeforge.egg-info left there by a
# wheel build would shadow the installed entry points (and hide `serve`).
JUDGEFORGE = [sys.executable, "-m", "judgeforge.cli.main"]
GUARD = 180.0


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("JUDGEFORGE_API_KEY", None)
    env["PYTHONUNBUFFERED"] = "1"
    return env


def _wait_healthy(url: str, proc: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + GUARD
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"judgeforge serve exited with {proc.returncode}:\n"
                                 f"{proc.stdout.read() if proc.stdout else ''}")
        try:
            if httpx.get(url + "/healthz", timeout=5, trust_env=False).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise AssertionError("judgeforge serve did not become healthy")


@pytest.mark.vllm
@pytest.mark.slow
@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT], ids=["TERM", "INT"])
def test_serve_scores_over_http_and_stops_cleanly_on_a_signal(vllm_server: Any, tmp_path: Path,
                                                              stop_signal: int) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen(
        [*JUDGEFORGE, "serve", vllm_server.base_url, "--port", str(port), "--api-key", "cli-key",
         "--grader", "helpfulness", "--grader", "relevance", "--request-timeout-s", "300"],
        cwd=tmp_path, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        _wait_healthy(url, proc)
        resp = httpx.post(url + "/v1/score", timeout=GUARD, trust_env=False,
                          headers={"Authorization": "Bearer cli-key"},
                          json={"query": "What is 2+2?", "response": "4",
                                "dimension": "relevance"})
        assert resp.status_code == 200, resp.text
        assert 0 <= resp.json()["score"] <= 4
        assert resp.json()["model"] == vllm_server.model_name  # resolved from /v1/models
        assert httpx.post(url + "/v1/score", json={}, trust_env=False).status_code == 401
        proc.send_signal(stop_signal)
        out, _ = proc.communicate(timeout=GUARD)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, out
    assert f"scoring API at {url} (API key required)" in out
    assert "judgeforge serve: stopped" in out
    assert not port_open(port)
    assert vllm_server.is_running()  # a server given by URL is not ours to stop


def test_serve_rejects_invalid_options_before_starting_anything(tmp_path: Path) -> None:
    out = subprocess.run([*JUDGEFORGE, "serve", "http://127.0.0.1:9/v1", "--max-batch", "0"],
                         cwd=tmp_path, env=_env(), capture_output=True, text=True, timeout=GUARD)
    assert out.returncode == 1
    assert "--max-batch" in out.stderr and "greater than or equal to 1" in out.stderr


def test_serve_rejects_a_target_that_is_neither_url_nor_folder(tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    out = subprocess.run([*JUDGEFORGE, "serve", str(missing), "--port", str(free_port())],
                         cwd=tmp_path, env=_env(), capture_output=True, text=True, timeout=GUARD)
    assert out.returncode == 1
    assert "neither a URL (http...), 'default', nor a model folder" in out.stderr


def test_non_loopback_without_key_is_warned_about_loudly() -> None:
    assert insecure_warning(ServiceSettings()) is None
    assert insecure_warning(ServiceSettings(host="::1")) is None
    assert insecure_warning(ServiceSettings(host="0.0.0.0", api_key="k")) is None
    warning = insecure_warning(ServiceSettings(host="0.0.0.0"))
    assert warning is not None and "NO API KEY" in warning and "--api-key" in warning


def test_serve_help_documents_every_option(tmp_path: Path) -> None:
    out = subprocess.run([*JUDGEFORGE, "serve", "--help"], cwd=tmp_path, env=_env(),
                         capture_output=True, text=True, timeout=GUARD)
    assert out.returncode == 0
    for flag in ("--grader", "--host", "--port", "--api-key", "--max-body-bytes", "--max-batch",
                 "--max-text-chars", "--max-concurrency", "--queue-timeout-s",
                 "--request-timeout-s", "--mode"):
        assert flag in out.stdout


def test_graders_package_and_cli_plugin_do_not_import_fastapi_or_torch(tmp_path: Path) -> None:
    probe = ("import sys, judgeforge.graders, judgeforge.graders.serving.cli_serve, "
             "judgeforge.graders.serving, judgeforge.graders.serving.settings\n"
             "print(sorted(m for m in ('fastapi', 'uvicorn', 'starlette', 'torch', 'vllm') "
             "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, capture_output=True,
                         text=True, timeout=GUARD)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_serve_fails_fast_when_the_model_server_url_does_not_answer(tmp_path: Path) -> None:
    closed = f"http://127.0.0.1:{free_port()}/v1"
    out = subprocess.run([*JUDGEFORGE, "serve", closed, "--port", str(free_port())],
                         cwd=tmp_path, env=_env(), capture_output=True, text=True, timeout=GUARD)
    assert out.returncode == 1
    assert "cannot list the models" in out.stderr and "--model-name" in out.stderr


def test_scale_option_sets_the_offered_graders_scale() -> None:
    from judgeforge.cli.main import build_parser
    from judgeforge.graders.serving.cli_serve import settings_from_args

    args = build_parser().parse_args(["serve", "--grader", "quality", "--scale", "quality=1-5"])
    settings = settings_from_args(args)
    assert settings.scale_of("quality").max == 5 and settings.scale_of("other").max == 4
    bad = build_parser().parse_args(["serve", "--grader", "quality", "--scale", "quality:1-5"])
    with pytest.raises(Exception, match="NAME=MIN-MAX"):
        settings_from_args(bad)
    assert settings.graders == ("quality",)  # the --grader option reached the settings
