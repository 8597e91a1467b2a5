"""An async Salesforce REST client for one org: sObject create/update/upsert/retrieve,
composite, SOSL search, SOQL query, and the ``Sforce-Limit-Info`` usage it reports.

Every request goes through :class:`~ctibridge.crm.salesforce.auth.SalesforceAuth` (token,
instance URL, one renewal on 401) and :func:`~ctibridge.crm.salesforce.errors.map_crm_errors`
(our error tree). Renewals are single-flight: concurrent requests that hit an expired
session wait for one token request instead of each spending the refresh token.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import httpx

from ctibridge.crm.salesforce.auth import PLACEHOLDER_BASE, TOKEN_REQUEST, SalesforceAuth
from ctibridge.crm.salesforce.errors import (
    ApiUsage,
    api_usage,
    error_from_response,
    map_crm_errors,
)
from ctibridge.crm.salesforce.orgs import DEFAULT_API_VERSION

__all__ = ["SalesforceClient", "SubRequest", "SubResponse", "Upserted"]

logger = logging.getLogger(__name__)

_OK = (200, 201, 204)
COMPOSITE_LIMIT = 25
"""Subrequests in one composite request."""


@dataclass(frozen=True, slots=True)
class SubRequest:
    """One part of a composite request; ``url`` is a full ``/services/data/...`` path."""

    method: str
    url: str
    reference_id: str
    body: Any = None

    def as_dict(self) -> dict[str, Any]:
        part: dict[str, Any] = {
            "method": self.method,
            "url": self.url,
            "referenceId": self.reference_id,
        }
        if self.body is not None:
            part["body"] = self.body
        return part


@dataclass(frozen=True, slots=True)
class SubResponse:
    reference_id: str
    status: int
    body: Any
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


@dataclass(frozen=True, slots=True)
class Upserted:
    id: str
    created: bool


class SalesforceClient:
    def __init__(
        self,
        auth: SalesforceAuth,
        *,
        api_version: str = DEFAULT_API_VERSION,
        transport: httpx.AsyncBaseTransport | None = None,
        timeout: float = 20.0,
        on_refresh_token: Callable[[str], Awaitable[None]] | None = None,
    ) -> None:
        self.auth = auth
        self.api_version = api_version
        self.usage: ApiUsage | None = None
        """The org's API usage as of the latest answer."""
        self.api_requests = 0
        """Data API requests sent (token requests not counted)."""
        self._http = httpx.AsyncClient(transport=transport, timeout=timeout)
        self._renewing = asyncio.Lock()
        self._on_refresh_token = on_refresh_token
        self._refresh_token = auth.session.refresh_token

    def __repr__(self) -> str:
        return f"SalesforceClient({self.auth.session!r})"

    @property
    def instance_url(self) -> str | None:
        return self.auth.session.instance_url

    def path(self, *segments: str) -> str:
        """``/services/data/vXX.X/<segments>``, each segment URL-quoted."""
        tail = "/".join(quote(s, safe="") for s in segments)
        return f"/services/data/v{self.api_version}/{tail}"

    # --- records ---

    async def create(self, sobject: str, fields: Mapping[str, Any]) -> str:
        response = await self._call("POST", self.path("sobjects", sobject), json=dict(fields))
        return str(response.json()["id"])

    async def update(self, sobject: str, record_id: str, fields: Mapping[str, Any]) -> None:
        await self._call("PATCH", self.path("sobjects", sobject, record_id), json=dict(fields))

    async def upsert(
        self, sobject: str, external_field: str, value: str, fields: Mapping[str, Any]
    ) -> Upserted:
        path = self.path("sobjects", sobject, external_field, value)
        response = await self._call("PATCH", path, json=dict(fields))
        body = response.json() if response.content else {}
        return Upserted(str(body.get("id", "")), response.status_code == 201)

    async def retrieve(
        self, sobject: str, record_id: str, fields: Iterable[str]
    ) -> dict[str, Any] | None:
        """The record, or None if it does not exist (or this user cannot see it)."""
        params = {"fields": ",".join(fields)}
        path = self.path("sobjects", sobject, record_id)
        response = await self._call("GET", path, params=params, missing_ok=True)
        if response.status_code == 404:
            return None
        record: dict[str, Any] = response.json()
        return record

    def collection_upsert(
        self,
        sobject: str,
        external_field: str,
        records: Sequence[Mapping[str, Any]],
        *,
        reference_id: str,
    ) -> SubRequest:
        """A composite part upserting up to 200 records of one type by an external id."""
        body = {
            "allOrNone": False,
            "records": [{"attributes": {"type": sobject}, **r} for r in records],
        }
        path = self.path("composite", "sobjects", sobject, external_field)
        return SubRequest("PATCH", path, reference_id, body)

    async def composite(
        self, parts: Sequence[SubRequest], *, all_or_none: bool = False
    ) -> list[SubResponse]:
        """Up to 25 parts in one API call; the answer of each part, in order."""
        if not 0 < len(parts) <= COMPOSITE_LIMIT:
            raise ValueError(f"a composite request has 1 to {COMPOSITE_LIMIT} parts")
        payload = {"allOrNone": all_or_none, "compositeRequest": [p.as_dict() for p in parts]}
        response = await self._call("POST", self.path("composite"), json=payload)
        return [
            SubResponse(
                str(r.get("referenceId", "")),
                int(r.get("httpStatusCode", 0)),
                r.get("body"),
                dict(r.get("httpHeaders") or {}),
            )
            for r in response.json().get("compositeResponse", [])
        ]

    # --- search and query ---

    async def search(self, sosl: str) -> list[dict[str, Any]]:
        response = await self._call("GET", self.path("search"), params={"q": sosl})
        body = response.json()
        records = body.get("searchRecords", []) if isinstance(body, dict) else body
        return list(records)

    async def query(self, soql: str) -> list[dict[str, Any]]:
        """All rows (follows ``nextRecordsUrl``)."""
        response = await self._call("GET", self.path("query"), params={"q": soql})
        body = response.json()
        rows: list[dict[str, Any]] = list(body.get("records", []))
        while not body.get("done", True) and body.get("nextRecordsUrl"):
            body = (await self._call("GET", str(body["nextRecordsUrl"]))).json()
            rows.extend(body.get("records", []))
        return rows

    async def aclose(self) -> None:
        await self._http.aclose()

    # --- the wire ---

    async def _call(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        json: Any = None,
        missing_ok: bool = False,
    ) -> httpx.Response:
        request = self._http.build_request(
            method, PLACEHOLDER_BASE + path, params=params, json=json
        )
        with map_crm_errors():
            response = await self._send(request)
        if response.status_code in _OK or (missing_ok and response.status_code == 404):
            return response
        raise error_from_response(response)

    async def _send(self, request: httpx.Request) -> httpx.Response:
        flow = self.auth.auth_flow(request)
        outgoing = next(flow)
        while True:
            response = await self._exchange(outgoing)
            try:
                outgoing = flow.send(response)
            except StopIteration as done:
                final: httpx.Response = done.value
                await self._after(final)
                return final

    async def _exchange(self, request: httpx.Request) -> httpx.Response | None:
        renews = request.extensions.get(TOKEN_REQUEST)
        if renews is None:
            self.api_requests += 1
            return await self._http.send(request)
        async with self._renewing:
            if self.auth.session.version != renews:
                return None
            response = await self._http.send(request)
            logger.info(
                "Salesforce token request for %s: HTTP %d",
                self.auth.session.instance_url or "a new session",
                response.status_code,
            )
            return response

    async def _after(self, response: httpx.Response) -> None:
        self.usage = api_usage(response.headers) or self.usage
        current = self.auth.session.refresh_token
        if current and current != self._refresh_token:
            self._refresh_token = current
            if self._on_refresh_token is not None:
                await self._on_refresh_token(current)
