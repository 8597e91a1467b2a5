"""Call history and live calls."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from ctibridge.errors import Forbidden, InvalidRequest, NoSuchCall
from ctibridge.services.agents import ALL_TENANTS, Principal
from ctibridge.types import AgentId, CallId, TenantId
from ctibridge.web.auth import principal_of
from ctibridge.web.schemas import call_query

__all__ = ["routes"]


def _scope(request: Request, principal: Principal) -> tuple[TenantId, AgentId | None]:
    """Agents see their own calls; admins any agent's, in the tenant they name."""
    if not principal.is_admin:
        return principal.tenant_id, principal.agent_id
    tenant = request.query_params.get("tenant") or principal.tenant_id
    if tenant == ALL_TENANTS:
        raise InvalidRequest("name the tenant: ?tenant=<id>", details={"field": "tenant"})
    if not principal.can_see_tenant(tenant):
        raise Forbidden("not your tenant")
    agent = request.query_params.get("agent_id")
    return TenantId(tenant), AgentId(agent) if agent else None


async def _with_recording_states(request: Request, cards: list[dict[str, Any]]) -> None:
    """Each recording link says whether it can be played yet (from the database)."""
    recordings = request.app.state.services.recordings
    if recordings is not None:
        await recordings.add_states(cards)


async def list_calls(request: Request) -> JSONResponse:
    principal = await principal_of(request)
    tenant_id, agent_id = _scope(request, principal)
    card = request.app.state.services.calls.notifier.card
    page = await request.app.state.services.calls.list_calls(
        call_query(request.query_params, tenant_id, agent_id)
    )
    items = [card(s) for s in page.items]
    await _with_recording_states(request, items)
    return JSONResponse({"items": items, "next_cursor": page.next_cursor})


async def get_call(request: Request) -> JSONResponse:
    principal = await principal_of(request)
    tenant_id, _ = _scope(request, principal)
    call_id = CallId(request.path_params["call_id"])
    stored = await request.app.state.services.calls.get(tenant_id, call_id)
    agent_id = principal.agent_id
    if not principal.is_admin and agent_id not in stored.handled_by + stored.rung:
        raise NoSuchCall(f"no call {call_id}", details={"call_id": call_id})
    card = request.app.state.services.calls.notifier.card(stored)
    await _with_recording_states(request, [card])
    return JSONResponse(card)


routes = [Route("/api/calls", list_calls), Route("/api/calls/{call_id}", get_call)]
