"""Call control over real sockets: our REST API → CallControlService → Kazoo crossbar (the
demo phone system), and the Kazoo requests and error mapping on their own."""

from __future__ import annotations

import json
import random
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

from ctibridge.callstate.events import AgentRef
from ctibridge.callstate.model import CallState, Direction
from ctibridge.config import KazooSettings
from ctibridge.connectors.kazoo_auth import CrossbarAuth
from ctibridge.connectors.kazoo_control import KazooControl
from ctibridge.crm.base import CrmRef
from ctibridge.demo.directory import DEMO
from ctibridge.demo.kazoo.state import RecordedRequest
from ctibridge.demo.scenarios.inbound import inbound_answered
from ctibridge.demo.scenarios.script import ScenarioContext, greg_from_unix
from ctibridge.errors import LegGone, NotSupported, PbxAuthError, PbxRejected, PbxUnavailable
from ctibridge.launcher import DemoSystem
from ctibridge.storage.base import StoredCall
from ctibridge.types import LegId, TenantId
from tests.fakes.fake_kazoo import ACCOUNT as FAKE_ACCOUNT
from tests.fakes.fake_kazoo import FakeKazoo, fake_kazoo, settings_for
from tests.integration.conftest import AgentClient, until

ACCOUNT = DEMO.account_id
OLIVIA, JAMES = DEMO.agent("101"), DEMO.agent("102")


def _auth(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


@pytest.fixture
async def http(sqlite_system: DemoSystem) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=sqlite_system.http.url, timeout=10) as client:
        yield client


def _live(system: DemoSystem, match: Callable[[StoredCall], bool]) -> StoredCall | None:
    return next((s for s in system.services.calls.active(ACCOUNT) if match(s)), None)


def _crossbar(system: DemoSystem, since: int) -> list[RecordedRequest]:
    """Requests ctibridge made to crossbar after the first ``since``, logins left out."""
    return [r for r in system.kazoo.requests()[since:] if r.path != "/v2/api_auth"]


async def _answered_call_for_olivia(system: DemoSystem) -> tuple[StoredCall, LegId]:
    """An inbound call to 101, answered and still going (published up to the bridge)."""
    ctx = ScenarioContext(
        account=ACCOUNT,
        realm=DEMO.realm,
        # In the past: follow-up events the phone system makes now come after these.
        start_greg=greg_from_unix(time.time() - 300),
        rng=random.Random(5),
    )
    steps = inbound_answered(ctx, agent=OLIVIA, caller=DEMO.callers[0], ring_seconds=2)
    for step in steps:
        if step.data["event_name"] != "CHANNEL_DESTROY":
            await system.publish(step.data)
    stored = await until(
        lambda: _live(system, lambda s: s.call.state is CallState.ANSWERED),
        what="the answered call",
    )
    [leg] = [x for x in stored.call.legs if x.agent and x.agent.user_id == OLIVIA.user_id]
    return stored, LegId(leg.leg_id)


# -- click-to-dial end to end -----------------------------------------------------------------


async def test_click_to_dial_from_agent_101(
    sqlite_system: DemoSystem, http: httpx.AsyncClient
) -> None:
    system, token = sqlite_system, sqlite_system.tokens["101"]
    async with AgentClient(system, token) as olivia:
        reply = await http.post(
            "/api/calls",
            json={"number": "07700 900123", "record": {"object": "Contact", "id": "003SARAH"}},
            headers=_auth(token),
        )
        assert reply.status_code == 202, reply.text
        request_id = reply.json()["request_id"]

        [quickcall] = await until(system.kazoo.quickcalls, what="the quickcall")
        assert (quickcall.account_id, quickcall.target_type, quickcall.target_id) == (
            ACCOUNT, "device", OLIVIA.device_id,
        )  # fmt: skip
        assert quickcall.number == "+447700900123"
        assert quickcall.options["auto_answer"] == "true"
        assert quickcall.custom_application_vars == {"ctibridge_req": request_id}

        stored = await until(
            lambda: _live(system, lambda s: s.call.origin_tag == request_id),
            what="the click-to-dial call",
        )
        assert stored.call.direction is Direction.OUTBOUND
        assert quickcall.call_id in [leg.leg_id for leg in stored.call.legs]
        await until(
            lambda: any(call_id == stored.call.call_id for call_id, _, _ in olivia.events()),
            what="agent 101's card",
        )
        crm_logging = system.services.crm_logging
        assert crm_logging is not None
        context = crm_logging.context(stored.call.call_id, "agent-101")
        assert context.clicked == CrmRef("Contact", "003SARAH")
        assert system.services.call_control is not None
        assert system.services.call_control.pending() == []


