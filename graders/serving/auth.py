"""Bearer-token authentication for the scoring API (pure ASGI, constant-time comparison).

With an API key configured, every HTTP route except the exempt ones (``/healthz``) needs
``Authorization: Bearer <key>``; anything else is answered 401 before the body is read.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import Any

from judgeforge.errors import ConfigError

__all__ = ["bearer_matches", "BearerAuthMiddleware", "UNAUTHORIZED_DETAIL"]

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

UNAUTHORIZED_DETAIL = ("missing or invalid API key: send the header "
                       "'Authorization: Bearer <key>'")


def bearer_matches(header: bytes | str | None, api_key: str) -> bool:
    """True if ``header`` is ``Bearer <api_key>`` (scheme case-insensitive, constant-time)."""
    if header is None:
        return False
    raw = header.encode("latin-1", "replace") if isinstance(header, str) else header
    scheme, _, token = raw.strip().partition(b" ")
    if scheme.lower() != b"bearer":
        return False
    # compare_digest takes equal time whatever the first differing byte is
    return hmac.compare_digest(token.strip(), api_key.encode("utf-8"))


async def send_json(send: Send, status: int, body: bytes,
                    headers: Iterable[tuple[bytes, bytes]] = ()) -> None:
    """Send a complete JSON response on a raw ASGI ``send``."""
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode()), *headers]})
    await send({"type": "http.response.body", "body": body})


class BearerAuthMiddleware:
    """Answers 401 to HTTP requests without the right bearer token, except on ``exempt`` paths."""

    def __init__(self, app: ASGIApp, api_key: str, exempt: Iterable[str] = ("/healthz",)) -> None:
        if not api_key:
            raise ConfigError("BearerAuthMiddleware needs a non-empty api_key")
        self.app = app
        self.api_key = api_key
        self.exempt = frozenset(exempt)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("path") in self.exempt:
            await self.app(scope, receive, send)
            return
        header = next((v for k, v in scope.get("headers", []) if k == b"authorization"), None)
        if bearer_matches(header, self.api_key):
            await self.app(scope, receive, send)
            return
        body = json.dumps({"detail": UNAUTHORIZED_DETAIL}).encode()
        await send_json(send, 401, body, [(b"www-authenticate", b"Bearer")])
