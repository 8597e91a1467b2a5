"""Replay a captured event stream through the normaliser: one record per finished call.

This is the support tool behind ``ctibridge replay`` and the way captures become tests.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from typing import Any

from ctibridge.callstate import kazoo as kazoo_map
from ctibridge.callstate.events import ChannelEvent
from ctibridge.callstate.model import Call, CallEventName
from ctibridge.callstate.normaliser import Normaliser
from ctibridge.errors import FieldError
from ctibridge.protocols import kazoo as kazoo_proto

__all__ = ["call_record", "kazoo_events", "replay"]

logger = logging.getLogger(__name__)

OnError = Callable[[int, Exception], None]


def _iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return datetime.fromtimestamp(int(ts), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def call_record(call: Call) -> dict[str, Any]:
    """The replay line for a finished call."""
    return {
        "call_id": call.call_id,
        "direction": call.direction.value,
        "from": call.from_number,
        "to": call.to_number,
        "agents": [a.label for a in call.agents],
        "answered_by": call.answered_by.label if call.answered_by else None,
        "missed": call.missed,
        "started_at": _iso(call.started_at),
        "answered_at": _iso(call.answered_at),
        "ended_at": _iso(call.ended_at),
        "talk_seconds": round(call.talk_seconds),
        "hold_seconds": round(call.hold_seconds),
        "transfers": [
            {
                "kind": t.kind,
                "from": t.from_agent.label if t.from_agent else None,
                "to": t.to_agent.label if t.to_agent else None,
            }
            for t in call.transfers
        ],
        "recordings": [r.ref for r in call.recordings],
        "end_reason": call.end_reason.value if call.end_reason else None,
    }


def kazoo_events(
    lines: Iterable[str], *, internal_digits: int = 5, on_error: OnError | None = None
) -> Iterator[ChannelEvent]:
    """Channel events from JSON lines of blackhole websocket messages (replies skipped)."""
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            message = kazoo_proto.parse(line)
            if isinstance(message, kazoo_proto.KazooReply):
                continue
            event = kazoo_map.map_event(message, internal_digits=internal_digits)
        except FieldError as exc:
            if on_error is not None:
                on_error(number, exc)
            continue
        if event is not None:
            yield event


def replay(events: Iterable[ChannelEvent], *, internal_digits: int = 5) -> Iterator[Call]:
    """Finished calls in the order they end."""
    normaliser = Normaliser(internal_digits=internal_digits)
    for event in events:
        for change in normaliser.apply(event):
            if change.name is CallEventName.ENDED:
                yield change.call
