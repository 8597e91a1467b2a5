"""Crossbar REST plumbing: the auth check and request log around every handler, JSON request
bodies, and Kazoo's success and error envelopes."""

from __future__ import annotations

import json
import secrets
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ctibridge.demo.kazoo.state import RecordedRequest, _State

_Handler = Callable[[Request, str, Any], Awaitable[Response]]
"""A REST handler: the request, its auth token and its decoded JSON body."""


def _http(
    state: _State, handler: _Handler, *, auth: bool = True
) -> Callable[[Request], Awaitable[Response]]:
    """The endpoint around ``handler``: log the request, then answer 503 while the PBX is
    down, 401 without a known token, 403 for an account outside the token's account tree."""

    async def endpoint(request: Request) -> Response:
        body = await _json_body(request)
        token = request.headers.get("x-auth-token")
        state.requests.append(
            RecordedRequest(
                request.method, request.url.path, dict(request.query_params), body, token
            )
        )
        if not state.available:
            return _error(503, "service_unavailable")
        token_account = state.tokens.get(token or "")
        if auth and token_account is None:
            return _error(401, "invalid_credentials")
        path_account = request.path_params.get("account_id")
        if auth and path_account and not state.within(token_account or "", path_account):
            return _error(403, "forbidden")
        return await handler(request, token or "", body)

    return endpoint


async def _not_found(request: Request, token: str, body: Any) -> Response:
    return _error(404, "not_found")


def _ok(body: dict[str, Any], token: str, *, status_code: int = 200) -> JSONResponse:
    return JSONResponse(
        {**body, "status": "success", "auth_token": token, "request_id": secrets.token_hex(16)},
        status_code=status_code,
    )


def _error(status_code: int, message: str) -> JSONResponse:
    body = {"error": str(status_code), "message": message, "status": "error", "data": {}}
    return JSONResponse(body, status_code=status_code)


async def _json_body(request: Request) -> Any:
    raw = await request.body()
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return {"raw": raw.decode("utf-8", "replace")}
