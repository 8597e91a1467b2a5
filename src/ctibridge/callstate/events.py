"""The channel-event model every PBX mapping produces and the normaliser consumes.

A :class:`ChannelEvent` says one thing that happened to one leg (channel) on the phone
system, already stripped of the PBX's wire names. Nothing downstream of this module knows
which phone system an event came from, except through the ``pbx`` label kept for logs.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Final

__all__ = ["AgentRef", "ChannelEvent", "LegEventKind", "Party", "Recording"]


class LegEventKind(StrEnum):
    """What happened to the leg."""

    CREATED = "created"
    """The leg exists (Kazoo CHANNEL_CREATE, AMI Newchannel, ESL CHANNEL_CREATE)."""
    RINGING = "ringing"
    """The leg's endpoint is alerting."""
    EARLY = "early"
    """Early media (progress with audio). Never an answer."""
    ANSWERED = "answered"
    """The leg's endpoint answered (a person picked up, or the PBX answered it)."""
    BRIDGED = "bridged"
    """The leg is now connected to ``other_leg_id``."""
    HELD = "held"
    """The leg's endpoint put the call on hold."""
    UNHELD = "unheld"
    """The leg's endpoint took the call off hold."""
    DESTROYED = "destroyed"
    """The leg is gone; ``hangup_cause`` says why."""
    SNAPSHOT = "snapshot"
    """The leg is alive right now as a resync listing shows it (after a reconnect).
    ``answered``/``held`` flags carry its state; it never ends anything by itself."""


class Party(StrEnum):
    """Who is at the far end of a leg, from the business's point of view."""

    AGENT = "agent"
    """A user's phone or device: a person of ours."""
    TRUNK = "trunk"
    """A carrier, gateway or resource: the outside world."""
    SYSTEM = "system"
    """A PBX application: voicemail, IVR, queue, conference, feature code."""
    UNKNOWN = "unknown"


class AgentRef:
    """How the phone system names the person on a leg. Mapped to our agents by services.

    Immutable and hashable. Written out rather than a frozen dataclass: it is compared and
    hashed on every call change, and a dataclass's generated ``__eq__``/``__hash__`` cannot
    be compiled by mypyc (see setup.py)."""

    __slots__ = ("device_id", "extension", "user_id")

    user_id: Final[str | None]
    """PBX user id (Kazoo owner_id)."""
    device_id: Final[str | None]
    """PBX device id (Kazoo authorizing_id, Asterisk endpoint, FreeSWITCH user)."""
    extension: Final[str | None]
    """The extension, where the phone system gives one."""

    def __init__(
        self,
        user_id: str | None = None,
        device_id: str | None = None,
        extension: str | None = None,
    ) -> None:
        self.user_id = user_id
        self.device_id = device_id
        self.extension = extension

    @property
    def label(self) -> str:
        """Extension where known, else the PBX user id, else the device id."""
        return self.extension or self.user_id or self.device_id or "?"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, AgentRef):
            return NotImplemented
        return (
            self.user_id == other.user_id
            and self.device_id == other.device_id
            and self.extension == other.extension
        )

    def __hash__(self) -> int:
        return hash((self.user_id, self.device_id, self.extension))

    def __repr__(self) -> str:
        return (
            f"AgentRef(user_id={self.user_id!r}, device_id={self.device_id!r}, "
            f"extension={self.extension!r})"
        )


@dataclass(frozen=True, slots=True)
class Recording:
    """A recording the phone system made of (part of) a call."""

    ref: str
    """PBX-side reference: Kazoo recording id or media name, a file path, a URL."""
    url: str | None = None
    started_at: float | None = None
    duration_seconds: float | None = None


@dataclass(frozen=True, slots=True)
class ChannelEvent:
    """One thing that happened to one leg."""

    kind: LegEventKind
    tenant_id: str
    """Kazoo account id; the configured tenant for Asterisk/FreeSWITCH."""
    leg_id: str
    at: float
    """Event time, unix seconds, from the PBX (never our clock)."""
    pbx: str = "kazoo"
    node: str | None = None
    """Media server / switch node that reported it (channel moves between nodes)."""
    event_id: str | None = None
    """PBX message id, when there is one (used with leg_id and kind to drop duplicates)."""
    group_key: str | None = None
    """Best grouping key: Kazoo call_interaction_id, Asterisk Linkedid, FreeSWITCH call uuid."""
    bridge_key: str | None = None
    """Fallback grouping key: Kazoo bridge_id (usually the A-leg id)."""
    other_leg_id: str | None = None
    """The leg this one is (or is about to be) connected to."""
    originator: bool = False
    """True when this leg started the call (it came *into* the switch: the A-leg)."""
    party: Party = Party.UNKNOWN
    agent: AgentRef | None = None
    """Set when ``party`` is AGENT."""
    caller_number: str | None = None
    caller_name: str | None = None
    callee_number: str | None = None
    callee_name: str | None = None
    dialed_number: str | None = None
    """What was dialled on this leg (request / destination number)."""
    origin_tag: str | None = None
    """Our own click-to-dial request id when we originated this call (then it is outbound)."""
    hangup_cause: str | None = None
    """Upper-case cause name: NORMAL_CLEARING, USER_BUSY, NO_ANSWER, LOSE_RACE, ..."""
    answered: bool = False
    """SNAPSHOT only: the leg is answered."""
    held: bool = False
    """SNAPSHOT only: the leg is on hold."""
    recordings: tuple[Recording, ...] = ()
    moving: bool = False
    """The channel is moving to another media server: a DESTROY with this flag ends nothing."""
    application: str | None = None
    """For SYSTEM legs: which PBX application answered (``voicemail``, ``ivr``, ``queue``...)."""
