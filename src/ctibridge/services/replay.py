"""Replay a captured event stream through the normaliser: one record per finished call.

This is the support tool behind ``ctibridge replay`` and the way captures become tests.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from typing import Any, BinaryIO, TypeVar

from ctibridge.callstate import kazoo as kazoo_map
from ctibridge.callstate.asterisk import AsteriskMapper
from ctibridge.callstate.events import ChannelEvent
from ctibridge.callstate.freeswitch import EVENT_NAMES as FS_EVENT_NAMES
from ctibridge.callstate.freeswitch import FreeswitchMapper
from ctibridge.callstate.model import Call, CallEventName
from ctibridge.callstate.normaliser import Normaliser
from ctibridge.errors import FieldError, FrameError
from ctibridge.protocols import kazoo as kazoo_proto
from ctibridge.protocols.ami import AmiProtocol
from ctibridge.protocols.esl import EslProtocol
from ctibridge.protocols.streams import GeneratorProtocol

__all__ = ["asterisk_events", "call_record", "freeswitch_events", "kazoo_events", "replay"]

logger = logging.getLogger(__name__)

OnError = Callable[[int, Exception], None]
_M = TypeVar("_M")


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


def _chunks(stream: BinaryIO, size: int = 65536) -> Iterator[bytes]:
    while chunk := stream.read(size):
        yield chunk


def _messages(
    stream: BinaryIO, protocol: GeneratorProtocol[_M], on_error: OnError | None
) -> Iterator[tuple[int, _M]]:
    """(message number, message) until the stream ends or breaks (a FrameError is reported
    as the number of the message that could not be read)."""
    count = 0
    while True:
        chunk = stream.read(65536)
        try:
            if chunk:
                protocol.receive_data(chunk)
            else:
                protocol.receive_eof()
        except FrameError as exc:
            if on_error is not None:
                on_error(count + len(protocol.events_received()) + 1, exc)
            return
        for message in protocol.events_received():
            count += 1
            yield count, message
        if not chunk:
            return


def asterisk_events(
    stream: BinaryIO,
    *,
    tenant_id: str = "asterisk",
    internal_digits: int = 5,
    on_error: OnError | None = None,
) -> Iterator[ChannelEvent]:
    """Channel events from a raw AMI byte stream (banner, responses and events)."""
    mapper = AsteriskMapper(tenant_id, internal_digits=internal_digits)
    for number, message in _messages(stream, AmiProtocol(), on_error):
        try:
            yield from mapper.feed(message)
        except FieldError as exc:
            if on_error is not None:
                on_error(number, exc)


def freeswitch_events(
    stream: BinaryIO,
    *,
    tenant_id: str = "freeswitch",
    internal_digits: int = 5,
    on_error: OnError | None = None,
) -> Iterator[ChannelEvent]:
    """Channel events from a raw ESL byte stream (``text/event-plain`` or ``-json``)."""
    mapper = FreeswitchMapper(tenant_id, internal_digits=internal_digits)
    for number, message in _messages(stream, EslProtocol(), on_error):
        if not message.is_event or message.event_name not in FS_EVENT_NAMES:
            continue
        try:
            yield from mapper.feed(message.event())
        except FieldError as exc:
            if on_error is not None:
                on_error(number, exc)


def replay(events: Iterable[ChannelEvent], *, internal_digits: int = 5) -> Iterator[Call]:
    """Finished calls in the order they end."""
    normaliser = Normaliser(internal_digits=internal_digits)
    for event in events:
        for change in normaliser.apply(event):
            if change.name is CallEventName.ENDED:
                yield change.call