async def test_click_to_dial_refusals(sqlite_system: DemoSystem, http: httpx.AsyncClient) -> None:
    token = sqlite_system.tokens["101"]
    bad = await http.post("/api/calls", json={"number": "call me"}, headers=_auth(token))
    assert bad.status_code == 400 and bad.json()["details"]["field"] == "number"
    no_record = await http.post(
        "/api/calls", json={"number": "102", "record": {"object": "Contact"}}, headers=_auth(token)
    )
    assert no_record.status_code == 400 and no_record.json()["details"]["field"] == "record"
    admin = _auth(sqlite_system.services.admin_token)
    assert (await http.post("/api/calls", json={"number": "102"}, headers=admin)).status_code == 403
    assert (await http.post("/api/calls", json={"number": "102"})).status_code == 401
    assert sqlite_system.kazoo.quickcalls() == []

    sqlite_system.kazoo.set_available(False)
    down = await http.post("/api/calls", json={"number": "102"}, headers=_auth(token))
    sqlite_system.kazoo.set_available(True)
    assert down.status_code == 503 and down.json()["error_id"] == "pbx-unavailable"
    assert down.json()["message"].startswith("Could not place the call")
    assert sqlite_system.services.call_control is not None
    assert sqlite_system.services.call_control.pending() == []


# -- actions on a live call -----------------------------------------------------------------


async def test_actions_send_the_documented_kazoo_requests_and_take_effect(
    sqlite_system: DemoSystem, http: httpx.AsyncClient
) -> None:
    system = sqlite_system
    stored, leg = await _answered_call_for_olivia(system)
    call_id, olivia = stored.call.call_id, _auth(system.tokens["101"])
    since = len(system.kazoo.requests())

    def state(expected: CallState) -> Callable[[], StoredCall | None]:
        return lambda: _live(system, lambda s: s.call.state is expected)

    hold = await http.post(f"/api/calls/{call_id}/hold", headers=olivia)
    assert hold.status_code == 202, hold.text
    await until(state(CallState.HELD), what="the call on hold")
    resume = await http.post(f"/api/calls/{call_id}/resume", headers=olivia)
    assert resume.status_code == 202, resume.text
    await until(state(CallState.ANSWERED), what="the call resumed")
    transfer = await http.post(
        f"/api/calls/{call_id}/transfer", json={"target": "102", "kind": "blind"}, headers=olivia
    )
    assert transfer.status_code == 202, transfer.text
    moved = await until(
        lambda: _live(system, lambda s: [a.extension for a in s.call.current] == ["102"]),
        what="the call transferred to 102",
    )
    assert [
        (t.kind, t.to_agent.extension if t.to_agent else None) for t in moved.call.transfers
    ] == [("blind", "102")]
    hangup = await http.post(f"/api/calls/{call_id}/hangup", headers=_auth(system.tokens["102"]))
    assert hangup.status_code == 202, hangup.text
    await until(lambda: _live(system, lambda s: True) is None, what="the call ended")

    channel = f"/v2/accounts/{ACCOUNT}/channels/{leg}"
    sent = [(r.method, r.path, r.body) for r in _crossbar(system, since)]
    hold_flow = {"module": "hold", "data": {"dtmf_leg": leg}}
    blind = {"action": "transfer", "target": "102", "transfer-type": "blind"}
    assert sent[:3] == [
        ("PUT", channel, {"action": "metaflow", "data": hold_flow}),
        ("PUT", channel, {"action": "metaflow", "data": {"module": "resume", "data": {}}}),
        ("POST", channel, {"data": blind}),
    ]
    (method, path, body) = sent[3]
    assert (method, body) == ("POST", {"data": {"action": "hangup"}}) and path != channel
    assert all(r.auth_token for r in _crossbar(system, since))


