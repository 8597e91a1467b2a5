"""Call-level values the normaliser produces: immutable by convention, PBX-independent."""

from __future__ import annotations

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


# The value classes below are built on every call change, thousands of times a second. They
# are written out by hand rather than as dataclasses: a dataclass's __init__ is generated at
# run time, so mypyc (see setup.py) cannot compile it, and building these through it cost
# more than all of the call derivation around them. They are values all the same: never
# mutate one after it is built (the normaliser makes a new one for every change).


class Transfer:
    __slots__ = ("at", "from_agent", "kind", "to_agent")

    def __init__(
        self, kind: str, at: float, from_agent: AgentRef | None, to_agent: AgentRef | None
    ) -> None:
        self.kind = kind
        """``blind`` or ``attended``."""
        self.at = at
        self.from_agent = from_agent
        self.to_agent = to_agent

    def _fields(self) -> tuple[object, ...]:
        return (self.kind, self.at, self.from_agent, self.to_agent)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Transfer):
            return NotImplemented
        return self._fields() == other._fields()

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Transfer{self._fields()!r}"


class Handling:
    """One agent's part of a call: each yields its own call log (seed 002)."""

    __slots__ = ("agent", "ended_at", "hold_seconds", "started_at", "transferred_to")

    def __init__(
        self,
        agent: AgentRef,
        started_at: float,
        ended_at: float | None = None,
        hold_seconds: float = 0.0,
        transferred_to: AgentRef | None = None,
    ) -> None:
        self.agent = agent
        self.started_at = started_at
        """When this agent joined the conversation (answered, or placed the call)."""
        self.ended_at = ended_at
        self.hold_seconds = hold_seconds
        self.transferred_to = transferred_to

    def _fields(self) -> tuple[object, ...]:
        return (self.agent, self.started_at, self.ended_at, self.hold_seconds, self.transferred_to)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Handling):
            return NotImplemented
        return self._fields() == other._fields()

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Handling{self._fields()!r}"


class Leg:
    """One channel of a call as the normaliser last saw it."""

    __slots__ = (
        "agent",
        "answered_at",
        "created_at",
        "ended_at",
        "hangup_cause",
        "leg_id",
        "node",
        "originator",
        "party",
    )

    def __init__(
        self,
        leg_id: str,
        party: str,
        agent: AgentRef | None,
        originator: bool,
        created_at: float,
        answered_at: float | None = None,
        ended_at: float | None = None,
        hangup_cause: str | None = None,
        node: str | None = None,
    ) -> None:
        self.leg_id = leg_id
        self.party = party
        self.agent = agent
        self.originator = originator
        self.created_at = created_at
        self.answered_at = answered_at
        self.ended_at = ended_at
        self.hangup_cause = hangup_cause
        self.node = node

    def _fields(self) -> tuple[object, ...]:
        return (
            self.leg_id, self.party, self.agent, self.originator, self.created_at,
            self.answered_at, self.ended_at, self.hangup_cause, self.node,
        )  # fmt: skip

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Leg):
            return NotImplemented
        return self._fields() == other._fields()

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Leg{self._fields()!r}"


