"""Channel events in, call changes out: the call-state normaliser.

Pure: no I/O, no clock, no asyncio. The normaliser owns its state (leg facts and the calls
it has published), like an h11 connection owns its state machine; everything it returns is a
frozen value. Feeding the same set of events in any order, with any duplicates, yields the
same final calls (see ``legs.py``), and a published call state only ever moves forward
(``machine.TRANSITIONS``).

Grouping: a leg belongs to the call of its group key (Kazoo interaction id, Asterisk
linkedid, FreeSWITCH call uuid); a leg that carries none is grouped through its bridge key,
then through its other leg. A bridge between legs of two different calls (attended transfer)
moves the younger call's leg into the older call at the bridge time; the younger call ends
as ``transferred``.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Sequence
from typing import Final

from ctibridge.callstate.derive import ATTENDED_CAUSE, LegView, ShapeCache, derive
from ctibridge.callstate.events import ChannelEvent, LegEventKind
from ctibridge.callstate.legs import LegFacts
from ctibridge.callstate.machine import steps
from ctibridge.callstate.model import Call, CallChanged, CallEventName, CallState

__all__ = ["RESYNC_CAUSE", "Normaliser"]

RESYNC_CAUSE = "GONE_DURING_RESYNC"
"""Hang-up cause given to a leg the phone system no longer lists after a reconnect."""

_SEP: Final = "\x1f"
_GROUP: Final = "G\x1f"
_BRIDGE: Final = "B\x1f"


class CallBox:
    """One call as published: the union-find root's payload. Each of its legs points to
    it (``LegFacts.box``), so an event reaches its call without a look-up by key."""

    __slots__ = (
        "bridge_node", "call_id", "cross", "dirty", "ended_tick", "group_node", "legs", "nodes",
        "pbx", "published", "root", "shape", "shape_version",
    )  # fmt: skip

    def __init__(self, root: str, pbx: str) -> None:
        self.root = root
        """The union-find root the normaliser files this call under."""
        self.legs: dict[str, LegFacts] = {}
        """leg key -> facts; each leg's ``box`` points back here (see ``_adopt``)."""
        self.nodes: list[str] = []
        """Its union-find nodes (each in one call only, so a list: smaller than a set)."""
        self.group_node = ""
        """The least group-key node of the call (its id), empty while it has none."""
        self.bridge_node = ""
        """The least bridge-key node (the id of a call without a group key)."""
        self.published: Call | None = None
        self.call_id = ""
        """Derived from the nodes; empty when they changed since."""
        self.pbx = pbx
        self.dirty = False
        """Facts changed since ``published`` was derived (invisible events)."""
        self.shape = ShapeCache()
        self.shape_version = 0
        """Bumped when a leg joins or a leg's shape changes (see ``derive.Shape``)."""
        self.cross = False
        """Some leg of this call is bridged to a leg of another call (attended transfer)."""
        self.ended_tick = -1
        """Its latest entry in the normaliser's list of ended calls (-1: not listed)."""


