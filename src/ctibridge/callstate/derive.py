"""From the legs of one call to its call-level record. A pure function of the leg facts."""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache

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

__all__ = ["LegView", "derive", "is_internal_number"]

_BUSY = frozenset({"USER_BUSY", "NORMAL_CIRCUIT_CONGESTION_BUSY"})
_REJECTED = frozenset({"CALL_REJECTED"})
_FAILED = frozenset(
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
_ATTENDED = frozenset({"ATTENDED_TRANSFER"})
_HUMAN = frozenset({Party.AGENT, Party.TRUNK, Party.UNKNOWN})


@lru_cache(maxsize=65536)
def is_internal_number(number: str | None, internal_digits: int) -> bool:
    """Seed 002: a number of at most ``internal_digits`` digits is an extension."""
    if not number:
        return False
    digits = sum(ch.isdigit() for ch in number.partition("@")[0])
    return 0 < digits <= internal_digits


@dataclass(frozen=True, slots=True)
class LegView:
    """A leg as one call sees it: moved-in legs join late, moved-out legs leave early."""

    facts: LegFacts
    joined_at: float | None = None
    """Set for a leg bridged into this call from another one (attended transfer)."""
    left_at: float | None = None
    """Set for a leg bridged out of this call into another one."""

    @property
    def created(self) -> float:
        if self.joined_at is not None:
            return self.joined_at
        return self.facts.created_at or 0.0

    @property
    def answered(self) -> float | None:
        if self.joined_at is not None and self.facts.answered_at is not None:
            return max(self.joined_at, self.facts.answered_at)
        return self.facts.answered_at

    @property
    def ended(self) -> float | None:
        ended = self.facts.ended_at
        if self.left_at is not None and (ended is None or self.left_at < ended):
            return self.left_at
        return ended


def derive(
    call_id: str,
    views: Sequence[LegView],
    *,
    internal_digits: int,
    pbx: str = "kazoo",
) -> Call:
    """The call record the legs describe, with the state they imply."""
    ordered = sorted(views, key=lambda v: (v.created, v.facts.leg_id))
    own = [v for v in ordered if v.joined_at is None]
    first = own[0] if own else ordered[0]
    origin = next((v for v in own if v.facts.originator), first)
    tag = min((v.facts.origin_tag for v in ordered if v.facts.origin_tag), default=None)
    placer = _placer(ordered, origin, tag)
    direction = _direction(ordered, origin, placer, tag, internal_digits)
    callees = [v for v in ordered if v is not origin and v is not placer]
    answers = _answers(callees, direction)
    answered_at = answers[0][0] if answers else None
    chain = _chain(placer, answers, direction)
    handlers = _dedupe(([placer.facts.agent] if placer and placer.facts.agent else []) + chain)
    ended_at = _ended_at(ordered)
    holds = _hold_intervals(ordered, ended_at)
    hold_seconds = sum(end - start for start, end in holds if end is not None)
    talk = 0.0
    if answered_at is not None and ended_at is not None:
        on_hold_after = sum(
            min(end, ended_at) - max(start, answered_at)
            for start, end in holds
            if end is not None and end > answered_at
        )
        talk = max(0.0, ended_at - answered_at - on_hold_after)
    transfers = _transfers(chain, answers, ordered)
    rung = _dedupe([v.facts.agent for v in callees if v.facts.party is Party.AGENT])
    missed = answered_at is None and (
        direction is Direction.INBOUND or (direction is Direction.INTERNAL and bool(rung))
    )
    from_number, from_name, to_number, to_name = _parties(direction, origin, placer, callees, tag)
    state = _state(ordered, answered_at, ended_at, origin)
    return Call(
        call_id=call_id,
        tenant_id=first.facts.tenant_id,
        pbx=pbx,
        state=state,
        direction=direction,
        from_number=from_number,
        from_name=from_name,
        to_number=to_number,
        to_name=to_name,
        agents=handlers,
        rung=rung,
        current=_current(ordered, placer, answers),
        answered_by=(
            placer.facts.agent if placer and direction is Direction.OUTBOUND else answers[0][1]
        )
        if answers
        else None,
        missed=missed,
        started_at=first.created,
        answered_at=answered_at,
        ended_at=ended_at,
        hold_seconds=hold_seconds,
        talk_seconds=talk,
        transfers=transfers,
        handlings=_handlings(placer, answers, chain, holds, ended_at),
        recordings=_recordings(ordered),
        end_reason=_end_reason(ordered, origin, answered_at, direction)
        if ended_at is not None
        else None,
        origin_tag=tag,
        legs=tuple(_leg(v) for v in ordered),
    )


def _placer(ordered: Sequence[LegView], origin: LegView, tag: str | None) -> LegView | None:
    """The agent leg that placed the call: the originating agent, or for our click-to-dial the
    first agent leg (the agent's phone rings first and is shown the number as caller)."""
    if tag is not None:
        return next((v for v in ordered if v.facts.party is Party.AGENT), None)
    if origin.facts.party is Party.AGENT and origin.facts.originator:
        return origin
    return None


def _direction(
    ordered: Sequence[LegView],
    origin: LegView,
    placer: LegView | None,
    tag: str | None,
    digits: int,
) -> Direction:
    trunk_callee = any(
        v.facts.party is Party.TRUNK and v is not origin and not v.facts.originator for v in ordered
    )
    if placer is not None or tag is not None:
        if trunk_callee:
            return Direction.OUTBOUND
        target = _target_number(origin, tag, ordered)
        return (
            Direction.INTERNAL
            if is_internal_number(target, digits) or not target
            else Direction.OUTBOUND
        )
    if origin.facts.party is Party.TRUNK:
        return Direction.INBOUND
    if origin.facts.party is Party.AGENT:
        return Direction.INTERNAL
    caller = origin.facts.caller_number
    if is_internal_number(caller, digits):
        target = origin.facts.dialed_number or origin.facts.callee_number
        if trunk_callee or (target and not is_internal_number(target, digits)):
            return Direction.OUTBOUND
        return Direction.INTERNAL
    return Direction.INBOUND


def _target_number(origin: LegView, tag: str | None, ordered: Sequence[LegView]) -> str | None:
    if tag is not None:
        # Click-to-dial: the agent's phone is shown the number it is about to call.
        agent_leg = next((v for v in ordered if v.facts.party is Party.AGENT), origin)
        return agent_leg.facts.caller_number or agent_leg.facts.dialed_number
    return origin.facts.dialed_number or origin.facts.callee_number


def _answers(
    callees: Sequence[LegView], direction: Direction
) -> list[tuple[float, AgentRef | None, LegView]]:
    """Person answers, earliest first: callee agents; for outbound also the far end."""
    out: list[tuple[float, AgentRef | None, LegView]] = []
    for v in callees:
        at = v.answered
        if at is None:
            continue
        party = v.facts.party
        if party is Party.AGENT or (direction is Direction.OUTBOUND and party is not Party.SYSTEM):
            out.append((at, v.facts.agent, v))
    out.sort(key=lambda item: (item[0], item[2].facts.leg_id))
    return out


def _chain(
    placer: LegView | None,
    answers: Sequence[tuple[float, AgentRef | None, LegView]],
    direction: Direction,
) -> list[AgentRef]:
    """Agents who held the call one after the other (transfers happen along this chain)."""
    chain: list[AgentRef] = []
    if direction is Direction.OUTBOUND and placer is not None and placer.facts.agent:
        chain.append(placer.facts.agent)
    for _at, agent, _view in answers:
        if agent is not None and (not chain or chain[-1] != agent):
            chain.append(agent)
    return chain


def _dedupe(agents: Iterable[AgentRef | None]) -> tuple[AgentRef, ...]:
    out: list[AgentRef] = []
    for agent in agents:
        if agent is not None and agent not in out:
            out.append(agent)
    return tuple(out)


def _ended_at(ordered: Sequence[LegView]) -> float | None:
    ends = [v.ended for v in ordered]
    if not ends or any(e is None for e in ends):
        return None
    return max(e for e in ends if e is not None)


def _hold_intervals(
    ordered: Sequence[LegView], ended_at: float | None
) -> list[tuple[float, float | None]]:
    raw: list[tuple[float, float | None]] = []
    for v in ordered:
        if v.facts.holds and v.facts.party in _HUMAN:
            raw.extend(v.facts.hold_intervals(ended_at))
    if not raw:
        return []
    raw.sort(key=lambda iv: (iv[0], float("inf") if iv[1] is None else iv[1]))
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


def _transfers(
    chain: Sequence[AgentRef],
    answers: Sequence[tuple[float, AgentRef | None, LegView]],
    ordered: Sequence[LegView],
) -> tuple[Transfer, ...]:
    if len(chain) < 2:
        return ()
    joined: dict[AgentRef, tuple[float, LegView]] = {}
    for at, agent, view in answers:
        if agent is not None and agent not in joined:
            joined[agent] = (at, view)
    out: list[Transfer] = []
    for before, after in itertools.pairwise(chain):
        if after not in joined:
            continue
        at, view = joined[after]
        kind = "blind"
        if view.joined_at is not None or any(
            v.facts.agent == before and v.facts.hangup_cause in _ATTENDED for v in ordered
        ):
            kind = "attended"
        out.append(Transfer(kind=kind, at=at, from_agent=before, to_agent=after))
    return tuple(out)


def _parties(
    direction: Direction,
    origin: LegView,
    placer: LegView | None,
    callees: Sequence[LegView],
    tag: str | None,
) -> tuple[str | None, str | None, str | None, str | None]:
    o = origin.facts
    if direction is Direction.INBOUND:
        return o.caller_number, o.caller_name, o.dialed_number or o.callee_number, o.callee_name
    p = placer.facts if placer is not None else o
    from_number = (p.agent.extension if p.agent else None) or p.caller_number
    from_name = p.caller_name if tag is None else (p.callee_name or None)
    if direction is Direction.OUTBOUND:
        trunk = next((v.facts for v in callees if v.facts.party is Party.TRUNK), None)
        to_number = None
        to_name = None
        if trunk is not None:
            to_number = trunk.dialed_number or trunk.callee_number
            to_name = trunk.callee_name
        if to_number is None:
            to_number = _target_number(origin, tag, [*callees, origin])
        return from_number, from_name, to_number, to_name
    callee = next((v.facts for v in callees if v.facts.party is Party.AGENT), None)
    to_number = o.dialed_number if tag is None else p.caller_number
    to_name = None
    if callee is not None:
        to_number = to_number or (callee.agent.extension if callee.agent else None)
        to_name = callee.callee_name
    return from_number, from_name, to_number or o.callee_number, to_name


def _current(
    ordered: Sequence[LegView],
    placer: LegView | None,
    answers: Sequence[tuple[float, AgentRef | None, LegView]],
) -> tuple[AgentRef, ...]:
    live = []
    if placer is not None and placer.ended is None:
        live.append(placer.facts.agent)
    live.extend(agent for _at, agent, view in answers if view.ended is None)
    return _dedupe(live)


def _handlings(
    placer: LegView | None,
    answers: Sequence[tuple[float, AgentRef | None, LegView]],
    chain: Sequence[AgentRef],
    holds: Sequence[tuple[float, float | None]],
    ended_at: float | None,
) -> tuple[Handling, ...]:
    spans: list[tuple[AgentRef, float, float | None]] = []
    if placer is not None and placer.facts.agent is not None:
        spans.append((placer.facts.agent, placer.created, placer.ended))
    for at, agent, view in answers:
        if agent is not None and all(agent != s[0] for s in spans):
            spans.append((agent, at, view.ended))
    out = []
    for agent, start, end in spans:
        stop = end if end is not None else ended_at
        held = sum(
            max(0.0, min(h_end, stop if stop is not None else h_end) - max(h_start, start))
            for h_start, h_end in holds
            if h_end is not None
        )
        nxt = None
        if agent in chain:
            index = chain.index(agent)
            nxt = chain[index + 1] if index + 1 < len(chain) else None
        out.append(Handling(agent, start, end, held, nxt))
    return tuple(out)


def _recordings(ordered: Sequence[LegView]) -> tuple[Recording, ...]:
    found: set[Recording] = set()
    for v in ordered:
        found.update(v.facts.recordings)
    return tuple(sorted(found, key=lambda r: (r.started_at or 0.0, r.ref)))


def _end_reason(
    ordered: Sequence[LegView],
    origin: LegView,
    answered_at: float | None,
    direction: Direction,
) -> EndReason:
    if any(v.left_at is not None for v in ordered):
        return EndReason.TRANSFERRED
    if answered_at is not None:
        return EndReason.COMPLETED
    if origin.facts.answered_at is not None and direction is not Direction.OUTBOUND:
        return EndReason.VOICEMAIL
    others = [v.facts.hangup_cause for v in ordered if v is not origin]
    causes = [c for c in others if c] or (
        [origin.facts.hangup_cause] if origin.facts.hangup_cause else []
    )
    if causes and all(c in _BUSY for c in causes):
        return EndReason.BUSY
    if any(c in _REJECTED for c in causes):
        return EndReason.REJECTED
    if causes and all(c in _FAILED for c in causes):
        return EndReason.FAILED
    if any(c in _BUSY for c in causes) and direction is Direction.OUTBOUND:
        return EndReason.BUSY
    return EndReason.NO_ANSWER


def _state(
    ordered: Sequence[LegView],
    answered_at: float | None,
    ended_at: float | None,
    origin: LegView,
) -> CallState:
    if ended_at is not None:
        return CallState.ENDED
    if answered_at is not None:
        held = any(v.facts.held and v.facts.party in _HUMAN and v.ended is None for v in ordered)
        return CallState.HELD if held else CallState.ANSWERED
    if any(v is not origin for v in ordered):
        return CallState.RINGING
    return CallState.NEW


def _leg(view: LegView) -> Leg:
    f = view.facts
    return Leg(
        leg_id=f.leg_id,
        party=f.party.value,
        agent=f.agent,
        originator=f.originator,
        created_at=view.created,
        answered_at=view.answered,
        ended_at=view.ended,
        hangup_cause=f.hangup_cause,
        node=f.node,
    )
