"""Who is calling: bearer tokens on HTTP, ``?token=`` on the WebSocket."""

from __future__ import annotations

from starlette.requests import HTTPConnection

from ctibridge.errors import Forbidden, InvalidRequest
from ctibridge.services.agents import ALL_TENANTS, AgentsService, Principal
from ctibridge.types import TenantId

__all__ = ["admin_tenant", "bearer_token", "principal_of", "require_admin"]


def bearer_token(conn: HTTPConnection) -> str | None:
    header = conn.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return conn.query_params.get("token") or None


async def principal_of(conn: HTTPConnection) -> Principal:
    agents: AgentsService = conn.app.state.services.agents
    return await agents.authenticate(bearer_token(conn))


async def require_admin(conn: HTTPConnection) -> Principal:
    principal = await principal_of(conn)
    if not principal.is_admin:
        raise Forbidden("admins only")
    return principal


async def admin_tenant(conn: HTTPConnection) -> tuple[Principal, TenantId]:
    """An admin and the tenant a request is about: ``?tenant=``, else the admin's own (an
    all-tenants admin must name one)."""
    principal = await require_admin(conn)
    tenant = conn.query_params.get("tenant") or ""
    if not tenant and principal.tenant_id != ALL_TENANTS:
        tenant = principal.tenant_id
    if not tenant:
        raise InvalidRequest("name the tenant: ?tenant=<id>", details={"field": "tenant"})
    if not principal.can_see_tenant(tenant):
        raise Forbidden("not your tenant")
    return principal, TenantId(tenant)
