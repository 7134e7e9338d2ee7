"""``run()``: the judge's model server plus the scoring API, started and stopped together.

1. The model (a model string read by :func:`judgeforge.models.spec.parse_model_spec`): an
   ``http(s)://`` URL is used as is (an :class:`OpenAIChatModel` client); a local Hugging Face
   folder (or ``default``/none: the prepared default model) gets a managed :class:`VLLMServer`
   on a free loopback port. A folder's judge card reaches the graders through ``card``.
2. The API: ``create_app`` on ``uvicorn.Server``, run programmatically.
3. SIGTERM or Ctrl-C: uvicorn stops taking connections and drains requests in flight (at most
   ``shutdown_timeout_s``), then the vLLM server's process group is stopped. Exit code 0.
   A managed vLLM server that dies while serving stops the API too (exit code 1).

A non-loopback ``host`` without an API key is allowed but warned about loudly.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from types import FrameType
from typing import Any

from judgeforge.errors import ConfigError, ServerError
from judgeforge.graders.serving.settings import ServiceSettings

__all__ = ["run", "serve_async", "open_model", "insecure_warning", "first_served_model"]

log = logging.getLogger(__name__)


def insecure_warning(settings: ServiceSettings) -> str | None:
    """The warning for a service reachable from other machines without an API key, if any."""
    if settings.loopback or settings.api_key:
        return None
    bar = "!" * 78
    return (f"{bar}\nWARNING: the scoring API listens on {settings.host}:{settings.port} with NO "
            "API KEY.\nAnyone who can reach this address can use the judge. Pass --api-key "
            "(or set JUDGEFORGE_API_KEY),\nor listen on 127.0.0.1.\n" + bar)


def first_served_model(base_url: str, api_key: str | None = None, timeout_s: float = 10.0) -> str:
    """The first model ``base_url/models`` lists (also checks that the server answers)."""
    import httpx

    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    url = base_url.rstrip("/") + "/models"
    try:
        resp = httpx.get(url, headers=headers, timeout=timeout_s, trust_env=False)
        resp.raise_for_status()
        return str(resp.json()["data"][0]["id"])
    except (httpx.HTTPError, ValueError, KeyError, IndexError, TypeError) as exc:
        raise ConfigError(f"cannot list the models of {url} ({type(exc).__name__}: {exc}); is "
                          "the model server up? (--model-name skips this check)") from None


@contextlib.contextmanager
def open_model(target: str | None, settings: ServiceSettings, *, model_name: str | None = None,
               model_api_key: str | None = None, server_kind: str = "auto",
               vllm_options: Mapping[str, Any] | None = None) -> Iterator[tuple[Any, Any]]:
    """``(model, vllm_server_or_None)``: an :class:`OpenAIChatModel` for ``target`` (URL, HF
    folder, or None for the default model); a managed vLLM server lives as long as the
    ``with`` block."""
    from judgeforge.models.openai_chat import OpenAIChatModel
    from judgeforge.models.spec import parse_model_spec

    common: dict[str, Any] = {"timeout": settings.request_timeout_s, "max_concurrency": None,
                              "api_key": model_api_key}
    spec = parse_model_spec(target, what="the served model")
    if spec.kind == "url":
        if vllm_options:
            raise ConfigError("vLLM options apply to a local checkpoint, not to a URL: "
                              f"{sorted(vllm_options)}")
        name = model_name or first_served_model(spec.target, model_api_key)
        yield OpenAIChatModel(model=name, base_url=spec.target,
                              server_kind=server_kind,  # type: ignore[arg-type]
                              **common), None
        return
    from judgeforge.models.vllm_server import VLLMServer

    if spec.kind == "default":
        from judgeforge.models.default_model import prepare_default_model

        path = prepare_default_model()
    else:
        path = Path(spec.target)
    server = VLLMServer(path, host="127.0.0.1", served_model_name=model_name,
                        **dict(vllm_options or {}))
    print(f"judgeforge serve: starting vLLM for {server.model_path} ...", file=sys.stderr,
          flush=True)
    with server:  # start() waits for /health; stop() ends its process group
        print(f"judgeforge serve: vLLM ready at {server.base_url} (log {server.log_path})",
              file=sys.stderr, flush=True)
        yield OpenAIChatModel(model=server.model_name, base_url=server.base_url,
                              server_kind="vllm", **common), server


async def _watch_model_server(vllm: Any, server: Any) -> None:
    """Stop the API if its managed vLLM server dies."""
    while not server.should_exit:
        if not vllm.is_running():
            print(f"judgeforge serve: the vLLM server exited (code {vllm.returncode}); stopping. "
                  f"Last log lines:\n{vllm.log_tail(20)}", file=sys.stderr, flush=True)
            server.died = True
            server.should_exit = True
            return
        await asyncio.sleep(1.0)


async def serve_async(settings: ServiceSettings, model: Any, *, vllm: Any = None,
                      model_api_key: str | None = None, shutdown_timeout_s: float = 30.0,
                      access_log: bool = False, card: Any = None) -> int:
    """Serve the API for ``model`` until uvicorn is told to stop (or ``vllm``, a managed
    server, dies: exit code 1). Returns the exit code."""
    import uvicorn

    from judgeforge.graders.serving.app import create_app
    from judgeforge.graders.serving.limits import uvicorn_options

    app = create_app(settings, model, own_model=True, model_api_key=model_api_key, card=card)
    config = uvicorn.Config(app, host=settings.host, port=settings.port, lifespan="on",
                            access_log=access_log, server_header=False, log_level="info",
                            timeout_graceful_shutdown=max(1, int(shutdown_timeout_s)),
                            **uvicorn_options(settings))
    server = uvicorn.Server(config)
    server.died = False  # type: ignore[attr-defined]
    watchdog = asyncio.create_task(_watch_model_server(vllm, server)) if vllm else None
    announce = asyncio.create_task(_announce(server, settings))
    try:
        await server.serve()
    finally:
        if watchdog is not None:
            watchdog.cancel()
        announce.cancel()
    if not server.started and not server.should_exit:
        raise ServerError(f"the scoring API could not listen on {settings.host}:{settings.port}")
    return 1 if getattr(server, "died", False) else 0


async def _announce(server: Any, settings: ServiceSettings) -> None:
    while not server.started:
        await asyncio.sleep(0.05)
    port = settings.port
    with contextlib.suppress(AttributeError, IndexError, OSError):
        port = server.servers[0].sockets[0].getsockname()[1]
    host = f"[{settings.host}]" if ":" in settings.host else settings.host
    auth = " (API key required)" if settings.api_key else ""
    print(f"judgeforge serve: scoring API at http://{host}:{port}{auth}; docs at /docs; "
          "Ctrl-C or SIGTERM to stop", flush=True)


class _Stop(KeyboardInterrupt):
    """Raised by the SIGTERM handler while the model server starts."""


def _raise_stop(signum: int, frame: FrameType | None) -> None:
    raise _Stop


def _note(signum: int, frame: FrameType | None) -> None:
    """Handler after start-up: uvicorn owns SIGINT/SIGTERM while serving and re-raises them
    here when it has finished; nothing is left to do then."""


def run(settings: ServiceSettings, target: str | None, *, model_name: str | None = None,
        model_api_key: str | None = None, server_kind: str = "auto",
        vllm_options: Mapping[str, Any] | None = None, shutdown_timeout_s: float = 30.0,
        access_log: bool = False, card: Any = None) -> int:
    """Start the model (server) and the API; block until Ctrl-C/SIGTERM; stop both. Exit code.

    ``card``: the served judge's :class:`~judgeforge.card.JudgeCard`, if any."""
    warning = insecure_warning(settings)
    if warning:
        log.warning("scoring API without an API key on %s", settings.host)
        print(warning, file=sys.stderr, flush=True)
    old = {s: signal.signal(s, _raise_stop) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        with open_model(target, settings, model_name=model_name, model_api_key=model_api_key,
                        server_kind=server_kind, vllm_options=vllm_options) as (model, vllm):
            for sig in old:  # from here on uvicorn handles the signals
                signal.signal(sig, _note)
            code = asyncio.run(serve_async(settings, model, vllm=vllm,
                                           model_api_key=model_api_key,
                                           shutdown_timeout_s=shutdown_timeout_s,
                                           access_log=access_log, card=card))
            for sig in old:  # a second Ctrl-C must not interrupt stopping vLLM
                signal.signal(sig, signal.SIG_IGN)
            if vllm is not None:
                print("judgeforge serve: stopping the vLLM server ...", file=sys.stderr,
                      flush=True)
        print("judgeforge serve: stopped", file=sys.stderr, flush=True)
        return code
    except _Stop:
        print("judgeforge serve: interrupted during start-up; stopped", file=sys.stderr,
              flush=True)
        return 0
    finally:
        for sig, handler in old.items():
            signal.signal(sig, handler)
