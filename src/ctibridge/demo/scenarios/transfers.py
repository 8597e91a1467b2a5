"""Calls whose agent leg hands over: blind and attended transfers, and a leg that moves to
another media server."""

from __future__ import annotations

from ctibridge.demo.directory import DEMO, Agent, Caller
from ctibridge.demo.scenarios.legs import (
    _ROUTE,
    _connect,
    _device_leg,
    _hangup,
    _inbound_start,
    _phone_leg,
)
from ctibridge.demo.scenarios.script import ScenarioContext, Step, _Script

__all__ = ["duplicate_destroy_after_move", "inbound_attended_transfer", "inbound_blind_transfer"]


def inbound_blind_transfer(
    ctx: ScenarioContext,
    *,
    agents: tuple[Agent, Agent],
    caller: Caller,
    did: str | None = None,
    ring_seconds: int = 4,
    talk_seconds: int = 40,
    transfer_ring_seconds: int = 5,
    transferred_talk_seconds: int = 60,
) -> list[Step]:
    """Agent A answers and blind-transfers the caller to agent B, who answers and hangs up."""
    first, second = agents
    s = _Script(ctx)
    carrier_leg, device_leg = _inbound_start(s, first, caller, did)
    answered = _ROUTE + ring_seconds
    _connect(s, answered, carrier_leg, device_leg)
    transferred = answered + talk_seconds
    s.destroy(transferred, device_leg, "BLIND_TRANSFER")
    target_leg = _device_leg(s, second, carrier_leg)
    s.create(transferred + 1, target_leg)
    picked_up = transferred + 1 + transfer_ring_seconds
    _connect(s, picked_up, carrier_leg, target_leg)
    _hangup(s, picked_up + transferred_talk_seconds, target_leg, carrier_leg)
    return s.steps()


def inbound_attended_transfer(
    ctx: ScenarioContext,
    *,
    agents: tuple[Agent, Agent],
    caller: Caller,
    did: str | None = None,
    ring_seconds: int = 5,
    talk_seconds: int = 30,
    consult_ring_seconds: int = 4,
    consult_seconds: int = 20,
    transferred_talk_seconds: int = 90,
) -> list[Step]:
    """A answers, holds the caller, calls B (a second interaction), then completes the
    transfer: A's two legs end ATTENDED_TRANSFER and the caller is bridged to B."""
    first, second = agents
    s = _Script(ctx)
    carrier_leg, device_leg = _inbound_start(s, first, caller, did)
    answered = _ROUTE + ring_seconds
    _connect(s, answered, carrier_leg, device_leg)
    held = answered + talk_seconds
    s.hold(held, device_leg)
    dialled = held + 1
    consult_leg = _phone_leg(s, first, second.extension, s.interaction_id(dialled))
    s.create(dialled, consult_leg)
    target_leg = _device_leg(s, second, consult_leg)
    s.create(dialled, target_leg)
    _connect(s, dialled + consult_ring_seconds, consult_leg, target_leg)
    completed = dialled + consult_ring_seconds + consult_seconds
    s.bridge(completed, carrier_leg, target_leg)
    _hangup(s, completed, device_leg, consult_leg, "ATTENDED_TRANSFER")
    target_leg.caller = carrier_leg.caller
    _hangup(s, completed + transferred_talk_seconds, carrier_leg, target_leg)
    return s.steps()


def duplicate_destroy_after_move(
    ctx: ScenarioContext,
    *,
    agent: Agent,
    caller: Caller,
    new_media_server: str = DEMO.media_servers[1],
    did: str | None = None,
    ring_seconds: int = 3,
    talk_seconds: int = 20,
    moved_talk_seconds: int = 15,
    hold_seconds: int = 10,
    resumed_seconds: int = 30,
) -> list[Step]:
    """The agent's leg moves to another media server: the old node reports a CHANNEL_DESTROY
    with ``channel_moving: true`` while the leg carries on (holds, resumes) on the new node."""
    s = _Script(ctx)
    carrier_leg, device_leg = _inbound_start(s, agent, caller, did)
    answered = _ROUTE + ring_seconds
    _connect(s, answered, carrier_leg, device_leg)
    moved = answered + talk_seconds
    s.destroy(moved, device_leg, "NORMAL_CLEARING", moving=True)
    device_leg.node = new_media_server
    held = moved + moved_talk_seconds
    s.hold(held, device_leg)
    s.hold(held + hold_seconds, device_leg, on=False)
    _hangup(s, held + hold_seconds + resumed_seconds, device_leg, carrier_leg)
    return s.steps()
