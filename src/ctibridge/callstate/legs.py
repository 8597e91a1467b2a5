"""What the normaliser knows about one leg, accumulated from its events.

Every fact is combined so that the order events arrive in does not matter: times are the
earliest (or, for hold, the set of hold/unhold instants), and each descriptive field takes the
value of the earliest event that carried one (ties broken by event kind, then value). The same
set of events therefore always yields the same facts, however they were shuffled or repeated.

This is the hottest code in ctibridge (every channel event passes here) and it is compiled
with mypyc when possible (see setup.py), so it is written as plain typed code: explicit
fields instead of ``getattr`` loops, ``if`` chains instead of dispatch tables.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from ctibridge.callstate.events import AgentRef, ChannelEvent, LegEventKind, Party, Recording
from ctibridge.callstate.model import Leg

if TYPE_CHECKING:
    from ctibridge.callstate.derive import LegView
    from ctibridge.callstate.normaliser import CallBox

__all__ = ["LegFacts"]

_CREATED: Final = LegEventKind.CREATED
_SNAPSHOT: Final = LegEventKind.SNAPSHOT
_RINGING: Final = LegEventKind.RINGING
_EARLY: Final = LegEventKind.EARLY
_ANSWERED: Final = LegEventKind.ANSWERED
_BRIDGED: Final = LegEventKind.BRIDGED
_HELD: Final = LegEventKind.HELD
_UNHELD: Final = LegEventKind.UNHELD
_DESTROYED: Final = LegEventKind.DESTROYED

# Rank of each kind when two events carry the same time: the natural order of a leg's life.
_RANK: Final[dict[LegEventKind, int]] = {
    _CREATED: 0,
    _SNAPSHOT: 1,
    _RINGING: 2,
    _EARLY: 3,
    _ANSWERED: 4,
    _BRIDGED: 5,
    _HELD: 6,
    _UNHELD: 7,
    _DESTROYED: 8,
}

_UNKNOWN: Final = Party.UNKNOWN
_HOLD: Final = 0
_UNHOLD: Final = 1

_SHAPE: Final = 2
_DETAIL: Final = 1

_NEVER: Final = 1e300
"""The time of a field no event has carried yet (later than any unix time; a literal,
so the compiled code holds it as a constant)."""


def _wins(at: float, rank: int, value: str, t: float, r: int, current: str | None) -> bool:
    """Does (at, rank, value) come before the (t, r, current) a field holds? The earliest
    event wins; at the same time the earlier kind; then the lesser value."""
    if at != t:
        return at < t
    if rank != r:
        return rank < r
    return current is None or value < current


class LegFacts:
    """Mutable accumulator; owned by one normaliser, never shared."""

    __slots__ = (
        "_r_application",
        "_r_callee_name",
        "_r_callee_number",
        "_r_caller_name",
        "_r_caller_number",
        "_r_dialed_number",
        "_r_node",
        "_r_origin_tag",
        "_t_application",
        "_t_callee_name",
        "_t_callee_number",
        "_t_caller_name",
        "_t_caller_number",
        "_t_dialed_number",
        "_t_node",
        "_t_origin_tag",
        "agent",
        "answered_at",
        "application",
        "box",
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
        "key",
        "last_bridge_key",
        "last_group_key",
        "last_other",
        "leg_cache",
        "leg_cache_version",
        "leg_id",
        "node",
        "origin_tag",
        "originator",
        "party",
        "recordings",
        "shape",
        "tenant_id",
        "version",
        "view_cache",
    )

    def __init__(self, leg_id: str, tenant_id: str) -> None:
        self.leg_id = leg_id
        self.tenant_id = tenant_id
        self.key = ""
        """The normaliser's key for this leg."""
        self.box: CallBox | None = None
        """The normaliser's call this leg belongs to (its bookkeeping)."""
        self.created_at: float | None = None
        self.answered_at: float | None = None
        self.early_at: float | None = None
        self.ended_at: float | None = None
        self.hangup_cause: str | None = None
        self.party = _UNKNOWN
        self.agent: AgentRef | None = None
        self.originator = False
        self.holds: tuple[tuple[float, int], ...] = ()
        """(time, _HOLD or _UNHOLD): a hold and an unhold at the same instant sort hold first."""
        self.bridges: dict[str, float] | None = None
        """other leg id -> earliest bridge time (None until the first bridge)."""
        self.recordings: tuple[Recording, ...] = ()
        """Each recording once. Tuples, not sets, for these rarely used collections: an
        empty tuple costs nothing, an empty set over 200 bytes on each of thousands of legs."""
        self.leg_cache: Leg | None = None
        self.leg_cache_version = -1
        """The last ``Leg`` value built from these facts (derive reuses it while unchanged)."""
        self.last_group_key: str | None = None
        self.last_bridge_key: str | None = None
        self.last_other: str | None = None
        """The grouping keys of the last event (the normaliser's fast path)."""
        self.version = 0
        """Bumped on every change (caches of derived values key on it)."""
        self.view_cache: LegView | None = None
        """The normaliser's last view of this leg (valid while ``version`` is unchanged)."""
        self.shape = 0
        """Bumped when who or what the leg is changes (party, agent, numbers, creation time):
        what a call's direction, parties and leg order depend on."""
        self.caller_number: str | None = None
        self.caller_name: str | None = None
        self.callee_number: str | None = None
        self.callee_name: str | None = None
        self.dialed_number: str | None = None
        self.origin_tag: str | None = None
        self.application: str | None = None
        self.node: str | None = None
        self._t_caller_number = _NEVER
        self._r_caller_number = 0
        self._t_caller_name = _NEVER
        self._r_caller_name = 0
        self._t_callee_number = _NEVER
        self._r_callee_number = 0
        self._t_callee_name = _NEVER
        self._r_callee_name = 0
        self._t_dialed_number = _NEVER
        self._r_dialed_number = 0
        self._t_origin_tag = _NEVER
        self._r_origin_tag = 0
        self._t_application = _NEVER
        self._r_application = 0
        self._t_node = _NEVER
        self._r_node = 0

    @property
    def ended(self) -> bool:
        return self.ended_at is not None

    def add(self, event: ChannelEvent) -> bool:
        """Fold one event in. False when it changed nothing: a duplicate, or an event that
        brings no new fact. Every fact is a join (earliest time, least value, union), so
        folding an event twice is the same as folding it once: no record of the events
        seen is needed to drop duplicates."""
        at = event.at
        kind = event.kind
        shape = False
        if self.created_at is None or at < self.created_at:
            self.created_at = at
            shape = True
        if self._identity(event):
            shape = True
        described = self._describe(event, at, _RANK[kind])
        if described == _SHAPE:
            shape = True
        changed = shape or described == _DETAIL
        if kind is _ANSWERED:
            if self.answered_at is None or at < self.answered_at:
                self.answered_at = at
                changed = True
        elif kind is _DESTROYED:
            changed = self._destroyed(event) or changed
        elif kind is _BRIDGED:
            changed = self._bridged(event) or changed
        elif kind is _HELD:
            changed = self._hold((at, _HOLD)) or changed
        elif kind is _UNHELD:
            changed = self._hold((at, _UNHOLD)) or changed
        elif kind is _EARLY:
            if self.early_at is None or at < self.early_at:
                self.early_at = at
                changed = True
        elif kind is _SNAPSHOT:
            changed = self._snapshot(event) or changed
        if not changed:
            return False
        self.version += 1
        if shape:
            self.shape += 1
        return True

    def _identity(self, event: ChannelEvent) -> bool:
        changed = False
        party = event.party
        if (
            party is not _UNKNOWN
            and party is not self.party
            and (self.party is _UNKNOWN or party < self.party)
        ):
            self.party = party
            changed = True
        agent = event.agent
        if (
            agent is not None
            and agent != self.agent
            and (self.agent is None or _agent_key(agent) < _agent_key(self.agent))
        ):
            self.agent = agent
            changed = True
        if event.originator and not self.originator:
            self.originator = True
            changed = True
        return changed

    def _describe(self, event: ChannelEvent, at: float, rank: int) -> int:
        """Take each descriptive field from the earliest event that carries it (a native
        float compare rejects the usual later event at once). Returns :data:`_SHAPE` when
        a field the call's shape depends on changed, :data:`_DETAIL` when only the node
        did, else 0."""
        changed = False
        value = event.caller_number
        if (
            value
            and at <= self._t_caller_number
            and _wins(
                at, rank, value, self._t_caller_number, self._r_caller_number, self.caller_number
            )
        ):
            self.caller_number, self._t_caller_number, self._r_caller_number = value, at, rank
            changed = True
        value = event.caller_name
        if (
            value
            and at <= self._t_caller_name
            and _wins(at, rank, value, self._t_caller_name, self._r_caller_name, self.caller_name)
        ):
            self.caller_name, self._t_caller_name, self._r_caller_name = value, at, rank
            changed = True
        value = event.callee_number
        if (
            value
            and at <= self._t_callee_number
            and _wins(
                at, rank, value, self._t_callee_number, self._r_callee_number, self.callee_number
            )
        ):
            self.callee_number, self._t_callee_number, self._r_callee_number = value, at, rank
            changed = True
        value = event.callee_name
        if (
            value
            and at <= self._t_callee_name
            and _wins(at, rank, value, self._t_callee_name, self._r_callee_name, self.callee_name)
        ):
            self.callee_name, self._t_callee_name, self._r_callee_name = value, at, rank
            changed = True
        value = event.dialed_number
        if (
            value
            and at <= self._t_dialed_number
            and _wins(
                at, rank, value, self._t_dialed_number, self._r_dialed_number, self.dialed_number
            )
        ):
            self.dialed_number, self._t_dialed_number, self._r_dialed_number = value, at, rank
            changed = True
        value = event.origin_tag
        if (
            value
            and at <= self._t_origin_tag
            and _wins(at, rank, value, self._t_origin_tag, self._r_origin_tag, self.origin_tag)
        ):
            self.origin_tag, self._t_origin_tag, self._r_origin_tag = value, at, rank
            changed = True
        value = event.application
        if (
            value
            and at <= self._t_application
            and _wins(at, rank, value, self._t_application, self._r_application, self.application)
        ):
            self.application, self._t_application, self._r_application = value, at, rank
            changed = True
        value = event.node
        if (
            value
            and at <= self._t_node
            and _wins(at, rank, value, self._t_node, self._r_node, self.node)
        ):
            self.node, self._t_node, self._r_node = value, at, rank
            return _SHAPE if changed else _DETAIL
        return _SHAPE if changed else 0

    def _bridged(self, event: ChannelEvent) -> bool:
        other = event.other_leg_id
        if not other or other == self.leg_id:
            return False
        bridges = self.bridges
        if bridges is None:
            self.bridges = {other: event.at}
            return True
        old = bridges.get(other)
        if old is not None and old <= event.at:
            return False
        bridges[other] = event.at
        return True

    def _destroyed(self, event: ChannelEvent) -> bool:
        if event.moving:
            return False
        changed = False
        at = event.at
        cause = event.hangup_cause.upper() if event.hangup_cause else None
        if self.ended_at is None or at < self.ended_at:
            self.ended_at = at
            self.hangup_cause = cause
            changed = True
        elif (
            at == self.ended_at
            and cause is not None
            and (self.hangup_cause is None or cause < self.hangup_cause)
        ):
            self.hangup_cause = cause
            changed = True
        for recording in event.recordings:
            if recording not in self.recordings:
                self.recordings = (*self.recordings, recording)
                changed = True
        return changed

    def _snapshot(self, event: ChannelEvent) -> bool:
        changed = False
        if event.answered and self.answered_at is None:
            self.answered_at = event.at
            changed = True
        if event.held != self.held:
            changed = self._hold((event.at, _HOLD if event.held else _UNHOLD)) or changed
        return changed

    def _hold(self, change: tuple[float, int]) -> bool:
        if change in self.holds:
            return False
        self.holds = (*self.holds, change)
        return True

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
