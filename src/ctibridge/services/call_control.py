"""Call control: click-to-dial, and hang up / hold / resume / transfer / DTMF on live calls.

Each phone system brings a :class:`CallControl` (Kazoo: ``connectors/kazoo_control.py``)
that declares what it can do. :class:`CallControlService` is the PBX-independent half: who
may act on which call, which leg an action goes to (the agent's own), which numbers may be
dialled, and the CRM record a click-to-dial started from, kept under our request id until
the call carrying that id (``Call.origin_tag``) appears, then handed to CRM logging.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Protocol

from ctibridge.callstate.events import AgentRef, Party
from ctibridge.callstate.model import Call, CallChanged, CallState, Leg
from ctibridge.crm.base import CrmRef
from ctibridge.errors import Forbidden, InvalidRequest, NoSuchCall
from ctibridge.numbers import is_internal, to_e164
from ctibridge.services.agents import ALL_TENANTS, Principal
from ctibridge.services.calls import CallsService
from ctibridge.services.crm_logging import CrmLoggingService
from ctibridge.storage.base import Agent, Storage, StoredCall
from ctibridge.types import AgentId, CallId, LegId, TenantId

__all__ = [
    "ActionRequested",
    "CallControl",
    "CallControlService",
    "Capability",
    "PendingDial",
]

logger = logging.getLogger(__name__)


class Capability(StrEnum):
    """What a phone system can be asked to do to a call."""

    ORIGINATE = "originate"
    HANGUP = "hangup"
    HOLD = "hold"
    RESUME = "resume"
    BLIND_TRANSFER = "blind_transfer"
    ATTENDED_TRANSFER = "attended_transfer"
    DTMF = "dtmf"
    ANSWER = "answer"


class CallControl(Protocol):
    """Call control of one kind of phone system. Legs are the PBX's own ids (``Leg.leg_id``)
    and come with their tenant, which names the account or PBX they live on. Every method
    raises a ``ConnectorError`` when the PBX refuses or fails; none is a silent no-op."""

    def capabilities(self) -> frozenset[str]:
        """The :class:`Capability` values this phone system supports."""
        ...

    async def originate(
        self,
        tenant_id: TenantId,
        agent: AgentRef,
        number: str,
        *,
        request_id: str,
        auto_answer: bool = True,
    ) -> LegId | None:
        """Ring the agent's phone, then dial ``number``; tag the call with ``request_id``.
        Returns the agent leg's id when the PBX announces it."""
        ...

    async def hangup(self, tenant_id: TenantId, leg: LegId) -> None: ...

    async def hold(self, tenant_id: TenantId, leg: LegId) -> None:
        """Put the party talking to ``leg`` on hold."""
        ...

    async def resume(self, tenant_id: TenantId, leg: LegId) -> None: ...

    async def blind_transfer(self, tenant_id: TenantId, leg: LegId, target: str) -> None:
        """Send the party talking to ``leg`` to ``target``; ``leg`` leaves the call."""
        ...

    async def attended_transfer(self, tenant_id: TenantId, leg: LegId, target: str) -> None: ...

    async def send_dtmf(self, tenant_id: TenantId, leg: LegId, digits: str) -> None: ...

    async def answer(self, tenant_id: TenantId, leg: LegId) -> None: ...

    async def close(self) -> None: ...


@dataclass(frozen=True, slots=True)
class ActionRequested:
    """The phone system accepted the request; the call's events will show its effect."""

    call_id: CallId
    action: Capability
    leg_id: LegId
    pbx: str


@dataclass(frozen=True, slots=True)
class PendingDial:
    """A click-to-dial whose call has not appeared yet."""

    request_id: str
    tenant_id: TenantId
    agent_id: AgentId
    number: str
    clicked: CrmRef | None
    requested_at: float
    leg_id: LegId | None = None
    """The agent leg's id, when the phone system announced it."""


_Run = Callable[[CallControl, TenantId, LegId], Awaitable[None]]
_TALKING = (CallState.ANSWERED, CallState.HELD)
_DTMF = frozenset("0123456789*#ABCD")


