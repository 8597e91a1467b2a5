"""Crossbar call recordings: list (with ``filter_<field>``) and fetch (JSON doc or audio)."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from ctibridge.demo.kazoo.crossbar import _error, _ok
from ctibridge.demo.kazoo.state import _State


async def _list_recordings(state: _State, request: Request, token: str, body: Any) -> Response:
    recordings = state.accounts[request.path_params["account_id"]].recordings.values()
    filters = {
        key.removeprefix("filter_"): value
        for key, value in request.query_params.items()
        if key.startswith("filter_")
    }
    docs = [r.doc for r in recordings if all(str(r.doc.get(k)) == v for k, v in filters.items())]
    return _ok({"data": docs, "page_size": len(docs)}, token)


async def _get_recording(state: _State, request: Request, token: str, body: Any) -> Response:
    account = state.accounts[request.path_params["account_id"]]
    recording = account.recordings.get(request.path_params["recording_id"])
    if recording is None:
        return _error(404, "bad_identifier")
    accept = request.query_params.get("accept") or request.headers.get("accept", "")
    if "audio/" not in accept:
        return _ok({"data": recording.doc}, token)
    return Response(recording.data, media_type=recording.doc["content_type"])
