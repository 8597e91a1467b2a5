"""Plain-dict (JSON) forms of channel events and calls, for storage, the API and replay."""

from __future__ import annotations

from typing import Any

from ctibridge.callstate.events import AgentRef, ChannelEvent, LegEventKind, Party, Recording
from ctibridge.callstate.model import (
    Call,
    CallState,
    Direction,
    EndReason,
    Handling,
    Leg,
    Transfer,
)

__all__ = [
    "agent_from_dict",
    "agent_to_dict",
    "call_from_dict",
    "call_to_dict",
    "event_from_dict",
    "event_to_dict",
]

_EVENT_SIMPLE = (
    "tenant_id", "leg_id", "at", "pbx", "node", "event_id", "group_key", "bridge_key",
    "other_leg_id", "originator", "caller_number", "caller_name", "callee_number",
    "callee_name", "dialed_number", "origin_tag", "hangup_cause", "answered", "held",
    "moving", "application",
)  # fmt: skip


def agent_to_dict(ref: AgentRef | None) -> dict[str, Any] | None:
    if ref is None:
        return None
    return {"user_id": ref.user_id, "device_id": ref.device_id, "extension": ref.extension}


def agent_from_dict(data: dict[str, Any] | None) -> AgentRef | None:
    if data is None:
        return None
    return AgentRef(data.get("user_id"), data.get("device_id"), data.get("extension"))


def _recording_to_dict(rec: Recording) -> dict[str, Any]:
    return {
        "ref": rec.ref,
        "url": rec.url,
        "started_at": rec.started_at,
        "duration_seconds": rec.duration_seconds,
    }


def _recording_from_dict(data: dict[str, Any]) -> Recording:
    return Recording(
        data["ref"], data.get("url"), data.get("started_at"), data.get("duration_seconds")
    )


def event_to_dict(event: ChannelEvent) -> dict[str, Any]:
    out: dict[str, Any] = {"kind": event.kind.value, "party": event.party.value}
    for name in _EVENT_SIMPLE:
        out[name] = getattr(event, name)
    out["agent"] = agent_to_dict(event.agent)
    out["recordings"] = [_recording_to_dict(r) for r in event.recordings]
    return out


def event_from_dict(data: dict[str, Any]) -> ChannelEvent:
    kwargs: dict[str, Any] = {name: data.get(name) for name in _EVENT_SIMPLE}
    for flag in ("originator", "answered", "held", "moving"):
        kwargs[flag] = bool(kwargs[flag])
    kwargs["pbx"] = kwargs["pbx"] or "kazoo"
    return ChannelEvent(
        kind=LegEventKind(data["kind"]),
        party=Party(data.get("party", "unknown")),
        agent=agent_from_dict(data.get("agent")),
        recordings=tuple(_recording_from_dict(r) for r in data.get("recordings", ())),
        **kwargs,
    )


def _leg_to_dict(leg: Leg) -> dict[str, Any]:
    return {
        "leg_id": leg.leg_id,
        "party": leg.party,
        "agent": agent_to_dict(leg.agent),
        "originator": leg.originator,
        "created_at": leg.created_at,
        "answered_at": leg.answered_at,
        "ended_at": leg.ended_at,
        "hangup_cause": leg.hangup_cause,
        "node": leg.node,
    }


def _leg_from_dict(data: dict[str, Any]) -> Leg:
    return Leg(
        leg_id=data["leg_id"],
        party=data["party"],
        agent=agent_from_dict(data.get("agent")),
        originator=bool(data.get("originator")),
        created_at=data["created_at"],
        answered_at=data.get("answered_at"),
        ended_at=data.get("ended_at"),
        hangup_cause=data.get("hangup_cause"),
        node=data.get("node"),
    )


def _transfer_to_dict(t: Transfer) -> dict[str, Any]:
    return {
        "kind": t.kind,
        "at": t.at,
        "from_agent": agent_to_dict(t.from_agent),
        "to_agent": agent_to_dict(t.to_agent),
    }


def _handling_to_dict(h: Handling) -> dict[str, Any]:
    return {
        "agent": agent_to_dict(h.agent),
        "started_at": h.started_at,
        "ended_at": h.ended_at,
        "hold_seconds": h.hold_seconds,
        "transferred_to": agent_to_dict(h.transferred_to),
    }


def call_to_dict(call: Call) -> dict[str, Any]:
    return {
        "call_id": call.call_id,
        "tenant_id": call.tenant_id,
        "pbx": call.pbx,
        "state": call.state.value,
        "direction": call.direction.value,
        "from_number": call.from_number,
        "from_name": call.from_name,
        "to_number": call.to_number,
        "to_name": call.to_name,
        "agents": [agent_to_dict(a) for a in call.agents],
        "rung": [agent_to_dict(a) for a in call.rung],
        "current": [agent_to_dict(a) for a in call.current],
        "answered_by": agent_to_dict(call.answered_by),
        "missed": call.missed,
        "started_at": call.started_at,
        "answered_at": call.answered_at,
        "ended_at": call.ended_at,
        "hold_seconds": call.hold_seconds,
        "talk_seconds": call.talk_seconds,
        "transfers": [_transfer_to_dict(t) for t in call.transfers],
        "handlings": [_handling_to_dict(h) for h in call.handlings],
        "recordings": [_recording_to_dict(r) for r in call.recordings],
        "end_reason": call.end_reason.value if call.end_reason else None,
        "origin_tag": call.origin_tag,
        "legs": [_leg_to_dict(leg) for leg in call.legs],
        "seq": call.seq,
    }


def _agents(items: list[dict[str, Any]]) -> tuple[AgentRef, ...]:
    return tuple(a for a in (agent_from_dict(i) for i in items) if a is not None)


def call_from_dict(data: dict[str, Any]) -> Call:
    return Call(
        call_id=data["call_id"],
        tenant_id=data["tenant_id"],
        pbx=data.get("pbx", "kazoo"),
        state=CallState(data["state"]),
        direction=Direction(data["direction"]),
        from_number=data.get("from_number"),
        from_name=data.get("from_name"),
        to_number=data.get("to_number"),
        to_name=data.get("to_name"),
        agents=_agents(data.get("agents", [])),
        rung=_agents(data.get("rung", [])),
        current=_agents(data.get("current", [])),
        answered_by=agent_from_dict(data.get("answered_by")),
        missed=bool(data.get("missed")),
        started_at=data.get("started_at", 0.0),
        answered_at=data.get("answered_at"),
        ended_at=data.get("ended_at"),
        hold_seconds=data.get("hold_seconds", 0.0),
        talk_seconds=data.get("talk_seconds", 0.0),
        transfers=tuple(
            Transfer(
                t["kind"],
                t["at"],
                agent_from_dict(t.get("from_agent")),
                agent_from_dict(t.get("to_agent")),
            )
            for t in data.get("transfers", [])
        ),
        handlings=tuple(
            Handling(
                agent=agent_from_dict(h["agent"]) or AgentRef(),
                started_at=h["started_at"],
                ended_at=h.get("ended_at"),
                hold_seconds=h.get("hold_seconds", 0.0),
                transferred_to=agent_from_dict(h.get("transferred_to")),
            )
            for h in data.get("handlings", [])
        ),
        recordings=tuple(_recording_from_dict(r) for r in data.get("recordings", [])),
        end_reason=EndReason(data["end_reason"]) if data.get("end_reason") else None,
        origin_tag=data.get("origin_tag"),
        legs=tuple(_leg_from_dict(x) for x in data.get("legs", [])),
        seq=data.get("seq", 0),
    )