class Normaliser:
    """Folds channel events into calls. See the module docstring."""

    def __init__(
        self, *, internal_digits: int = 5, keep_ended: int = 10_000, tombstones: int = 200_000
    ) -> None:
        self._digits = internal_digits
        self._keep_ended = keep_ended
        self._parent: dict[str, str] = {}
        self._boxes: dict[str, CallBox] = {}
        self._facts: dict[str, LegFacts] = {}
        """leg key (tenant, separator, leg id) -> facts."""
        self._by_tenant: dict[str, dict[str, LegFacts]] = {}
        """tenant -> leg id -> facts (the lookup every event makes, without building a key)."""
        self._bridged_by: dict[str, tuple[str, ...]] = {}
        """leg key -> keys of legs that reported a bridge to it."""
        self._ended: deque[tuple[int, CallBox]] = deque()
        """Ended calls, least recently changed first: (tick, call); an entry whose tick is
        not the call's ``ended_tick`` is stale (the call changed since, or was merged)."""
        self._ended_count = 0
        self._tick = 0
        self._tombstones = _Tombstones(tombstones)
        self._merged: dict[str, set[str]] = {}
        """root -> ids of published calls merged into it, not yet announced as replaced."""
        self._regrouped = False
        """The event being applied merged two calls (then it is visible, whatever it is)."""
        self._tenant_ids: dict[str, str] = {}
        """Each tenant id once: its legs share the string."""

    # -- public API -------------------------------------------------------------------

    def apply(self, event: ChannelEvent) -> list[CallChanged]:
        """Fold one event in; return the call changes it caused, in order."""
        tenant_legs = self._by_tenant.get(event.tenant_id)
        if tenant_legs is None:
            tenant_legs = self._by_tenant[event.tenant_id] = {}
        facts = tenant_legs.get(event.leg_id)
        is_new = facts is None
        if facts is None:
            key = f"{event.tenant_id}{_SEP}{event.leg_id}"
            if key in self._tombstones:
                return []
            # One tenant id string for all its legs, not a copy from each leg's first event.
            tenant = self._tenant_ids.setdefault(event.tenant_id, event.tenant_id)
            facts = LegFacts(event.leg_id, tenant)
            facts.key = key
            self._facts[key] = facts
            tenant_legs[event.leg_id] = facts
        key = facts.key
        shape = facts.shape
        changed = facts.add(event)
        if not changed and self._same_links(facts, event):
            return []  # a duplicate, or nothing new
        self._regrouped = False
        self._link(key, facts, event, is_new)
        box = facts.box
        assert box is not None
        root = box.root
        if is_new or facts.shape != shape:
            box.shape_version += 1
        kind = event.kind
        other_leg = event.other_leg_id
        bridged = kind is LegEventKind.BRIDGED and other_leg is not None
        other = f"{event.tenant_id}{_SEP}{other_leg}" if bridged and other_leg else None
        if other is not None:
            known = self._bridged_by.get(other, ())
            if key not in known:
                self._bridged_by[other] = (*known, key)
        if not is_new and not self._regrouped and self._invisible(event, facts, box, other):
            box.dirty = True
            return []
        # Legs bridged across calls (attended transfer) change both calls.
        if box.cross or bridged or (is_new and key in self._bridged_by):
            roots = {root}
            for okey, _at in self._cross_links(key, facts):
                if okey in self._facts and (oroot := self._find(okey)) != root:
                    roots.add(oroot)
                    box.cross = self._boxes[oroot].cross = True
            return self._publish(roots)
        return self._publish_one(box)

    def _invisible(
        self, event: ChannelEvent, facts: LegFacts, box: CallBox, other: str | None
    ) -> bool:
        """Events that change nothing a call record shows while the call is live: early
        media, the PBX answering the caller's leg, a bridge inside the call, a leg that never
        answered going away while others go on (a losing ring-group phone, a caller's leg
        torn down a moment before the callee's). Their facts are kept; the record is brought
        up to date on the next visible change (or on read)."""
        published = box.published
        if published is None or published.state is CallState.ENDED:
            return False
        kind = event.kind
        if kind is LegEventKind.EARLY:
            return True
        if kind is LegEventKind.ANSWERED:
            return facts.originator and facts.origin_tag is None
        if kind is LegEventKind.BRIDGED:
            ofacts = self._facts.get(other) if other is not None else None
            return ofacts is not None and ofacts.box is box
        if kind is LegEventKind.DESTROYED:
            return _quiet_end(event, facts, box, published)
        return False

    def apply_many(self, events: Iterable[ChannelEvent]) -> list[CallChanged]:
        out: list[CallChanged] = []
        for event in events:
            out.extend(self.apply(event))
        return out

    def reconcile(
        self, tenant_id: str, live: Sequence[ChannelEvent], at: float
    ) -> list[CallChanged]:
        """After a reconnect: ``live`` lists every leg the phone system has now.

        Legs we think alive but not listed ended while we were away; listed legs we did not
        know are picked up.
        """
        out: list[CallChanged] = []
        for event in (*self.vanished(tenant_id, live, at), *live):
            out.extend(self.apply(event))
        return out

    def vanished(
        self, tenant_id: str, live: Sequence[ChannelEvent], at: float
    ) -> list[ChannelEvent]:
        """The hang-ups ``reconcile`` applies before ``live``: one ``DESTROYED`` event (cause
        :data:`RESYNC_CAUSE`) for every leg we think alive that ``live`` does not list. A
        caller that logs channel events logs these too, so a replay of the log after a
        restart reaches the same calls."""
        listed = {e.leg_id for e in live}
        return [
            ChannelEvent(
                kind=LegEventKind.DESTROYED,
                tenant_id=tenant_id,
                leg_id=facts.leg_id,
                at=max(at, facts.created_at or at),
                pbx=self._boxes[self._find(key)].pbx,
                hangup_cause=RESYNC_CAUSE,
            )
            for key, facts in self._facts.items()
            if facts.tenant_id == tenant_id and not facts.ended and facts.leg_id not in listed
        ]

    def call_of(self, tenant_id: str, leg_id: str) -> Call | None:
        """The published call a leg belongs to (None: unknown, or forgotten)."""
        key = tenant_id + _SEP + leg_id
        if key not in self._facts:
            return None
        box = self._facts[key].box
        assert box is not None
        return self._fresh(box)

    def active_calls(self, tenant_id: str | None = None) -> list[Call]:
        calls = [
            call
            for box in list(self._boxes.values())
            if (call := self._fresh(box)) is not None and call.state is not CallState.ENDED
        ]
        if tenant_id is not None:
            calls = [c for c in calls if c.tenant_id == tenant_id]
        return sorted(calls, key=lambda c: (c.started_at, c.call_id))

    def calls(self) -> list[Call]:
        """Every call still held in memory (active and recently ended)."""
        calls = [c for box in list(self._boxes.values()) if (c := self._fresh(box)) is not None]
        return sorted(calls, key=lambda c: (c.started_at, c.call_id))

    # -- grouping ---------------------------------------------------------------------

    def _find(self, node: str) -> str:
        parent = self._parent
        root = node
        while parent[root] != root:
            root = parent[root]
        while parent[node] != root:
            parent[node], node = root, parent[node]
        return root

    def _add_node(self, box: CallBox, root: str, node: str) -> None:
        """Make ``node`` (a grouping key never seen before) part of the call at ``root``."""
        self._parent[node] = root
        box.nodes.append(node)
        if node.startswith(_GROUP):
            if not box.group_node or node < box.group_node:
                box.group_node, box.call_id = node, ""
        elif node.startswith(_BRIDGE) and (not box.bridge_node or node < box.bridge_node):
            box.bridge_node, box.call_id = node, ""

    def _new_box(self, key: str, facts: LegFacts, pbx: str) -> str:
        self._parent[key] = key
        box = self._boxes[key] = CallBox(key, pbx)
        box.nodes.append(key)
        _adopt(box, key, facts)
        return key

    def _union(self, ra: str, rb: str) -> str:
        """Merge the calls at roots ``ra`` and ``rb``; return the surviving root."""
        if ra == rb:
            return ra
        self._regrouped = True
        if len(self._boxes[ra].nodes) < len(self._boxes[rb].nodes):
            ra, rb = rb, ra
        big, small = ra, rb
        self._parent[small] = big
        keep, gone = self._boxes[big], self._boxes.pop(small)
        keep.nodes.extend(gone.nodes)
        if gone.group_node and (not keep.group_node or gone.group_node < keep.group_node):
            keep.group_node = gone.group_node
        if gone.bridge_node and (not keep.bridge_node or gone.bridge_node < keep.bridge_node):
            keep.bridge_node = gone.bridge_node
        keep.call_id = ""
        keep.dirty = True
        keep.cross = keep.cross or gone.cross
        keep.shape_version += gone.shape_version + 1
        for leg_key, facts in gone.legs.items():
            _adopt(keep, leg_key, facts)
        if gone.published is not None:
            keep.published = _older(keep.published, gone.published)
            self._merged.setdefault(big, set()).add(gone.published.call_id)
            if gone.ended_tick >= 0:
                gone.ended_tick = -1
                self._ended_count -= 1
        self._merged.setdefault(big, set()).update(self._merged.pop(small, set()))
        return big

    def _join(self, root: str, target: str) -> str:
        """The call at ``root`` now also holds grouping key ``target``."""
        if target in self._parent:
            return self._union(root, self._find(target))
        self._add_node(self._boxes[root], root, target)
        return root

    @staticmethod
    def _same_links(facts: LegFacts, event: ChannelEvent) -> bool:
        """The event names the same grouping keys as the leg's last one (so linking it
        would change nothing)."""
        other = event.other_leg_id if event.kind is not LegEventKind.BRIDGED else None
        return (
            event.group_key == facts.last_group_key
            and event.bridge_key == facts.last_bridge_key
            and other == facts.last_other
        )

    def _link(self, key: str, facts: LegFacts, event: ChannelEvent, is_new: bool) -> str:
        """Union the leg with what its event names; return the call's root."""
        if not is_new and self._same_links(facts, event):
            return _root_of(facts)  # the usual case: the same keys as last time
        other = event.other_leg_id if event.kind is not LegEventKind.BRIDGED else None
        group_key, bridge_key = event.group_key, event.bridge_key
        facts.last_group_key, facts.last_bridge_key, facts.last_other = group_key, bridge_key, other
        tenant = event.tenant_id
        if group_key:
            target = f"{_GROUP}{tenant}{_SEP}{group_key}"
        elif bridge_key:
            target = f"{_BRIDGE}{tenant}{_SEP}{bridge_key}"
        elif other:
            target = f"{tenant}{_SEP}{other}"
        else:
            target = ""
        if not is_new:
            return self._join(_root_of(facts), target) if target else _root_of(facts)
        if key in self._parent:
            # Named before by another leg (as its other leg): this joins that call.
            root = self._find(key)
            box = self._boxes[root]
            _adopt(box, key, facts)
            if not box.group_node and not box.bridge_node:
                box.call_id = ""
            if target:
                root = self._join(root, target)
        elif target and target in self._parent:
            # A new leg of a known call (the usual case): it joins that call directly.
            root = self._find(target)
            box = self._boxes[root]
            self._parent[key] = root
            box.nodes.append(key)
            _adopt(box, key, facts)
            if not box.group_node and not box.bridge_node:
                box.call_id = ""  # named after its earliest leg, which this may be
        else:
            root = self._new_box(key, facts, event.pbx)
            if target:
                self._add_node(self._boxes[root], root, target)
        # A leg is the target of its own id used as a bridge key elsewhere.
        bnode = f"{_BRIDGE}{tenant}{_SEP}{event.leg_id}"
        if bnode in self._parent:
            root = self._union(root, self._find(bnode))
        return root

    # -- publishing -------------------------------------------------------------------

    def _cross_links(self, key: str, facts: LegFacts) -> list[tuple[str, float]]:
        """(other leg key, bridge time) for bridges this leg reported or was reported in."""
        bridges = facts.bridges
        links = [(facts.tenant_id + _SEP + o, at) for o, at in bridges.items()] if bridges else []
        for okey in self._bridged_by.get(key, ()):
            ofacts = self._facts.get(okey)
            obridges = ofacts.bridges if ofacts is not None else None
            at = obridges.get(facts.leg_id) if obridges is not None else None
            if at is not None:
                links.append((okey, at))
        return links

    def _views(self, root: str, box: CallBox) -> list[LegView]:
        if not box.cross:
            return [_plain_view(facts) for facts in box.legs.values()]
        views: list[LegView] = []
        own: tuple[float, str] | None = None
        bridged_by = self._bridged_by
        for key, facts in box.legs.items():
            if not facts.bridges and key not in bridged_by:
                views.append(LegView(facts))
                continue
            left_at: float | None = None
            for okey, at in self._cross_links(key, facts):
                if okey not in self._facts or (oroot := self._find(okey)) == root:
                    continue
                obox = self._boxes[oroot]
                if own is None:
                    own = (_start(box), box.call_id or root)
                if own <= (_start(obox), obox.call_id or oroot):
                    views.append(LegView(self._facts[okey], joined_at=at))
                elif left_at is None or at < left_at:
                    left_at = at
            views.append(LegView(facts, left_at=left_at))
        return _unique(views) if own is not None else views

    def _publish(self, roots: set[str]) -> list[CallChanged]:
        if len(roots) == 1:
            (root,) = roots
            return self._publish_one(self._boxes[self._find(root)])
        out: list[CallChanged] = []
        seen: set[str] = set()
        pending = sorted({self._find(r) for r in roots})
        for root in pending:
            if root in seen or root not in self._boxes:
                continue
            seen.add(root)
            out.extend(self._publish_one(self._boxes[root]))
        return out

    def _publish_one(self, box: CallBox) -> list[CallChanged]:
        root = box.root
        if not box.call_id:
            box.call_id = _call_id(box)
        prev = box.published
        derived = derive(
            box.call_id,
            self._views(root, box),
            internal_digits=self._digits,
            pbx=box.pbx,
            seq=(prev.seq if prev is not None else 0) + 1,
            cache=box.shape,
            shape_version=-1 if box.cross else box.shape_version,
            prev=prev,
        )
        box.dirty = False
        replaces: tuple[str, ...] = ()
        if root in self._merged:
            replaces = tuple(sorted(i for i in self._merged.pop(root) if i != box.call_id))
        if prev is not None and prev.call_id != box.call_id:
            replaces = tuple(sorted({*replaces, prev.call_id}))
        out = _changes(prev, derived, replaces)
        if out:
            box.published = out[-1].call
        elif prev is not None and prev.legs != derived.legs:
            # Leg details alone: worth an event only as an amendment to an ended call.
            if prev.state is CallState.ENDED:
                box.published = prev.replace(legs=derived.legs, seq=prev.seq + 1)
                out = [CallChanged(CallEventName.UPDATED, box.published, replaces)]
            else:
                box.published = prev.replace(legs=derived.legs)
        if box.published is not None and box.published.state is CallState.ENDED:
            if box.ended_tick < 0:
                _compact(box)
                self._ended_count += 1
            self._tick += 1
            box.ended_tick = self._tick
            self._ended.append((self._tick, box))
            if len(self._ended) > 2 * self._ended_count + 64:
                # Late events on ended calls leave stale entries behind: drop them.
                self._ended = deque(e for e in self._ended if e[0] == e[1].ended_tick)
            self._evict()
        return out

    def _fresh(self, box: CallBox) -> Call | None:
        """The published call, brought up to date with invisible events (no event emitted:
        they change nothing visible)."""
        if box.dirty and box.published is not None and box.legs:
            self._publish_one(box)
        return box.published

    def _evict(self) -> None:
        while self._ended_count > self._keep_ended:
            tick, box = self._ended.popleft()
            if tick != box.ended_tick:
                continue
            box.ended_tick = -1
            self._ended_count -= 1
            del self._boxes[box.root]
            parent = self._parent
            for node in box.nodes:
                del parent[node]
            bridged_by = self._bridged_by
            for key, gone in box.legs.items():
                del self._facts[key]
                # The leg refers to its view and its call, which refer back to it: break
                # the cycles so reference counting frees them now, not a full collection
                # much later.
                gone.view_cache = None
                gone.box = None
                tenant_legs = self._by_tenant.get(gone.tenant_id)
                if tenant_legs is not None:
                    del tenant_legs[gone.leg_id]
                if bridged_by:
                    bridged_by.pop(key, None)
                self._tombstones.add(key)