class CallControlService:
    """Click-to-dial and call actions for agents (and admins of the call's tenant).

    It listens on ``calls`` (registered here) to attach a click's CRM record to its call."""

    def __init__(
        self,
        *,
        calls: CallsService,
        crm_logging: CrmLoggingService | None,
        controls: Mapping[str, CallControl],
        storage: Storage | None = None,
        default_pbx: str = "kazoo",
        region: str = "GB",
        internal_digits: int = 5,
        pending_ttl: float = 600.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._calls = calls
        self._crm_logging = crm_logging
        self._controls = dict(controls)
        self._storage = storage
        self._default_pbx = default_pbx
        self._region = region
        self._internal_digits = internal_digits
        self._pending_ttl = pending_ttl
        self._clock = clock
        self._pending: dict[str, PendingDial] = {}
        self._by_leg: dict[str, str] = {}
        calls.listen(self.on_call_changed)

    # -- what is possible -----------------------------------------------------------------

    async def capabilities(self, tenant_id: TenantId) -> tuple[str, frozenset[Capability]]:
        """The tenant's phone system and what it can do (nothing without a control)."""
        pbx = await self._pbx_of(tenant_id)
        return pbx, self._declared(pbx)

    def dialable(self, number: str) -> str:
        """An extension as typed, any other number in E.164; InvalidRequest otherwise."""
        text = number.strip()
        if text.isdigit() and is_internal(text, self._internal_digits):
            return text
        e164 = to_e164(text, self._region, self._internal_digits)
        if e164 is None:
            raise InvalidRequest(
                f"{number!r} is not a phone number or extension that can be dialled",
                details={"field": "number", "number": number},
            )
        return e164

    def pending(self) -> list[PendingDial]:
        return list(self._pending.values())

    # -- click-to-dial --------------------------------------------------------------------

    async def originate(
        self, principal: Principal, number: str, clicked: CrmRef | None = None
    ) -> str:
        """Ring the agent's phone, then ``number``. Returns our request id (the call's
        ``origin_tag``); ``clicked`` goes to the call's CRM context once the call exists."""
        agent = principal.agent
        if agent is None:
            raise Forbidden("only an agent can place calls (from their own phone)")
        control = self._require(await self._pbx_of(agent.tenant_id), Capability.ORIGINATE)
        dialled, phone = self.dialable(number), _phone_of(agent)
        request_id = f"c2d-{secrets.token_hex(10)}"
        self._expire()
        pending = PendingDial(
            request_id, agent.tenant_id, agent.agent_id, dialled, clicked, self._clock()
        )
        self._pending[request_id] = pending  # before the PBX: events may beat its reply
        try:
            leg = await control.originate(agent.tenant_id, phone, dialled, request_id=request_id)
        except BaseException:
            self._pending.pop(request_id, None)
            raise
        if leg is not None and request_id in self._pending:
            self._pending[request_id] = replace(pending, leg_id=leg)
            self._by_leg[leg] = request_id
        logger.info("click-to-dial %s: %s calls %s", request_id, agent.agent_id, dialled)
        return request_id

    def on_call_changed(self, change: CallChanged, stored: StoredCall) -> None:
        """CallsService listener: the first change of a click-to-dial's call ends the wait
        and attaches the clicked CRM record to the call, for the agent who clicked."""
        if not self._pending:
            return
        call = stored.call
        request_id = call.origin_tag if call.origin_tag in self._pending else self._by_legs(call)
        if request_id is None:
            return
        pending = self._pending.pop(request_id)
        if pending.leg_id is not None:
            self._by_leg.pop(pending.leg_id, None)
        if pending.clicked is not None and self._crm_logging is not None:
            self._crm_logging.remember(call.call_id, pending.agent_id, clicked=pending.clicked)
        logger.info("click-to-dial %s is call %s", request_id, call.call_id)

    # -- actions on a call ----------------------------------------------------------------

    async def hangup(self, principal: Principal, call_id: CallId) -> ActionRequested:
        return await self._act(
            principal, call_id, Capability.HANGUP, lambda c, t, leg: c.hangup(t, leg)
        )

    async def hold(self, principal: Principal, call_id: CallId) -> ActionRequested:
        return await self._act(
            principal, call_id, Capability.HOLD, lambda c, t, leg: c.hold(t, leg)
        )

    async def resume(self, principal: Principal, call_id: CallId) -> ActionRequested:
        return await self._act(
            principal, call_id, Capability.RESUME, lambda c, t, leg: c.resume(t, leg)
        )

    async def answer(self, principal: Principal, call_id: CallId) -> ActionRequested:
        return await self._act(
            principal, call_id, Capability.ANSWER, lambda c, t, leg: c.answer(t, leg)
        )

    async def send_dtmf(
        self, principal: Principal, call_id: CallId, digits: str
    ) -> ActionRequested:
        if not digits or len(digits) > 32 or not set(digits) <= _DTMF:
            raise InvalidRequest("digits: 1 to 32 of 0-9 * # A-D", details={"field": "digits"})

        async def run(control: CallControl, tenant_id: TenantId, leg: LegId) -> None:
            await control.send_dtmf(tenant_id, leg, digits)

        return await self._act(principal, call_id, Capability.DTMF, run)

    async def transfer(
        self, principal: Principal, call_id: CallId, target: str, *, kind: str = "blind"
    ) -> ActionRequested:
        """Transfer the other party to ``target`` (an extension or a number)."""
        capability = _TRANSFERS.get(kind)
        if capability is None:
            raise InvalidRequest("kind: 'blind' or 'attended'", details={"field": "kind"})
        dialled = self.dialable(target)

        async def run(control: CallControl, tenant_id: TenantId, leg: LegId) -> None:
            if capability is Capability.BLIND_TRANSFER:
                await control.blind_transfer(tenant_id, leg, dialled)
            else:
                await control.attended_transfer(tenant_id, leg, dialled)

        return await self._act(principal, call_id, capability, run)

    async def close(self) -> None:
        for control in self._controls.values():
            await control.close()

    # -- helpers --------------------------------------------------------------------------

    async def _act(
        self, principal: Principal, call_id: CallId, capability: Capability, run: _Run
    ) -> ActionRequested:
        stored = await self._call_of(principal, call_id)
        call = stored.call
        if call.state is CallState.ENDED:
            raise InvalidRequest("the call has ended", details={"call_id": call_id})
        control = self._require(call.pbx, capability)
        _check_state(call, capability)
        leg = LegId(_leg_for(call, principal, capability).leg_id)
        await run(control, TenantId(call.tenant_id), leg)
        logger.info("%s on call %s (leg %s) by %s", capability, call_id, leg, _who(principal))
        return ActionRequested(CallId(call.call_id), capability, leg, call.pbx)

    async def _call_of(self, principal: Principal, call_id: CallId) -> StoredCall:
        """The call, if the principal may act on it: 404 unknown (or another tenant's),
        403 when an agent is not on it."""
        tenants = self._calls.tenants() if principal.tenant_id == ALL_TENANTS else None
        for tenant in tenants or [principal.tenant_id]:
            try:
                stored = await self._calls.get(TenantId(tenant), call_id)
            except NoSuchCall:
                continue
            if not principal.is_admin and not _is_on(principal.agent, stored):
                raise Forbidden("you are not on this call", details={"call_id": call_id})
            return stored
        raise NoSuchCall(f"no call {call_id}", details={"call_id": call_id})

    def _declared(self, pbx: str) -> frozenset[Capability]:
        control = self._controls.get(pbx)
        if control is None:
            return frozenset()
        offered = control.capabilities()
        return frozenset(c for c in Capability if c.value in offered)

    def _require(self, pbx: str, capability: Capability) -> CallControl:
        control = self._controls.get(pbx)
        if control is None or capability not in self._declared(pbx):
            raise InvalidRequest(
                f"{capability} is not supported by {pbx}",
                details={"action": capability.value, "pbx": pbx},
            )
        return control

    async def _pbx_of(self, tenant_id: TenantId) -> str:
        if self._storage is not None:
            tenant = await self._storage.get_tenant(tenant_id)
            if tenant is not None:
                return tenant.pbx
        return self._default_pbx

    def _by_legs(self, call: Call) -> str | None:
        """Fallback when a PBX drops our tag: the leg id its originate reply announced."""
        for leg in call.legs:
            request_id = self._by_leg.get(leg.leg_id)
            if request_id is not None and request_id in self._pending:
                return request_id
        return None

    def _expire(self) -> None:
        """Forget clicks whose call never appeared (a phone that could not be reached)."""
        oldest = self._clock() - self._pending_ttl
        for request_id, pending in list(self._pending.items()):
            if pending.requested_at < oldest:
                del self._pending[request_id]
                if pending.leg_id is not None:
                    self._by_leg.pop(pending.leg_id, None)
                logger.info("click-to-dial %s: no call appeared", request_id)


_TRANSFERS = {"blind": Capability.BLIND_TRANSFER, "attended": Capability.ATTENDED_TRANSFER}


def _who(principal: Principal) -> str:
    return principal.agent_id or f"admin of {principal.tenant_id}"


def _phone_of(agent: Agent) -> AgentRef:
    """The agent's phone: their one device, else their PBX user (all their devices)."""
    if not agent.pbx_user_id and not agent.device_ids:
        raise InvalidRequest("your agent has no phone on the phone system (no user or device)")
    single = len(agent.device_ids) == 1 or not agent.pbx_user_id
    device = agent.device_ids[0] if single else None
    return AgentRef(user_id=agent.pbx_user_id, device_id=device, extension=agent.extension)


def _is_on(agent: Agent | None, stored: StoredCall) -> bool:
    if agent is None:
        return False
    if agent.agent_id in stored.handled_by or agent.agent_id in stored.rung:
        return True
    return any(leg.agent is not None and agent.matches(leg.agent) for leg in stored.call.legs)


def _check_state(call: Call, capability: Capability) -> None:
    if capability is Capability.ANSWER and call.state in _TALKING:
        raise InvalidRequest("the call is already answered", details={"state": call.state.value})
    if capability not in (Capability.ANSWER, Capability.HANGUP) and call.state not in _TALKING:
        raise InvalidRequest("the call is not answered yet", details={"state": call.state.value})


def _leg_for(call: Call, principal: Principal, capability: Capability) -> Leg:
    """The leg to act on: the agent's own live leg (an admin: any agent's), the answered one
    first (for answer: the ringing one), the newest first."""
    agent = principal.agent
    live = [leg for leg in call.legs if leg.ended_at is None]
    if agent is not None:
        mine = [leg for leg in live if leg.agent is not None and agent.matches(leg.agent)]
    else:
        mine = [leg for leg in live if leg.party == Party.AGENT]
    if not mine:
        who = "you have" if agent is not None else "no agent has"
        raise InvalidRequest(f"{who} no live leg on this call", details={"call_id": call.call_id})
    ringing_first = capability is Capability.ANSWER
    return max(mine, key=lambda leg: ((leg.answered_at is None) == ringing_first, leg.created_at))
