"""Extension to extension calls, answered or not."""

from __future__ import annotations

from ctibridge.demo.directory import Agent
from ctibridge.demo.scenarios.legs import _connect, _device_leg, _hangup, _phone_leg
from ctibridge.demo.scenarios.script import ScenarioContext, Step, _Leg, _Script

__all__ = ["internal_answered", "internal_missed"]


def internal_answered(
    ctx: ScenarioContext,
    *,
    caller: Agent,
    callee: Agent,
    ring_seconds: int = 5,
    talk_seconds: int = 45,
) -> list[Step]:
    """Extension to extension, answered; the caller hangs up."""
    s = _Script(ctx)
    phone_leg, device_leg = _internal_start(s, caller, callee)
    _connect(s, ring_seconds, phone_leg, device_leg)
    _hangup(s, ring_seconds + talk_seconds, phone_leg, device_leg)
    return s.steps()


def internal_missed(
    ctx: ScenarioContext,
    *,
    caller: Agent,
    callee: Agent,
    ring_seconds: int = 15,
) -> list[Step]:
    """Extension to extension, not answered; the caller hangs up."""
    s = _Script(ctx)
    phone_leg, device_leg = _internal_start(s, caller, callee)
    _hangup(s, ring_seconds, phone_leg, device_leg, "ORIGINATOR_CANCEL")
    return s.steps()


def _internal_start(s: _Script, caller: Agent, callee: Agent) -> tuple[_Leg, _Leg]:
    phone_leg = _phone_leg(s, caller, callee.extension, s.interaction_id(0))
    s.create(0, phone_leg)
    device_leg = _device_leg(s, callee, phone_leg)
    s.create(0, device_leg)
    return phone_leg, device_leg
