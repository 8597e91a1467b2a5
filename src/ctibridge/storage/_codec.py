"""Rows to values and back, and the opaque page cursor. Pure: no SQL is run here."""

from __future__ import annotations

import base64
import binascii
import json
import math
from collections.abc import Iterable, Mapping
from typing import Any

from ctibridge.callstate.codec import call_from_dict, call_to_dict, event_to_dict
from ctibridge.callstate.events import AgentRef, ChannelEvent
from ctibridge.callstate.model import Call, Leg
from ctibridge.errors import InvalidRequest
from ctibridge.storage.base import Agent, ApiToken, CallContext, OutboxItem, StoredCall, Tenant
from ctibridge.types import AgentId, CallId, TenantId

Row = Mapping[Any, Any]
"""A result row by column name (``RowMapping``)."""

IDENTITY_KINDS = ("user", "device", "extension")
"""``agent_identities.kind`` values, in the order ``find_agent`` tries them."""

MAX_ERROR_LENGTH = 2000
"""``outbox.last_error`` keeps this many characters."""

MAX_ERROR_CODE_LENGTH = 200
"""``outbox.last_error_code`` keeps this many characters."""


def tenant_row(tenant: Tenant) -> dict[str, Any]:
    return {
        "tenant_id": tenant.tenant_id,
        "name": tenant.name,
        "pbx": tenant.pbx,
        "settings": dict(tenant.settings),
    }


def tenant_from_row(row: Row) -> Tenant:
    return Tenant(TenantId(row["tenant_id"]), row["name"], row["pbx"], dict(row["settings"]))


def agent_row(agent: Agent) -> dict[str, Any]:
    return {
        "agent_id": agent.agent_id,
        "tenant_id": agent.tenant_id,
        "name": agent.name,
        "extension": agent.extension,
        "pbx_user_id": agent.pbx_user_id,
        "device_ids": list(agent.device_ids),
        "email": agent.email,
        "login": agent.login,
        "password_hash": agent.password_hash,
        "timezone": agent.timezone,
        "crm_user_id": agent.crm_user_id,
        "active": agent.active,
    }


def agent_from_row(row: Row) -> Agent:
    return Agent(
        agent_id=AgentId(row["agent_id"]),
        tenant_id=TenantId(row["tenant_id"]),
        name=row["name"],
        extension=row["extension"],
        pbx_user_id=row["pbx_user_id"],
        device_ids=tuple(row["device_ids"]),
        email=row["email"],
        login=row["login"],
        password_hash=row["password_hash"],
        timezone=row["timezone"],
        crm_user_id=row["crm_user_id"],
        active=bool(row["active"]),
    )


def identity_rows(agent: Agent) -> list[dict[str, Any]]:
    """The PBX names of ``agent``: its user id, each device id, its extension."""
    names = [("user", agent.pbx_user_id), *(("device", d) for d in agent.device_ids)]
    names.append(("extension", agent.extension))
    unique = dict.fromkeys((kind, value) for kind, value in names if value)
    return [
        {"tenant_id": agent.tenant_id, "kind": kind, "value": value, "agent_id": agent.agent_id}
        for kind, value in unique
    ]


def identity_lookups(ref: AgentRef) -> list[tuple[str, str]]:
    """``(kind, value)`` pairs to look ``ref`` up by, most specific first."""
    values = (ref.user_id, ref.device_id, ref.extension)
    return [(kind, value) for kind, value in zip(IDENTITY_KINDS, values, strict=True) if value]


def token_row(token: ApiToken) -> dict[str, Any]:
    return {
        "token_hash": token.token_hash,
        "tenant_id": token.tenant_id,
        "role": token.role,
        "agent_id": token.agent_id,
        "created_at": token.created_at,
        "expires_at": token.expires_at,
        "revoked": token.revoked,
    }


def token_from_row(row: Row) -> ApiToken:
    agent_id = row["agent_id"]
    return ApiToken(
        token_hash=row["token_hash"],
        tenant_id=TenantId(row["tenant_id"]),
        role=row["role"],
        agent_id=AgentId(agent_id) if agent_id is not None else None,
        created_at=row["created_at"],
        expires_at=row["expires_at"],
        revoked=bool(row["revoked"]),
    )


def outbox_row(item: OutboxItem) -> dict[str, Any]:
    return {
        "key": item.key,
        "topic": item.topic,
        "tenant_id": item.tenant_id,
        "payload": dict(item.payload),
        "attempts": item.attempts,
        "next_attempt_at": item.next_attempt_at,
        "last_error": item.last_error,
        "last_error_code": item.last_error_code,
        "created_at": item.created_at,
        "done_at": item.done_at,
    }


def outbox_from_row(row: Row) -> OutboxItem:
    return OutboxItem(
        key=row["key"],
        topic=row["topic"],
        payload=dict(row["payload"]),
        tenant_id=TenantId(row["tenant_id"]),
        item_id=row["id"],
        attempts=row["attempts"],
        next_attempt_at=row["next_attempt_at"],
        last_error=row["last_error"],
        last_error_code=row["last_error_code"],
        created_at=row["created_at"],
        done_at=row["done_at"],
    )


