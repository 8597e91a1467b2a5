"""Admin: agents and their phone-system identities."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from ctibridge.errors import Forbidden, InvalidRequest
from ctibridge.services.agents import ALL_TENANTS
from ctibridge.storage.base import Tenant
from ctibridge.types import TenantId
from ctibridge.web.auth import principal_of, require_admin
from ctibridge.web.routes.session import read_json
from ctibridge.web.schemas import agent_from_body, agent_out

__all__ = ["routes"]


async def list_agents(request: Request) -> JSONResponse:
    principal = await require_admin(request)
    tenant = request.query_params.get("tenant")
    if not tenant:
        raise InvalidRequest("name the tenant: ?tenant=<id>", details={"field": "tenant"})
    if not principal.can_see_tenant(tenant):
        raise Forbidden("not your tenant")
    agents = await request.app.state.services.agents.list_agents(TenantId(tenant))
    return JSONResponse({"items": [agent_out(a) for a in agents]})


async def put_agent(request: Request) -> JSONResponse:
    principal = await require_admin(request)
    agent, password = agent_from_body(
        await read_json(request), agent_id=request.path_params["agent_id"]
    )
    if not principal.can_see_tenant(agent.tenant_id):
        raise Forbidden("not your tenant")
    services = request.app.state.services
    if await services.storage.get_tenant(agent.tenant_id) is None:
        await services.storage.upsert_tenant(Tenant(agent.tenant_id, agent.tenant_id))
    saved = await services.agents.save_agent(agent, password=password)
    return JSONResponse(agent_out(saved))


async def agent_token(request: Request) -> JSONResponse:
    """An admin issues a sign-in token for an agent (e.g. for a kiosk or a magic link)."""
    principal = await require_admin(request)
    services = request.app.state.services
    agent = await services.agents.get(request.path_params["agent_id"])
    if not principal.can_see_tenant(agent.tenant_id):
        raise Forbidden("not your tenant")
    token = await services.agents.issue_token(agent.tenant_id, "agent", agent.agent_id)
    return JSONResponse({"token": token, "agent": agent_out(agent)})


async def list_tenants(request: Request) -> JSONResponse:
    """Admin: the tenants this token may see, with their names."""
    principal = await require_admin(request)
    tenants = await request.app.state.services.storage.list_tenants()
    return JSONResponse(
        {
            "items": [
                {"tenant_id": t.tenant_id, "name": t.name, "pbx": t.pbx}
                for t in tenants
                if principal.can_see_tenant(t.tenant_id)
            ]
        }
    )


async def directory(request: Request) -> JSONResponse:
    """Any signed-in user: names and extensions of the active agents of their tenant (for
    "answered by Bob" on cards and for transfers)."""
    principal = await principal_of(request)
    tenant = request.query_params.get("tenant") or principal.tenant_id
    if not principal.can_see_tenant(tenant) or tenant == ALL_TENANTS:
        raise Forbidden("name one of your tenants")
    agents = await request.app.state.services.agents.list_agents(TenantId(tenant))
    return JSONResponse(
        {
            "items": [
                {"agent_id": a.agent_id, "name": a.name, "extension": a.extension}
                for a in agents
                if a.active
            ]
        }
    )


routes = [
    Route("/api/tenants", list_tenants),
    Route("/api/directory", directory),
    Route("/api/agents", list_agents),
    Route("/api/agents/{agent_id}", put_agent, methods=["PUT"]),
    Route("/api/agents/{agent_id}/token", agent_token, methods=["POST"]),
]
