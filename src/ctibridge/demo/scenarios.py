"""Realistic Kazoo 4.x call-event sequences for the demo phone system.

Each scenario is a pure function ``(ctx, **params) -> list[Step]``. A :class:`Step` holds
the snake_case ``data`` of one blackhole call event (what ``kz_json:normalize`` makes of
the ecallmgr event) and how long after the previous step it happens. Ids come from
``ctx.rng`` and times from ``ctx.start_greg``, so one seed always gives the same events.

Shapes follow ``shared/reference/telephony.md`` §1.3/§1.6: one Call-ID per leg,
``call_direction`` relative to the switch, ``call_interaction_id`` shared by the legs of
one call, carrier legs marked by ``resource_type`` ``offnet-origination`` or
``offnet-termination``, ``other_leg_call_id`` pointing at the peer leg, and FreeSWITCH
hangup causes on CHANNEL_DESTROY.

Scenario timelines are written in whole seconds after the call starts; events within one
second get increasing sub-second offsets, so Kazoo's whole-second ``timestamp`` of each
event is ``start_greg`` plus the second the scenario names.
"""

from __future__ import annotations

import random
import string
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ctibridge.demo.directory import DEMO, Agent, Caller, Carrier, dialled_form

__all__ = [
    "GREG_OFFSET",
    "SCENARIOS",
    "ScenarioContext",
    "ScenarioFn",
    "Step",
    "blackhole_message",
    "click_to_dial",
    "duplicate_destroy_after_move",
    "greg_from_unix",
    "inbound_answered",
    "inbound_attended_transfer",
    "inbound_blind_transfer",
    "inbound_hold",
    "inbound_missed",
    "inbound_voicemail",
    "internal_answered",
    "internal_missed",
    "legacy_message",
    "outbound_answered",
    "outbound_busy",
    "recorded_inbound",
    "ring_group",
    "routing_key_encode",
    "total_seconds",
]

GREG_OFFSET = 62_167_219_200
"""Kazoo (Gregorian) seconds minus unix seconds."""

_ROUTE = 1
"""Seconds Kazoo takes to route a carrier call or to reach a carrier (lookups, stepswitch)."""
_ROUTE_VARS = ("account_id", "bridge_id", "call_interaction_id", "application_name")
"""Channel vars the route lookup sets: missing from a carrier leg's early CHANNEL_CREATE."""
_SPACING = 0.07
"""Sub-second gap between events of the same second."""
_SIP_CODES = {
    "NORMAL_CLEARING": "sip:200",
    "BLIND_TRANSFER": "sip:200",
    "ATTENDED_TRANSFER": "sip:200",
    "ORIGINATOR_CANCEL": "sip:487",
    "LOSE_RACE": "sip:487",
    "NO_ANSWER": "sip:480",
    "USER_BUSY": "sip:486",
}


def greg_from_unix(unix: float) -> int:
    """Whole Gregorian seconds (Kazoo's clock) for a unix time."""
    return int(unix) + GREG_OFFSET


@dataclass(frozen=True, slots=True)
class Step:
    delay: float
    """Seconds after the previous step (the first: after the scenario starts)."""
    data: dict[str, Any]
    """The blackhole ``data`` of one call event, ``event_name`` included."""


@dataclass(frozen=True)
class ScenarioContext:
    """Where and when a scenario happens; ``rng`` makes every id."""

    account: str
    realm: str
    start_greg: int
    rng: random.Random
    media_server: str = DEMO.media_servers[0]
    carrier: Carrier = DEMO.carrier
    account_name: str = DEMO.name
    route_vars_on_create: bool = True
    """False: a carrier leg's CHANNEL_CREATE comes before routing, so it lacks the account,
    bridge and interaction ids (as Kazoo sends it when the create races the route lookup)."""


ScenarioFn = Callable[..., list[Step]]


@dataclass(slots=True)
class _Leg:
    """One channel while a scenario is being written (private, mutable builder state)."""

    call_id: str
    direction: str
    caller: tuple[str, str]
    callee: tuple[str, str | None]
    request: str
    sender: str
    presence_id: str | None
    ccv: dict[str, str]
    node: str
    cav: dict[str, str] = field(default_factory=dict)
    other: str | None = None
    created: int = 0
    rang_from: int | None = None
    answered: int | None = None
    recordings: list[str] = field(default_factory=list)


