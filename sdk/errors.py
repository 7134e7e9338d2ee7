"""judgeforge's exception hierarchy (one place, modelled on openai-python's).

Everything judgeforge raises on purpose derives from :class:`JudgeforgeError`, so callers can
catch the project's errors without catching programming bugs. Each also derives from the builtin
it refines (``DataError`` and ``ConfigError`` are ValueErrors, ``UsageError`` a TypeError), so
``except ValueError`` keeps working. Validators of pydantic models raise plain ValueError, as
pydantic requires: it reports them in a ``ValidationError``, which the loaders turn into
``DataError``/``ConfigError``.

    JudgeforgeError
    ├── MissingExtraError        an optional dependency stack is not installed
    ├── DataError                a data file or record is invalid (carries every RowError)
    ├── ConfigError              a configuration value is invalid
    ├── UsageError               an argument of the wrong kind (also a TypeError)
    ├── StateError               a call at the wrong time: not open, inside an event loop
    ├── ServerError              a managed model server failed to start or died
    ├── StorageError             an output file could not be written (disk full, permissions)
    └── ModelError               a call to a model failed (after retries, if retryable)
        ├── ModelConnectionError     the server could not be reached
        ├── ModelTimeoutError        the call timed out
        ├── ModelResponseError       the server's reply is malformed (bad upstream: HTTP 502)
        └── ModelStatusError         the server answered with an HTTP error status
            └── ModelRateLimitError  HTTP 429
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "JudgeforgeError",
    "MissingExtraError",
    "DataError",
    "ConfigError",
    "UsageError",
    "StateError",
    "ServerError",
    "StorageError",
    "ModelError",
    "ModelConnectionError",
    "ModelTimeoutError",
    "ModelResponseError",
    "ModelStatusError",
    "ModelRateLimitError",
]


class JudgeforgeError(Exception):
    """Base class of every error judgeforge raises on purpose."""


class MissingExtraError(JudgeforgeError, ImportError):
    """An optional dependency is missing; the message names the extra to install."""

    def __init__(self, extra: str, module: str, hint: str | None = None) -> None:
        self.extra = extra
        self.module = module
        msg = (
            f"this feature needs the '{module}' package: install it with "
            f"`pip install 'judgeforge[{extra}]'`"
        )
        if hint:
            msg += f" ({hint})"
        super().__init__(msg)


class DataError(JudgeforgeError, ValueError):
    """Invalid data. ``errors`` holds one entry per bad row (index/line and field)."""

    def __init__(self, message: str, errors: list[Any] | None = None) -> None:
        self.errors = list(errors or [])
        super().__init__(message)


class ConfigError(JudgeforgeError, ValueError):
    """An invalid configuration value."""


class UsageError(JudgeforgeError, TypeError):
    """An argument of the wrong kind (a mapper that is not a dict or callable, a row that is not
    a record...); a TypeError too, so ``except TypeError`` keeps working."""


class StateError(JudgeforgeError, RuntimeError):
    """A call at the wrong time: a checkpoint that is not open, the blocking ``evaluate()``
    inside a running event loop."""


class ServerError(JudgeforgeError, RuntimeError):
    """A managed model server failed to start, or died. ``log_tail`` quotes its log."""

    def __init__(self, message: str, log_tail: str = "", log_path: str | None = None) -> None:
        self.log_tail = log_tail
        self.log_path = log_path
        full = message
        if log_path:
            full += f"\nserver log: {log_path}"
        if log_tail:
            full += "\n--- last lines of the server log ---\n" + log_tail
        super().__init__(full)


class StorageError(JudgeforgeError, OSError):
    """An output file (results, a written dataset) could not be written: disk full,
    permissions. The message names the file; nothing half-written is left behind."""


class ModelError(JudgeforgeError):
    """A model call failed. ``server`` is the base URL, ``attempts`` the tries made."""

    def __init__(self, message: str, *, server: str | None = None, attempts: int = 1,
                 cause: BaseException | None = None) -> None:
        self.server = server
        self.attempts = attempts
        self.cause = cause
        where = f" [server {server}]" if server else ""
        tries = f" after {attempts} attempt(s)" if attempts > 1 else ""
        super().__init__(f"{message}{where}{tries}")


class ModelConnectionError(ModelError):
    """The model server could not be reached (refused, reset, DNS)."""


class ModelTimeoutError(ModelError):
    """The model call did not finish within its timeout."""


class ModelResponseError(ModelError):
    """The server answered, but its reply is unusable (no choices, a non-finite logprob...)."""


class ModelStatusError(ModelError):
    """The server answered an HTTP error status (``status_code``)."""

    def __init__(self, message: str, *, status_code: int, **kw: Any) -> None:
        self.status_code = status_code
        super().__init__(f"HTTP {status_code}: {message}", **kw)


class ModelRateLimitError(ModelStatusError):
    """HTTP 429: the server asked us to slow down."""