async def test_an_action_on_a_leg_kazoo_no_longer_has_is_a_clear_409(
    sqlite_system: DemoSystem, http: httpx.AsyncClient
) -> None:
    system = sqlite_system
    stored, leg = await _answered_call_for_olivia(system)
    # Kazoo lost the channel (it hung up meanwhile) but its DESTROY has not arrived yet.
    system.kazoo._accounts[ACCOUNT].last_event.pop(leg)
    reply = await http.post(
        f"/api/calls/{stored.call.call_id}/hold", headers=_auth(system.tokens["101"])
    )
    assert reply.status_code == 409, reply.text
    assert reply.json()["error_id"] == "pbx-leg-gone"
    assert "no longer has this call leg" in reply.json()["message"]


async def test_actions_are_refused_for_another_agent_an_unknown_call_and_unsupported_ones(
    sqlite_system: DemoSystem, http: httpx.AsyncClient
) -> None:
    system = sqlite_system
    stored, _ = await _answered_call_for_olivia(system)
    call_id = stored.call.call_id
    since = len(system.kazoo.requests())
    james = _auth(system.tokens["102"])
    olivia = _auth(system.tokens["101"])

    other = await http.post(f"/api/calls/{call_id}/hangup", headers=james)
    assert other.status_code == 403 and other.json()["error_id"] == "forbidden"
    unknown = await http.post("/api/calls/no-such-call/hold", headers=olivia)
    assert unknown.status_code == 404 and unknown.json()["error_id"] == "no-such-call"
    dtmf = await http.post(f"/api/calls/{call_id}/dtmf", json={"digits": "12#"}, headers=olivia)
    assert dtmf.status_code == 400 and "not supported by kazoo" in dtmf.json()["message"]
    answer = await http.post(f"/api/calls/{call_id}/answer", headers=olivia)
    assert answer.status_code == 400 and "not supported by kazoo" in answer.json()["message"]
    no_target = await http.post(f"/api/calls/{call_id}/transfer", json={}, headers=olivia)
    assert no_target.status_code == 400 and no_target.json()["details"]["field"] == "target"
    assert _crossbar(system, since) == []


async def test_capabilities_show_what_kazoo_can_do(
    sqlite_system: DemoSystem, http: httpx.AsyncClient
) -> None:
    reply = await http.get("/api/capabilities", headers=_auth(sqlite_system.tokens["101"]))
    assert reply.status_code == 200
    assert reply.json() == {
        "tenant_id": ACCOUNT,
        "pbx": "kazoo",
        "capabilities": [
            "attended_transfer", "blind_transfer", "hangup", "hold", "originate", "resume",
        ],
    }  # fmt: skip
    admin = _auth(sqlite_system.services.admin_token)
    assert (await http.get("/api/capabilities", headers=admin)).status_code == 400
    named = await http.get(f"/api/capabilities?tenant={ACCOUNT}", headers=admin)
    assert named.json()["pbx"] == "kazoo"


# -- KazooControl against the Kazoo-compatible server ----------------------------------------


@pytest.fixture
async def kazoo() -> AsyncIterator[FakeKazoo]:
    async with fake_kazoo() as server:
        yield server


@pytest.fixture
async def control(kazoo: FakeKazoo) -> AsyncIterator[KazooControl]:
    control = KazooControl(settings_for(kazoo))
    yield control
    await control.close()


async def test_a_refused_token_means_one_new_login_then_the_request(
    kazoo: FakeKazoo, control: KazooControl
) -> None:
    ada = AgentRef("user1", None, "201")
    await control.originate(TenantId(FAKE_ACCOUNT), ada, "102", request_id="r1")
    kazoo.expire_tokens()
    since = len(kazoo.requests())
    leg = await control.originate(TenantId(FAKE_ACCOUNT), ada, "103", request_id="r2")
    paths = [(r.path, r.query.get("ctibridge_req")) for r in kazoo.requests()[since:]]
    quickcall = f"/v2/accounts/{FAKE_ACCOUNT}/users/user1/quickcall/103"
    assert paths == [(quickcall, "r2"), ("/v2/api_auth", None), (quickcall, "r2")]
    assert leg == kazoo.quickcalls()[-1].call_id


