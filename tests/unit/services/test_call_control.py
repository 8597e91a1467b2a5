"""CallControlService: who may act, on which leg, with which numbers, and the click context."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from ctibridge.callstate.events import AgentRef, Party
from ctibridge.callstate.model import Call, CallChanged, CallEventName, CallState, Direction, Leg
from ctibridge.crm.base import CrmRef
from ctibridge.crm.memory import MemoryCrm
from ctibridge.errors import Forbidden, InvalidRequest, NoSuchCall, PbxUnavailable
from ctibridge.services.agents import ALL_TENANTS, Principal
from ctibridge.services.call_control import ActionRequested, CallControlService, Capability
from ctibridge.services.crm_logging import CrmLoggingService
from ctibridge.services.directory import AgentDirectory
from ctibridge.storage.base import Agent, StoredCall
from ctibridge.types import AgentId, CallId, LegId, TenantId

TENANT = TenantId("acc1")
OLIVIA = Agent(
    AgentId("agent-101"), TENANT, "Olivia", extension="101", pbx_user_id="u101",
    device_ids=("d101",),
)  # fmt: skip
JAMES = Agent(
    AgentId("agent-102"), TENANT, "James", extension="102", pbx_user_id="u102",
    device_ids=("d102",),
)  # fmt: skip
OLIVIA_REF = AgentRef("u101", "d101", "101")
JAMES_REF = AgentRef("u102", "d102", "102")
KAZOO_CAN = frozenset(
    {"originate", "hangup", "hold", "resume", "blind_transfer", "attended_transfer"}
)


def agent(who: Agent) -> Principal:
    return Principal("agent", who.tenant_id, who)


ADMIN = Principal("admin", TENANT)
OTHER_ADMIN = Principal("admin", TenantId("acc2"))
SUPER_ADMIN = Principal("admin", ALL_TENANTS)


class FakeControl:
    """A phone system that records what it was asked."""

    def __init__(self, can: frozenset[str] = KAZOO_CAN) -> None:
        self.can = can
        self.calls: list[tuple[Any, ...]] = []
        self.leg: LegId | None = LegId("q1-quickcall")
        self.fail: Exception | None = None
        self.closed = False
        self.before_reply: Callable[[], None] | None = None

    def capabilities(self) -> frozenset[str]:
        return self.can

    async def originate(
        self, tenant_id: TenantId, agent: AgentRef, number: str, *, request_id: str,
        auto_answer: bool = True,
    ) -> LegId | None:  # fmt: skip
        self.calls.append(("originate", tenant_id, agent, number, request_id, auto_answer))
        if self.before_reply is not None:
            self.before_reply()
        if self.fail is not None:
            raise self.fail
        return self.leg

    async def hangup(self, tenant_id: TenantId, leg: LegId) -> None:
        self.calls.append(("hangup", tenant_id, leg))

    async def hold(self, tenant_id: TenantId, leg: LegId) -> None:
        self.calls.append(("hold", tenant_id, leg))

    async def resume(self, tenant_id: TenantId, leg: LegId) -> None:
        self.calls.append(("resume", tenant_id, leg))

    async def blind_transfer(self, tenant_id: TenantId, leg: LegId, target: str) -> None:
        self.calls.append(("blind_transfer", tenant_id, leg, target))

    async def attended_transfer(self, tenant_id: TenantId, leg: LegId, target: str) -> None:
        self.calls.append(("attended_transfer", tenant_id, leg, target))

    async def send_dtmf(self, tenant_id: TenantId, leg: LegId, digits: str) -> None:
        self.calls.append(("dtmf", tenant_id, leg, digits))

    async def answer(self, tenant_id: TenantId, leg: LegId) -> None:
        self.calls.append(("answer", tenant_id, leg))

    async def close(self) -> None:
        self.closed = True


class FakeCalls:
    """The part of CallsService that call control uses."""

    def __init__(self, *stored: StoredCall) -> None:
        self.stored = {s.call.call_id: s for s in stored}
        self.listeners: list[Callable[[CallChanged, StoredCall], None]] = []

    def listen(self, listener: Callable[[CallChanged, StoredCall], None]) -> None:
        self.listeners.append(listener)

    def tenants(self) -> list[str]:
        return sorted({s.call.tenant_id for s in self.stored.values()})

    async def get(self, tenant_id: TenantId, call_id: CallId) -> StoredCall:
        stored = self.stored.get(call_id)
        if stored is None or stored.call.tenant_id != tenant_id:
            raise NoSuchCall(f"no call {call_id}")
        return stored

    def change(self, stored: StoredCall) -> None:
        for listener in self.listeners:
            listener(CallChanged(CallEventName.CREATED, stored.call), stored)


def leg(
    leg_id: str, who: AgentRef | None, *, at: float = 0.0, answered: float | None = 1.0,
    ended: float | None = None,
) -> Leg:  # fmt: skip
    party = Party.AGENT if who is not None else Party.TRUNK
    return Leg(leg_id, party, who, who is None, at, answered, ended)


def stored_call(
    *legs: Leg,
    state: CallState = CallState.ANSWERED,
    call_id: str = "call-1",
    handled_by: tuple[AgentId, ...] = (OLIVIA.agent_id,),
    origin_tag: str | None = None,
    pbx: str = "kazoo",
) -> StoredCall:
    legs = legs or (leg("carrier", None), leg("olivia-leg", OLIVIA_REF))
    call = Call(
        call_id, TENANT, state, Direction.INBOUND, pbx=pbx, legs=legs, origin_tag=origin_tag
    )
    return StoredCall(call, handled_by=handled_by)


def service(
    *stored: StoredCall, control: FakeControl | None = None, clock: Callable[[], float] = lambda: 0
) -> tuple[CallControlService, FakeControl, FakeCalls, CrmLoggingService]:
    control = control or FakeControl()
    calls = FakeCalls(*stored)
    crm_logging = CrmLoggingService(storage=None, directory=AgentDirectory(), crm=MemoryCrm())  # type: ignore[arg-type]
    svc = CallControlService(
        calls=calls,  # type: ignore[arg-type]
        crm_logging=crm_logging,
        controls={"kazoo": control},
        clock=clock,
    )
    return svc, control, calls, crm_logging


# -- numbers --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("typed", "dialled"),
    [
        ("101", "101"),
        (" 07700 900123 ", "+447700900123"),
        ("+44 20 7946 0123", "+442079460123"),
        ("0044 7700 900123", "+447700900123"),
        ("(0113) 496 0000", "+441134960000"),
    ],
)
async def test_click_to_dial_dials_extensions_as_typed_and_numbers_in_e164(
    typed: str, dialled: str
) -> None:
    svc, control, _, _ = service()
    await svc.originate(agent(OLIVIA), typed)
    assert control.calls[0][3] == dialled


@pytest.mark.parametrize("typed", ["", "   ", "hello", "12a", "+1 2", "999999999999999999"])
async def test_a_number_that_cannot_be_dialled_is_an_invalid_request(typed: str) -> None:
    svc, control, _, _ = service()
    with pytest.raises(InvalidRequest) as caught:
        await svc.originate(agent(OLIVIA), typed)
    assert caught.value.details["field"] == "number"
    assert control.calls == []
    assert svc.pending() == []


# -- click-to-dial --------------------------------------------------------------------------


async def test_click_to_dial_rings_the_agents_own_phone_with_our_request_id() -> None:
    svc, control, _, _ = service()
    request_id = await svc.originate(agent(OLIVIA), "07700 900123")
    assert control.calls == [("originate", TENANT, OLIVIA_REF, "+447700900123", request_id, True)]
    [pending] = svc.pending()
    assert (pending.request_id, pending.agent_id, pending.leg_id) == (
        request_id, OLIVIA.agent_id, "q1-quickcall",
    )  # fmt: skip


async def test_an_agent_with_several_devices_is_rung_as_a_user() -> None:
    two = Agent(
        AgentId("a2"), TENANT, "Two", extension="107", pbx_user_id="u107",
        device_ids=("d1", "d2"),
    )  # fmt: skip
    svc, control, _, _ = service()
    await svc.originate(agent(two), "102")
    assert control.calls[0][2] == AgentRef("u107", None, "107")


async def test_an_agent_without_a_phone_cannot_click_to_dial() -> None:
    nobody = Agent(AgentId("a3"), TENANT, "No phone", extension="108")
    svc, control, _, _ = service()
    with pytest.raises(InvalidRequest, match="no phone"):
        await svc.originate(agent(nobody), "102")
    assert control.calls == []


async def test_an_admin_cannot_click_to_dial() -> None:
    svc, control, _, _ = service()
    with pytest.raises(Forbidden):
        await svc.originate(ADMIN, "102")
    assert control.calls == []


async def test_click_to_dial_on_a_pbx_that_cannot_originate_is_refused() -> None:
    svc, control, _, _ = service(control=FakeControl(frozenset({"hangup"})))
    with pytest.raises(InvalidRequest, match="originate is not supported by kazoo"):
        await svc.originate(agent(OLIVIA), "102")
    assert control.calls == []


async def test_a_refused_originate_leaves_nothing_pending() -> None:
    svc, control, _, _ = service()
    control.fail = PbxUnavailable("kazoo is down")
    with pytest.raises(PbxUnavailable):
        await svc.originate(agent(OLIVIA), "102")
    assert svc.pending() == []


async def test_the_clicked_record_is_attached_when_the_call_with_our_tag_appears() -> None:
    svc, _, calls, crm_logging = service()
    clicked = CrmRef("Contact", "003A")
    request_id = await svc.originate(agent(OLIVIA), "07700 900123", clicked)
    calls.change(stored_call(call_id="other", origin_tag=None))
    calls.change(stored_call(call_id="someone-elses", origin_tag="c2d-not-ours"))
    assert svc.pending() != []
    assert crm_logging.context("other", OLIVIA.agent_id).clicked is None

    calls.change(stored_call(call_id="call-9", origin_tag=request_id))
    assert crm_logging.context("call-9", OLIVIA.agent_id).clicked == clicked
    assert svc.pending() == []


async def test_a_call_that_appears_before_the_pbx_replies_is_still_correlated() -> None:
    svc, control, calls, crm_logging = service()
    clicked = CrmRef("Lead", "00QB")

    def call_appears() -> None:
        [pending] = svc.pending()
        calls.change(stored_call(call_id="early", origin_tag=pending.request_id))

    control.before_reply = call_appears
    await svc.originate(agent(OLIVIA), "102", clicked)
    assert crm_logging.context("early", OLIVIA.agent_id).clicked == clicked
    assert svc.pending() == []


async def test_a_call_without_our_tag_is_correlated_by_the_announced_leg() -> None:
    svc, control, calls, crm_logging = service()
    control.leg = LegId("abc-quickcall")
    await svc.originate(agent(OLIVIA), "102", CrmRef("Account", "001C"))
    calls.change(stored_call(leg("abc-quickcall", OLIVIA_REF), call_id="untagged"))
    assert crm_logging.context("untagged", OLIVIA.agent_id).clicked == CrmRef("Account", "001C")


async def test_a_click_whose_call_never_appears_is_forgotten() -> None:
    now = [1000.0]
    svc, _, _, _ = service(clock=lambda: now[0])
    await svc.originate(agent(OLIVIA), "102")
    now[0] += 601
    await svc.originate(agent(OLIVIA), "103")
    assert [p.number for p in svc.pending()] == ["103"]


# -- actions --------------------------------------------------------------------------------


async def test_an_agent_acts_on_their_own_live_leg() -> None:
    stored = stored_call(
        leg("carrier", None),
        leg("olivia-old", OLIVIA_REF, at=1, ended=5),
        leg("olivia-ringing", OLIVIA_REF, at=3, answered=None),
        leg("olivia-live", OLIVIA_REF, at=2),
        leg("james-live", JAMES_REF, at=4),
    )
    svc, control, _, _ = service(stored)
    result = await svc.hangup(agent(OLIVIA), CallId("call-1"))
    assert result == ActionRequested(
        CallId("call-1"), Capability.HANGUP, LegId("olivia-live"), "kazoo"
    )
    await svc.hold(agent(OLIVIA), CallId("call-1"))
    await svc.resume(agent(OLIVIA), CallId("call-1"))
    assert control.calls == [
        ("hangup", TENANT, "olivia-live"),
        ("hold", TENANT, "olivia-live"),
        ("resume", TENANT, "olivia-live"),
    ]


async def test_answer_goes_to_the_ringing_leg() -> None:
    stored = stored_call(
        leg("carrier", None),
        leg("olivia-desk", OLIVIA_REF, answered=None),
        state=CallState.RINGING,
    )
    svc, control, _, _ = service(stored, control=FakeControl(KAZOO_CAN | {"answer"}))
    await svc.answer(agent(OLIVIA), CallId("call-1"))
    assert control.calls == [("answer", TENANT, "olivia-desk")]


async def test_an_agent_who_is_not_on_the_call_is_forbidden() -> None:
    svc, control, _, _ = service(stored_call())
    with pytest.raises(Forbidden):
        await svc.hangup(agent(JAMES), CallId("call-1"))
    assert control.calls == []


async def test_an_agent_who_was_rung_but_has_no_live_leg_gets_a_clear_refusal() -> None:
    stored = stored_call(
        leg("carrier", None),
        leg("olivia-leg", OLIVIA_REF),
        leg("james-lost", JAMES_REF, answered=None, ended=3),
    )
    svc, control, _, _ = service(stored)
    with pytest.raises(InvalidRequest, match="you have no live leg"):
        await svc.hangup(agent(JAMES), CallId("call-1"))
    assert control.calls == []


async def test_an_unknown_call_and_another_tenants_call_are_not_found() -> None:
    svc, control, _, _ = service(stored_call())
    with pytest.raises(NoSuchCall):
        await svc.hangup(agent(OLIVIA), CallId("nope"))
    with pytest.raises(NoSuchCall):
        await svc.hangup(OTHER_ADMIN, CallId("call-1"))
    assert control.calls == []


async def test_an_admin_of_the_tenant_acts_on_the_agents_leg() -> None:
    svc, control, _, _ = service(stored_call())
    await svc.hangup(ADMIN, CallId("call-1"))
    await svc.hold(SUPER_ADMIN, CallId("call-1"))
    assert control.calls == [("hangup", TENANT, "olivia-leg"), ("hold", TENANT, "olivia-leg")]


async def test_an_ended_call_cannot_be_acted_on() -> None:
    stored = stored_call(leg("olivia-leg", OLIVIA_REF, ended=9), state=CallState.ENDED)
    svc, control, _, _ = service(stored)
    with pytest.raises(InvalidRequest, match="ended"):
        await svc.hangup(agent(OLIVIA), CallId("call-1"))
    assert control.calls == []


@pytest.mark.parametrize(
    ("act", "message"),
    [
        (lambda s, p: s.send_dtmf(p, CallId("call-1"), "123#"), "dtmf is not supported by kazoo"),
        (lambda s, p: s.answer(p, CallId("call-1")), "answer is not supported by kazoo"),
    ],
)
async def test_an_action_the_pbx_does_not_declare_is_refused(act: Any, message: str) -> None:
    svc, control, _, _ = service(stored_call())
    with pytest.raises(InvalidRequest, match=message) as caught:
        await act(svc, agent(OLIVIA))
    assert caught.value.details["pbx"] == "kazoo"
    assert control.calls == []


async def test_a_call_on_a_pbx_without_call_control_is_refused() -> None:
    svc, control, _, _ = service(stored_call(pbx="asterisk"))
    with pytest.raises(InvalidRequest, match="hangup is not supported by asterisk"):
        await svc.hangup(agent(OLIVIA), CallId("call-1"))
    assert control.calls == []


async def test_hold_and_transfer_wait_for_the_call_to_be_answered() -> None:
    svc, control, _, _ = service(stored_call(state=CallState.RINGING))
    with pytest.raises(InvalidRequest, match="not answered yet"):
        await svc.hold(agent(OLIVIA), CallId("call-1"))
    with pytest.raises(InvalidRequest, match="not answered yet"):
        await svc.transfer(agent(OLIVIA), CallId("call-1"), "102")
    await svc.hangup(agent(OLIVIA), CallId("call-1"))
    assert control.calls == [("hangup", TENANT, "olivia-leg")]


async def test_transfers_normalise_the_target_and_pick_the_kind() -> None:
    svc, control, _, _ = service(stored_call())
    await svc.transfer(agent(OLIVIA), CallId("call-1"), "102")
    await svc.transfer(agent(OLIVIA), CallId("call-1"), "07700 900457", kind="attended")
    assert control.calls == [
        ("blind_transfer", TENANT, "olivia-leg", "102"),
        ("attended_transfer", TENANT, "olivia-leg", "+447700900457"),
    ]
    with pytest.raises(InvalidRequest, match="blind"):
        await svc.transfer(agent(OLIVIA), CallId("call-1"), "102", kind="consult")
    with pytest.raises(InvalidRequest):
        await svc.transfer(agent(OLIVIA), CallId("call-1"), "not a number")


async def test_dtmf_digits_are_checked_then_sent() -> None:
    svc, control, _, _ = service(stored_call(), control=FakeControl(KAZOO_CAN | {"dtmf"}))
    for bad in ("", "12x", "1" * 33):
        with pytest.raises(InvalidRequest, match="digits"):
            await svc.send_dtmf(agent(OLIVIA), CallId("call-1"), bad)
    await svc.send_dtmf(agent(OLIVIA), CallId("call-1"), "*12#")
    assert control.calls == [("dtmf", TENANT, "olivia-leg", "*12#")]


async def test_capabilities_are_what_the_tenants_pbx_declares() -> None:
    svc, _, _, _ = service()
    pbx, offered = await svc.capabilities(TENANT)
    assert pbx == "kazoo"
    assert offered == {
        Capability.ORIGINATE, Capability.HANGUP, Capability.HOLD, Capability.RESUME,
        Capability.BLIND_TRANSFER, Capability.ATTENDED_TRANSFER,
    }  # fmt: skip


async def test_close_closes_every_control() -> None:
    svc, control, _, _ = service()
    await svc.close()
    assert control.closed
