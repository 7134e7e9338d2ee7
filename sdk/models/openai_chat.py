"""OpenAIChatModel: a :class:`ChatModel` for any OpenAI-compatible server, or a local checkpoint.

Three ways to point it at a model::

    OpenAIChatModel()                                         # the default SmolLM2, managed vLLM
    OpenAIChatModel(model="./checkpoints/step_100", is_local=True)   # managed vLLM for a folder
    OpenAIChatModel(model="judge", base_url="http://host:8000/v1")   # an existing server

For a local folder a :class:`~judgeforge.models.vllm_server.VLLMServer` is started on first use
(or an already running one for the same folder and options is reused) and stopped by
:meth:`aclose` / ``async with``. Calls are retried (see :mod:`judgeforge.models.retry`), limited
to ``max_concurrency`` in flight per model, and fail with the project's errors.

``server_kind`` says what the server supports: ``"vllm"`` accepts ``prefill``
(``continue_final_message``) and ``regex`` (``structured_outputs``); ``"openai"`` (e.g.
api.openai.com) rejects them with :class:`ConfigError` instead of sending them. ``"auto"``
means vllm for managed servers, openai for api.openai.com, and otherwise asks the server's
``/version`` route (vLLM has it) the first time a vLLM-only option is used.

With ``prefill`` the returned text is the continuation only (the prefill is *not* included);
graders prepend it themselves.

Deep copies share the client, the concurrency limit and the managed server (OpenJudge's runner
deep-copies graders per row); only the original instance's :meth:`aclose` releases them.
"""

from __future__ import annotations

import asyncio
import copy
import logging
import os
import threading
import time
import weakref
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlparse

import openai
from tenacity import AsyncRetrying, retry_if_exception

from judgeforge.errors import ConfigError, ModelError, ModelResponseError
from judgeforge.models.base import (
    ChatChoice,
    ChatMessage,
    ChatModel,
    ChatOptions,
    ChatResponse,
    TokenLogprob,
    Usage,
)
from judgeforge.models.retry import RetryPolicy, classify, current_deadline, to_model_error
from judgeforge.models.spec import parse_model_spec
from judgeforge.models.vllm_server import SERVER_POOL, VLLMServer, _http_ok
from judgeforge.parsing import checked_logprob

__all__ = ["OpenAIChatModel", "ServerKind", "CAPABILITIES"]

log = logging.getLogger(__name__)

ServerKind = Literal["auto", "vllm", "openai"]
_COMMON = frozenset({"n", "seed", "stop", "logprobs", "top_logprobs"})
CAPABILITIES: dict[str, frozenset[str]] = {
    "vllm": _COMMON | {"prefill", "regex"},
    "openai": _COMMON,
}
_OPENAI_MAX_TOP_LOGPROBS = 20


class _Shared:
    """State shared by a model and its deep copies: per-loop clients and semaphores, the server."""

    def __init__(self, base_url: str | None, api_key: str | None, kind: ServerKind) -> None:
        self.base_url = base_url
        self.api_key = api_key
        self.kind: ServerKind = kind
        self.clients: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()
        self.semaphores: weakref.WeakKeyDictionary[Any, asyncio.Semaphore] = (
            weakref.WeakKeyDictionary())
        self.start_lock = threading.Lock()
        self.server: VLLMServer | None = None
        self.resolved_model: str | None = None


