"""Call-level values the normaliser produces: frozen, PBX-independent."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from ctibridge.callstate.events import AgentRef, Recording

__all__ = [
    "Call",
    "CallChanged",
    "CallEventName",
    "CallState",
    "Direction",
    "EndReason",
    "Handling",
    "Leg",
    "Transfer",
]


class CallState(StrEnum):
    NEW = "new"
    """Created; no callee is alerted yet (dialling, IVR, queue)."""
    RINGING = "ringing"
    ANSWERED = "answered"
    HELD = "held"
    ENDED = "ended"


class Direction(StrEnum):
    INBOUND = "inbound"
    OUTBOUND = "outbound"
    INTERNAL = "internal"


class CallEventName(StrEnum):
    """Call-card events, in the order a call can emit them."""

    CREATED = "created"
    RINGING = "ringing"
    ANSWERED = "answered"
    HELD = "held"
    RESUMED = "resumed"
    TRANSFERRED = "transferred"
    UPDATED = "updated"
    ENDED = "ended"


class EndReason(StrEnum):
    COMPLETED = "completed"
    """Answered by a person, then hung up."""
    NO_ANSWER = "no_answer"
    """Rang out or the caller gave up: nobody answered."""
    BUSY = "busy"
    REJECTED = "rejected"
    FAILED = "failed"
    """The PBX could not place the call (congestion, unallocated, unregistered...)."""
    VOICEMAIL = "voicemail"
    """Answered by the phone system (voicemail, IVR), never by a person."""
    TRANSFERRED = "transferred"
    """A consultation call that became part of another call through an attended transfer."""


@dataclass(frozen=True, slots=True)
class Transfer:
    kind: str
    """``blind`` or ``attended``."""
    at: float
    from_agent: AgentRef | None
    to_agent: AgentRef | None


@dataclass(frozen=True, slots=True)
class Handling:
    """One agent's part of a call: each yields its own call log (seed 002)."""

    agent: AgentRef
    started_at: float
    """When this agent joined the conversation (answered, or placed the call)."""
    ended_at: float | None = None
    hold_seconds: float = 0.0
    transferred_to: AgentRef | None = None


# Leg and Call are built on every call change, thousands of times a second: a frozen
# dataclass spends ~5x longer in __init__ (one object.__setattr__ call per field) than a plain
# slots dataclass, which dominated the normaliser's profile. They are still values: nothing
# may mutate one after it is built (the normaliser makes a new one for every change).
@dataclass(slots=True)
class Leg:
    """One channel of a call as the normaliser last saw it."""

    leg_id: str
    party: str
    agent: AgentRef | None
    originator: bool
    created_at: float
    answered_at: float | None = None
    ended_at: float | None = None
    hangup_cause: str | None = None
    node: str | None = None


@dataclass(slots=True)
class Call:
    call_id: str
    tenant_id: str
    state: CallState
    direction: Direction
    pbx: str = "kazoo"
    from_number: str | None = None
    from_name: str | None = None
    to_number: str | None = None
    to_name: str | None = None
    agents: tuple[AgentRef, ...] = ()
    """Every agent who handled the call (placed it or answered it), in order."""
    rung: tuple[AgentRef, ...] = ()
    """Every agent whose phone rang for it, in order."""
    current: tuple[AgentRef, ...] = ()
    """Agents on the call right now."""
    answered_by: AgentRef | None = None
    """The first person who answered (for outbound: the agent who placed it, once answered)."""
    missed: bool = False
    started_at: float = 0.0
    answered_at: float | None = None
    ended_at: float | None = None
    hold_seconds: float = 0.0
    talk_seconds: float = 0.0
    """Answered to ended, hold excluded."""
    transfers: tuple[Transfer, ...] = ()
    handlings: tuple[Handling, ...] = ()
    recordings: tuple[Recording, ...] = ()
    end_reason: EndReason | None = None
    origin_tag: str | None = None
    legs: tuple[Leg, ...] = ()
    seq: int = 0
    """Monotonic per call; bumped on every emitted change."""

    @property
    def remote_number(self) -> str | None:
        """The other party as an agent on this call sees it."""
        return self.to_number if self.direction is Direction.OUTBOUND else self.from_number


@dataclass(frozen=True, slots=True)
class CallChanged:
    """Emitted by the normaliser: ``name`` happened to ``call`` (the call after the change)."""

    name: CallEventName
    call: Call
    replaces: tuple[str, ...] = field(default=())
    """Call ids merged into this one (attended transfer, late grouping)."""
