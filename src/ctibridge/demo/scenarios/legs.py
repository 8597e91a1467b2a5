"""The legs scenarios are made of (carrier, agent device, agent phone, quickcall) and the
steps several scenarios share (connect, hang up, an inbound call's first two legs)."""

from __future__ import annotations

from ctibridge.demo.directory import Agent, Caller
from ctibridge.demo.scenarios.script import _Leg, _Script

_ROUTE = 1
"""Seconds Kazoo takes to route a carrier call or to reach a carrier (lookups, stepswitch)."""


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
