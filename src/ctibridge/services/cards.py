"""The call card: the JSON shape agents' browsers and the REST API see."""

from __future__ import annotations

from typing import Any

from ctibridge.callstate.events import AgentRef
from ctibridge.callstate.model import Call
from ctibridge.storage.base import StoredCall

__all__ = ["call_card"]


def _label(ref: AgentRef | None) -> str | None:
    return ref.label if ref is not None else None


def call_card(stored: StoredCall) -> dict[str, Any]:
    """Public form of a call (no PBX internals such as leg ids)."""
    c: Call = stored.call
    return {
        "call_id": c.call_id,
        "tenant_id": c.tenant_id,
        "state": c.state.value,
        "direction": c.direction.value,
        "from_number": c.from_number,
        "from_name": c.from_name,
        "to_number": c.to_number,
        "to_name": c.to_name,
        "remote_number": c.remote_number,
        "agents": [a.label for a in c.agents],
        "rung": [a.label for a in c.rung],
        "current": [a.label for a in c.current],
        "answered_by": _label(c.answered_by),
        "agent_ids": list(stored.handled_by),
        "rung_agent_ids": list(stored.rung),
        "missed": c.missed,
        "started_at": c.started_at,
        "answered_at": c.answered_at,
        "ended_at": c.ended_at,
        "talk_seconds": round(c.talk_seconds, 3),
        "hold_seconds": round(c.hold_seconds, 3),
        "transfers": [
            {"kind": t.kind, "at": t.at, "from": _label(t.from_agent), "to": _label(t.to_agent)}
            for t in c.transfers
        ],
        "recordings": [{"ref": r.ref, "url": r.url} for r in c.recordings],
        "end_reason": c.end_reason.value if c.end_reason else None,
        "origin_tag": c.origin_tag,
        "seq": c.seq,
    }
