"""From the legs of one call to its call-level record: a pure function of the leg facts.

This runs on every visible change of every call, so it is written as a few flat passes
over the legs (a call has two to a handful) rather than many small helpers.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Final

from ctibridge.callstate.events import AgentRef, Party, Recording
from ctibridge.callstate.legs import LegFacts
from ctibridge.callstate.model import (
    Call,
    CallState,
    Direction,
    EndReason,
    Handling,
    Leg,
    Transfer,
)

__all__ = ["ATTENDED_CAUSE", "LegView", "Shape", "ShapeCache", "derive", "is_internal_number"]

_BUSY: Final = frozenset({"USER_BUSY", "NORMAL_CIRCUIT_CONGESTION_BUSY"})
_REJECTED: Final = frozenset({"CALL_REJECTED"})
_FAILED: Final = frozenset(
    {
        "UNALLOCATED_NUMBER",
        "NO_ROUTE_DESTINATION",
        "NO_ROUTE_TRANSIT_NET",
        "NORMAL_TEMPORARY_FAILURE",
        "NETWORK_OUT_OF_ORDER",
        "DESTINATION_OUT_OF_ORDER",
        "INVALID_NUMBER_FORMAT",
        "USER_NOT_REGISTERED",
        "SUBSCRIBER_ABSENT",
        "SWITCH_CONGESTION",
        "NORMAL_CIRCUIT_CONGESTION",
        "RECOVERY_ON_TIMER_EXPIRE",
        "INCOMPATIBLE_DESTINATION",
        "CHAN_NOT_IMPLEMENTED",
        "FACILITY_NOT_SUBSCRIBED",
        "CONGESTION",
    }
)
ATTENDED_CAUSE: Final = "ATTENDED_TRANSFER"
"""The hang-up cause of an agent's leg that completed an attended transfer."""
_ATTENDED: Final = frozenset({ATTENDED_CAUSE})
_HUMAN: Final = frozenset({Party.AGENT, Party.TRUNK, Party.UNKNOWN})
_AGENT: Final = Party.AGENT
_TRUNK: Final = Party.TRUNK
_SYSTEM: Final = Party.SYSTEM


@lru_cache(maxsize=65536)
def is_internal_number(number: str | None, internal_digits: int) -> bool:
    """Seed 002: a number of at most ``internal_digits`` digits is an extension."""
    if not number:
        return False
    digits = sum(ch.isdigit() for ch in number.partition("@")[0])
    return 0 < digits <= internal_digits


class LegView:
    """A leg as one call sees it: a leg bridged in from another call (attended transfer)
    joins at the bridge time; a leg bridged out of this call leaves at that time."""

    __slots__ = ("answered", "created", "ended", "facts", "joined_at", "left_at", "version")

    def __init__(
        self, facts: LegFacts, joined_at: float | None = None, left_at: float | None = None
    ) -> None:
        self.facts = facts
        self.version = facts.version
        self.joined_at = joined_at
        self.left_at = left_at
        answered = facts.answered_at
        if joined_at is not None:
            self.created = joined_at
            self.answered = max(joined_at, answered) if answered is not None else None
        else:
            self.created = facts.created_at or 0.0
            self.answered = answered
        ended = facts.ended_at
        if left_at is not None and (ended is None or left_at < ended):
            ended = left_at
        self.ended = ended

    def refresh(self) -> None:
        """Bring a plain view (no join, no leave) up to date with its leg's facts, in place:
        the normaliser keeps one per leg rather than making a new one on every change."""
        facts = self.facts
        self.version = facts.version
        self.created = facts.created_at or 0.0
        self.answered = facts.answered_at
        self.ended = facts.ended_at


class Shape:
    """Who and what a call is: the parts of the record that depend only on which legs it
    has and who is on them (not on answers, holds or hang-ups). Cached between events."""

    __slots__ = (
        "callees",
        "direction",
        "first",
        "from_name",
        "from_number",
        "key",
        "order",
        "origin",
        "placer",
        "rung",
        "tag",
        "to_name",
        "to_number",
    )

    def __init__(self, key: int) -> None:
        self.key = key
        self.order: list[int] = []
        """Positions of the views sorted by (created, leg id)."""
        self.first = 0
        self.origin = 0
        self.placer = -1
        self.callees: list[int] = []
        self.tag: str | None = None
        self.direction = Direction.INTERNAL
        self.rung: tuple[AgentRef, ...] = ()
        self.from_number: str | None = None
        self.from_name: str | None = None
        self.to_number: str | None = None
        self.to_name: str | None = None