class Call:
    """A call: every leg that belongs to one conversation, seen as one record."""

    __slots__ = (
        "agents",
        "answered_at",
        "answered_by",
        "call_id",
        "current",
        "direction",
        "end_reason",
        "ended_at",
        "from_name",
        "from_number",
        "handlings",
        "hold_seconds",
        "legs",
        "missed",
        "origin_tag",
        "pbx",
        "recordings",
        "rung",
        "seq",
        "started_at",
        "state",
        "talk_seconds",
        "tenant_id",
        "to_name",
        "to_number",
        "transfers",
    )

    def __init__(
        self,
        call_id: str,
        tenant_id: str,
        state: CallState,
        direction: Direction,
        pbx: str = "kazoo",
        from_number: str | None = None,
        from_name: str | None = None,
        to_number: str | None = None,
        to_name: str | None = None,
        agents: tuple[AgentRef, ...] = (),
        rung: tuple[AgentRef, ...] = (),
        current: tuple[AgentRef, ...] = (),
        answered_by: AgentRef | None = None,
        missed: bool = False,
        started_at: float = 0.0,
        answered_at: float | None = None,
        ended_at: float | None = None,
        hold_seconds: float = 0.0,
        talk_seconds: float = 0.0,
        transfers: tuple[Transfer, ...] = (),
        handlings: tuple[Handling, ...] = (),
        recordings: tuple[Recording, ...] = (),
        end_reason: EndReason | None = None,
        origin_tag: str | None = None,
        legs: tuple[Leg, ...] = (),
        seq: int = 0,
    ) -> None:
        self.call_id = call_id
        self.tenant_id = tenant_id
        self.state = state
        self.direction = direction
        self.pbx = pbx
        self.from_number = from_number
        self.from_name = from_name
        self.to_number = to_number
        self.to_name = to_name
        self.agents = agents
        """Every agent who handled the call (placed it or answered it), in order."""
        self.rung = rung
        """Every agent whose phone rang for it, in order."""
        self.current = current
        """Agents on the call right now."""
        self.answered_by = answered_by
        """The first person who answered (outbound: the agent who placed it, once answered)."""
        self.missed = missed
        self.started_at = started_at
        self.answered_at = answered_at
        self.ended_at = ended_at
        self.hold_seconds = hold_seconds
        self.talk_seconds = talk_seconds
        """Answered to ended, hold excluded."""
        self.transfers = transfers
        self.handlings = handlings
        self.recordings = recordings
        self.end_reason = end_reason
        self.origin_tag = origin_tag
        self.legs = legs
        self.seq = seq
        """Monotonic per call; bumped on every emitted change."""

    @property
    def remote_number(self) -> str | None:
        """The other party as an agent on this call sees it."""
        return self.to_number if self.direction is Direction.OUTBOUND else self.from_number

    def replace(
        self,
        *,
        state: CallState | None = None,
        seq: int | None = None,
        legs: tuple[Leg, ...] | None = None,
    ) -> Call:
        """A copy with another state, seq or legs (what the normaliser ever changes)."""
        return Call(
            self.call_id, self.tenant_id, self.state if state is None else state,
            self.direction, self.pbx, self.from_number, self.from_name, self.to_number,
            self.to_name, self.agents, self.rung, self.current, self.answered_by, self.missed,
            self.started_at, self.answered_at, self.ended_at, self.hold_seconds,
            self.talk_seconds, self.transfers, self.handlings, self.recordings,
            self.end_reason, self.origin_tag, self.legs if legs is None else legs,
            self.seq if seq is None else seq,
        )  # fmt: skip

    def _fields(self) -> tuple[object, ...]:
        return (
            self.call_id, self.tenant_id, self.state, self.direction, self.pbx,
            self.from_number, self.from_name, self.to_number, self.to_name, self.agents,
            self.rung, self.current, self.answered_by, self.missed, self.started_at,
            self.answered_at, self.ended_at, self.hold_seconds, self.talk_seconds,
            self.transfers, self.handlings, self.recordings, self.end_reason,
            self.origin_tag, self.legs, self.seq,
        )  # fmt: skip

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Call):
            return NotImplemented
        return self._fields() == other._fields()

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return (
            f"Call({self.call_id!r}, state={self.state.value}, direction="
            f"{self.direction.value}, from={self.from_number!r}, to={self.to_number!r}, "
            f"seq={self.seq})"
        )


class CallChanged:
    """Emitted by the normaliser: ``name`` happened to ``call`` (the call after the change)."""

    __slots__ = ("call", "name", "replaces")

    def __init__(self, name: CallEventName, call: Call, replaces: tuple[str, ...] = ()) -> None:
        self.name = name
        self.call = call
        self.replaces = replaces
        """Call ids merged into this one (attended transfer, late grouping)."""

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, CallChanged):
            return NotImplemented
        return (self.name, self.call, self.replaces) == (other.name, other.call, other.replaces)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"CallChanged({self.name.value}, {self.call!r})"
