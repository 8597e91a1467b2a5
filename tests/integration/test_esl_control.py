"""FreeswitchControl over the ESL connector's own session, against the fake FreeSWITCH."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from ctibridge.callstate.events import AgentRef
from ctibridge.callstate.model import CallState, Direction
from ctibridge.config import load
from ctibridge.connectors.esl import EslConnector
from ctibridge.connectors.esl_control import FreeswitchControl
from ctibridge.errors import LegGone, NotSupported, PbxRejected, PbxUnavailable
from ctibridge.services.agents import Principal
from ctibridge.services.runtime import build_services
from ctibridge.storage.base import Agent, StoredCall, Tenant
from ctibridge.types import AgentId, LegId, TenantId
from tests.fakes.fake_esl import FakeEsl
from tests.integration.test_esl_connector import RecordingSink, until

CAPTURE = Path(__file__).parents[1] / "fixtures" / "esl" / "click_to_dial.esl"
T = TenantId("freeswitch")
ALICE = AgentRef(device_id="1001@127.0.0.1", extension="1001")
LEG = LegId("910c08e9-91a8-4b63-9ce0-f36081df1dab")
PEER = "f1321ce2-0000-4000-8000-000000000001"


@pytest.fixture
async def fs() -> AsyncIterator[FakeEsl]:
    async with FakeEsl() as fake:
        yield fake


@contextlib.asynccontextmanager
async def running(fs: FakeEsl, **overrides: object) -> AsyncIterator[FreeswitchControl]:
    settings = fs.settings(**overrides)
    connector = EslConnector(settings, sink=RecordingSink())
    task = asyncio.create_task(connector.run())
    try:
        await until(lambda: connector.status()["connected"], "the ESL session")
        yield FreeswitchControl(settings, connector=connector)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def _commands(fs: FakeEsl, prefix: str) -> list[str]:
    return [r for r in fs.requests() if r.startswith(prefix)]


# -- click-to-dial ------------------------------------------------------------------------------


async def test_originate_sends_the_documented_bgapi_on_the_one_session(fs: FakeEsl) -> None:
    fs.set_originate(capture=CAPTURE)
    async with running(fs) as control:
        leg = await control.originate(T, ALICE, "+447700900123", request_id="c2d-abc")
        await control.originate(T, ALICE, "102", request_id="c2d-def", auto_answer=False)
    first, second = _commands(fs, "bgapi originate")
    line, job = first.split("\n")
    assert line == (
        f"bgapi originate {{origination_uuid={leg},ctibridge_req=c2d-abc,sip_auto_answer=true}}"
        "user/1001@127.0.0.1 +447700900123 XML default"
    )
    assert job.startswith("Job-UUID: ")
    assert "sip_auto_answer" not in second and "ctibridge_req=c2d-def" in second
    # one connection; BACKGROUND_JOB subscribed once, on first use
    assert fs.connections == 1
    assert _commands(fs, "event plain BACKGROUND_JOB") == ["event plain BACKGROUND_JOB"]


async def test_originate_uses_the_configured_dial_context(fs: FakeEsl) -> None:
    fs.set_originate(capture=CAPTURE)
    async with running(fs, dial_context="agents") as control:
        await control.originate(T, ALICE, "102", request_id="c2d-1")
    assert _commands(fs, "bgapi originate")[0].split("\n")[0].endswith(" 102 XML agents")


async def test_a_phone_that_cannot_be_reached_is_refused(fs: FakeEsl) -> None:
    fs.set_originate(failure="USER_NOT_REGISTERED")
    async with running(fs) as control:
        with pytest.raises(PbxRejected, match="could not be reached \\(USER_NOT_REGISTERED\\)"):
            await control.originate(T, ALICE, "102", request_id="c2d-1")


async def test_a_refused_bgapi_carries_the_switchs_message(fs: FakeEsl) -> None:
    fs.set_response("bgapi", b"Content-Type: command/reply\nReply-Text: -ERR no permission\n\n")
    async with running(fs) as control:
        with pytest.raises(PbxRejected, match="FreeSWITCH refused \\(no permission\\)"):
            await control.originate(T, ALICE, "102", request_id="c2d-1")


async def test_unsafe_text_never_reaches_the_command_line(fs: FakeEsl) -> None:
    async with running(fs) as control:
        with pytest.raises(PbxRejected, match="unexpected characters"):
            await control.originate(T, ALICE, "102 XML evil", request_id="c2d-1")
    assert not _commands(fs, "bgapi")


# -- actions on a leg ---------------------------------------------------------------------


async def test_leg_actions_send_the_documented_commands(fs: FakeEsl) -> None:
    fs.set_live({LEG: PEER})
    async with running(fs) as control:
        await control.hold(T, LEG)
        await control.resume(T, LEG)
        await control.send_dtmf(T, LEG, "12#")
        await control.blind_transfer(T, LEG, "102")
        await control.hangup(T, LEG)
    assert _commands(fs, "api uuid_") == [
        f"api uuid_hold {LEG}",
        f"api uuid_hold off {LEG}",
        f"api uuid_getvar {LEG} bridge_uuid",
        f"api uuid_send_dtmf {PEER} 12#",
        f"api uuid_transfer {LEG} -bleg 102 XML default",
        f"api uuid_kill {LEG}",
    ]


@pytest.mark.parametrize("action", ["hangup", "hold", "resume", "blind_transfer", "dtmf"])
async def test_a_leg_the_switch_does_not_have_is_gone(fs: FakeEsl, action: str) -> None:
    async with running(fs) as control:
        calls = {
            "hangup": lambda: control.hangup(T, LEG),
            "hold": lambda: control.hold(T, LEG),
            "resume": lambda: control.resume(T, LEG),
            "blind_transfer": lambda: control.blind_transfer(T, LEG, "102"),
            "dtmf": lambda: control.send_dtmf(T, LEG, "1"),
        }
        with pytest.raises(LegGone, match="No such channel"):
            await calls[action]()


async def test_dtmf_needs_a_connected_call(fs: FakeEsl) -> None:
    fs.set_live({LEG: ""})
    async with running(fs) as control:
        with pytest.raises(PbxRejected, match="not connected"):
            await control.send_dtmf(T, LEG, "5")
    assert not _commands(fs, "api uuid_send_dtmf")


async def test_answer_and_attended_transfer_are_not_declared(fs: FakeEsl) -> None:
    async with running(fs) as control:
        assert control.capabilities() == {
            "originate",
            "hangup",
            "hold",
            "resume",
            "blind_transfer",
            "dtmf",
        }
        with pytest.raises(NotSupported):
            await control.answer(T, LEG)
        with pytest.raises(NotSupported):
            await control.attended_transfer(T, LEG, "102")


async def test_no_session_is_pbx_unavailable(fs: FakeEsl) -> None:
    settings = fs.settings()
    control = FreeswitchControl(settings, connector=EslConnector(settings, sink=RecordingSink()))
    with pytest.raises(PbxUnavailable, match="not connected"):
        await control.hangup(T, LEG)
    with pytest.raises(PbxUnavailable):
        await control.originate(T, ALICE, "102", request_id="c2d-1")


# -- end to end through CallControlService ------------------------------------------------


async def test_click_to_dial_end_to_end(fs: FakeEsl, tmp_path: Path) -> None:
    settings = load(
        None,
        {},
        {
            "data_dir": str(tmp_path),
            "freeswitch": {
                "enabled": True,
                "port": fs.port,
                "password": fs.password,
                "tenant_id": "freeswitch",
                "request_timeout": 2.0,
            },
        },
    )
    services = await build_services(settings)
    await services.storage.upsert_tenant(Tenant(T, "FreeSWITCH", "freeswitch"))
    alice = Agent(AgentId("alice"), T, "Alice", extension="1001", device_ids=("1001@127.0.0.1",))
    fs.set_originate(capture=CAPTURE)
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
    assert stored.call.direction is Direction.OUTBOUND
    line = _commands(fs, "bgapi originate")[0].split("\n")[0]
    leg = line.partition("origination_uuid=")[2].partition(",")[0]
    assert " +447700900123 XML default" in line
    assert leg in {x.leg_id for x in stored.call.legs}
    assert fs.connections == 1