class _Script:
    """Collects events in time order and turns them into steps."""

    def __init__(self, ctx: ScenarioContext) -> None:
        self.ctx = ctx
        self._events: list[tuple[float, dict[str, Any]]] = []
        self._legs: dict[str, _Leg] = {}
        self._second = 0
        self._in_second = 0

    # ids -------------------------------------------------------------------------------
    def interaction_id(self, t: int) -> str:
        return f"{self.ctx.start_greg + t}-{self.ctx.rng.getrandbits(32):08x}"

    def switch_uuid(self) -> str:
        return str(uuid.UUID(int=self.ctx.rng.getrandbits(128), version=4))

    def softphone_call_id(self) -> str:
        alphabet = string.ascii_lowercase + string.digits
        return "".join(self.ctx.rng.choice(alphabet) for _ in range(20))

    def carrier_call_id(self) -> str:
        return f"{self.ctx.rng.getrandbits(96):024x}@{self.ctx.carrier.gateway}"

    def quickcall_id(self) -> str:
        return f"{self.ctx.rng.getrandbits(144):036x}-quickcall"

    # events ----------------------------------------------------------------------------
    def create(self, t: int, leg: _Leg) -> None:
        leg.created = t
        self._legs[leg.call_id] = leg
        if leg.direction == "outbound":
            leg.rang_from = t
            peer = self._legs.get(leg.other or "")
            if peer is not None and peer.rang_from is None:
                peer.rang_from = t
        self._emit(t, "CHANNEL_CREATE", leg)

    def answer(self, t: int, leg: _Leg, *, early: bool = False) -> None:
        if not early:
            leg.answered = t
        self._emit(t, "CHANNEL_ANSWER", leg, disposition="EARLY MEDIA" if early else "ANSWER")

    def bridge(self, t: int, a_leg: _Leg, b_leg: _Leg) -> None:
        a_leg.other, b_leg.other = b_leg.call_id, a_leg.call_id
        ids = {"bridge_a_unique_id": a_leg.call_id, "bridge_b_unique_id": b_leg.call_id}
        self._emit(t, "CHANNEL_BRIDGE", a_leg, **ids)

    def hold(self, t: int, leg: _Leg, *, on: bool = True) -> None:
        self._emit(t, "CHANNEL_HOLD" if on else "CHANNEL_UNHOLD", leg)

    def destroy(self, t: int, leg: _Leg, cause: str, *, moving: bool = False) -> None:
        extra: dict[str, Any] = {"hangup_cause": cause}
        if moving:
            extra["channel_moving"] = True
        else:
            extra["hangup_code"] = _SIP_CODES[cause]
        ring_end = leg.answered if leg.answered is not None else t
        extra.update(
            duration_seconds=t - leg.created,
            billing_seconds=0 if leg.answered is None else t - leg.answered,
            ringing_seconds=0 if leg.rang_from is None else max(0, ring_end - leg.rang_from),
            media_recordings=list(leg.recordings),
        )
        self._emit(t, "CHANNEL_DESTROY", leg, **extra)

    def steps(self) -> list[Step]:
        steps: list[Step] = []
        previous = 0.0
        for at, data in self._events:
            steps.append(Step(delay=round(at - previous, 6), data=data))
            previous = at
        return steps

    def _emit(self, t: int, name: str, leg: _Leg, **extra: Any) -> None:
        at = self._stamp(t)
        unix_us = round((self.ctx.start_greg - GREG_OFFSET + at) * 1_000_000)
        data: dict[str, Any] = {
            "event_name": name,
            "event_category": "call_event",
            "call_id": leg.call_id,
            "msg_id": str(unix_us),
            "call_direction": leg.direction,
            "caller_id_number": leg.caller[0],
            "caller_id_name": leg.caller[1],
            "callee_id_number": leg.callee[0],
        }
        if leg.callee[1] is not None:
            data["callee_id_name"] = leg.callee[1]
        data.update(request=leg.request, to=leg.request, **{"from": leg.sender})
        if leg.presence_id is not None:
            data["presence_id"] = leg.presence_id
        data.update(timestamp=self.ctx.start_greg + t, media_server=leg.node)
        if leg.other is not None:
            data["other_leg_call_id"] = leg.other
        data["custom_channel_vars"] = self._ccv(name, leg)
        data["custom_application_vars"] = dict(leg.cav)
        data.update(extra)
        self._events.append((at, data))

    def _ccv(self, name: str, leg: _Leg) -> dict[str, str]:
        ccv = dict(leg.ccv)
        routed = self.ctx.route_vars_on_create or name != "CHANNEL_CREATE"
        if not routed and ccv.get("resource_type") == "offnet-origination":
            for key in _ROUTE_VARS:
                ccv.pop(key, None)
        return ccv

    def _stamp(self, t: int) -> float:
        if t < self._second:
            raise ValueError(f"event at second {t} written after second {self._second}")
        if t > self._second:
            self._second, self._in_second = t, 0
        if self._in_second >= 12:
            raise ValueError(f"too many events in second {t}")
        offset = 0.04 + _SPACING * self._in_second + self.ctx.rng.random() * 0.02
        self._in_second += 1
        return t + offset


