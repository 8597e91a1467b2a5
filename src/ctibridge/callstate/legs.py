"""What the normaliser knows about one leg, accumulated from its events.

Every fact is combined so that the order events arrive in does not matter: times are the
earliest (or, for hold, the set of hold/unhold instants), and each descriptive field takes the
value of the earliest event that carried one (ties broken by event kind, then value). The same
set of events therefore always yields the same facts, however they were shuffled or repeated.
"""

from __future__ import annotations

import operator

from ctibridge.callstate.events import AgentRef, ChannelEvent, LegEventKind, Party, Recording
from ctibridge.callstate.model import Leg

__all__ = ["LegFacts"]

# Rank of each kind when two events carry the same time: the natural order of a leg's life.
_RANK: dict[LegEventKind, int] = {
    LegEventKind.CREATED: 0,
    LegEventKind.SNAPSHOT: 1,
    LegEventKind.RINGING: 2,
    LegEventKind.EARLY: 3,
    LegEventKind.ANSWERED: 4,
    LegEventKind.BRIDGED: 5,
    LegEventKind.HELD: 6,
    LegEventKind.UNHELD: 7,
    LegEventKind.DESTROYED: 8,
}

_UNKNOWN = Party.UNKNOWN
_HOLD = 0
_UNHOLD = 1

# Descriptive fields taken from the earliest event that carries them.
_FIELDS = (
    "caller_number",
    "caller_name",
    "callee_number",
    "callee_name",
    "dialed_number",
    "origin_tag",
    "application",
    "node",
)
_GET_FIELDS = operator.attrgetter(*_FIELDS)


