"""Retry policy for model calls: what is retried, how long to wait, and the final error.

Retried: connection failures, timeouts, HTTP 408, 429 and 5xx (honouring ``retry-after`` /
``retry-after-ms``, capped at ``max_wait``). Not retried: every other 4xx and anything else.
After the last attempt the failure becomes one of the project's errors
(:mod:`judgeforge.errors`), naming the server, the cause and the number of attempts.

The classification duck-types exceptions (``status_code``/``response`` attributes, the openai and
httpx class names), so this module imports neither library.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import email.utils
import random
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal

from judgeforge.errors import (
    ConfigError,
    ModelConnectionError,
    ModelError,
    ModelRateLimitError,
    ModelStatusError,
    ModelTimeoutError,
)

__all__ = ["RetryPolicy", "Failure", "classify", "retry_after_seconds", "to_model_error",
           "call_deadline", "current_deadline"]

_DEADLINE: contextvars.ContextVar[float | None] = contextvars.ContextVar(
    "judgeforge_call_deadline", default=None)


@contextlib.contextmanager
def call_deadline(seconds: float | None) -> Iterator[None]:
    """Model calls made inside (tasks started inside too) do not sleep before a retry past
    ``seconds`` from now: the last real failure is raised instead of letting an outer timeout
    hide it. Nested deadlines keep the earlier one."""
    if seconds is None:
        yield
        return
    new = time.monotonic() + seconds
    old = _DEADLINE.get()
    token = _DEADLINE.set(new if old is None else min(old, new))
    try:
        yield
    finally:
        _DEADLINE.reset(token)


def current_deadline() -> float | None:
    """The ``time.monotonic()`` deadline of the enclosing :func:`call_deadline`, if any."""
    return _DEADLINE.get()

FailureKind = Literal["connection", "timeout", "status", "other"]
RETRY_STATUSES = frozenset({408, 429})


@dataclass(frozen=True)
class RetryPolicy:
    """How model calls are retried.

    ``max_retries`` extra attempts after the first; exponential backoff ``initial_wait *
    multiplier**k`` plus up to ``jitter`` (a fraction) random extra, capped at ``max_wait``; a
    server's ``retry-after`` is used instead when present (also capped at ``max_wait``).
    """

    max_retries: int = 3
    initial_wait: float = 0.5
    multiplier: float = 2.0
    max_wait: float = 30.0
    jitter: float = 0.25

    def __post_init__(self) -> None:
        if self.max_retries < 0:
            raise ConfigError("max_retries must be >= 0")
        if self.initial_wait < 0 or self.max_wait < 0 or self.multiplier < 1 or self.jitter < 0:
            raise ConfigError("retry waits must be >= 0 and multiplier >= 1")

    @property
    def max_attempts(self) -> int:
        return self.max_retries + 1

    def backoff(self, attempt: int) -> float:
        """Seconds to wait after failed attempt ``attempt`` (1-based), without retry-after."""
        base = min(self.max_wait, self.initial_wait * self.multiplier ** max(0, attempt - 1))
        return min(self.max_wait, base * (1 + random.uniform(0, self.jitter)))

    def wait_for(self, failure: Failure, attempt: int) -> float:
        if failure.retry_after is not None:
            return max(0.0, min(self.max_wait, failure.retry_after))
        return self.backoff(attempt)


@dataclass(frozen=True)
class Failure:
    """A classified exception: its kind, HTTP status, retry-after and a short description."""

    kind: FailureKind
    retryable: bool
    message: str
    status_code: int | None = None
    retry_after: float | None = None


def _headers(exc: BaseException) -> Any:
    response = getattr(exc, "response", None)
    return getattr(response, "headers", None)


def retry_after_seconds(headers: Any) -> float | None:
    """Parse ``retry-after-ms`` or ``retry-after`` (seconds or an HTTP date); None if absent."""
    if not headers:
        return None
    try:
        ms = headers.get("retry-after-ms")
        if ms is not None:
            return max(0.0, float(ms) / 1000.0)
    except (TypeError, ValueError):
        pass
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except (TypeError, ValueError):
        pass
    try:
        when = email.utils.parsedate_to_datetime(str(value))
    except (TypeError, ValueError, IndexError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _body_message(exc: BaseException) -> str:
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        err = body.get("error", body)
        if isinstance(err, dict) and err.get("message"):
            return str(err["message"])
        if isinstance(err, str):
            return err
        if body.get("message"):
            return str(body["message"])
    msg = getattr(exc, "message", None) or str(exc)
    return str(msg)


def _cause_text(exc: BaseException) -> str:
    inner = exc.__cause__ or exc.__context__
    text = f"{type(exc).__name__}: {exc}".rstrip(": ")
    if inner is not None and str(inner) and str(inner) not in text:
        text += f" (caused by {type(inner).__name__}: {inner})"
    return text


#: Packages of the HTTP stack under the openai client. A socket closed under a request in flight
#: can surface from them as a plain AttributeError (anyio: "'NoneType' object has no attribute
#: 'getpeername'") that the openai client does not wrap.
_TRANSPORT_PACKAGES = ("httpcore", "httpx", "anyio", "h11", "sniffio")


def _raised_in_transport(exc: BaseException) -> bool:
    """Whether ``exc`` was raised inside the HTTP transport (its innermost frame is in one of
    :data:`_TRANSPORT_PACKAGES`), not in the caller's code."""
    tb = exc.__traceback__
    if tb is None:
        return False
    while tb.tb_next is not None:
        tb = tb.tb_next
    parts = tb.tb_frame.f_code.co_filename.replace("\\", "/").split("/")
    return any(pkg in parts for pkg in _TRANSPORT_PACKAGES)


def classify(exc: BaseException) -> Failure:
    """Decide whether ``exc`` (from openai, httpx or asyncio) is worth retrying."""
    names = {cls.__name__ for cls in type(exc).__mro__}
    status = getattr(exc, "status_code", None)
    if status is None and "HTTPStatusError" in names:  # httpx
        status = getattr(getattr(exc, "response", None), "status_code", None)
    if isinstance(status, int) and hasattr(exc, "response"):
        retry_after = retry_after_seconds(_headers(exc))
        retryable = status in RETRY_STATUSES or status >= 500
        return Failure("status", retryable, _body_message(exc), status, retry_after)
    if isinstance(exc, (asyncio.TimeoutError, TimeoutError)) or names & {
            "APITimeoutError", "TimeoutException"}:
        return Failure("timeout", True, _cause_text(exc))
    if isinstance(exc, ConnectionError) or names & {"APIConnectionError", "TransportError"} or (
            isinstance(exc, AttributeError) and _raised_in_transport(exc)):
        return Failure("connection", True, _cause_text(exc))
    return Failure("other", False, _cause_text(exc))


def to_model_error(exc: BaseException, *, server: str | None, attempts: int,
                   timeout: float | None = None) -> ModelError:
    """The project's error for a final failure ``exc`` (callers ``raise ... from exc``)."""
    f = classify(exc)
    kw: dict[str, Any] = {"server": server, "attempts": attempts, "cause": exc}
    if f.kind == "status" and f.status_code is not None:
        cls = ModelRateLimitError if f.status_code == 429 else ModelStatusError
        return cls(f.message, status_code=f.status_code, **kw)
    if f.kind == "timeout":
        limit = f" (limit {timeout:g}s)" if timeout else ""
        return ModelTimeoutError(f"the model call timed out{limit}: {f.message}", **kw)
    if f.kind == "connection":
        return ModelConnectionError(f"cannot reach the model server: {f.message}", **kw)
    return ModelError(f"the model call failed: {f.message}", **kw)
