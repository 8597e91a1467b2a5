"""``KazooFetcher``: Kazoo call recordings through the crossbar recordings API (reference §1.5).

A DESTROY's ``media_recordings`` names a recording by its media name
(``call_recording_<call id>.mp3``) or, on some versions, by its document id. We look the name
up with ``GET /v2/accounts/{account}/recordings?filter_name=<ref>``, fall back to reading
``.../recordings/<ref>`` as an id, then download ``.../recordings/{id}`` with
``Accept: <its content type>``. The tenant id is the Kazoo account id. We log in with the
connector's API key (``PUT /v2/api_auth``) and log in again once when the token is refused.

:meth:`KazooFetcher.recordings_of` lists the recordings of one leg
(``GET .../recordings?filter_call_id=<call id>``): for a leg whose DESTROY we never saw
(it ended while the websocket was down), this is how we learn what it recorded.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import quote

import httpx

from ctibridge.callstate.events import Recording
from ctibridge.config import KazooSettings
from ctibridge.errors import FieldError, PbxAuthError, PbxUnavailable
from ctibridge.protocols.kazoo import GREGORIAN_OFFSET, parse_auth
from ctibridge.recordings._http import check_status, declared_length, get_stream
from ctibridge.recordings.base import Download, RecordingFetcher, RecordingRow, content_type_for
from ctibridge.recordings.local import CHUNK

__all__ = ["KazooFetcher", "RecordingDoc"]

logger = logging.getLogger(__name__)

_T = TypeVar("_T")


class _TokenRefused(PbxUnavailable):
    """Crossbar answered 401 to our token: log in again."""


@dataclass(frozen=True, slots=True)
class RecordingDoc:
    """The parts of a crossbar recording document we use."""

    recording_id: str
    name: str | None = None
    content_type: str | None = None

    @classmethod
    def parse(cls, doc: Any) -> RecordingDoc:
        if not isinstance(doc, dict) or not isinstance(doc.get("id"), str) or not doc["id"]:
            raise FieldError("kazoo recordings: a document without an id")
        media_type = doc.get("media_type")
        declared = doc.get("content_type") or (
            content_type_for(f"x.{media_type}") if isinstance(media_type, str) else None
        )
        name = doc.get("name")
        return cls(
            doc["id"],
            name if isinstance(name, str) else None,
            declared if isinstance(declared, str) else None,
        )


class KazooFetcher(RecordingFetcher):
    pbx = "kazoo"

    def __init__(self, settings: KazooSettings, *, http: httpx.AsyncClient | None = None) -> None:
        self._settings = settings
        self._base = settings.api_url.rstrip("/")
        self._http = http
        self._own_http = http is None
        self._token: str | None = None

    def __repr__(self) -> str:
        return f"KazooFetcher({self._base!r})"

    @asynccontextmanager
    async def open(self, row: RecordingRow) -> AsyncIterator[Download]:
        account = quote(row.tenant_id, safe="")
        doc = await self._with_token(lambda token: self._find(token, account, row.ref))
        path = f"/v2/accounts/{account}/recordings/{quote(doc.recording_id, safe='')}"
        accept = doc.content_type or content_type_for(doc.name or row.ref)
        for attempt in (1, 2):
            token = await self._login_once()
            async with self._get(path, token, accept) as reply:
                if reply.status_code == 401 and attempt == 1:
                    self._token = None
                    continue
                what = f"kazoo: GET {path}"
                check_status(reply, what)
                kind = content_type_for(doc.name or row.ref, reply.headers.get("content-type"))
                yield Download(kind, reply.aiter_bytes(CHUNK), declared_length(reply))
                return

    async def recordings_of(self, tenant_id: str, call_id: str) -> list[Recording]:
        """The recordings crossbar lists for the leg ``call_id``, each named as a DESTROY's
        ``media_recordings`` would name it (media name, else document id)."""
        listing = f"/v2/accounts/{quote(tenant_id, safe='')}/recordings"
        params = {"filter_call_id": call_id}
        body = await self._with_token(lambda token: self._json(listing, token, params))
        docs = body.get("data") if isinstance(body, dict) else None
        if not isinstance(docs, list):
            raise PbxUnavailable(f"kazoo: GET {listing} did not list recordings")
        return [r for r in (_leg_recording(doc, call_id) for doc in docs) if r is not None]

    async def close(self) -> None:
        if self._own_http and self._http is not None:
            await self._http.aclose()
            self._http = None

    # -- finding the document -----------------------------------------------------------------

    async def _find(self, token: str, account: str, ref: str) -> RecordingDoc:
        listing = f"/v2/accounts/{account}/recordings"
        body = await self._json(listing, token, params={"filter_name": ref})
        docs = body.get("data") if isinstance(body, dict) else None
        if isinstance(docs, list) and docs:
            return RecordingDoc.parse(docs[0])
        body = await self._json(f"{listing}/{quote(ref, safe='')}", token)
        return RecordingDoc.parse(body.get("data") if isinstance(body, dict) else None)

    async def _json(self, path: str, token: str, params: dict[str, str] | None = None) -> Any:
        what = f"kazoo: GET {path}"
        try:
            reply = await self._client().get(
                self._base + path,
                params=params,
                headers={"X-Auth-Token": token, "Accept": "application/json"},
                timeout=self._settings.request_timeout,
            )
        except httpx.TransportError as exc:
            raise PbxUnavailable(f"{what} failed: {exc!r}") from exc
        if reply.status_code == 401:
            raise _TokenRefused(f"{what}: token refused")
        check_status(reply, what)
        try:
            return reply.json()
        except ValueError as exc:
            raise PbxUnavailable(f"{what}: answered non-JSON") from exc

    # -- authentication ------------------------------------------------------------------------

    async def _with_token(self, use: Callable[[str], Awaitable[_T]]) -> _T:
        try:
            return await use(await self._login_once())
        except _TokenRefused:
            logger.info("kazoo recordings: auth token refused; logging in again")
            self._token = None
            return await use(await self._login_once())

    async def _login_once(self) -> str:
        if self._token is None:
            self._token = await self._login()
        return self._token

    async def _login(self) -> str:
        what = "kazoo: PUT /v2/api_auth"
        body = {"data": {"api_key": self._settings.api_key}}
        try:
            reply = await self._client().put(
                self._base + "/v2/api_auth", json=body, timeout=self._settings.request_timeout
            )
        except httpx.TransportError as exc:
            raise PbxUnavailable(f"{what} failed: {exc!r}") from exc
        if reply.status_code in (401, 403):
            raise PbxAuthError("kazoo: API key refused", details={"status": reply.status_code})
        check_status(reply, what)
        try:
            return parse_auth(reply.json()).auth_token
        except (ValueError, FieldError) as exc:
            raise PbxUnavailable(f"{what}: unusable reply: {exc}") from exc

    # -- HTTP -----------------------------------------------------------------------------------

    def _client(self) -> httpx.AsyncClient:
        if self._http is None:
            self._http = httpx.AsyncClient(timeout=self._settings.request_timeout)
        return self._http

    def _get(
        self, path: str, token: str, accept: str
    ) -> AbstractAsyncContextManager[httpx.Response]:
        return get_stream(
            self._client(),
            self._base + path,
            headers={"X-Auth-Token": token, "Accept": accept},
            timeout=self._settings.request_timeout,
            what=f"kazoo: GET {path}",
        )


def _leg_recording(doc: Any, call_id: str) -> Recording | None:
    """A listed recording document of the leg ``call_id``; None for a document of another
    leg (a crossbar that ignored the filter) or one without an id."""
    if not isinstance(doc, dict) or doc.get("call_id") != call_id:
        return None
    try:
        parsed = RecordingDoc.parse(doc)
    except FieldError as exc:
        logger.warning("kazoo recordings: skipped a document of call %s: %s", call_id, exc)
        return None
    start, duration = _number(doc.get("start")), _number(doc.get("duration"))
    return Recording(
        ref=parsed.name or parsed.recording_id,
        started_at=start - GREGORIAN_OFFSET if start > GREGORIAN_OFFSET else None,
        duration_seconds=duration or None,
    )


def _number(value: Any) -> float:
    """A JSON number as a float; 0.0 for anything else."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return 0.0
    return max(0.0, float(value))
