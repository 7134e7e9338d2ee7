"""Request-body size limit (413) and the grading concurrency gate (cap + bounded queue).

:class:`BodyLimitMiddleware` rejects a body larger than ``max_body_bytes`` with 413 naming the
limit: at once when ``Content-Length`` says so, otherwise as soon as the streamed body passes it
(nothing larger is ever buffered).

:class:`Gate` lets at most ``max_concurrency`` gradings reach the model at once; up to
``max_queue`` more wait, each at most ``queue_timeout_s``. A full queue or a wait that times out
raises :class:`Busy` (the API answers 503 with the reason).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator

from starlette.exceptions import HTTPException

from judgeforge.graders.serving.auth import ASGIApp, Receive, Scope, Send, send_json

__all__ = ["BodyLimitMiddleware", "BodyTooLarge", "Gate", "Busy"]


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

        async def limited_receive() -> dict:
            nonlocal received
            message = dict(await receive())
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise BodyTooLarge(self.max_bytes)
            return message

        async def tracking_send(message: dict) -> None:
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
