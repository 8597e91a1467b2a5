"""Agent presence: an agent reads and sets its own; admins list their tenant's agents.

``PUT /api/me/presence {"status": "available" | "busy" | "away"}`` (agents); ``GET
/api/me/presence``; ``GET /api/presence?tenant=`` (admins). Changes reach the agent's and
the tenant admins' WebSockets as ``presence`` frames (see ``docs/events.md``).
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from ctibridge.errors import Forbidden
from ctibridge.services.agents import Principal
from ctibridge.services.presence import PresenceService
from ctibridge.storage.base import Agent
from ctibridge.web.auth import admin_tenant, principal_of
from ctibridge.web.routes.session import read_json

__all__ = ["routes"]


def _presence(request: Request) -> PresenceService:
    service: PresenceService = request.app.state.services.presence
    return service


def _agent_of(principal: Principal) -> Agent:
    if principal.agent is None:
        raise Forbidden("only agents have a presence (this is an admin token)")
    return principal.agent


async def my_presence(request: Request) -> JSONResponse:
    agent = _agent_of(await principal_of(request))
    return JSONResponse(_presence(request).get(agent).as_dict())


async def set_my_presence(request: Request) -> JSONResponse:
    agent = _agent_of(await principal_of(request))
    body = await read_json(request)
    status = body.get("status") if isinstance(body, dict) else None
    return JSONResponse(_presence(request).choose(agent, status).as_dict())


async def list_presence(request: Request) -> JSONResponse:
    _, tenant = await admin_tenant(request)
    agents = await request.app.state.services.agents.list_agents(tenant)
    items = _presence(request).list(a for a in agents if a.active)
    return JSONResponse({"items": [p.as_dict() for p in items]})


routes = [
    Route("/api/me/presence", my_presence, methods=["GET"]),
    Route("/api/me/presence", set_my_presence, methods=["PUT"]),
    Route("/api/presence", list_presence),
]
