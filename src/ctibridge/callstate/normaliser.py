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

from collections import OrderedDict
from collections.abc import Iterable, Sequence

from ctibridge.callstate.derive import LegView, ShapeCache, derive
from ctibridge.callstate.events import ChannelEvent, LegEventKind
from ctibridge.callstate.legs import LegFacts
from ctibridge.callstate.machine import EVENT_OF, TRANSITIONS, path
from ctibridge.callstate.model import Call, CallChanged, CallEventName, CallState

__all__ = ["RESYNC_CAUSE", "Normaliser"]

RESYNC_CAUSE = "GONE_DURING_RESYNC"
"""Hang-up cause given to a leg the phone system no longer lists after a reconnect."""

_SEP = "\x1f"


class _Box:
    """One call as published: the union-find root's payload."""

    __slots__ = (
        "call_id", "cross", "dirty", "legs", "nodes", "pbx", "published", "shape",
        "shape_version",
    )  # fmt: skip

    def __init__(self, pbx: str) -> None:
        self.legs: dict[str, LegFacts] = {}
        self.nodes: set[str] = set()
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


class Normaliser:
    """Folds channel events into calls. See the module docstring."""

    def __init__(
        self, *, internal_digits: int = 5, keep_ended: int = 10_000, tombstones: int = 200_000
    ) -> None:
        self._digits = internal_digits
        self._keep_ended = keep_ended
        self._max_tombstones = tombstones
        self._parent: dict[str, str] = {}
        self._boxes: dict[str, _Box] = {}
        self._leg_node: dict[str, str] = {}
        """leg key -> its union-find node (same string; kept for membership tests)."""
        self._facts: dict[str, LegFacts] = {}
        """leg key (tenant, separator, leg id) -> facts."""
        self._by_tenant: dict[str, dict[str, LegFacts]] = {}
        """tenant -> leg id -> facts (the lookup every event makes, without building a key)."""
        self._bridged_by: dict[str, set[str]] = {}
        """leg key -> keys of legs that reported a bridge to it."""
        self._ended: OrderedDict[str, None] = OrderedDict()
        self._tombstones: OrderedDict[str, None] = OrderedDict()
        self._merged: dict[str, set[str]] = {}
        """root -> ids of published calls merged into it, not yet announced as replaced."""

    # -- public API -------------------------------------------------------------------

    def apply(self, event: ChannelEvent) -> list[CallChanged]:
        """Fold one event in; return the call changes it caused, in order."""
        tenant_legs = self._by_tenant.get(event.tenant_id)
        if tenant_legs is None:
            tenant_legs = self._by_tenant[event.tenant_id] = {}
        facts = tenant_legs.get(event.leg_id)
        is_new = facts is None
        if facts is None:
            key = event.tenant_id + _SEP + event.leg_id
            if key in self._tombstones:
                return []
            facts = LegFacts(event.leg_id, event.tenant_id)
            facts.key = key
            self._facts[key] = facts
            tenant_legs[event.leg_id] = facts
        key = facts.key
        shape = facts.shape
        if not facts.add(event):
            return []
        root = self._link(key, facts, event, is_new)
        box = self._boxes[root]
        if is_new or facts.shape != shape:
            box.shape_version += 1
        kind = event.kind
        other_leg = event.other_leg_id
        bridged = kind is LegEventKind.BRIDGED and other_leg is not None
        other = event.tenant_id + _SEP + other_leg if bridged and other_leg else None
        if other is not None:
            self._bridged_by.setdefault(other, set()).add(key)
        if not is_new and self._invisible(kind, facts, root, other):
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
        return self._publish_one(root)

    def _invisible(self, kind: LegEventKind, facts: LegFacts, root: str, other: str | None) -> bool:
        """Events that change nothing a call record shows while the call is live: early
        media, the PBX answering the caller's leg, a bridge inside the call. Their facts are
        kept; the record is brought up to date on the next visible change (or on read)."""
        box = self._boxes[root]
        if box.published is None or box.published.state is CallState.ENDED:
            return False
        if kind is LegEventKind.EARLY:
            return True
        if kind is LegEventKind.ANSWERED:
            return facts.originator and facts.origin_tag is None
        if kind is LegEventKind.BRIDGED:
            return other is not None and other in self._facts and self._find(other) == root
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
        listed = {e.leg_id for e in live}
        out: list[CallChanged] = []
        for key, facts in list(self._facts.items()):
            if facts.tenant_id == tenant_id and not facts.ended and facts.leg_id not in listed:
                gone = ChannelEvent(
                    kind=LegEventKind.DESTROYED,
                    tenant_id=tenant_id,
                    leg_id=facts.leg_id,
                    at=max(at, facts.created_at or at),
                    pbx=self._boxes[self._find(key)].pbx,
                    hangup_cause=RESYNC_CAUSE,
                )
                out.extend(self.apply(gone))
        for event in live:
            out.extend(self.apply(event))
        return out

    def call_of(self, tenant_id: str, leg_id: str) -> Call | None:
        """The published call a leg belongs to (None: unknown, or forgotten)."""
        key = tenant_id + _SEP + leg_id
        if key not in self._facts:
            return None
        return self._fresh(self._boxes[self._find(key)])

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

    def _node(self, node: str, pbx: str) -> str:
        if node not in self._parent:
            self._parent[node] = node
            box = _Box(pbx)
            box.nodes.add(node)
            self._boxes[node] = box
            return node
        return self._find(node)

    def _union(self, a: str, b: str, pbx: str) -> str:
        ra, rb = self._node(a, pbx), self._node(b, pbx)
        if ra == rb:
            return ra
        if len(self._boxes[ra].nodes) < len(self._boxes[rb].nodes):
            ra, rb = rb, ra
        big, small = ra, rb
        self._parent[small] = big
        keep, gone = self._boxes[big], self._boxes.pop(small)
        keep.nodes |= gone.nodes
        keep.call_id = ""
        keep.dirty = True
        keep.cross = keep.cross or gone.cross
        keep.shape_version += gone.shape_version + 1
        keep.legs.update(gone.legs)
        if gone.published is not None:
            keep.published = _older(keep.published, gone.published)
            self._merged.setdefault(big, set()).add(gone.published.call_id)
            self._ended.pop(small, None)
        self._merged.setdefault(big, set()).update(self._merged.pop(small, set()))
        return big

    def _link(self, key: str, facts: LegFacts, event: ChannelEvent, is_new: bool) -> str:
        """Union the leg with what its event names; return the call's root."""
        other = event.other_leg_id if event.kind is not LegEventKind.BRIDGED else None
        keys = (event.group_key, event.bridge_key, other)
        if not is_new and keys == facts.last_link:
            return self._find(key)  # the usual case: the same keys as last time
        facts.last_link = keys
        pbx, tenant = event.pbx, event.tenant_id
        if event.group_key:
            target = "G" + _SEP + tenant + _SEP + event.group_key
        elif event.bridge_key:
            target = "B" + _SEP + tenant + _SEP + event.bridge_key
        elif event.other_leg_id and event.kind is not LegEventKind.BRIDGED:
            target = tenant + _SEP + event.other_leg_id
        else:
            target = ""
        if not is_new and target in facts.linked:
            return self._find(key)  # the usual case: nothing new to link
        root = self._node(key, pbx)
        if is_new:
            self._boxes[root].legs[key] = facts
        if target:
            facts.linked.add(target)
            root = self._union(root, target, pbx)
        if is_new:
            facts.linked.add("")
            # A leg is the target of its own id used as a bridge key elsewhere.
            bnode = "B" + _SEP + tenant + _SEP + event.leg_id
            if bnode in self._parent:
                root = self._union(root, bnode, pbx)
        return root

    # -- publishing -------------------------------------------------------------------

    def _cross_links(self, key: str, facts: LegFacts) -> list[tuple[str, float]]:
        """(other leg key, bridge time) for bridges this leg reported or was reported in."""
        links = [(facts.tenant_id + _SEP + other, at) for other, at in facts.bridges.items()]
        for okey in self._bridged_by.get(key, ()):
            ofacts = self._facts.get(okey)
            at = ofacts.bridges.get(facts.leg_id) if ofacts is not None else None
            if at is not None:
                links.append((okey, at))
        return links

    def _views(self, root: str, box: _Box) -> list[LegView]:
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
            return self._publish_one(self._find(root))
        out: list[CallChanged] = []
        seen: set[str] = set()
        pending = sorted({self._find(r) for r in roots})
        for root in pending:
            if root in seen or root not in self._boxes:
                continue
            seen.add(root)
            out.extend(self._publish_one(root))
        return out

    def _publish_one(self, root: str) -> list[CallChanged]:
        box = self._boxes[root]
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
            self._ended[root] = None
            self._ended.move_to_end(root)
            self._evict()
        return out

    def _fresh(self, box: _Box) -> Call | None:
        """The published call, brought up to date with invisible events (no event emitted:
        they change nothing visible)."""
        if box.dirty and box.published is not None:
            root = self._find(next(iter(box.legs))) if box.legs else None
            if root is not None:
                self._publish_one(root)
        return box.published

    def _evict(self) -> None:
        while len(self._ended) > self._keep_ended:
            root, _ = self._ended.popitem(last=False)
            box = self._boxes.pop(root, None)
            if box is None:
                continue
            for node in box.nodes:
                self._parent.pop(node, None)
                if node in self._facts:
                    gone = self._facts.pop(node)
                    self._by_tenant.get(gone.tenant_id, {}).pop(gone.leg_id, None)
                    self._bridged_by.pop(node, None)
                    self._tombstones[node] = None
            while len(self._tombstones) > self._max_tombstones:
                self._tombstones.popitem(last=False)


def _plain_view(facts: LegFacts) -> LegView:
    """The leg as its own call sees it, reused while the leg's facts do not change."""
    cached = facts.view_cache
    if cached is not None and cached.version == facts.version:
        return cached
    view = LegView(facts)
    facts.view_cache = view
    return view


def _start(box: _Box) -> float:
    return min((f.created_at or 0.0 for f in box.legs.values()), default=0.0)


def _call_id(box: _Box) -> str:
    groups = sorted(n for n in box.nodes if n.startswith("G" + _SEP))
    if groups:
        return groups[0].rsplit(_SEP, 1)[1]
    bridges = sorted(n for n in box.nodes if n.startswith("B" + _SEP))
    if bridges:
        return bridges[0].rsplit(_SEP, 1)[1]
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
    for trigger in path(state, derived.state) or ():
        state = TRANSITIONS[state, trigger]
        names.append((EVENT_OF[trigger], state))
    known = len(prev.transfers) if prev is not None else 0
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
