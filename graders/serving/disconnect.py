"""Cancel a request's grading when its client goes away.

A client that disconnects (closed the socket, gave up on a timeout) will never read its score:
grading it anyway spends a concurrency slot and model-server time that waiting clients need.
:class:`CancelOnDisconnectMiddleware` (pure ASGI, every route) runs the route as a task, reads
the client's messages itself and hands them on, and cancels the task when ``http.disconnect``
arrives before the response is complete. Cancellation reaches the model call (its HTTP request to
the model server is closed, which makes vLLM abort the generation) and frees the request's slot
of the concurrency gate.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["CancelOnDisconnectMiddleware"]

log = logging.getLogger(__name__)


class CancelOnDisconnectMiddleware:
    """Cancels an HTTP request's handler when the client disconnects mid-request."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        inbox: asyncio.Queue[Message] = asyncio.Queue()
        gone = asyncio.Event()
        answered = False

        async def pump() -> None:  # the only reader of the client's messages
            while True:
                message = await receive()
                inbox.put_nowait(message)
                if message["type"] == "http.disconnect":
                    gone.set()
                    return

        async def tracking_send(message: Message) -> None:
            nonlocal answered
            if message["type"] == "http.response.body" and not message.get("more_body"):
                answered = True
            await send(message)

        handler = asyncio.ensure_future(self.app(scope, inbox.get, tracking_send))
        reader = asyncio.ensure_future(pump())
        watcher = asyncio.ensure_future(gone.wait())
        try:
            await asyncio.wait({handler, watcher}, return_when=asyncio.FIRST_COMPLETED)
            if not handler.done() and not answered:
                handler.cancel()
                log.info("client disconnected: cancelled %s %s", scope.get("method"),
                         scope.get("path"))
                with contextlib.suppress(asyncio.CancelledError):
                    await handler
                return
            await handler  # its result, or its exception for the error middleware
        finally:
            for task in (handler, reader, watcher):
                task.cancel()
            await _quietly(reader, watcher)


async def _quietly(*tasks: asyncio.Future[Any]) -> None:
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
