"""The model server's health, as ``/healthz`` reports it: a short-timeout check, cached briefly.

vLLM answers ``GET /health`` at the root of its OpenAI URL; servers without that route (404) are
asked ``GET /v1/models`` instead. Concurrent ``/healthz`` calls share one check.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import httpx

__all__ = ["ModelHealth", "health_urls"]


def health_urls(base_url: str) -> tuple[str, str]:
    """(``<root>/health``, ``<base>/models``) for an OpenAI ``.../v1`` base URL."""
    base = base_url.rstrip("/")
    root = base[:-3] if base.endswith("/v1") else base
    return root + "/health", base + "/models"


class ModelHealth:
    """Checks the model server reachable at ``base_url()`` (a callable: a managed server's URL
    is only known once it runs). ``base_url=None``: an in-process model, always healthy."""

    def __init__(self, base_url: Callable[[], str | None] | None, *, timeout_s: float,
                 cache_s: float, api_key: str | None = None) -> None:
        self.base_url = base_url
        self.timeout_s = timeout_s
        self.cache_s = cache_s
        self.api_key = api_key
        self._client: httpx.AsyncClient | None = None
        self._lock: asyncio.Lock | None = None
        self._last: tuple[float, bool, str | None] | None = None  # (monotonic, ok, error)

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def _probe(self) -> tuple[bool, str | None]:
        if self.base_url is None:
            return True, None
        base = self.base_url()
        if not base:
            return False, "the model server is not started"
        if self._client is None:
            # trust_env=False: a proxy from the environment must never sit between us and it
            self._client = httpx.AsyncClient(timeout=self.timeout_s, trust_env=False)
        health, models = health_urls(base)
        try:
            async with asyncio.timeout(self.timeout_s):  # a hard bound over both requests
                resp = await self._client.get(health)
                if resp.status_code == 404:
                    headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
                    resp = await self._client.get(models, headers=headers)
        except (httpx.TimeoutException, TimeoutError):
            return False, f"the model server did not answer its health check within " \
                          f"{self.timeout_s:g}s ({health})"
        except httpx.HTTPError as exc:
            return False, f"the model server is unreachable ({type(exc).__name__}: {exc}; " \
                          f"{health})"
        if resp.status_code >= 400:
            return False, f"the model server's health check answered HTTP {resp.status_code}"
        return True, None

    async def check(self) -> tuple[bool, str | None, float]:
        """(ok, error, seconds since the check) -- at most one real check per ``cache_s``."""
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            now = time.monotonic()
            if self._last is None or now - self._last[0] > self.cache_s:
                ok, error = await self._probe()
                self._last = (time.monotonic(), ok, error)
            checked, ok, error = self._last
        return ok, error, time.monotonic() - checked