# legs --------------------------------------------------------------------------------


def _vars(s: _Script, iid: str, bridge_id: str, **more: str) -> dict[str, str]:
    base = {"account_id": s.ctx.account, "bridge_id": bridge_id, "call_interaction_id": iid}
    return {**base, "application_name": "callflow", **more}


def _device_vars(s: _Script, agent: Agent, iid: str, bridge_id: str) -> dict[str, str]:
    auth = {"owner_id": agent.user_id, "authorizing_id": agent.device_id}
    more = {"authorizing_type": "device", "username": agent.sip_username, "realm": s.ctx.realm}
    return _vars(s, iid, bridge_id, **auth, **more)


def _carrier_in(s: _Script, caller: Caller, did: str, iid: str) -> _Leg:
    """The carrier's A-leg into the switch."""
    call_id, carrier = s.carrier_call_id(), s.ctx.carrier
    resource = {"resource_id": carrier.resource_id, "resource_type": "offnet-origination"}
    ccv = _vars(s, iid, call_id, **resource, global_resource=_flag(carrier.global_resource))
    return _Leg(
        call_id=call_id,
        direction="inbound",
        caller=(caller.number, caller.name),
        callee=(did, None),
        request=f"{did}@{carrier.sbc}",
        sender=f"{caller.number}@{carrier.gateway}",
        presence_id=None,
        ccv=ccv,
        node=s.ctx.media_server,
    )


def _device_leg(s: _Script, agent: Agent, a_leg: _Leg) -> _Leg:
    """A leg the switch creates to ring an agent's phone for ``a_leg``."""
    iid, bridge_id = a_leg.ccv["call_interaction_id"], a_leg.ccv["bridge_id"]
    return _Leg(
        call_id=s.switch_uuid(),
        direction="outbound",
        caller=a_leg.caller,
        callee=(agent.extension, agent.name),
        request=f"{agent.sip_username}@{s.ctx.realm}",
        sender=f"{a_leg.caller[0]}@{s.ctx.realm}",
        presence_id=f"{agent.extension}@{s.ctx.realm}",
        ccv=_device_vars(s, agent, iid, bridge_id),
        node=a_leg.node,
        cav=dict(a_leg.cav),
        other=a_leg.call_id,
    )


def _phone_leg(s: _Script, agent: Agent, dialled: str, iid: str) -> _Leg:
    """An agent's phone calling into the switch (the A-leg of outbound and internal calls)."""
    call_id = s.softphone_call_id()
    return _Leg(
        call_id=call_id,
        direction="inbound",
        caller=(agent.extension, agent.name),
        callee=(dialled, None),
        request=f"{dialled}@{s.ctx.realm}",
        sender=f"{agent.extension}@{s.ctx.realm}",
        presence_id=f"{agent.extension}@{s.ctx.realm}",
        ccv=_device_vars(s, agent, iid, call_id),
        node=s.ctx.media_server,
    )


def _carrier_out(s: _Script, agent: Agent, number: str, a_leg: _Leg) -> _Leg:
    """The leg the switch creates to the carrier for ``a_leg``'s outbound call."""
    carrier = s.ctx.carrier
    iid, bridge_id = a_leg.ccv["call_interaction_id"], a_leg.ccv["bridge_id"]
    resource = {"resource_id": carrier.resource_id, "resource_type": "offnet-termination"}
    ccv = _vars(s, iid, bridge_id, **resource, global_resource=_flag(carrier.global_resource))
    return _Leg(
        call_id=s.switch_uuid(),
        direction="outbound",
        caller=(agent.did, s.ctx.account_name),
        callee=(number, None),
        request=f"{number}@{carrier.gateway}",
        sender=f"{agent.did}@{carrier.sbc}",
        presence_id=None,
        ccv=ccv,
        node=a_leg.node,
        cav=dict(a_leg.cav),
        other=a_leg.call_id,
    )