class OpenAIChatModel(ChatModel):
    """An async chat model over ``openai.AsyncOpenAI`` with retries, limits and managed vLLM.

    Args:
        model: without ``base_url``, a model string read by
            :func:`judgeforge.models.spec.parse_model_spec` like every command's ``--model``
            (a folder: a local checkpoint; ``"default"`` or None: the default model, prepared
            and served locally; an ``http(s)://`` URL: that server's first model; ``NAME=...``
            labels it) or else a model name on api.openai.com; with ``base_url``, the served
            model name (None: the server's first listed model).
        base_url: an OpenAI-compatible ``.../v1`` URL. None: a managed server (local) or
            api.openai.com.
        api_key: optional for local/self-hosted servers (``OPENAI_API_KEY`` or ``"EMPTY"``).
        is_local: ``model`` is a local HF folder to serve with a managed vLLM server (also assumed
            when ``model`` is an existing folder and no ``base_url`` is given).
        server_kind: ``"auto"``, ``"vllm"`` or ``"openai"`` (what options the server supports).
        timeout: seconds per attempt (one HTTP request); the call may take up to
            ``(max_retries + 1)`` times that plus backoff.
        max_retries, retry_initial_wait, retry_max_wait: see :class:`RetryPolicy`.
        max_concurrency: requests in flight at once through this model and its copies (per event
            loop); None for no limit.
        server_options: keyword arguments for :class:`VLLMServer` when the server is managed
            (``kv_cache_gib``, ``max_model_len``, ``enforce_eager``, ``served_model_name``, ...).
        extra_body: extra request fields sent with every call (e.g. ``{"top_k": 20}`` for vLLM).
        name: the model's display name (default: the served model name).
    """

    def __init__(
        self,
        model: str | os.PathLike[str] | None = None,
        base_url: str | None = None,
        api_key: str | None = None,
        is_local: bool = False,
        *,
        server_kind: ServerKind = "auto",
        timeout: float = 120.0,
        max_retries: int = 3,
        retry_initial_wait: float = 0.5,
        retry_max_wait: float = 30.0,
        max_concurrency: int | None = 16,
        server_options: Mapping[str, Any] | None = None,
        extra_body: Mapping[str, Any] | None = None,
        name: str | None = None,
    ) -> None:
        if server_kind not in ("auto", "vllm", "openai"):
            raise ConfigError("server_kind must be 'auto', 'vllm' or 'openai', not "
                              f"{server_kind!r}")
        if timeout is not None and timeout <= 0:
            raise ConfigError("timeout must be positive")
        if max_concurrency is not None and max_concurrency < 1:
            raise ConfigError("max_concurrency must be >= 1 or None")
        self.retry = RetryPolicy(max_retries=max_retries, initial_wait=retry_initial_wait,
                                 max_wait=retry_max_wait)
        self.timeout = timeout
        self.max_concurrency = max_concurrency
        self.extra_body = dict(extra_body or {})
        self.server_options = dict(server_options or {})

        self.model_path: Path | None = None
        self.uses_default_model = False
        if base_url is None and model is None:
            self.uses_default_model, is_local = True, True
        elif base_url is None and not is_local:  # which judge (judgeforge.models.spec)
            spec = parse_model_spec(model, names=True, what="model")
            name = name or spec.label
            if spec.kind == "default":
                model, self.uses_default_model, is_local = None, True, True
            elif spec.kind == "url":
                model, base_url = None, spec.target
            elif spec.kind == "path":
                model, is_local = spec.target, True
        self.is_local = bool(is_local)
        self.managed = self.is_local and base_url is None

        if self.managed:
            if model is not None:
                path = Path(model).expanduser()
                if not (path / "config.json").is_file():
                    raise ConfigError(
                        f"is_local=True needs a Hugging Face model folder; {path} has no "
                        "config.json (merge verl/FSDP checkpoints to an HF folder first)")
                self.model_path = path.resolve()
            served = self.server_options.get("served_model_name")
            model_name = served or (self.model_path.name if self.model_path else None)
            kind: ServerKind = "vllm" if server_kind == "auto" else server_kind
            key: str | None = api_key or "EMPTY"
        else:
            if self.server_options:
                raise ConfigError("server_options apply only to a managed local server "
                                  "(is_local=True without base_url)")
            model_name = None if model is None else str(model)
            if base_url is None:
                if model is None:
                    raise ConfigError("name a model for api.openai.com")
                key = api_key or os.environ.get("OPENAI_API_KEY")
                if not key:
                    raise ConfigError("api.openai.com needs an API key: pass api_key= or set "
                                      "OPENAI_API_KEY (or give base_url for a local server)")
                kind = "openai" if server_kind == "auto" else server_kind
            else:
                key = api_key or os.environ.get("OPENAI_API_KEY") or "EMPTY"
                host = urlparse(base_url).hostname or ""
                kind = "openai" if (server_kind == "auto" and host.endswith("openai.com")) \
                    else server_kind
        self.model = model_name
        self.name = name or model_name or "default-model"
        self._default_name = not (name or model_name)
        self._shared = _Shared(base_url.rstrip("/") if base_url else None, key, kind)
        self._owner = True

    # -- copying -----------------------------------------------------------------------------
    def __deepcopy__(self, memo: dict[int, Any]) -> OpenAIChatModel:
        """A copy that shares the client, limit and server (only the original owns them)."""
        new = copy.copy(self)
        new._owner = False
        memo[id(self)] = new
        return new

    def __copy__(self) -> OpenAIChatModel:
        new = object.__new__(type(self))
        new.__dict__.update(self.__dict__)
        return new

    # -- info --------------------------------------------------------------------------------
    @property
    def base_url(self) -> str | None:
        """The server's ``.../v1`` URL (for a managed server: known once it started)."""
        return self._shared.base_url

    @property
    def server_kind(self) -> ServerKind:
        """``"vllm"``, ``"openai"``, or ``"auto"`` while not yet probed."""
        return self._shared.kind

    @property
    def capabilities(self) -> frozenset[str]:
        """Optional features this server accepts (before probing, the OpenAI common set)."""
        return CAPABILITIES.get(self._shared.kind, _COMMON)

    @property
    def server(self) -> VLLMServer | None:
        """The managed vLLM server, if one is running for this model."""
        return self._shared.server

    def __repr__(self) -> str:
        where = self.base_url or ("managed vLLM" if self.managed else "api.openai.com")
        return f"OpenAIChatModel(model={self.model!r}, server={where!r}, kind={self.server_kind})"

    # -- lifecycle ---------------------------------------------------------------------------
    def _start_managed_sync(self) -> None:
        sh = self._shared
        with sh.start_lock:
            if sh.server is not None and sh.server.is_running():
                return
            path = self.model_path
            if path is None:
                from judgeforge.models.default_model import prepare_default_model

                path = prepare_default_model()
            sh.server = SERVER_POOL.acquire(path, **self.server_options)
            sh.base_url = sh.server.base_url
            sh.resolved_model = sh.server.model_name

    async def start(self) -> OpenAIChatModel:
        """Start (or reuse) the managed server now; a no-op for remote servers."""
        if self.managed:
            sh = self._shared
            if sh.server is None or not sh.server.is_running():
                await asyncio.to_thread(self._start_managed_sync)
        return self

    async def aclose(self) -> None:
        """Close this loop's client and release the managed server (original instance only)."""
        if not self._owner:
            return
        sh = self._shared
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        client = sh.clients.pop(loop, None) if loop is not None else None
        sh.clients.clear()
        sh.semaphores.clear()
        if client is not None:
            await client.close()
        if sh.server is not None:
            server, sh.server = sh.server, None
            sh.base_url = None  # a later call starts (or reuses) a server again
            await asyncio.to_thread(SERVER_POOL.release, server)

    # -- plumbing ----------------------------------------------------------------------------
    def _client(self) -> Any:
        sh = self._shared
        loop = asyncio.get_running_loop()
        client = sh.clients.get(loop)
        if client is None:
            client = openai.AsyncOpenAI(base_url=sh.base_url, api_key=sh.api_key, max_retries=0,
                                        timeout=self.timeout)
            sh.clients[loop] = client
        return client

    def _semaphore(self) -> asyncio.Semaphore | None:
        if self.max_concurrency is None:
            return None
        sh = self._shared
        loop = asyncio.get_running_loop()
        sem = sh.semaphores.get(loop)
        if sem is None:
            sem = sh.semaphores[loop] = asyncio.Semaphore(self.max_concurrency)
        return sem

    async def _resolve_kind(self) -> ServerKind:
        sh = self._shared
        if sh.kind == "auto":
            root = (sh.base_url or "").rstrip("/")
            root = root[:-3] if root.endswith("/v1") else root
            is_vllm = await asyncio.to_thread(_probe_vllm, root)
            sh.kind = "vllm" if is_vllm else "openai"
            log.info("server at %s looks like %s", sh.base_url, sh.kind)
        return sh.kind

    async def _model_name(self) -> str:
        sh = self._shared
        if self.model is not None and not self.managed:
            return self.model
        if sh.resolved_model is None:  # base_url without a model: the server's first model
            listing = await self._call(lambda c, t: c.models.list(timeout=t), self.timeout)
            if not listing.data:
                raise ModelError("the server lists no models", server=sh.base_url)
            sh.resolved_model = listing.data[0].id
        if self._default_name:  # graders report the model by name: use the real one
            self.name = sh.resolved_model
        return sh.resolved_model

    async def _call(self, fn: Any, timeout: float | None) -> Any:
        """Run ``fn(client, timeout)`` with retries, the concurrency limit and error mapping.

        ``timeout`` bounds each attempt. Inside :func:`~judgeforge.models.retry.call_deadline`
        (the scoring endpoint's request timeout) no backoff sleeps past the deadline: the last
        real failure (a 500, a reset connection) is raised instead of being cut off by the
        caller's timeout and reported as a timeout.
        """
        sh = self._shared
        policy = self.retry
        attempts = 0
        deadline = current_deadline()

        def out_of_time(state: Any) -> bool:
            return deadline is not None and (
                time.monotonic() + state.upcoming_sleep >= deadline - 0.05)

        def stop(state: Any) -> bool:  # stop_after_attempt(max_attempts) | out_of_time
            return state.attempt_number >= policy.max_attempts or out_of_time(state)

        def wait(state: Any) -> float:
            exc = state.outcome.exception() if state.outcome else None
            return policy.wait_for(classify(exc), state.attempt_number) if exc else 0.0

        def before_sleep(state: Any) -> None:
            exc = state.outcome.exception() if state.outcome else None
            delay = state.next_action.sleep if state.next_action else 0.0
            log.info("model call to %s failed on attempt %d (%s); retrying in %.2fs",
                     sh.base_url, state.attempt_number, classify(exc).message if exc else "?",
                     delay)

        retrying = AsyncRetrying(
            stop=stop,
            wait=wait,
            before_sleep=before_sleep,
            retry=retry_if_exception(lambda e: classify(e).retryable),
            reraise=True,
        )
        try:
            async for attempt in retrying:
                with attempt:
                    attempts += 1
                    sem = self._semaphore()
                    if sem is None:
                        return await _with_timeout(fn(self._client(), timeout), timeout)
                    async with sem:
                        return await _with_timeout(fn(self._client(), timeout), timeout)
        except (TimeoutError, openai.OpenAIError, OSError, AttributeError) as exc:
            f = classify(exc)
            if isinstance(exc, AttributeError) and f.kind != "connection":
                raise  # a bug in the calling code, not a socket closed under the request
            if attempts > 1 or f.retryable:
                log.warning("model call to %s failed after %d attempt(s): %s",
                            sh.base_url, attempts, f.message)
            raise to_model_error(exc, server=sh.base_url or "https://api.openai.com/v1",
                                 attempts=attempts, timeout=timeout) from exc
        raise AssertionError("unreachable")  # pragma: no cover

    # -- requests ----------------------------------------------------------------------------
    def request_params(self, messages: Sequence[ChatMessage], options: ChatOptions = ChatOptions(),
                       *, model: str | None = None) -> dict[str, Any]:
        """The ``chat.completions.create`` keywords :meth:`achat` sends for these arguments.

        ``prefill`` becomes a final assistant message with ``continue_final_message``, ``regex``
        vLLM's ``structured_outputs`` (both added to ``extra_body``); ``top_logprobs`` implies
        ``logprobs``. ``timeout`` is not among them (it goes to the client call), and options are
        not checked against the server here (``achat`` does that). ``model`` is the served name
        to request (default: the one known so far, which ``achat`` resolves first).
        """
        if model is None:
            model = self.model if self.model is not None and not self.managed \
                else self._shared.resolved_model
            if model is None:
                raise ConfigError("the served model name is not known yet: start the model, "
                                  "call achat once, or pass model=")
        o = options
        msgs = [dict(m) for m in messages]
        extra: dict[str, Any] = dict(self.extra_body)
        if o.prefill is not None:
            msgs.append({"role": "assistant", "content": o.prefill})
            extra.update({"continue_final_message": True, "add_generation_prompt": False})
        if o.regex is not None:
            extra["structured_outputs"] = {"regex": o.regex}

        params: dict[str, Any] = {"model": model, "messages": msgs}
        if o.n != 1:
            params["n"] = o.n
        for key, val in (("temperature", o.temperature), ("max_tokens", o.max_tokens),
                         ("seed", o.seed), ("stop", o.stop)):
            if val is not None:
                params[key] = val
        if o.logprobs or o.top_logprobs is not None:
            params["logprobs"] = True
            if o.top_logprobs is not None:
                params["top_logprobs"] = o.top_logprobs
        if extra:
            params["extra_body"] = extra
        return params

    # -- the contract ------------------------------------------------------------------------
    async def _generate(self, messages: Sequence[ChatMessage],
                        options: ChatOptions) -> ChatResponse:
        """Generate ``n`` completions. With ``prefill`` the text is the continuation only."""
        o = options
        await self.start()
        if o.prefill is not None or o.regex is not None:
            kind = await self._resolve_kind()
            for opt, val in (("prefill", o.prefill), ("regex", o.regex)):
                if val is not None and opt not in CAPABILITIES[kind]:
                    raise ConfigError(
                        f"{opt}= is not supported by this server (server_kind={kind!r}, "
                        f"{self.base_url or 'api.openai.com'}); use a vLLM server or "
                        "server_kind='vllm'")
        if o.top_logprobs is not None:
            if o.top_logprobs < 0:
                raise ConfigError("top_logprobs must be >= 0")
            if self.server_kind == "openai" and o.top_logprobs > _OPENAI_MAX_TOP_LOGPROBS:
                raise ConfigError(f"top_logprobs must be <= {_OPENAI_MAX_TOP_LOGPROBS}")

        params = self.request_params(messages, o, model=await self._model_name())
        call_timeout = self.timeout if o.timeout is None else o.timeout

        t0 = time.perf_counter()
        resp = await self._call(
            lambda c, t: c.chat.completions.create(**params, timeout=t), call_timeout)
        latency = time.perf_counter() - t0
        return _to_response(resp, latency)


