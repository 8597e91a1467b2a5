"""Values for the storage tests, built from the call-state model directly."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ctibridge.callstate.events import AgentRef, ChannelEvent, LegEventKind, Party
from ctibridge.callstate.model import Call, CallState, Direction, Leg
from ctibridge.storage.base import CallWrite, StoredCall, Tenant
from ctibridge.types import AgentId, CallId, TenantId

T1 = TenantId("acct-1")
T2 = TenantId("acct-2")
TENANT = Tenant(T1, "Acme Ltd")


def make_call(call_id: str, **changes: Any) -> Call:
    values: dict[str, Any] = {
        "call_id": call_id,
        "tenant_id": T1,
        "state": CallState.ANSWERED,
        "direction": Direction.INBOUND,
        "from_number": "+441202528735",
        "to_number": "+441202000100",
        "started_at": 1_700_000_000.0,
        "seq": 1,
    }
    values.update(changes)
    return Call(**values)


def make_leg(leg_id: str, **changes: Any) -> Leg:
    values: dict[str, Any] = {
        "leg_id": leg_id,
        "party": "trunk",
        "agent": None,
        "originator": False,
        "created_at": 1_700_000_000.0,
    }
    values.update(changes)
    return Leg(**values)


def make_event(leg_id: str, at: float, **changes: Any) -> ChannelEvent:
    values: dict[str, Any] = {
        "kind": LegEventKind.CREATED,
        "tenant_id": T1,
        "leg_id": leg_id,
        "at": at,
        "party": Party.TRUNK,
    }
    values.update(changes)
    return ChannelEvent(**values)


def write(
    call: Call,
    *,
    handled: Sequence[str] = (),
    rung: Sequence[str] = (),
    events: Sequence[ChannelEvent] = (),
    replaces: Sequence[str] = (),
) -> CallWrite:
    stored = StoredCall(
        call,
        handled_by=tuple(AgentId(a) for a in handled),
        rung=tuple(AgentId(a) for a in rung),
    )
    return CallWrite(stored, events=tuple(events), replaces=tuple(CallId(r) for r in replaces))


ALICE_REF = AgentRef(user_id="u-alice", device_id="d-alice", extension="201")
