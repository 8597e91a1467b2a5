"""Agents calling out through the carrier: dialled (answered or busy) and click-to-dial."""

from __future__ import annotations

from ctibridge.demo.directory import Agent, dialled_form
from ctibridge.demo.scenarios.legs import (
    _ROUTE,
    _carrier_out,
    _connect,
    _hangup,
    _phone_leg,
    _quickcall_leg,
)
from ctibridge.demo.scenarios.script import ScenarioContext, Step, _Leg, _Script

__all__ = ["click_to_dial", "outbound_answered", "outbound_busy"]


def outbound_answered(
    ctx: ScenarioContext,
    *,
    agent: Agent,
    number: str,
    dialled: str | None = None,
    ring_seconds: int = 9,
    early_media_after: int | None = 2,
    talk_seconds: int = 120,
) -> list[Step]:
    """The agent dials ``dialled`` (default: ``number`` as a UK user types it); the carrier
    leg to ``number`` gives early media, then answers; the agent hangs up."""
    s = _Script(ctx)
    phone_leg, carrier_leg = _outbound_start(s, agent, number, dialled)
    if early_media_after is not None and early_media_after < ring_seconds:
        s.answer(_ROUTE + early_media_after, carrier_leg, early=True)
    answered = _ROUTE + ring_seconds
    _connect(s, answered, phone_leg, carrier_leg)
    _hangup(s, answered + talk_seconds, phone_leg, carrier_leg)
    return s.steps()


def outbound_busy(
    ctx: ScenarioContext,
    *,
    agent: Agent,
    number: str,
    dialled: str | None = None,
    ring_seconds: int = 3,
) -> list[Step]:
    """The far end is busy: the carrier leg ends USER_BUSY before any answer."""
    s = _Script(ctx)
    phone_leg, carrier_leg = _outbound_start(s, agent, number, dialled)
    _hangup(s, _ROUTE + ring_seconds, carrier_leg, phone_leg, "USER_BUSY")
    return s.steps()


def _outbound_start(
    s: _Script, agent: Agent, number: str, dialled: str | None
) -> tuple[_Leg, _Leg]:
    phone_leg = _phone_leg(s, agent, dialled or dialled_form(number), s.interaction_id(0))
    s.create(0, phone_leg)
    carrier_leg = _carrier_out(s, agent, number, phone_leg)
    s.create(_ROUTE, carrier_leg)
    return phone_leg, carrier_leg


def click_to_dial(
    ctx: ScenarioContext,
    *,
    agent: Agent,
    number: str,
    request_id: str,
    via: str = "user",
    ring_seconds: int = 7,
    talk_seconds: int = 60,
) -> list[Step]:
    """Kazoo quickcall: the agent's phone rings (``<36 hex>-quickcall``) and auto-answers,
    then the switch calls ``number`` through the carrier; the far end hangs up."""
    s = _Script(ctx)
    agent_leg = _quickcall_leg(s, agent, number, request_id, via)
    s.create(0, agent_leg)
    s.answer(1, agent_leg)
    carrier_leg = _carrier_out(s, agent, number, agent_leg)
    s.create(1 + _ROUTE, carrier_leg)
    answered = 1 + _ROUTE + ring_seconds
    s.answer(answered, carrier_leg)
    s.bridge(answered, agent_leg, carrier_leg)
    _hangup(s, answered + talk_seconds, carrier_leg, agent_leg)
    return s.steps()