async def test_kazoo_refusals_become_clear_errors(kazoo: FakeKazoo, control: KazooControl) -> None:
    nobody = AgentRef(None, "no-such-device", None)
    with pytest.raises(PbxRejected, match="does not know your phone"):
        await control.originate(TenantId(FAKE_ACCOUNT), nobody, "102", request_id="r3")
    with pytest.raises(LegGone, match="no longer has this call leg"):
        await control.hangup(TenantId(FAKE_ACCOUNT), LegId("gone-leg"))
    with pytest.raises(NotSupported):
        await control.send_dtmf(TenantId(FAKE_ACCOUNT), LegId("any"), "1")
    kazoo.set_available(False)
    with pytest.raises(PbxUnavailable):
        await control.hold(TenantId(FAKE_ACCOUNT), LegId("any"))


async def test_a_refused_api_key_is_fatal(kazoo: FakeKazoo) -> None:
    control = KazooControl(settings_for(kazoo, api_key="x" * 64))
    try:
        with pytest.raises(PbxAuthError):
            await control.hangup(TenantId(FAKE_ACCOUNT), LegId("leg"))
    finally:
        await control.close()


# -- KazooControl and what crossbar answers (scripted) ---------------------------------------

KAZOO = "http://kazoo.test"


class Crossbar:
    """Scripted crossbar answers over httpx.MockTransport, with a log of requests."""

    def __init__(self, answer: tuple[int, dict[str, Any]]) -> None:
        self.answer = answer
        self.seen: list[tuple[str, str, Any]] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content) if request.content else None
        if request.url.path == "/v2/api_auth":
            return httpx.Response(200, json={"auth_token": "T", "data": {"account_id": "a1"}})
        self.seen.append((request.method, request.url.raw_path.decode(), body))
        return httpx.Response(self.answer[0], json=self.answer[1])

    def control(self) -> KazooControl:
        settings = KazooSettings(enabled=True, api_url=KAZOO, api_key="k" * 64)
        client = httpx.AsyncClient(transport=httpx.MockTransport(self))
        return KazooControl(settings, auth=CrossbarAuth(settings), http=client)


async def test_accepted_actions_and_the_quickcall_leg() -> None:
    reply = {"data": {"endpoints": [{"outbound_call_id": "abc-quickcall"}]}, "status": "success"}
    crossbar = Crossbar((202, reply))
    control = crossbar.control()
    leg = await control.originate(
        TenantId("a1"), AgentRef("u1", "d1", "101"), "+447700900123", request_id="r9",
        auto_answer=False,
    )  # fmt: skip
    await control.attended_transfer(TenantId("a1"), LegId("x@10.0.0.1"), "+447700900457")
    await control.resume(TenantId("a1"), LegId("x@10.0.0.1"))
    assert leg == "abc-quickcall"
    quickcall = "/v2/accounts/a1/devices/d1/quickcall/+447700900123"
    assert crossbar.seen == [
        ("GET", f"{quickcall}?auto_answer=false&ctibridge_req=r9", None),
        ("POST", "/v2/accounts/a1/channels/x%4010.0.0.1",
         {"data": {"action": "transfer", "target": "+447700900457", "transfer-type": "attended"}}),
        ("PUT", "/v2/accounts/a1/channels/x%4010.0.0.1",
         {"action": "metaflow", "data": {"module": "resume", "data": {}}}),
    ]  # fmt: skip
    await control.close()


@pytest.mark.parametrize(
    ("status", "body", "error", "message"),
    [
        (
            400,
            {"data": {"other_leg_call_id": {"required": {"message": "Channel is not bridged"}}}},
            PbxRejected,
            "Could not transfer the call: the phone system refused (Channel is not bridged)",
        ),
        (
            500,
            {"message": "quickcall initiation failed",
             "data": {"error_message": "DESTINATION_OUT_OF_ORDER"}},
            PbxUnavailable,
            "Could not transfer the call: the phone system failed (DESTINATION_OUT_OF_ORDER)",
        ),
        (403, {"message": "forbidden"}, PbxRejected, "does not allow it"),
    ],
)  # fmt: skip
async def test_kazoo_refusals_carry_kazoos_reason(
    status: int, body: dict[str, Any], error: type[Exception], message: str
) -> None:
    control = Crossbar((status, body)).control()
    with pytest.raises(error, match=message.replace("(", r"\(").replace(")", r"\)")):
        await control.blind_transfer(TenantId("a1"), LegId("leg"), "102")
    await control.close()
