"""Request-body size limit (413) and the grading concurrency gate (cap + bounded queue).

:class:`BodyLimitMiddleware` rejects a body larger than ``max_body_bytes`` with 413 naming the
limit: at once when ``Content-Length`` says so, otherwise as soon as the streamed body passes it
(nothing larger is ever buffered).

:class:`Gate` lets at most ``max_concurrency`` gradings reach the model at once; up to
``max_queue`` more wait, each at most ``queue_timeout_s``. A full queue or a wait that times out
raises :class:`Busy` (the API answers 503 with the reason).

:func:`uvicorn_options` bounds the connections themselves: at most ``max_connections`` at once
(uvicorn's ``limit_concurrency``: 503 beyond), idle keep-alive connections closed after
``keep_alive_timeout_s``, and a connection that has not sent a whole request within
``request_read_timeout_s`` (from its first byte of silence: opening, or its last response)
closed by :class:`ReadTimeoutProtocol` (uvicorn itself has no header or body read timeout, so
a client trickling one header byte a second would hold a connection forever).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, MutableMapping
from typing import Any

from starlette.exceptions import HTTPException

from judgeforge.graders.serving.auth import ASGIApp, Receive, Scope, Send, send_json

__all__ = ["BodyLimitMiddleware", "BodyTooLarge", "Gate", "Busy", "ReadTimeoutProtocol",
           "uvicorn_options"]


class BodyTooLarge(HTTPException):
    """413: the body passed ``max_body_bytes`` while it was being read."""

    def __init__(self, limit: int, size: int | None = None) -> None:
        seen = f"{size} bytes" if size is not None else "more bytes"
        super().__init__(413, f"request body too large: {seen} > max_body_bytes={limit}")


class BodyLimitMiddleware:
    """Caps HTTP request bodies at ``max_bytes`` (413 with the limit's name)."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def _reject(self, send: Send, status: int, detail: str) -> None:
        await send_json(send, status, json.dumps({"detail": detail}).encode())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = next((v for k, v in scope.get("headers", []) if k == b"content-length"), None)
        if declared is not None:
            try:
                size = int(declared)
            except ValueError:
                await self._reject(send, 400, "invalid Content-Length header")
                return
            if size > self.max_bytes:
                await self._reject(send, 413, str(BodyTooLarge(self.max_bytes, size).detail))
                return
        received = 0
        started = False

        async def limited_receive() -> dict[str, Any]:
            nonlocal received
            message = dict(await receive())
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise BodyTooLarge(self.max_bytes)
            return message

        async def tracking_send(message: MutableMapping[str, Any]) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except BodyTooLarge as exc:  # raised outside FastAPI's handlers (e.g. a raw route)
            if started:
                raise
            await self._reject(send, 413, str(exc.detail))


class Busy(Exception):
    """No grading slot: the queue is full or the wait timed out. ``reason`` says which."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


class Gate:
    """A concurrency cap with a bounded, timed queue (one per app; one event loop)."""

    def __init__(self, max_concurrency: int, max_queue: int, queue_timeout_s: float) -> None:
        self.max_concurrency = max_concurrency
        self.max_queue = max_queue
        self.queue_timeout_s = queue_timeout_s
        self._sem = asyncio.Semaphore(max_concurrency)
        self.waiting = 0
        self.in_flight = 0

    @contextlib.asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """Hold one grading slot for the ``async with`` body, or raise :class:`Busy`."""
        if self._sem.locked() and self.waiting >= self.max_queue:
            raise Busy(f"server busy: {self.waiting} gradings already queued "
                       f"(max_queue={self.max_queue})")
        self.waiting += 1
        try:
            await asyncio.wait_for(self._sem.acquire(), self.queue_timeout_s)
        except TimeoutError:
            raise Busy(f"server busy: no grading slot within queue_timeout_s="
                       f"{self.queue_timeout_s:g} (max_concurrency={self.max_concurrency})"
                       ) from None
        finally:
            self.waiting -= 1
        self.in_flight += 1
        try:
            yield
        finally:
            self.in_flight -= 1
            self._sem.release()

    def stats(self) -> dict[str, int]:
        return {"in_flight": self.in_flight, "waiting": self.waiting,
                "max_concurrency": self.max_concurrency, "max_queue": self.max_queue}


def _h11_protocol() -> type:
    from uvicorn.protocols.http.h11_impl import H11Protocol

    return H11Protocol


class ReadTimeoutProtocol(_h11_protocol()):  # type: ignore[misc]
    """uvicorn's h11 protocol, plus a deadline for receiving each whole request.

    The timer starts when the connection opens and again after each response; it stops when
    the request (headers and body) has arrived. On expiry the connection is closed.
    """

    read_timeout_s: float = 30.0

    def connection_made(self, transport: Any) -> None:
        super().connection_made(transport)
        self._read_timer: asyncio.TimerHandle | None = None
        self._arm_read_timer()

    def _arm_read_timer(self) -> None:
        self._cancel_read_timer()
        self._read_timer = self.loop.call_later(self.read_timeout_s, self._read_timed_out)

    def _cancel_read_timer(self) -> None:
        timer = getattr(self, "_read_timer", None)
        if timer is not None:
            timer.cancel()
            self._read_timer = None

    def _read_timed_out(self) -> None:
        self._read_timer = None
        if not self.transport.is_closing():
            self.logger.info("closing a connection that sent no whole request in %.0f s",
                             self.read_timeout_s)
            self.transport.close()

    def data_received(self, data: bytes) -> None:
        import h11

        super().data_received(data)
        if self.conn.their_state in (h11.DONE, h11.MUST_CLOSE, h11.CLOSED, h11.ERROR):
            self._cancel_read_timer()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self._arm_read_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_read_timer()
        super().connection_lost(exc)


def uvicorn_options(settings: Any) -> dict[str, Any]:
    """Keyword arguments for ``uvicorn.Config`` that bound connections (see the module doc)."""
    protocol = type("ReadTimeoutProtocol", (ReadTimeoutProtocol,),
                    {"read_timeout_s": float(settings.request_read_timeout_s)})
    return {"http": protocol, "limit_concurrency": settings.max_connections,
            "timeout_keep_alive": max(1, int(round(settings.keep_alive_timeout_s)))}
