"""Agent sign-in and who-am-I."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ctibridge.errors import InvalidRequest
from ctibridge.web.auth import bearer_token, principal_of
from ctibridge.web.schemas import agent_out

__all__ = ["read_json", "routes"]


async def read_json(request: Request) -> Any:
    try:
        return await request.json()
    except ValueError as exc:
        raise InvalidRequest("the body is not valid JSON") from exc


async def sign_in(request: Request) -> JSONResponse:
    body = await read_json(request)
    login = body.get("login") if isinstance(body, dict) else None
    password = body.get("password") if isinstance(body, dict) else None
    if not isinstance(login, str) or not isinstance(password, str):
        raise InvalidRequest(
            "login and password are required", details={"fields": ["login", "password"]}
        )
    token, agent = await request.app.state.services.agents.sign_in(login.strip(), password)
    return JSONResponse({"token": token, "agent": agent_out(agent)})


async def me(request: Request) -> JSONResponse:
    principal = await principal_of(request)
    agent = agent_out(principal.agent) if principal.agent is not None else None
    return JSONResponse({"role": principal.role, "tenant_id": principal.tenant_id, "agent": agent})


async def sign_out(request: Request) -> Response:
    await principal_of(request)
    token = bearer_token(request)
    assert token is not None
    await request.app.state.services.agents.revoke(token)
    return Response(status_code=204)


routes = [
    Route("/api/session", sign_in, methods=["POST"]),
    Route("/api/session", sign_out, methods=["DELETE"]),
    Route("/api/me", me),
]