def _quickcall_leg(s: _Script, agent: Agent, number: str, request_id: str, via: str) -> _Leg:
    """Kazoo quickcall: the switch rings the agent first, showing the target as caller."""
    call_id = s.quickcall_id()
    auth_id = agent.device_id if via == "device" else agent.user_id
    ccv = _device_vars(s, agent, s.interaction_id(0), call_id)
    ccv.update(authorizing_id=auth_id, authorizing_type=via, application_name="transfer")
    ccv.update(auto_answer="true", retain_cid="true", inherit_codec="false")
    return _Leg(
        call_id=call_id,
        direction="outbound",
        caller=(number, "Device QuickCall"),
        callee=(agent.extension, agent.name),
        request=f"{agent.sip_username}@{s.ctx.realm}",
        sender=f"{number}@{s.ctx.realm}",
        presence_id=f"{agent.extension}@{s.ctx.realm}",
        ccv=ccv,
        node=s.ctx.media_server,
        cav={"ctibridge_req": request_id},
    )


def _flag(value: bool) -> str:
    return "true" if value else "false"


def _connect(s: _Script, t: int, a_leg: _Leg, b_leg: _Leg) -> None:
    """``b_leg`` answers; the switch answers ``a_leg`` if it has not yet and bridges them."""
    s.answer(t, b_leg)
    a_leg.other = b_leg.call_id
    if a_leg.answered is None:
        s.answer(t, a_leg)
    s.bridge(t, a_leg, b_leg)


def _hangup(s: _Script, t: int, first: _Leg, second: _Leg, cause: str = "NORMAL_CLEARING") -> None:
    s.destroy(t, first, cause)
    s.destroy(t, second, cause)


def _inbound_start(s: _Script, agent: Agent, caller: Caller, did: str | None) -> tuple[_Leg, _Leg]:
    carrier_leg = _carrier_in(s, caller, did or agent.did, s.interaction_id(0))
    s.create(0, carrier_leg)
    device_leg = _device_leg(s, agent, carrier_leg)
    s.create(_ROUTE, device_leg)
    return carrier_leg, device_leg


# scenarios ---------------------------------------------------------------------------


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


SCENARIOS: dict[str, ScenarioFn] = {
    "inbound_answered": inbound_answered,
    "inbound_missed": inbound_missed,
    "inbound_voicemail": inbound_voicemail,
    "inbound_hold": inbound_hold,
    "inbound_blind_transfer": inbound_blind_transfer,
    "inbound_attended_transfer": inbound_attended_transfer,
    "ring_group": ring_group,
    "outbound_answered": outbound_answered,
    "outbound_busy": outbound_busy,
    "internal_answered": internal_answered,
    "internal_missed": internal_missed,
    "click_to_dial": click_to_dial,
    "recorded_inbound": recorded_inbound,
    "duplicate_destroy_after_move": duplicate_destroy_after_move,
}
"""Every scenario by name."""


def total_seconds(steps: list[Step]) -> float:
    """How long a scenario lasts (start to last event)."""
    return sum(step.delay for step in steps)


# wire forms --------------------------------------------------------------------------


def routing_key_encode(key: str) -> str:
    """Kazoo's AMQP routing-key escaping: keep ``[A-Za-z0-9_~-]``, space → ``+``, rest ``%XX``."""
    if key in ("*", "#"):
        return key
    safe = string.ascii_letters + string.digits + "-~_"
    out = []
    for byte in key.encode():
        char = chr(byte)
        out.append(char if char in safe else "+" if char == " " else f"%{byte:02X}")
    return "".join(out)


def blackhole_message(account_id: str, data: dict[str, Any]) -> dict[str, Any]:
    """The websocket message a blackhole client subscribed to ``call.<EVENT>.*`` receives."""
    name = data["event_name"]
    return {
        "action": "event",
        "subscribed_key": f"call.{name}.*",
        "subscription_key": f"call.{account_id}.{name}.*",
        "name": name,
        "routing_key": f"call.{name}.{routing_key_encode(data['call_id'])}",
        "data": data,
    }


_NUMERIC_AS_TEXT = ("duration_seconds", "billing_seconds", "ringing_seconds")
_UPPER_WORDS = {"id": "ID", "cid": "CID", "uri": "URI", "url": "URL", "sip": "SIP", "sdp": "SDP"}


def legacy_message(data: dict[str, Any]) -> dict[str, Any]:
    """The same event in the old 3.x shape: ``{"name", "args"}`` with ``Capitalised-Keys``
    (custom application vars keep their keys; durations are strings, as 3.x sent them)."""
    args: dict[str, Any] = {"App-Name": "ecallmgr"}
    for key, value in data.items():
        if key == "custom_channel_vars":
            value = {_legacy_key(k): v for k, v in value.items()}
        elif key in _NUMERIC_AS_TEXT:
            value = str(value)
        args[_legacy_key(key)] = value
    return {"name": data["event_name"], "args": args}


def _legacy_key(key: str) -> str:
    return "-".join(_UPPER_WORDS.get(word, word.capitalize()) for word in key.split("_"))
