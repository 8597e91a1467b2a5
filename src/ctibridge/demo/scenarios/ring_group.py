"""A carrier call to a ring group: every member's phone rings, the first to answer wins."""

from __future__ import annotations

from ctibridge.demo.directory import DEMO, Agent, Caller
from ctibridge.demo.scenarios.legs import _ROUTE, _carrier_in, _device_leg, _hangup
from ctibridge.demo.scenarios.script import ScenarioContext, Step, _Script

__all__ = ["ring_group"]


def ring_group(
    ctx: ScenarioContext,
    *,
    agents: tuple[Agent, ...],
    caller: Caller,
    answered_by: int = 0,
    did: str = DEMO.group_line.number,
    ring_seconds: int = 8,
    talk_seconds: int = 50,
) -> list[Step]:
    """The group's DID rings every member at once; ``agents[answered_by]`` answers and the
    others' legs end LOSE_RACE."""
    s = _Script(ctx)
    carrier_leg = _carrier_in(s, caller, did, s.interaction_id(0))
    s.create(0, carrier_leg)
    legs = [_device_leg(s, agent, carrier_leg) for agent in agents]
    for leg in legs:
        s.create(_ROUTE, leg)
    answered, winner = _ROUTE + ring_seconds, legs[answered_by]
    s.answer(answered, winner)
    for leg in legs:
        if leg is not winner:
            s.destroy(answered, leg, "LOSE_RACE")
    carrier_leg.other = winner.call_id
    s.answer(answered, carrier_leg)
    s.bridge(answered, carrier_leg, winner)
    _hangup(s, answered + talk_seconds, carrier_leg, winner)
    return s.steps()
