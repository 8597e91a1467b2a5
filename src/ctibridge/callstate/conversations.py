"""Bookkeeping the Asterisk and FreeSWITCH mappers share. Pure (no I/O, no clock).

- :class:`_Groups`: which conversation a leg belongs to, merging conversations that come to
  share a leg (union-find; a merged conversation keeps its oldest key).
- :class:`_Recent`: the legs that ended lately, so late events for them are dropped.
- :func:`_close`: a leg's recordings still running when it ends run until then.
- :func:`_leg_event`: a channel event from what a mapper knows of a leg and its conversation.
"""

from __future__ import annotations

import itertools
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import replace
from typing import Final, Protocol

from ctibridge.callstate.events import AgentRef, ChannelEvent, LegEventKind, Party, Recording

_RECENT: Final = 4096


class _Groups:
    """Union-find over conversation keys. The oldest key names a merged set; each set
    carries its live legs, an origin tag and whether it has an originator."""

    def __init__(self) -> None:
        self._parent: dict[str, str] = {}
        self._order: dict[str, int] = {}
        self._keys: dict[str, list[str]] = {}
        self._legs: dict[str, set[str]] = {}
        self.tags: dict[str, str] = {}
        self.originated: set[str] = set()
        self._counter = itertools.count()

    def find(self, key: str) -> str:
        parent = self._parent
        if key not in parent:
            parent[key], self._order[key] = key, next(self._counter)
            self._keys[key], self._legs[key] = [key], set()
            return key
        while parent[key] != key:
            parent[key] = parent[parent[key]]
            key = parent[key]
        return key

    def union(self, a: str, b: str) -> str:
        ra, rb = self.find(a), self.find(b)
        if ra == rb:
            return ra
        keep, gone = (ra, rb) if self._order[ra] < self._order[rb] else (rb, ra)
        self._parent[gone] = keep
        self._keys[keep] += self._keys.pop(gone)
        self._legs[keep] |= self._legs.pop(gone)
        if gone in self.tags:
            self.tags.setdefault(keep, self.tags.pop(gone))
        if gone in self.originated:
            self.originated.discard(gone)
            self.originated.add(keep)
        return keep

    def join(self, key: str, leg_id: str) -> None:
        self._legs[self.find(key)].add(leg_id)

    def leave(self, key: str, leg_id: str) -> None:
        """The leg is gone; a set with no live leg left is forgotten."""
        root = self.find(key)
        legs = self._legs[root]
        legs.discard(leg_id)
        if legs:
            return
        for k in self._keys.pop(root):
            del self._parent[k], self._order[k]
        del self._legs[root]
        self.tags.pop(root, None)
        self.originated.discard(root)

    @property
    def size(self) -> int:
        """Live conversations (sets with a live leg)."""
        return len(self._legs)


class _Recent:
    """A bounded set of leg ids that ended (late events for them are dropped)."""

    def __init__(self, size: int = _RECENT) -> None:
        self._items: OrderedDict[str, None] = OrderedDict()
        self._size = size

    def add(self, item: str) -> None:
        self._items[item] = None
        if len(self._items) > self._size:
            self._items.popitem(last=False)

    def __contains__(self, item: object) -> bool:
        return item in self._items


def _close(recordings: Iterable[Recording], at: float) -> tuple[Recording, ...]:
    """Recordings still running when their leg ends run until then."""
    return tuple(
        r
        if r.duration_seconds is not None or r.started_at is None
        else replace(r, duration_seconds=max(0.0, at - r.started_at))
        for r in recordings
    )


class _LegState(Protocol):
    """What both mappers keep of a leg (their ``_Leg`` dataclasses)."""

    leg_id: str
    key: str
    originator: bool
    party: Party
    agent: AgentRef | None
    caller_number: str | None
    caller_name: str | None
    callee_number: str | None
    callee_name: str | None
    dialed_number: str | None
    application: str | None


def _leg_event(
    leg: _LegState,
    groups: _Groups,
    kind: LegEventKind,
    at: float,
    *,
    tenant_id: str,
    pbx: str,
    other_leg_id: str | None = None,
    hangup_cause: str | None = None,
    recordings: tuple[Recording, ...] = (),
    answered: bool = False,
    held: bool = False,
    node: str | None = None,
    event_id: str | None = None,
) -> ChannelEvent:
    """The channel event of ``leg``: grouped under its conversation's key, with the
    conversation's origin tag."""
    root = groups.find(leg.key)
    return ChannelEvent(
        kind=kind,
        tenant_id=tenant_id,
        leg_id=leg.leg_id,
        at=at,
        pbx=pbx,
        node=node,
        event_id=event_id,
        group_key=root,
        originator=leg.originator,
        party=leg.party,
        agent=leg.agent,
        caller_number=leg.caller_number,
        caller_name=leg.caller_name,
        callee_number=leg.callee_number,
        callee_name=leg.callee_name,
        dialed_number=leg.dialed_number,
        origin_tag=groups.tags.get(root),
        application=leg.application,
        other_leg_id=other_leg_id,
        hangup_cause=hangup_cause,
        recordings=recordings,
        answered=answered,
        held=held,
    )
