"""Crossbar authentication, shared by everything that talks to one Kazoo cluster.

One API-key login (``PUT /v2/api_auth``, reference §1.2) gives a token that every crossbar
request carries as ``X-Auth-Token``. Kazoo forgets idle tokens (about an hour), so a request
whose token is refused logs in again once and is retried; a refused API key is fatal
(:class:`PbxAuthError`). The event connector and call control share one :class:`CrossbarAuth`,
so they share one token and one re-login.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import httpx

from ctibridge.config import KazooSettings
from ctibridge.errors import PbxAuthError, PbxUnavailable
from ctibridge.protocols import kazoo as proto

__all__ = ["CrossbarAuth", "TokenRejected", "reply_json"]

logger = logging.getLogger(__name__)

_T = TypeVar("_T")


class TokenRejected(PbxUnavailable):
    """Kazoo no longer accepts our token: log in again."""


class CrossbarAuth:
    """The crossbar token of one API key, and requests made with it."""

    def __init__(self, settings: KazooSettings) -> None:
        self._settings = settings
        self._token: str | None = None
        self._key_account: str | None = None
        self._lock = asyncio.Lock()

    @property
    def token(self) -> str | None:
        return self._token

    @property
    def key_account(self) -> str | None:
        """The account the API key belongs to (known after the first login)."""
        return self._key_account

    async def login(self, http: httpx.AsyncClient) -> None:
        """Log in with the API key now. Raises PbxAuthError when Kazoo refuses the key."""
        self._token = None
        body = {"data": {"api_key": self._settings.api_key}}
        reply = await self.rest(http, "PUT", "/v2/api_auth", json=body)
        if reply.status_code in (401, 403):
            raise PbxAuthError("kazoo: API key refused", details={"status": reply.status_code})
        auth = proto.parse_auth(reply_json(reply))
        self._token, self._key_account = auth.auth_token, auth.account_id

    async def with_token(self, http: httpx.AsyncClient, use: Callable[[str], Awaitable[_T]]) -> _T:
        """Run ``use(token)``; when it raises :class:`TokenRejected`, log in again once and
        retry (one login, however many users of this token were refused at once)."""
        token = await self._fresh(http, stale=None)
        try:
            return await use(token)
        except TokenRejected:
            logger.info("kazoo: auth token refused; logging in again")
            return await use(await self._fresh(http, stale=token))

    async def _fresh(self, http: httpx.AsyncClient, *, stale: str | None) -> str:
        async with self._lock:
            if self._token is None or self._token == stale:
                await self.login(http)
            assert self._token is not None
            return self._token

    async def request(
        self, http: httpx.AsyncClient, method: str, path: str, **kwargs: Any
    ) -> httpx.Response:
        """One crossbar request; network trouble is PbxUnavailable, any answer is returned."""
        url = self._settings.api_url.rstrip("/") + path
        try:
            return await http.request(method, url, timeout=self._settings.request_timeout, **kwargs)
        except httpx.TransportError as exc:
            raise PbxUnavailable(f"kazoo: {method} {path} failed: {exc!r}") from exc

    async def rest(
        self, http: httpx.AsyncClient, method: str, path: str, **kwargs: Any
    ) -> httpx.Response:
        """Like :meth:`request`, and a 5xx or 429 answer is PbxUnavailable too."""
        reply = await self.request(http, method, path, **kwargs)
        if reply.status_code >= 500 or reply.status_code == 429:
            raise PbxUnavailable(f"kazoo: {method} {path} answered {reply.status_code}")
        return reply


def reply_json(reply: httpx.Response) -> Any:
    try:
        return reply.json()
    except ValueError as exc:
        raise PbxUnavailable(f"kazoo: {reply.request.url.path} answered non-JSON") from exc