class ShapeCache:
    """Holds the last :class:`Shape` of one call (owned by the normaliser, per call)."""

    __slots__ = ("shape", "signature")

    def __init__(self) -> None:
        self.shape: Shape | None = None
        self.signature: list[tuple[LegFacts, int, float, bool]] | None = None
        """For a call whose legs cross into another call: what its shape was made from."""


def _order(views: list[LegView]) -> list[int]:
    """Positions of ``views`` by (created, leg id, position): an insertion sort, as a call
    has a handful of legs, usually already in order."""
    order: list[int] = []
    for i in range(len(views)):
        v = views[i]
        pos = len(order)
        while pos > 0:
            w = views[order[pos - 1]]
            if w.created < v.created or (
                w.created == v.created and w.facts.leg_id <= v.facts.leg_id
            ):
                break
            pos -= 1
        order.insert(pos, i)
    return order


def _shape(views: list[LegView], digits: int, key: int) -> Shape:
    shape = Shape(key)
    order = _order(views)
    shape.order = order
    first = order[0]
    for i in order:
        if views[i].joined_at is None:
            first = i
            break
    origin = first
    for i in order:
        if views[i].joined_at is None and views[i].facts.originator:
            origin = i
            break
    tag: str | None = None
    trunk_callee = False
    for i in order:
        f = views[i].facts
        if f.origin_tag and (tag is None or f.origin_tag < tag):
            tag = f.origin_tag
        if f.party is _TRUNK and i != origin and not f.originator:
            trunk_callee = True
    placer = -1
    if tag is not None:
        for i in order:
            if views[i].facts.party is _AGENT:
                placer = i
                break
        if placer >= 0 and not views[origin].facts.originator:
            # Our click-to-dial: no leg came into the switch; the agent's phone, rung first,
            # started the call (even when the legs share one creation second).
            origin = placer
    elif views[origin].facts.party is _AGENT and views[origin].facts.originator:
        placer = origin
    ordered = [views[i] for i in order]
    placer_view = views[placer] if placer >= 0 else None
    direction = _direction(ordered, views[origin], placer_view, tag, trunk_callee, digits)
    rung: list[AgentRef] = []
    callees: list[int] = []
    for i in order:
        if i in (origin, placer):
            continue
        callees.append(i)
        f = views[i].facts
        if f.party is _AGENT and f.agent is not None and f.agent not in rung:
            rung.append(f.agent)
    shape.first, shape.origin, shape.placer, shape.callees = first, origin, placer, callees
    shape.tag, shape.direction, shape.rung = tag, direction, tuple(rung)
    parties = _parties(direction, views[origin], placer_view, ordered, tag)
    shape.from_number, shape.from_name, shape.to_number, shape.to_name = parties
    return shape


