"""Streaming GETs for fetchers, with failures mapped to the error tree."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager

import httpx

from ctibridge.errors import PbxAuthError, PbxUnavailable
from ctibridge.recordings.base import RecordingRejected

__all__ = ["check_status", "declared_length", "get_stream"]


@asynccontextmanager
async def get_stream(
    http: httpx.AsyncClient,
    url: str,
    *,
    headers: Mapping[str, str],
    timeout: float,  # noqa: ASYNC109 - httpx's per-operation timeout, not a deadline
    what: str,
) -> AsyncIterator[httpx.Response]:
    """``GET url`` with the body not read yet. Network trouble, before or while the body is
    read, comes out as PbxUnavailable; the status is the caller's to check."""
    try:
        async with http.stream("GET", url, headers=dict(headers), timeout=timeout) as reply:
            yield reply
    except httpx.TransportError as exc:
        raise PbxUnavailable(f"{what} failed: {exc!r}") from exc


def check_status(reply: httpx.Response, what: str) -> None:
    """Raise unless 2xx. Not found is retried (the PBX may still be writing the file)."""
    status = reply.status_code
    if 200 <= status < 300:
        return
    details = {"status": status}
    if status >= 500 or status in (404, 408, 425, 429):
        raise PbxUnavailable(f"{what}: answered {status}", details=details)
    if status in (401, 403):
        raise PbxAuthError(f"{what}: refused ({status})", details=details)
    raise RecordingRejected(f"{what}: answered {status}", details=details)


def declared_length(reply: httpx.Response) -> int | None:
    value = reply.headers.get("content-length", "")
    return int(value) if value.isdigit() else None
