"""Who is calling: bearer tokens on HTTP, ``?token=`` on the WebSocket."""

from __future__ import annotations

from starlette.requests import HTTPConnection

from ctibridge.errors import Forbidden
from ctibridge.services.agents import AgentsService, Principal

__all__ = ["bearer_token", "principal_of", "require_admin"]


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
