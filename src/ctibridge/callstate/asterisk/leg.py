"""The Asterisk mapper's state for one leg (one channel, by Uniqueid)."""

from __future__ import annotations

from dataclasses import dataclass, field

from ctibridge.callstate.events import AgentRef, Party, Recording


@dataclass(slots=True)
class _Leg:
    leg_id: str
    channel: str
    key: str
    party: Party
    agent: AgentRef | None
    plumbing: bool
    incoming: bool
    originator: bool = False
    caller_number: str | None = None
    caller_name: str | None = None
    callee_number: str | None = None
    callee_name: str | None = None
    dialed_number: str | None = None
    application: str | None = None
    up: bool = False
    rang: bool = False
    cause: str | None = None
    """A cause that names what really ended the leg (transfer, pickup)."""
    peer: str | None = None
    recordings: list[Recording] = field(default_factory=list)