def derive(
    call_id: str,
    views: list[LegView],
    *,
    internal_digits: int,
    pbx: str = "kazoo",
    seq: int = 0,
    cache: ShapeCache | None = None,
    shape_version: int = -1,
    prev: Call | None = None,
) -> Call:
    """The call record the legs describe, with the state they imply (see ``_state``).

    ``cache`` keeps the call's :class:`Shape` while ``shape_version`` stays the same (the
    caller bumps it whenever a leg joins or a leg's shape changes; -1: no version, keep the
    shape while the legs it was made from are unchanged)."""
    if cache is None:
        shape = _shape(views, internal_digits, shape_version)
    elif shape_version >= 0:
        cached = cache.shape
        if cached is None or cached.key != shape_version:
            cached = cache.shape = _shape(views, internal_digits, shape_version)
        shape = cached
    else:
        # Legs bridged across calls: no version covers the views (legs join and leave at
        # bridge times), so the shape is kept while what it is made of stays the same.
        signature = [(v.facts, v.facts.shape, v.created, v.joined_at is None) for v in views]
        cached = cache.shape
        if cached is None or cache.signature != signature:
            cached = cache.shape = _shape(views, internal_digits, shape_version)
            cache.signature = signature
        shape = cached
    ordered = [views[i] for i in shape.order]
    origin = views[shape.origin]
    placer = views[shape.placer] if shape.placer >= 0 else None
    direction = shape.direction
    outbound = direction is Direction.OUTBOUND

    any_moved_out = False
    all_ended = True
    ended_at = 0.0
    for v in ordered:
        if v.left_at is not None:
            any_moved_out = True
        if v.ended is None:
            all_ended = False
        elif v.ended > ended_at:
            ended_at = v.ended

    # A person answered: a callee agent; for an outbound call also the far end.
    answers: list[tuple[float, str, AgentRef | None, LegView]] = []
    for i in shape.callees:
        v = views[i]
        if v.answered is None:
            continue
        party = v.facts.party
        if party is _AGENT or (outbound and party is not _SYSTEM):
            answers.append((v.answered, v.facts.leg_id, v.facts.agent, v))
    if len(answers) > 1:
        answers.sort(key=_answer_order)
    answered_at = answers[0][0] if answers else None
    placer_agent = placer.facts.agent if placer is not None else None

    chain: list[AgentRef] = [placer_agent] if outbound and placer_agent is not None else []
    for answer in answers:
        agent = answer[2]
        if agent is not None and (not chain or chain[-1] != agent):
            chain.append(agent)
    handlers = _handlers(placer_agent, chain)

    final_end = ended_at if all_ended and ordered else None
    holds = _hold_intervals(ordered, final_end)
    hold_seconds = 0.0
    on_hold_after = 0.0
    for start, end in holds:
        if end is None:
            continue
        hold_seconds += end - start
        if answered_at is not None and final_end is not None and end > answered_at:
            on_hold_after += min(end, final_end) - max(start, answered_at)
    talk = 0.0
    if answered_at is not None and final_end is not None:
        talk = max(0.0, final_end - answered_at - on_hold_after)
    answered_by: AgentRef | None = None
    if answers:
        answered_by = placer_agent if placer_agent is not None and outbound else answers[0][2]
    missed = answered_at is None and (
        direction is Direction.INBOUND or (direction is Direction.INTERNAL and bool(shape.rung))
    )
    state = _state(ordered, origin, answered_at, final_end)
    current: list[AgentRef] = []
    if placer is not None and placer.ended is None and placer_agent is not None:
        current.append(placer_agent)
    for answer in answers:
        agent = answer[2]
        if agent is not None and answer[3].ended is None and agent not in current:
            current.append(agent)
    end_reason = None
    if final_end is not None:
        end_reason = _end_reason(ordered, origin, answered_at, direction, any_moved_out)
    legs = tuple([_leg_of(v) for v in ordered])
    agents = handlers
    on_call = tuple(current)
    if prev is not None:
        # Values equal to the published call's are shared with it, not kept twice: fewer
        # objects live on until the next change (each one the cyclic GC would walk).
        if _same_legs(legs, prev.legs):
            legs = prev.legs
        if agents == prev.agents:
            agents = prev.agents
        if on_call == prev.current:
            on_call = prev.current
    return Call(
        call_id,
        views[shape.first].facts.tenant_id,
        state,
        direction,
        pbx,
        shape.from_number,
        shape.from_name,
        shape.to_number,
        shape.to_name,
        agents,
        shape.rung,
        on_call,
        answered_by,
        missed,
        views[shape.first].created,
        answered_at,
        final_end,
        hold_seconds,
        talk,
        _transfers(chain, answers, ordered),
        _handlings(placer, answers, chain, holds, final_end),
        _recordings(ordered),
        end_reason,
        shape.tag,
        legs,
        seq,
    )


def _same_legs(a: tuple[Leg, ...], b: tuple[Leg, ...]) -> bool:
    """The same leg values (each leg's value is kept while its facts are unchanged, so
    identity is enough, and cheaper than comparing fields)."""
    if len(a) != len(b):
        return False
    return all(a[i] is b[i] for i in range(len(a)))


def _answer_order(answer: tuple[float, str, AgentRef | None, LegView]) -> tuple[float, str]:
    return (answer[0], answer[1])


