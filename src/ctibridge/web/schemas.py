"""Request parsing and response shapes for the REST API (plain dicts, validated here)."""

from __future__ import annotations

from typing import Any

from starlette.datastructures import QueryParams

from ctibridge.callstate.model import CallState, Direction
from ctibridge.errors import InvalidRequest
from ctibridge.storage.base import Agent, CallQuery
from ctibridge.types import AgentId, TenantId

__all__ = ["agent_from_body", "agent_out", "call_query"]

_BOOL = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}


def agent_out(agent: Agent) -> dict[str, Any]:
    return {
        "agent_id": agent.agent_id,
        "tenant_id": agent.tenant_id,
        "name": agent.name,
        "extension": agent.extension,
        "pbx_user_id": agent.pbx_user_id,
        "device_ids": list(agent.device_ids),
        "email": agent.email,
        "login": agent.login,
        "timezone": agent.timezone,
        "crm_user_id": agent.crm_user_id,
        "active": agent.active,
    }


def _opt_str(body: dict[str, Any], key: str) -> str | None:
    value = body.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidRequest(f"{key} must be a string", details={"field": key})
    return value.strip() or None


def agent_from_body(body: Any, *, agent_id: str | None = None) -> tuple[Agent, str | None]:
    if not isinstance(body, dict):
        raise InvalidRequest("expected a JSON object")
    agent_id = agent_id or _opt_str(body, "agent_id")
    tenant_id = _opt_str(body, "tenant_id")
    name = _opt_str(body, "name")
    missing = [
        k for k, v in (("agent_id", agent_id), ("tenant_id", tenant_id), ("name", name)) if not v
    ]
    if missing:
        raise InvalidRequest(f"missing {', '.join(missing)}", details={"fields": missing})
    devices = body.get("device_ids", [])
    if not isinstance(devices, list) or not all(isinstance(d, str) for d in devices):
        raise InvalidRequest(
            "device_ids must be a list of strings", details={"field": "device_ids"}
        )
    extension = _opt_str(body, "extension")
    if extension is not None and not extension.isdigit():
        raise InvalidRequest("extension must be digits", details={"field": "extension"})
    agent = Agent(
        agent_id=AgentId(agent_id or ""),
        tenant_id=TenantId(tenant_id or ""),
        name=name or "",
        extension=extension,
        pbx_user_id=_opt_str(body, "pbx_user_id"),
        device_ids=tuple(devices),
        email=_opt_str(body, "email"),
        login=_opt_str(body, "login"),
        timezone=_opt_str(body, "timezone") or "UTC",
        crm_user_id=_opt_str(body, "crm_user_id"),
        active=bool(body.get("active", True)),
    )
    return agent, _opt_str(body, "password")


def _float(params: QueryParams, key: str) -> float | None:
    raw = params.get(key)
    if raw is None or raw == "":
        return None
    try:
        return float(raw)
    except ValueError as exc:
        raise InvalidRequest(
            f"{key} must be a unix time in seconds", details={"field": key}
        ) from exc


def _bool(params: QueryParams, key: str) -> bool | None:
    raw = params.get(key)
    if raw is None or raw == "":
        return None
    if raw.lower() not in _BOOL:
        raise InvalidRequest(f"{key} must be true or false", details={"field": key})
    return _BOOL[raw.lower()]


def call_query(params: QueryParams, tenant_id: TenantId, agent_id: AgentId | None) -> CallQuery:
    try:
        direction = Direction(params["direction"]) if params.get("direction") else None
        state = CallState(params["state"]) if params.get("state") else None
    except ValueError as exc:
        raise InvalidRequest(str(exc), details={"field": "direction/state"}) from exc
    try:
        limit = int(params.get("limit", "50"))
    except ValueError as exc:
        raise InvalidRequest("limit must be a number", details={"field": "limit"}) from exc
    if not 1 <= limit <= 500:
        raise InvalidRequest("limit must be between 1 and 500", details={"field": "limit"})
    return CallQuery(
        tenant_id=tenant_id,
        agent_id=agent_id,
        direction=direction,
        state=state,
        active=_bool(params, "active"),
        missed=_bool(params, "missed"),
        number=params.get("number") or None,
        since=_float(params, "since"),
        until=_float(params, "until"),
        limit=limit,
        cursor=params.get("cursor") or None,
    )
