"""Admin: CRM writes that failed (outbox items waiting for another attempt), retry one now or
discard it.

``GET /api/outbox/failed?tenant=`` → ``{enabled, crm, items, total, server_time}``;
``POST /api/outbox/{item_id}/retry?tenant=`` → ``{delivered, item}`` (delivered at once, or
the new error); ``POST /api/outbox/{item_id}/discard?tenant=`` → ``{discarded, item}``.
Both actions are written to the log (services/outbox_admin.py).
"""

from __future__ import annotations

import time

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from ctibridge.errors import InvalidRequest, NotFound
from ctibridge.services.agents import ALL_TENANTS, Principal
from ctibridge.services.outbox_admin import OutboxAdminService, outbox_admin_for
from ctibridge.types import TenantId
from ctibridge.web.auth import admin_tenant

__all__ = ["routes"]

MAX_LIMIT = 500


async def _tenant(request: Request) -> tuple[Principal, TenantId]:
    return await admin_tenant(request)


def _service(request: Request) -> OutboxAdminService | None:
    return outbox_admin_for(request.app.state.services)


def _enabled(request: Request) -> OutboxAdminService:
    service = _service(request)
    if service is None:
        raise NotFound("this server writes to no CRM: there is no outbox to look at")
    return service


def _item_id(request: Request) -> int:
    raw = request.path_params["item_id"]
    if not raw.isdigit():
        raise NotFound(f"no outbox item {raw}")
    return int(raw)


def _limit(request: Request) -> int:
    raw = request.query_params.get("limit", "100")
    if not raw.isdigit() or not 0 < int(raw) <= MAX_LIMIT:
        raise InvalidRequest(f"limit is 1 to {MAX_LIMIT}", details={"field": "limit"})
    return int(raw)


def _who(request: Request, principal: Principal) -> str:
    scope = "all tenants" if principal.tenant_id == ALL_TENANTS else principal.tenant_id
    client = request.client.host if request.client else "?"
    return f"admin ({scope}) from {client}"


async def failed(request: Request) -> JSONResponse:
    _, tenant = await _tenant(request)
    limit = _limit(request)
    service = _service(request)
    body: dict[str, object] = {
        "tenant_id": tenant,
        "enabled": service is not None,
        "server_time": time.time(),
    }
    if service is None:
        return JSONResponse(body | {"crm": None, "items": [], "total": 0})
    items, total = await service.failing(tenant, limit=limit)
    body |= {"crm": service.crm, "items": [i.as_dict() for i in items], "total": total}
    return JSONResponse(body)


async def retry(request: Request) -> JSONResponse:
    principal, tenant = await _tenant(request)
    outcome = await _enabled(request).retry_now(
        tenant, _item_id(request), by=_who(request, principal)
    )
    return JSONResponse({"delivered": outcome.delivered, "item": outcome.item.as_dict()})


async def discard(request: Request) -> JSONResponse:
    principal, tenant = await _tenant(request)
    item = await _enabled(request).discard(tenant, _item_id(request), by=_who(request, principal))
    return JSONResponse({"discarded": True, "item": item.as_dict()})


routes = [
    Route("/api/outbox/failed", failed),
    Route("/api/outbox/{item_id}/retry", retry, methods=["POST"]),
    Route("/api/outbox/{item_id}/discard", discard, methods=["POST"]),
]