def _direction(
    ordered: list[LegView],
    origin: LegView,
    placer: LegView | None,
    tag: str | None,
    trunk_callee: bool,
    digits: int,
) -> Direction:
    o = origin.facts
    if placer is not None or tag is not None:
        if trunk_callee:
            return Direction.OUTBOUND
        target = _target_number(origin, tag, ordered)
        if not target or is_internal_number(target, digits):
            return Direction.INTERNAL
        return Direction.OUTBOUND
    if o.party is _TRUNK:
        return Direction.INBOUND
    if o.party is _AGENT:
        return Direction.INTERNAL
    if is_internal_number(o.caller_number, digits):
        target = o.dialed_number or o.callee_number
        if trunk_callee or (target and not is_internal_number(target, digits)):
            return Direction.OUTBOUND
        return Direction.INTERNAL
    return Direction.INBOUND


def _target_number(origin: LegView, tag: str | None, ordered: list[LegView]) -> str | None:
    if tag is not None:
        # Click-to-dial: the agent's phone is shown the number it is about to call.
        agent_leg = next((v for v in ordered if v.facts.party is _AGENT), origin).facts
        return agent_leg.caller_number or agent_leg.dialed_number
    return origin.facts.dialed_number or origin.facts.callee_number


def _handlers(placer: AgentRef | None, chain: list[AgentRef]) -> tuple[AgentRef, ...]:
    """The placer, then each agent of the chain, each once."""
    if placer is None and not chain:
        return ()
    out: list[AgentRef] = [] if placer is None else [placer]
    for agent in chain:
        if agent not in out:
            out.append(agent)
    return tuple(out)


def _hold_intervals(
    ordered: list[LegView], ended_at: float | None
) -> list[tuple[float, float | None]]:
    raw: list[tuple[float, float | None]] = []
    for v in ordered:
        if v.facts.holds and v.facts.party in _HUMAN:
            raw.extend(v.facts.hold_intervals(ended_at))
    if len(raw) < 2:
        return raw
    raw.sort(key=_interval_order)
    merged: list[tuple[float, float | None]] = [raw[0]]
    for start, end in raw[1:]:
        last_start, last_end = merged[-1]
        if last_end is None:
            break
        if start <= last_end:
            merged[-1] = (last_start, None if end is None else max(end, last_end))
        else:
            merged.append((start, end))
    return merged


def _interval_order(iv: tuple[float, float | None]) -> tuple[float, float]:
    return (iv[0], float("inf") if iv[1] is None else iv[1])


def _transfers(
    chain: list[AgentRef],
    answers: list[tuple[float, str, AgentRef | None, LegView]],
    ordered: list[LegView],
) -> tuple[Transfer, ...]:
    if len(chain) < 2:
        return ()
    joined: dict[AgentRef, tuple[float, LegView]] = {}
    for at, _leg, agent, view in answers:
        if agent is not None and agent not in joined:
            joined[agent] = (at, view)
    out: list[Transfer] = []
    for index in range(1, len(chain)):
        before, after = chain[index - 1], chain[index]
        if after not in joined:
            continue
        at, view = joined[after]
        attended = view.joined_at is not None or any(
            v.facts.agent == before and v.facts.hangup_cause in _ATTENDED for v in ordered
        )
        out.append(Transfer("attended" if attended else "blind", at, before, after))
    return tuple(out)


def _parties(
    direction: Direction,
    origin: LegView,
    placer: LegView | None,
    ordered: list[LegView],
    tag: str | None,
) -> tuple[str | None, str | None, str | None, str | None]:
    o = origin.facts
    if direction is Direction.INBOUND:
        return o.caller_number, o.caller_name, o.dialed_number or o.callee_number, o.callee_name
    p = placer.facts if placer is not None else o
    from_number = (p.agent.extension if p.agent else None) or p.caller_number
    from_name = p.caller_name if tag is None else p.callee_name
    callees = [v.facts for v in ordered if v is not origin and v is not placer]
    if direction is Direction.OUTBOUND:
        # The number as the trunk carried it (dialled digits may hold an access code such as
        # a leading 9); before any trunk leg exists, as the agent dialled or clicked it.
        trunk = next((f for f in callees if f.party is _TRUNK), None)
        if trunk is not None and (trunk.dialed_number or trunk.callee_number):
            to = trunk.dialed_number or trunk.callee_number
            return from_number, from_name, to, trunk.callee_name
        return from_number, from_name, _target_number(origin, tag, ordered), None
    callee = next((f for f in callees if f.party is _AGENT), None)
    to_number = o.dialed_number if tag is None else p.caller_number
    to_name = None
    if callee is not None:
        to_number = to_number or (callee.agent.extension if callee.agent else None)
        to_name = callee.callee_name
    return from_number, from_name, to_number or o.callee_number, to_name


