"""Carrier calls to one agent: answered (and recorded), missed, held, sent to voicemail."""

from __future__ import annotations

from ctibridge.demo.directory import Agent, Caller
from ctibridge.demo.scenarios.legs import _ROUTE, _connect, _hangup, _inbound_start
from ctibridge.demo.scenarios.script import ScenarioContext, Step, _Script

__all__ = [
    "inbound_answered",
    "inbound_hold",
    "inbound_missed",
    "inbound_voicemail",
    "recorded_inbound",
]


def inbound_answered(
    ctx: ScenarioContext,
    *,
    agent: Agent,
    caller: Caller,
    did: str | None = None,
    ring_seconds: int = 6,
    talk_seconds: int = 75,
) -> list[Step]:
    """A carrier call rings one agent, who answers; the caller hangs up."""
    return _answered_inbound(ctx, agent, caller, did, ring_seconds, talk_seconds, record=False)


def recorded_inbound(
    ctx: ScenarioContext,
    *,
    agent: Agent,
    caller: Caller,
    did: str | None = None,
    ring_seconds: int = 6,
    talk_seconds: int = 75,
) -> list[Step]:
    """:func:`inbound_answered` with call recording on both legs (``media_recordings``)."""
    return _answered_inbound(ctx, agent, caller, did, ring_seconds, talk_seconds, record=True)


def _answered_inbound(
    ctx: ScenarioContext,
    agent: Agent,
    caller: Caller,
    did: str | None,
    ring_seconds: int,
    talk_seconds: int,
    *,
    record: bool,
) -> list[Step]:
    s = _Script(ctx)
    carrier_leg, device_leg = _inbound_start(s, agent, caller, did)
    answered = _ROUTE + ring_seconds
    _connect(s, answered, carrier_leg, device_leg)
    if record:
        for leg in (carrier_leg, device_leg):
            leg.recordings.append(f"call_recording_{leg.call_id}.mp3")
    _hangup(s, answered + talk_seconds, carrier_leg, device_leg)
    return s.steps()


def inbound_missed(
    ctx: ScenarioContext,
    *,
    agent: Agent,
    caller: Caller,
    did: str | None = None,
    ring_seconds: int = 12,
) -> list[Step]:
    """The agent's phone rings; the caller gives up."""
    s = _Script(ctx)
    carrier_leg, device_leg = _inbound_start(s, agent, caller, did)
    _hangup(s, _ROUTE + ring_seconds, carrier_leg, device_leg, "ORIGINATOR_CANCEL")
    return s.steps()


def inbound_voicemail(
    ctx: ScenarioContext,
    *,
    agent: Agent,
    caller: Caller,
    did: str | None = None,
    ring_seconds: int = 20,
    message_seconds: int = 25,
) -> list[Step]:
    """Nobody answers; a second later the PBX answers the caller for voicemail."""
    s = _Script(ctx)
    carrier_leg, device_leg = _inbound_start(s, agent, caller, did)
    gave_up = _ROUTE + ring_seconds
    s.destroy(gave_up, device_leg, "NO_ANSWER")
    s.answer(gave_up + 1, carrier_leg)
    s.destroy(gave_up + 1 + message_seconds, carrier_leg, "NORMAL_CLEARING")
    return s.steps()


def inbound_hold(
    ctx: ScenarioContext,
    *,
    agent: Agent,
    caller: Caller,
    did: str | None = None,
    ring_seconds: int = 5,
    talk_seconds: int = 30,
    hold_seconds: int = 20,
    resumed_seconds: int = 40,
) -> list[Step]:
    """Answered; the agent holds the caller, resumes, and hangs up."""
    s = _Script(ctx)
    carrier_leg, device_leg = _inbound_start(s, agent, caller, did)
    answered = _ROUTE + ring_seconds
    _connect(s, answered, carrier_leg, device_leg)
    held = answered + talk_seconds
    s.hold(held, device_leg)
    s.hold(held + hold_seconds, device_leg, on=False)
    _hangup(s, held + hold_seconds + resumed_seconds, device_leg, carrier_leg)
    return s.steps()
