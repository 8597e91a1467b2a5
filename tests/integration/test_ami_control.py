"""AsteriskControl over the AMI connector's own session, against the fake Asterisk (real TCP)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from ctibridge.callstate.events import AgentRef
from ctibridge.callstate.model import CallState, Direction
from ctibridge.config import load
from ctibridge.connectors.ami import AmiConnector
from ctibridge.connectors.ami_control import AsteriskControl
from ctibridge.errors import LegGone, NotSupported, PbxRejected, PbxUnavailable
from ctibridge.services.agents import Principal
from ctibridge.services.runtime import build_services
from ctibridge.storage.base import Agent, StoredCall, Tenant
from ctibridge.types import AgentId, LegId, TenantId
from tests.fakes.fake_ami import FakeAmi
from tests.integration.test_ami_connector import RecordingSink

CAPTURE = Path(__file__).parents[1] / "fixtures" / "ami" / "click_to_dial.ami"
T = TenantId("asterisk")
ALICE = AgentRef(device_id="PJSIP/1001", extension="1001")
LEG = LegId("1795267699.37")
PEER = "PJSIP/carrier-00000024"


async def until(check: Callable[[], object], what: str, within: float = 5.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not check():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.005)


@pytest.fixture
async def ami() -> AsyncIterator[FakeAmi]:
    async with FakeAmi() as fake:
        yield fake


@contextlib.asynccontextmanager
async def running(ami: FakeAmi, **overrides: object) -> AsyncIterator[AsteriskControl]:
    settings = ami.settings(**overrides)
    connector = AmiConnector(settings, sink=RecordingSink())
    task = asyncio.create_task(connector.run())
    try:
        await until(lambda: connector.status()["connected"], "the AMI session")
        yield AsteriskControl(settings, connector=connector)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def _sent(ami: FakeAmi, action: str) -> list[list[tuple[str, str]]]:
    return [r for r in ami.raw_requests() if dict(r).get("Action") == action]


# -- click-to-dial ------------------------------------------------------------------------------


async def test_originate_sends_the_documented_action_on_the_one_session(ami: FakeAmi) -> None:
    ami.set_originate(capture=CAPTURE)
    async with running(ami) as control:
        leg = await control.originate(T, ALICE, "+447700900123", request_id="c2d-abc")
        await control.originate(T, ALICE, "102", request_id="c2d-def", auto_answer=False)
    [first, second] = _sent(ami, "Originate")
    headers = dict(first)
    assert headers["Channel"] == "PJSIP/1001" and headers["Exten"] == "+447700900123"
    assert headers["Context"] == "from-internal" and headers["Priority"] == "1"
    assert headers["Async"] == "true" and headers["ChannelId"] == leg
    variables = [v for k, v in first if k == "Variable"]
    assert variables[0] == "__CTIBRIDGE_REQ=c2d-abc"
    assert "PJSIP_HEADER(add,Call-Info)=;answer-after=0" in variables
    assert [v for k, v in second if k == "Variable"] == ["__CTIBRIDGE_REQ=c2d-def"]
    # one login, and the OriginateResponse filter added once, on first use
    assert ami.connections == 1 and ami.actions().count("Login") == 1
    added = [r["Filter"] for r in ami.requests() if r.get("Action") == "Filter"]
    assert added.count("Event: OriginateResponse[[:space:]]") == 1


async def test_originate_uses_the_configured_dial_context(ami: FakeAmi) -> None:
    ami.set_originate(capture=CAPTURE)
    async with running(ami, dial_context="agents-out") as control:
        await control.originate(T, ALICE, "102", request_id="c2d-1")
    assert dict(_sent(ami, "Originate")[0])["Context"] == "agents-out"


async def test_a_phone_that_cannot_be_reached_is_refused(ami: FakeAmi) -> None:
    ami.set_originate(failure="0")
    async with running(ami) as control:
        with pytest.raises(PbxRejected, match="PJSIP/1001 could not be reached") as caught:
            await control.originate(T, ALICE, "102", request_id="c2d-1")
    assert caught.value.details["asterisk_reason"] == "0"


async def test_an_originate_asterisk_refuses_carries_its_message(ami: FakeAmi) -> None:
    ami.set_response("Originate", {"Response": "Error", "Message": "Extension does not exist."})
    async with running(ami) as control:
        with pytest.raises(PbxRejected, match="Extension does not exist") as caught:
            await control.originate(T, ALICE, "102", request_id="c2d-1")
    assert not isinstance(caught.value, LegGone)


async def test_an_agent_without_an_endpoint_is_refused(ami: FakeAmi) -> None:
    async with running(ami) as control:
        with pytest.raises(PbxRejected, match="no Asterisk endpoint"):
            await control.originate(T, AgentRef(extension="1001"), "102", request_id="c2d-1")
    assert "Originate" not in ami.actions()


# -- actions on a leg ---------------------------------------------------------------------


async def test_leg_actions_send_the_documented_actions(ami: FakeAmi) -> None:
    ami.set_live({LEG: PEER})
    async with running(ami) as control:
        await control.blind_transfer(T, LEG, "102")
        await control.attended_transfer(T, LEG, "103")
        await control.send_dtmf(T, LEG, "1#")
        await control.hangup(T, LEG)
    wanted = ["BlindTransfer", "Atxfer", "Getvar", "PlayDTMF", "PlayDTMF", "Hangup"]
    sent = [r for r in ami.requests() if r.get("Action") in set(wanted)]
    assert [r["Action"] for r in sent] == wanted
    blind, atxfer, getvar, one, hash_, hangup = sent
    assert (blind["Channel"], blind["Exten"], blind["Context"]) == (LEG, "102", "from-internal")
    assert (atxfer["Channel"], atxfer["Exten"]) == (LEG, "103")
    assert (getvar["Channel"], getvar["Variable"]) == (LEG, "BRIDGEPEER")
    assert [(one["Channel"], one["Digit"]), (hash_["Channel"], hash_["Digit"])] == [
        (PEER, "1"),
        (PEER, "#"),
    ]
    assert hangup["Channel"] == LEG


@pytest.mark.parametrize("action", ["hangup", "blind_transfer", "attended_transfer", "dtmf"])
async def test_a_leg_asterisk_does_not_have_is_gone(ami: FakeAmi, action: str) -> None:
    async with running(ami) as control:
        calls = {
            "hangup": lambda: control.hangup(T, LEG),
            "blind_transfer": lambda: control.blind_transfer(T, LEG, "102"),
            "attended_transfer": lambda: control.attended_transfer(T, LEG, "102"),
            "dtmf": lambda: control.send_dtmf(T, LEG, "1"),
        }
        with pytest.raises(LegGone, match="No such channel"):
            await calls[action]()


async def test_a_refused_transfer_shows_asterisks_reason(ami: FakeAmi) -> None:
    ami.set_response("BlindTransfer", {"Response": "Error", "Message": "Transfer not permitted"})
    async with running(ami) as control:
        with pytest.raises(PbxRejected, match="Asterisk refused \\(Transfer not permitted\\)"):
            await control.blind_transfer(T, LEG, "102")


async def test_dtmf_needs_a_connected_call(ami: FakeAmi) -> None:
    ami.set_live({LEG: ""})
    async with running(ami) as control:
        with pytest.raises(PbxRejected, match="not connected"):
            await control.send_dtmf(T, LEG, "5")
    assert "PlayDTMF" not in ami.actions()


async def test_hold_and_answer_are_not_declared(ami: FakeAmi) -> None:
    async with running(ami) as control:
        assert control.capabilities() == {
            "originate",
            "hangup",
            "blind_transfer",
            "attended_transfer",
            "dtmf",
        }
        for action in (control.hold, control.resume, control.answer):
            with pytest.raises(NotSupported):
                await action(T, LEG)


async def test_no_session_is_pbx_unavailable(ami: FakeAmi) -> None:
    ami.available = False
    settings = ami.settings()
    control = AsteriskControl(settings, connector=AmiConnector(settings, sink=RecordingSink()))
    with pytest.raises(PbxUnavailable, match="not connected"):
        await control.hangup(T, LEG)
    with pytest.raises(PbxUnavailable):
        await control.originate(T, ALICE, "102", request_id="c2d-1")


# -- end to end through CallControlService ------------------------------------------------


async def test_click_to_dial_end_to_end(ami: FakeAmi, tmp_path: Path) -> None:
    settings = load(
        None,
        {},
        {
            "data_dir": str(tmp_path),
            "asterisk": {
                "enabled": True,
                "port": ami.port,
                "username": ami.username,
                "secret": ami.secret,
                "tenant_id": "asterisk",
                "request_timeout": 2.0,
            },
        },
    )
    services = await build_services(settings)
    await services.storage.upsert_tenant(Tenant(T, "Asterisk", "asterisk"))
    alice = Agent(AgentId("alice"), T, "Alice", extension="1001", device_ids=("PJSIP/1001",))
    ami.set_originate(capture=CAPTURE)
    control = services.call_control
    assert control is not None
    seen: list[StoredCall] = []
    services.calls.listen(lambda _change, stored: seen.append(stored))
    await services.start()
    try:
        await until(lambda: services.status()["connectors"][0]["connected"], "connection")  # type: ignore[index]
        request_id = await control.originate(Principal("agent", T, alice), "07700 900123")
        await until(lambda: not control.pending(), "the call to be correlated")
        await until(lambda: any(s.call.state is CallState.ENDED for s in seen), "the call")
    finally:
        await services.stop()
    stored = seen[-1]
    assert {s.call.call_id for s in seen} == {stored.call.call_id}
    assert stored.call.origin_tag == request_id
    leg = dict(_sent(ami, "Originate")[0])["ChannelId"]
    assert dict(_sent(ami, "Originate")[0])["Exten"] == "+447700900123"
    assert stored.call.direction is Direction.OUTBOUND
    assert leg in {x.leg_id for x in stored.call.legs}
    assert ami.connections == 1