def _pair(first: str | None, second: str | None) -> tuple[str, str] | None:
    return (first, second) if first is not None and second is not None else None


def context_row(context: CallContext) -> dict[str, Any]:
    clicked = context.clicked or (None, None)
    chosen = context.chosen or (None, None)
    matches = context.matches
    return {
        "tenant_id": context.tenant_id,
        "call_id": context.call_id,
        "agent_id": context.agent_id,
        "clicked_object": clicked[0],
        "clicked_id": clicked[1],
        "chosen_object": chosen[0],
        "chosen_id": chosen[1],
        "matches": [dict(m) for m in matches] if matches is not None else None,
        "updated_at": context.updated_at,
    }


def context_from_row(row: Row) -> CallContext:
    matches = row["matches"]
    return CallContext(
        tenant_id=TenantId(row["tenant_id"]),
        call_id=CallId(row["call_id"]),
        agent_id=AgentId(row["agent_id"]),
        clicked=_pair(row["clicked_object"], row["clicked_id"]),
        chosen=_pair(row["chosen_object"], row["chosen_id"]),
        matches=tuple(dict(m) for m in matches) if matches is not None else None,
        updated_at=row["updated_at"],
    )


def merge_contexts(contexts: Iterable[CallContext]) -> list[CallContext]:
    """One context per (tenant, call, agent), in first-seen order: later fields given win."""
    merged: dict[tuple[str, str, str], CallContext] = {}
    for context in contexts:
        key = (context.tenant_id, context.call_id, context.agent_id)
        before = merged.get(key)
        merged[key] = context if before is None else merge_context(before, context)
    return list(merged.values())


def merge_context(old: CallContext, new: CallContext) -> CallContext:
    """``new``'s fields where given, else ``old``'s (the same key)."""
    return CallContext(
        tenant_id=new.tenant_id,
        call_id=new.call_id,
        agent_id=new.agent_id,
        clicked=new.clicked if new.clicked is not None else old.clicked,
        chosen=new.chosen if new.chosen is not None else old.chosen,
        matches=new.matches if new.matches is not None else old.matches,
        updated_at=new.updated_at,
    )


def call_row(call: Call, updated_at: float) -> dict[str, Any]:
    return {
        "call_id": call.call_id,
        "tenant_id": call.tenant_id,
        "pbx": call.pbx,
        "state": call.state.value,
        "direction": call.direction.value,
        "from_number": call.from_number,
        "to_number": call.to_number,
        "missed": call.missed,
        "started_at": call.started_at,
        "answered_at": call.answered_at,
        "ended_at": call.ended_at,
        "end_reason": call.end_reason.value if call.end_reason else None,
        "seq": call.seq,
        "updated_at": updated_at,
        "data": call_to_dict(call),
    }


def call_from_row(row: Row) -> Call:
    return call_from_dict(row["data"])


def _leg_row(call: Call, position: int, leg: Leg) -> dict[str, Any]:
    agent = leg.agent or AgentRef()
    return {
        "call_id": call.call_id,
        "position": position,
        "leg_id": leg.leg_id,
        "tenant_id": call.tenant_id,
        "party": leg.party,
        "originator": leg.originator,
        "agent_user_id": agent.user_id,
        "agent_device_id": agent.device_id,
        "agent_extension": agent.extension,
        "created_at": leg.created_at,
        "answered_at": leg.answered_at,
        "ended_at": leg.ended_at,
        "hangup_cause": leg.hangup_cause,
        "node": leg.node,
    }


def leg_rows(call: Call) -> list[dict[str, Any]]:
    return [_leg_row(call, i, leg) for i, leg in enumerate(call.legs)]


def link_rows(stored: StoredCall) -> list[dict[str, Any]]:
    """``call_agents`` rows: who handled the call and who was rung, in order."""
    roles = (("handled", stored.handled_by), ("rung", stored.rung))
    return [
        {"call_id": stored.call_id, "role": role, "position": i, "agent_id": agent_id}
        for role, agent_ids in roles
        for i, agent_id in enumerate(agent_ids)
    ]


def event_row(event: ChannelEvent, call_id: str, received_at: float) -> dict[str, Any]:
    return {
        "tenant_id": event.tenant_id,
        "call_id": call_id,
        "leg_id": event.leg_id,
        "kind": event.kind.value,
        "at": event.at,
        "received_at": received_at,
        "payload": event_to_dict(event),
    }


def encode_cursor(started_at: float, call_id: str) -> str:
    raw = json.dumps([started_at, call_id], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[float, str]:
    """The ``(started_at, call_id)`` a cursor points after; InvalidRequest if it is not ours."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        started_at, call_id = json.loads(raw)
    except (binascii.Error, UnicodeDecodeError, ValueError, TypeError) as exc:
        raise InvalidRequest("invalid cursor", details={"cursor": cursor}) from exc
    if not _is_time(started_at) or not isinstance(call_id, str):
        raise InvalidRequest("invalid cursor", details={"cursor": cursor})
    return float(started_at), call_id


def _is_time(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