class _Tombstones:
    """Keys of forgotten legs, so that their late events are dropped rather than starting
    a new call: at least the newest ``limit // 2`` are remembered, at most ``limit``. Two
    sets that take turns, rather than an ordered dict trimmed one key at a time: adding a
    key is one set insertion, with no order to keep."""

    __slots__ = ("half", "older", "young")

    def __init__(self, limit: int) -> None:
        self.half = max(1, limit // 2)
        self.young: set[str] = set()
        self.older: set[str] = set()

    def add(self, key: str) -> None:
        self.young.add(key)
        if len(self.young) >= self.half:
            self.older, self.young = self.young, set()

    def __contains__(self, key: str) -> bool:
        return key in self.young or key in self.older


def _adopt(box: CallBox, key: str, facts: LegFacts) -> None:
    """Make ``facts`` a leg of ``box``."""
    box.legs[key] = facts
    facts.box = box


def _root_of(facts: LegFacts) -> str:
    box = facts.box
    assert box is not None
    return box.root


def _quiet_end(event: ChannelEvent, facts: LegFacts, box: CallBox, published: Call) -> bool:
    """A leg's end that changes nothing the live call shows: the leg never answered (so it
    is in no answer, hand-over or talk time), held nothing, brings no recording, names no
    transfer, is not how an agent still on the call is on it, and another leg lives on (so
    the call does not end). Only ``legs`` would change, which is not worth an event."""
    if box.cross or facts.answered_at is not None or facts.holds or event.recordings:
        return False
    if facts.hangup_cause == ATTENDED_CAUSE:
        return False
    if facts.agent is not None and facts.agent in published.current:
        return False
    return any(leg is not facts and leg.ended_at is None for leg in box.legs.values())


def _compact(box: CallBox) -> None:
    """A call just ended: drop what only speeds up a live call (views, leg values, the
    shape), now, while it is warm in the cache, rather than when the call is evicted long
    after; a late event rebuilds them. This also breaks the leg <-> view reference cycle,
    so reference counting frees the leg when it goes."""
    for facts in box.legs.values():
        facts.view_cache = None
        facts.leg_cache = None
    box.shape = ShapeCache()


def _plain_view(facts: LegFacts) -> LegView:
    """The leg as its own call sees it: one view per leg, brought up to date when the
    leg's facts change."""
    view = facts.view_cache
    if view is None:
        view = facts.view_cache = LegView(facts)
    elif view.version != facts.version:
        view.refresh()
    return view


def _start(box: CallBox) -> float:
    start = -1.0
    for f in box.legs.values():
        at = f.created_at or 0.0
        if start < 0.0 or at < start:
            start = at
    return max(start, 0.0)


def _call_id(box: CallBox) -> str:
    if box.group_node:
        return box.group_node.rsplit(_SEP, 1)[1]
    if box.bridge_node:
        return box.bridge_node.rsplit(_SEP, 1)[1]
    first = min(box.legs.values(), key=lambda f: (f.created_at or 0.0, f.leg_id))
    return first.leg_id


def _older(a: Call | None, b: Call) -> Call:
    if a is None:
        return b
    return a if (a.started_at, a.call_id) <= (b.started_at, b.call_id) else b


def _unique(views: list[LegView]) -> list[LegView]:
    """One view per leg: a moved-in leg wins over nothing, the earliest join wins."""
    best: dict[str, LegView] = {}
    for v in views:
        key = v.facts.leg_id
        old = best.get(key)
        if old is None or (v.joined_at or 0.0, v.left_at or 0.0) < (
            old.joined_at or 0.0,
            old.left_at or 0.0,
        ):
            best[key] = v
    return list(best.values())


def _changes(prev: Call | None, derived: Call, replaces: tuple[str, ...]) -> list[CallChanged]:
    """The events that take the published call to the derived one, each with its snapshot.

    ``derived`` comes with ``seq`` = published seq + 1, so the usual single change is
    published as it is, without copying."""
    base = prev.seq if prev is not None else 0
    state = prev.state if prev is not None else CallState.NEW
    names: list[tuple[CallEventName, CallState]] = []
    if prev is None:
        names.append((CallEventName.CREATED, state))
    if derived.state is not state:
        walk = steps(state, derived.state)
        if walk:
            names.extend(walk)
            state = derived.state
    known = len(prev.transfers) if prev is not None else 0
    if len(derived.transfers) > known:
        names.extend((CallEventName.TRANSFERRED, state) for _ in derived.transfers[known:])
    if not names:
        if prev is None or not _differs(prev, derived):
            return []
        names.append((CallEventName.UPDATED, state))
    out: list[CallChanged] = []
    for index, (name, at_state) in enumerate(names):
        seq = base + index + 1
        call = derived
        if at_state is not derived.state or seq != derived.seq:
            call = derived.replace(state=at_state, seq=seq)
        out.append(CallChanged(name, call, replaces if index == 0 else ()))
    return out


def _differs(prev: Call, new: Call) -> bool:
    """Something an agent or a call log can see changed (legs alone are not worth an event)."""
    return (
        prev.rung != new.rung
        or prev.current != new.current
        or prev.agents != new.agents
        or prev.answered_by != new.answered_by
        or prev.missed != new.missed
        or prev.answered_at != new.answered_at
        or prev.ended_at != new.ended_at
        or prev.hold_seconds != new.hold_seconds
        or prev.talk_seconds != new.talk_seconds
        or prev.direction != new.direction
        or prev.from_number != new.from_number
        or prev.from_name != new.from_name
        or prev.to_number != new.to_number
        or prev.to_name != new.to_name
        or prev.started_at != new.started_at
        or prev.recordings != new.recordings
        or prev.end_reason != new.end_reason
        or prev.transfers != new.transfers
        or prev.handlings != new.handlings
        or prev.origin_tag != new.origin_tag
        or prev.call_id != new.call_id
        or prev.tenant_id != new.tenant_id
        or prev.pbx != new.pbx
    )