class LegFacts:
    """Mutable accumulator; owned by one normaliser, never shared."""

    __slots__ = (
        "_fields",
        "agent",
        "answered_at",
        "application",
        "bridges",
        "callee_name",
        "callee_number",
        "caller_name",
        "caller_number",
        "created_at",
        "dialed_number",
        "early_at",
        "ended_at",
        "hangup_cause",
        "holds",
        "leg_cache",
        "leg_id",
        "linked",
        "node",
        "origin_tag",
        "originator",
        "party",
        "recordings",
        "seen",
        "tenant_id",
        "version",
    )

    def __init__(self, leg_id: str, tenant_id: str) -> None:
        self.leg_id = leg_id
        self.tenant_id = tenant_id
        self.created_at: float | None = None
        self.answered_at: float | None = None
        self.early_at: float | None = None
        self.ended_at: float | None = None
        self.hangup_cause: str | None = None
        self.party = Party.UNKNOWN
        self.agent: AgentRef | None = None
        self.originator = False
        self.holds: set[tuple[float, int]] = set()
        """(time, _HOLD or _UNHOLD): a hold and an unhold at the same instant sort hold first."""
        self.bridges: dict[str, float] = {}
        """other leg id -> earliest bridge time."""
        self.recordings: set[Recording] = set()
        self.seen: set[tuple[object, ...]] = set()
        self.leg_cache: tuple[tuple[int, float | None, float | None], Leg] | None = None
        """The last ``Leg`` value built from these facts (derive reuses it while unchanged)."""
        self.linked: set[str] = set()
        """Grouping keys this leg was already united with (normaliser bookkeeping)."""
        self.version = 0
        """Bumped on every change (caches of derived values key on it)."""
        self._fields: dict[str, tuple[float, int, str]] = {}
        self.caller_number: str | None = None
        self.caller_name: str | None = None
        self.callee_number: str | None = None
        self.callee_name: str | None = None
        self.dialed_number: str | None = None
        self.origin_tag: str | None = None
        self.application: str | None = None
        self.node: str | None = None

    @property
    def ended(self) -> bool:
        return self.ended_at is not None

    def add(self, event: ChannelEvent) -> bool:
        """Fold one event in. False when it was a duplicate (nothing changed)."""
        key = (event.kind, event.event_id or event.at, event.other_leg_id, event.moving)
        if key in self.seen:
            return False
        self.seen.add(key)
        self.version += 1
        at = event.at
        if self.created_at is None or at < self.created_at:
            self.created_at = at
        self._identity(event)
        self._describe(event, at, _RANK[event.kind])
        _APPLY[event.kind](self, event)
        return True

    def _identity(self, event: ChannelEvent) -> None:
        party = event.party
        if (
            party is not _UNKNOWN
            and party is not self.party
            and (self.party is _UNKNOWN or party < self.party)
        ):
            self.party = party
        if event.agent is not None and (
            self.agent is None or _agent_key(event.agent) < _agent_key(self.agent)
        ):
            self.agent = event.agent
        if event.originator:
            self.originator = True

    def _describe(self, event: ChannelEvent, at: float, rank: int) -> None:
        fields = self._fields
        for name, value in zip(_FIELDS, _GET_FIELDS(event), strict=True):
            if not value:
                continue
            old = fields.get(name)
            if old is None or (at <= old[0] and (at, rank, value) < old):
                fields[name] = (at, rank, value)
                setattr(self, name, value)

    def _answered(self, event: ChannelEvent) -> None:
        if self.answered_at is None or event.at < self.answered_at:
            self.answered_at = event.at

    def _early(self, event: ChannelEvent) -> None:
        if self.early_at is None or event.at < self.early_at:
            self.early_at = event.at

    def _bridged(self, event: ChannelEvent) -> None:
        other = event.other_leg_id
        if other and other != self.leg_id:
            old = self.bridges.get(other)
            if old is None or event.at < old:
                self.bridges[other] = event.at

    def _held(self, event: ChannelEvent) -> None:
        self.holds.add((event.at, _HOLD))

    def _unheld(self, event: ChannelEvent) -> None:
        self.holds.add((event.at, _UNHOLD))

    def _destroyed(self, event: ChannelEvent) -> None:
        if event.moving:
            return
        if self.ended_at is None or event.at < self.ended_at:
            self.ended_at = event.at
            if event.hangup_cause:
                self.hangup_cause = event.hangup_cause.upper()
        elif self.hangup_cause is None and event.hangup_cause:
            self.hangup_cause = event.hangup_cause.upper()
        self.recordings.update(event.recordings)

    def _snapshot(self, event: ChannelEvent) -> None:
        if event.answered and self.answered_at is None:
            self.answered_at = event.at
        if event.held != self.held:
            self.holds.add((event.at, _HOLD if event.held else _UNHOLD))

    def _nothing(self, event: ChannelEvent) -> None:
        return None

    def hold_intervals(self, until: float | None) -> list[tuple[float, float | None]]:
        """Closed hold intervals; an open one ends at ``until`` (None: still open)."""
        out: list[tuple[float, float | None]] = []
        start: float | None = None
        for at, change in sorted(self.holds):
            if change == _HOLD and start is None:
                start = at
            elif change == _UNHOLD and start is not None:
                out.append((start, at))
                start = None
        if start is not None:
            end = self.ended_at if self.ended_at is not None else until
            out.append((start, end))
        return out

    @property
    def held(self) -> bool:
        """On hold right now (the latest hold change is a hold, and the leg is alive)."""
        if not self.holds or self.ended_at is not None:
            return False
        return max(self.holds)[1] == _HOLD


def _agent_key(agent: AgentRef) -> tuple[str, str, str]:
    return (agent.user_id or "", agent.device_id or "", agent.extension or "")


_APPLY = {
    LegEventKind.CREATED: LegFacts._nothing,
    LegEventKind.RINGING: LegFacts._nothing,
    LegEventKind.EARLY: LegFacts._early,
    LegEventKind.ANSWERED: LegFacts._answered,
    LegEventKind.BRIDGED: LegFacts._bridged,
    LegEventKind.HELD: LegFacts._held,
    LegEventKind.UNHELD: LegFacts._unheld,
    LegEventKind.DESTROYED: LegFacts._destroyed,
    LegEventKind.SNAPSHOT: LegFacts._snapshot,
}