def _handlings(
    placer: LegView | None,
    answers: list[tuple[float, str, AgentRef | None, LegView]],
    chain: list[AgentRef],
    holds: list[tuple[float, float | None]],
    ended_at: float | None,
) -> tuple[Handling, ...]:
    if not answers and (placer is None or placer.facts.agent is None):
        return ()
    spans: list[tuple[AgentRef, float, float | None]] = []
    if placer is not None and placer.facts.agent is not None:
        spans.append((placer.facts.agent, placer.created, placer.ended))
    for answer in answers:
        agent = answer[2]
        if agent is None:
            continue
        known = False
        for span in spans:
            if span[0] == agent:
                known = True
                break
        if not known:
            spans.append((agent, answer[0], answer[3].ended))
    out = []
    for agent, start, end in spans:
        stop = end if end is not None else ended_at
        held = 0.0
        for h_start, h_end in holds:
            if h_end is not None:
                upper = h_end if stop is None else min(h_end, stop)
                held += max(0.0, upper - max(h_start, start))
        nxt = None
        if agent in chain:
            index = chain.index(agent)
            nxt = chain[index + 1] if index + 1 < len(chain) else None
        out.append(Handling(agent, start, end, held, nxt))
    return tuple(out)


def _recordings(ordered: list[LegView]) -> tuple[Recording, ...]:
    found: set[Recording] | None = None
    for v in ordered:
        if v.facts.recordings:
            if found is None:
                found = set()
            found.update(v.facts.recordings)
    if found is None:
        return ()
    keyed = sorted([(r.started_at or 0.0, r.ref, r) for r in found], key=_recording_order)
    return tuple([item[2] for item in keyed])


def _recording_order(item: tuple[float, str, Recording]) -> tuple[float, str]:
    return (item[0], item[1])


def _end_reason(
    ordered: list[LegView],
    origin: LegView,
    answered_at: float | None,
    direction: Direction,
    moved_out: bool,
) -> EndReason:
    if moved_out:
        return EndReason.TRANSFERRED
    if answered_at is not None:
        return EndReason.COMPLETED
    if origin.facts.answered_at is not None and direction is not Direction.OUTBOUND:
        return EndReason.VOICEMAIL
    causes = [v.facts.hangup_cause for v in ordered if v is not origin and v.facts.hangup_cause]
    if not causes and origin.facts.hangup_cause:
        causes = [origin.facts.hangup_cause]
    if causes and all(c in _BUSY for c in causes):
        return EndReason.BUSY
    if any(c in _REJECTED for c in causes):
        return EndReason.REJECTED
    if causes and all(c in _FAILED for c in causes):
        return EndReason.FAILED
    if direction is Direction.OUTBOUND and any(c in _BUSY for c in causes):
        return EndReason.BUSY
    return EndReason.NO_ANSWER


def _state(
    ordered: list[LegView],
    origin: LegView,
    answered_at: float | None,
    ended_at: float | None,
) -> CallState:
    if ended_at is not None:
        return CallState.ENDED
    if answered_at is not None:
        for v in ordered:
            if v.ended is None and v.facts.party in _HUMAN and v.facts.held:
                return CallState.HELD
        return CallState.ANSWERED
    if len(ordered) > 1:
        return CallState.RINGING
    return CallState.NEW


def _leg_of(view: LegView) -> Leg:
    f = view.facts
    plain = view.joined_at is None and view.left_at is None
    cached = f.leg_cache
    if plain and cached is not None and f.leg_cache_version == f.version:
        return cached
    leg = Leg(
        f.leg_id,
        f.party,
        f.agent,
        f.originator,
        view.created,
        view.answered,
        view.ended,
        f.hangup_cause,
        f.node,
    )
    if plain:
        f.leg_cache, f.leg_cache_version = leg, f.version
    return leg
