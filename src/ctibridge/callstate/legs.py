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

from typing import TYPE_CHECKING

from ctibridge.callstate.events import AgentRef, ChannelEvent, LegEventKind, Party, Recording
from ctibridge.callstate.model import Leg

if TYPE_CHECKING:
    from ctibridge.callstate.derive import LegView

__all__ = ["LegFacts"]

_CREATED = LegEventKind.CREATED
_SNAPSHOT = LegEventKind.SNAPSHOT
_RINGING = LegEventKind.RINGING
_EARLY = LegEventKind.EARLY
_ANSWERED = LegEventKind.ANSWERED
_BRIDGED = LegEventKind.BRIDGED
_HELD = LegEventKind.HELD
_UNHELD = LegEventKind.UNHELD
_DESTROYED = LegEventKind.DESTROYED

# Rank of each kind when two events carry the same time: the natural order of a leg's life.
_RANK: dict[LegEventKind, int] = {
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

_UNKNOWN = Party.UNKNOWN
_HOLD = 0
_UNHOLD = 1

_Key = tuple[float, int, str]
"""(event time, kind rank, value): the earliest wins; equal keys are the same value."""


def _earlier(old: _Key | None, at: float, rank: int, value: str) -> _Key | None:
    """The new key when (at, rank, value) beats ``old``; else None."""
    if old is None:
        return (at, rank, value)
    if at > old[0]:
        return None
    new = (at, rank, value)
    return new if new < old else None


class LegFacts:
    """Mutable accumulator; owned by one normaliser, never shared."""

    __slots__ = (
        "_k_application",
        "_k_callee_name",
        "_k_callee_number",
        "_k_caller_name",
        "_k_caller_number",
        "_k_dialed_number",
        "_k_node",
        "_k_origin_tag",
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
        "key",
        "last_link",
        "leg_cache",
        "leg_id",
        "linked",
        "node",
        "origin_tag",
        "originator",
        "party",
        "recordings",
        "seen",
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
        self.created_at: float | None = None
        self.answered_at: float | None = None
        self.early_at: float | None = None
        self.ended_at: float | None = None
        self.hangup_cause: str | None = None
        self.party = _UNKNOWN
        self.agent: AgentRef | None = None
        self.originator = False
        self.holds: set[tuple[float, int]] = set()
        """(time, _HOLD or _UNHOLD): a hold and an unhold at the same instant sort hold first."""
        self.bridges: dict[str, float] = {}
        """other leg id -> earliest bridge time."""
        self.recordings: set[Recording] = set()
        self.seen: set[tuple[object, ...]] = set()
        """Events already folded in: kind and PBX message id, else what they say."""
        self.leg_cache: tuple[int, Leg] | None = None
        """The last ``Leg`` value built from these facts (derive reuses it while unchanged)."""
        self.last_link: tuple[str | None, str | None, str | None] | None = None
        """The grouping keys of the last event (the normaliser's fast path)."""
        self.linked: set[str] = set()
        """Grouping keys this leg was already united with (normaliser bookkeeping)."""
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
        self._k_caller_number: _Key | None = None
        self._k_caller_name: _Key | None = None
        self._k_callee_number: _Key | None = None
        self._k_callee_name: _Key | None = None
        self._k_dialed_number: _Key | None = None
        self._k_origin_tag: _Key | None = None
        self._k_application: _Key | None = None
        self._k_node: _Key | None = None

    @property
    def ended(self) -> bool:
        return self.ended_at is not None

    def add(self, event: ChannelEvent) -> bool:
        """Fold one event in. False when it was a duplicate (nothing changed)."""
        seen_key: tuple[object, ...]
        if event.event_id is not None:
            seen_key = (event.kind, event.event_id)
        else:
            seen_key = (event.kind, event.at, event.other_leg_id, event.moving)
        if seen_key in self.seen:
            return False
        self.seen.add(seen_key)
        self.version += 1
        at = event.at
        if self.created_at is None or at < self.created_at:
            self.created_at = at
            self.shape += 1
        kind = event.kind
        if self._identity(event) | self._describe(event, at, _RANK[kind]):
            self.shape += 1
        if kind is _ANSWERED:
            if self.answered_at is None or at < self.answered_at:
                self.answered_at = at
        elif kind is _DESTROYED:
            self._destroyed(event)
        elif kind is _BRIDGED:
            self._bridged(event)
        elif kind is _HELD:
            self.holds.add((at, _HOLD))
        elif kind is _UNHELD:
            self.holds.add((at, _UNHOLD))
        elif kind is _EARLY:
            if self.early_at is None or at < self.early_at:
                self.early_at = at
        elif kind is _SNAPSHOT:
            self._snapshot(event)
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

    def _describe(self, event: ChannelEvent, at: float, rank: int) -> bool:
        """Take each descriptive field from the earliest event that carries it."""
        changed = False
        value = event.caller_number
        old = self._k_caller_number
        if (
            value
            and (old is None or at <= old[0])
            and (k := _earlier(old, at, rank, value)) is not None
        ):
            self._k_caller_number, self.caller_number, changed = k, value, True
        value = event.caller_name
        old = self._k_caller_name
        if (
            value
            and (old is None or at <= old[0])
            and (k := _earlier(old, at, rank, value)) is not None
        ):
            self._k_caller_name, self.caller_name, changed = k, value, True
        value = event.callee_number
        old = self._k_callee_number
        if (
            value
            and (old is None or at <= old[0])
            and (k := _earlier(old, at, rank, value)) is not None
        ):
            self._k_callee_number, self.callee_number, changed = k, value, True
        value = event.callee_name
        old = self._k_callee_name
        if (
            value
            and (old is None or at <= old[0])
            and (k := _earlier(old, at, rank, value)) is not None
        ):
            self._k_callee_name, self.callee_name, changed = k, value, True
        value = event.dialed_number
        old = self._k_dialed_number
        if (
            value
            and (old is None or at <= old[0])
            and (k := _earlier(old, at, rank, value)) is not None
        ):
            self._k_dialed_number, self.dialed_number, changed = k, value, True
        value = event.origin_tag
        old = self._k_origin_tag
        if (
            value
            and (old is None or at <= old[0])
            and (k := _earlier(old, at, rank, value)) is not None
        ):
            self._k_origin_tag, self.origin_tag, changed = k, value, True
        value = event.application
        old = self._k_application
        if (
            value
            and (old is None or at <= old[0])
            and (k := _earlier(old, at, rank, value)) is not None
        ):
            self._k_application, self.application, changed = k, value, True
        value = event.node
        old = self._k_node
        if (
            value
            and (old is None or at <= old[0])
            and (k := _earlier(old, at, rank, value)) is not None
        ):
            self._k_node, self.node = k, value  # where a leg runs changes nothing it shows
        return changed

    def _bridged(self, event: ChannelEvent) -> None:
        other = event.other_leg_id
        if other and other != self.leg_id:
            old = self.bridges.get(other)
            if old is None or event.at < old:
                self.bridges[other] = event.at

    def _destroyed(self, event: ChannelEvent) -> None:
        if event.moving:
            return
        at = event.at
        cause = event.hangup_cause.upper() if event.hangup_cause else None
        if self.ended_at is None or at < self.ended_at:
            self.ended_at = at
            self.hangup_cause = cause
        elif (
            at == self.ended_at
            and cause is not None
            and (self.hangup_cause is None or cause < self.hangup_cause)
        ):
            self.hangup_cause = cause
        self.recordings.update(event.recordings)

    def _snapshot(self, event: ChannelEvent) -> None:
        if event.answered and self.answered_at is None:
            self.answered_at = event.at
        if event.held != self.held:
            self.holds.add((event.at, _HOLD if event.held else _UNHOLD))

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