async def _with_timeout(coro: Any, timeout: float | None) -> Any:
    if timeout is None:
        return await coro
    async with asyncio.timeout(timeout):
        return await coro


def _probe_vllm(root: str) -> bool:
    """True if ``root/version`` answers (vLLM's route; OpenAI has none)."""
    return bool(root) and _http_ok(root + "/version", timeout=5.0)


def _to_response(resp: Any, latency: float) -> ChatResponse:
    """The reply as a :class:`ChatResponse`; a reply without choices, with a choice of the
    wrong shape or with an unusable logprob is a :class:`ModelResponseError` (bad upstream)."""
    try:
        return _convert(resp, latency)
    except ModelResponseError:
        raise
    except (AttributeError, TypeError, ValueError, KeyError) as exc:
        raise ModelResponseError(f"malformed reply from the model server: "
                                 f"{type(exc).__name__}: {exc}") from exc


def _convert(resp: Any, latency: float) -> ChatResponse:
    choices = []
    if not resp.choices:
        raise ModelResponseError("the model server's reply has no choices")
    for ch in sorted(resp.choices, key=lambda c: c.index):
        lps = None
        if ch.logprobs is not None and ch.logprobs.content is not None:
            lps = []
            for tok in ch.logprobs.content:
                top: dict[str, float] = {}
                for alt in tok.top_logprobs or []:
                    lp = checked_logprob(alt.logprob, alt.token)
                    top[alt.token] = max(lp, top.get(alt.token, float("-inf")))
                lps.append(TokenLogprob(token=tok.token,
                                        logprob=checked_logprob(tok.logprob, tok.token), top=top))
        if ch.message is None:
            raise ModelResponseError(f"choice {ch.index} of the reply has no message")
        text = ch.message.content
        if text is not None and not isinstance(text, str):
            raise ModelResponseError(f"the reply's content is a {type(text).__name__}, not text")
        choices.append(ChatChoice(text=text or "", finish_reason=ch.finish_reason, logprobs=lps))
    u = resp.usage
    usage = Usage(prompt_tokens=getattr(u, "prompt_tokens", 0) or 0,
                  completion_tokens=getattr(u, "completion_tokens", 0) or 0) if u else Usage()
    return ChatResponse(choices=choices, usage=usage, latency_s=latency, model=resp.model or "")
