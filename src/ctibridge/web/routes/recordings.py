"""Recording downloads: ``GET /api/recordings/{recording_id}``, with HTTP ranges, and
``GET /api/recordings/{recording_id}/state`` (can it be played yet).

Served to the agents who handled or were rung for the call and to admins of its tenant
(``?token=`` works too, for ``<audio src>``). Ranges follow RFC 9110 §14: one range
``bytes=a-b``, ``bytes=a-`` or ``bytes=-n`` → 206 with ``Content-Range``; a range past the end
→ 416 with ``Content-Range: bytes */size``; no range (or one we do not serve, such as several
ranges, or an ``If-Range`` that no longer matches) → 200 with the whole file. The body is
streamed from the store in chunks, never read whole.

With the ``s3`` store the bytes are streamed from ranged reads of the bucket through this
route, not handed off to a presigned URL: every request is authorised here, and the bucket
need not be reachable from browsers (the reasons in full: :mod:`ctibridge.recordings.s3`).
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from ctibridge.errors import NotFound
from ctibridge.recordings.base import RecordingRow
from ctibridge.services.recordings import API_PATH, RecordingsService
from ctibridge.web.auth import principal_of

__all__ = ["ByteRange", "RangeNotSatisfiable", "parse_range", "routes"]

_RANGE = re.compile(r"^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$", re.IGNORECASE)


class RangeNotSatisfiable(Exception):
    """The range starts past the end of the file."""


@dataclass(frozen=True, slots=True)
class ByteRange:
    start: int
    end: int
    """Inclusive, as in ``Content-Range``."""

    @property
    def length(self) -> int:
        return self.end - self.start + 1


def parse_range(header: str | None, size: int) -> ByteRange | None:
    """The one range ``header`` asks of a ``size``-byte file; None to send it all (no
    header, a malformed one, or several ranges). RangeNotSatisfiable when nothing of the
    file is in the range."""
    match = _RANGE.match(header or "")
    if match is None:
        return None
    first, last = match.groups()
    if not first and not last:
        return None
    if not first:  # the last n bytes
        suffix = int(last)
        if suffix == 0 or size == 0:
            raise RangeNotSatisfiable
        return ByteRange(max(0, size - suffix), size - 1)
    start = int(first)
    if last and int(last) < start:
        return None  # invalid: ignored, like any malformed Range
    if start >= size:
        raise RangeNotSatisfiable
    return ByteRange(start, min(int(last), size - 1) if last else size - 1)


def _service(request: Request) -> RecordingsService:
    service: RecordingsService | None = request.app.state.services.recordings
    if service is None:
        raise NotFound("recordings are not enabled")
    return service


def _headers(row: RecordingRow, length: int) -> dict[str, str]:
    name = (row.stored_path or row.recording_id).rsplit("/", 1)[-1]
    return {
        "Accept-Ranges": "bytes",
        "Content-Length": str(length),
        "Content-Disposition": f'inline; filename="{name}"',
        "ETag": f'"{row.sha256}"',
        "Cache-Control": "private, max-age=3600",
    }


def _wanted_range(request: Request, row: RecordingRow, size: int) -> ByteRange | None:
    if_range = request.headers.get("if-range")
    if if_range is not None and if_range.strip() != f'"{row.sha256}"':
        return None  # the client's copy is another version: send the whole file
    return parse_range(request.headers.get("range"), size)


async def get_state(request: Request) -> JSONResponse:
    """``{"recording_id", "state"}``: whether the recording can be played yet (``pending``,
    ``stored``, ``failed``), for those who may hear it."""
    principal = await principal_of(request)
    row = await _service(request).visible(request.path_params["recording_id"], principal)
    return JSONResponse({"recording_id": row.recording_id, "state": row.state.value})


async def get_recording(request: Request) -> Response:
    principal = await principal_of(request)
    service = _service(request)
    row = await service.readable(request.path_params["recording_id"], principal)
    size = await service.size(row)
    kind = row.content_type or "application/octet-stream"
    try:
        wanted = _wanted_range(request, row, size)
    except RangeNotSatisfiable:
        body = {"error_id": "range-not-satisfiable", "message": "range not satisfiable"}
        headers = {"Content-Range": f"bytes */{size}", "Accept-Ranges": "bytes"}
        return JSONResponse({**body, "details": {"size": size}}, 416, headers=headers)
    part = wanted or ByteRange(0, size - 1)
    headers = _headers(row, part.length)
    if wanted is not None:
        headers["Content-Range"] = f"bytes {part.start}-{part.end}/{size}"
    status = 206 if wanted is not None else 200
    if request.method == "HEAD":
        return Response(status_code=status, headers=headers, media_type=kind)
    chunks = await _started(service.read(row, part.start, part.length))
    return StreamingResponse(chunks, status_code=status, headers=headers, media_type=kind)


async def _started(chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    """``chunks`` with the first one read before the answer starts: a store that fails or
    lost the object (S3 down, say) answers 503 or 404 instead of a cut-off 200/206."""
    try:
        first = await anext(chunks)
    except StopAsyncIteration:
        first = b""
    return _chain(first, chunks)


async def _chain(first: bytes, rest: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    yield first
    async for chunk in rest:
        yield chunk


routes = [
    Route(API_PATH + "/{recording_id}", get_recording, methods=["GET", "HEAD"]),
    Route(API_PATH + "/{recording_id}/state", get_state, methods=["GET"]),
]
