"""KazooConnector against the Kazoo-compatible server, over real sockets on 127.0.0.1."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import re
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from ctibridge.callstate.events import ChannelEvent, LegEventKind, Party
from ctibridge.connectors.kazoo import KazooConnector
from ctibridge.errors import PbxAuthError
from tests.fakes.fake_kazoo import (
    ACCOUNT,
    API_KEY,
    FakeKazoo,
    QuickCall,
    call_event,
    fake_kazoo,
    settings_for,
)
from tests.integration.cancelling import assert_ends_whenever_cancelled
from tests.integration.slow_sink import SlowSink, assert_held_back

BINDINGS = ("call.CHANNEL_CREATE.*", "call.CHANNEL_ANSWER.*", "call.CHANNEL_DESTROY.*")


class RecordingSink:
    def __init__(self, on_resync: Callable[[str], None] | None = None) -> None:
        self.received: list[ChannelEvent] = []
        self.batches: list[int] = []
        self.resyncs: list[tuple[str, list[ChannelEvent], float]] = []
        self._on_resync = on_resync

    async def events(self, events: Sequence[ChannelEvent]) -> None:
        self.batches.append(len(events))
        self.received.extend(events)

    async def resync(self, tenant_id: str, live: Sequence[ChannelEvent], at: float) -> None:
        self.resyncs.append((tenant_id, list(live), at))
        if self._on_resync is not None:
            self._on_resync(tenant_id)

    def legs(self) -> list[tuple[str, LegEventKind]]:
        return [(event.leg_id, event.kind) for event in self.received]


async def until(predicate: Callable[[], object], what: str) -> None:
    """Bounded poll: the condition must hold within 5 seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 5.0
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.005)


@pytest.fixture
async def kazoo() -> AsyncIterator[FakeKazoo]:
    async with fake_kazoo() as server:
        yield server


@contextlib.asynccontextmanager
async def running(connector: KazooConnector) -> AsyncIterator[asyncio.Task[None]]:
    task = asyncio.create_task(connector.run())
    try:
        yield task
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def connected(kazoo: FakeKazoo, **overrides: Any) -> tuple[KazooConnector, RecordingSink]:
    sink = RecordingSink()
    connector = KazooConnector(settings_for(kazoo, **overrides), sink=sink)
    return connector, sink


# -- the connector ------------------------------------------------------------------------------


async def test_subscribes_one_binding_per_message_then_resyncs(kazoo: FakeKazoo) -> None:
    await kazoo.publish(ACCOUNT, call_event("CHANNEL_CREATE", "live-1"))
    connector, sink = await connected(kazoo, bindings=BINDINGS)
    async with running(connector):
        await until(lambda: connector.status()["connected"], "connection")
        subscribes = [m for m in kazoo.ws_messages() if m.get("action") == "subscribe"]
        assert [m["data"]["binding"] for m in subscribes] == list(BINDINGS)
        assert all("bindings" not in m["data"] for m in subscribes)
        assert {m["data"]["account_id"] for m in subscribes} == {ACCOUNT}
        assert {(s.account_id, s.binding) for s in kazoo.subscriptions()} == {
            (ACCOUNT, b) for b in BINDINGS
        }
        [(tenant, live, _)] = sink.resyncs
        assert tenant == ACCOUNT
        assert [(e.leg_id, e.kind, e.party) for e in live] == [
            ("live-1", LegEventKind.SNAPSHOT, Party.AGENT)
        ]
        assert connector.status()["accounts"] == [ACCOUNT]
    paths = [(r.method, r.path) for r in kazoo.requests()]
    assert paths == [("PUT", "/v2/api_auth"), ("GET", f"/v2/accounts/{ACCOUNT}/channels")]


async def test_events_reach_the_sink_in_order(kazoo: FakeKazoo) -> None:
    connector, sink = await connected(kazoo)
    names = ["CHANNEL_CREATE", "CHANNEL_ANSWER", "CHANNEL_BRIDGE", "CHANNEL_HOLD"]
    names += ["CHANNEL_UNHOLD", "CHANNEL_DESTROY"]
    async with running(connector):
        await until(lambda: connector.status()["connected"], "connection")
        for index, name in enumerate(names):
            await kazoo.publish(ACCOUNT, call_event(name, "leg-a", at=index))
            await kazoo.publish(ACCOUNT, call_event(name, "leg-b", at=index))
        await until(lambda: len(sink.received) == 12, "12 events")
    kinds = [
        LegEventKind.CREATED,
        LegEventKind.ANSWERED,
        LegEventKind.BRIDGED,
        LegEventKind.HELD,
        LegEventKind.UNHELD,
        LegEventKind.DESTROYED,
    ]
    assert sink.legs() == [(leg, kind) for kind in kinds for leg in ("leg-a", "leg-b")]
    assert [e.at for e in sink.received[::2]] == [1_760_000_000 + i for i in range(6)]
    assert connector.status()["events_received"] == 12


async def test_malformed_frame_is_skipped_and_the_connection_kept(
    kazoo: FakeKazoo, caplog: pytest.LogCaptureFixture
) -> None:
    connector, sink = await connected(kazoo)
    async with running(connector):
        await until(lambda: connector.status()["connected"], "connection")
        await kazoo.send_raw('{"action":"event","name":"CHANNEL_CREATE","data":{"call_')
        await kazoo.send_raw('{"action":"event","name":"CHANNEL_CREATE","data":{}}')
        await kazoo.publish(ACCOUNT, call_event("CHANNEL_CREATE", "leg-a", timestamp="soon"))
        await kazoo.publish(ACCOUNT, call_event("CHANNEL_CREATE", "leg-b"))
        await until(lambda: sink.legs() == [("leg-b", LegEventKind.CREATED)], "leg-b")
        status = connector.status()
    assert status["reconnects"] == 0
    assert status["events_received"] == 4
    assert status["events_skipped"] == 3
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("not valid JSON" in w for w in warnings)
    assert any("without call_id" in w for w in warnings)
    assert any(f"account={ACCOUNT} call_id=leg-a" in w and "timestamp" in w for w in warnings)


async def test_reconnect_resyncs_exactly_the_live_legs(
    kazoo: FakeKazoo, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="ctibridge.connectors")
    connector, sink = await connected(kazoo)
    async with running(connector):
        await until(lambda: connector.status()["connected"], "connection")
        await kazoo.publish(ACCOUNT, call_event("CHANNEL_CREATE", "leg-a"))
        await kazoo.publish(ACCOUNT, call_event("CHANNEL_CREATE", "leg-b"))
        await kazoo.publish(ACCOUNT, call_event("CHANNEL_ANSWER", "leg-b"))
        await until(lambda: len(sink.received) == 3, "three events")

        kazoo.set_available(False)  # keep the connector away while the calls change
        await kazoo.drop_websockets()
        await until(lambda: not connector.status()["connected"], "disconnection")
        await kazoo.publish(ACCOUNT, call_event("CHANNEL_DESTROY", "leg-a", at=5))
        await kazoo.publish(ACCOUNT, call_event("CHANNEL_CREATE", "leg-c", at=6))
        kazoo.set_available(True)

        await until(lambda: len(sink.resyncs) == 2, "second resync")
        await until(lambda: connector.status()["connected"], "reconnection")
        _, live, _ = sink.resyncs[1]
        assert {(e.leg_id, e.answered) for e in live} == {("leg-b", True), ("leg-c", False)}
        await kazoo.publish(ACCOUNT, call_event("CHANNEL_DESTROY", "leg-b", at=7))
        await until(lambda: sink.legs()[-1] == ("leg-b", LegEventKind.DESTROYED), "destroy")
        assert connector.status()["reconnects"] >= 1
    assert len(sink.received) == 4  # nothing replayed, nothing lost after the resync
    infos = [r.getMessage() for r in caplog.records if r.name == "ctibridge.connectors.base"]
    assert any("reconnecting in" in line for line in infos)


async def test_expired_token_on_the_websocket_logs_in_again(kazoo: FakeKazoo) -> None:
    connector, sink = await connected(kazoo)
    async with running(connector):
        await until(lambda: connector.status()["connected"], "connection")
        kazoo.expire_tokens()
        await kazoo.drop_websockets()
        await until(lambda: len(sink.resyncs) == 2, "resync after re-login")
        await kazoo.publish(ACCOUNT, call_event("CHANNEL_CREATE", "leg-a"))
        await until(lambda: sink.legs() == [("leg-a", LegEventKind.CREATED)], "event")
    logins = [r for r in kazoo.requests() if r.path == "/v2/api_auth"]
    assert len(logins) == 2
    tokens = [m["auth_token"] for m in kazoo.ws_messages() if m.get("action") == "subscribe"]
    old, new = tokens[0], tokens[-1]
    assert old != new
    # first session: every binding with the old token; second: refused once, then the new one
    bindings = len(settings_for(kazoo).bindings)
    assert tokens == [old] * (bindings + 1) + [new] * bindings


async def test_expired_token_on_rest_logs_in_again(kazoo: FakeKazoo) -> None:
    kazoo.add_account("acc2", parent_id=ACCOUNT)
    await kazoo.publish("acc2", call_event("CHANNEL_CREATE", "leg-2"))
    sink = RecordingSink(on_resync=lambda tenant: kazoo.expire_tokens())
    connector = KazooConnector(settings_for(kazoo, account_ids=(ACCOUNT, "acc2")), sink=sink)
    async with running(connector):
        await until(lambda: connector.status()["connected"], "connection")
    assert [(t, [e.leg_id for e in live]) for t, live, _ in sink.resyncs] == [
        (ACCOUNT, []),
        ("acc2", ["leg-2"]),
    ]
    statuses = [r.path for r in kazoo.requests()]
    assert statuses.count("/v2/api_auth") == 2
    assert statuses.count("/v2/accounts/acc2/channels") == 2


async def test_wrong_api_key_is_fatal(kazoo: FakeKazoo) -> None:
    connector = KazooConnector(settings_for(kazoo, api_key="wrong"), sink=RecordingSink())
    with pytest.raises(PbxAuthError):
        await asyncio.wait_for(connector.run(), 5)
    assert connector.status()["last_error"].startswith("PbxAuthError")


async def test_unauthorized_account_is_dropped_and_the_others_served(
    kazoo: FakeKazoo, caplog: pytest.LogCaptureFixture
) -> None:
    kazoo.add_account("stranger", "s" * 64)
    connector, sink = await connected(kazoo, account_ids=("stranger", ACCOUNT))
    async with running(connector):
        await until(lambda: connector.status()["connected"], "connection")
        assert connector.status()["accounts"] == [ACCOUNT]
        assert [tenant for tenant, _, _ in sink.resyncs] == [ACCOUNT]
        await kazoo.publish(ACCOUNT, call_event("CHANNEL_CREATE", "leg-a"))
        await until(lambda: len(sink.received) == 1, "event")
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert any("stranger" in e and "unauthorized account id" in e for e in errors)


async def test_no_watchable_account_is_fatal(kazoo: FakeKazoo) -> None:
    kazoo.add_account("stranger", "s" * 64)
    connector = KazooConnector(settings_for(kazoo, account_ids=("stranger",)), sink=RecordingSink())
    with pytest.raises(PbxAuthError):
        await asyncio.wait_for(connector.run(), 5)


async def test_legacy_format_is_decoded(kazoo: FakeKazoo) -> None:
    connector, sink = await connected(kazoo)
    data = call_event("CHANNEL_DESTROY", "leg-a", hangup_cause="normal_clearing")
    data["custom_application_vars"] = {"ctibridge_req": "req-9"}
    async with running(connector):
        await until(lambda: connector.status()["connected"], "connection")
        await kazoo.publish(ACCOUNT, data)
        kazoo.set_legacy_format(True)
        await kazoo.publish(ACCOUNT, data)
        await until(lambda: len(sink.received) == 2, "both events")
    modern, legacy = sink.received
    assert dataclasses.replace(legacy, event_id=modern.event_id) == modern
    assert legacy.hangup_cause == "NORMAL_CLEARING"
    assert legacy.origin_tag == "req-9"
    assert legacy.agent is not None and legacy.agent.extension == "201"


async def test_pings_keep_the_session(kazoo: FakeKazoo) -> None:
    connector, _ = await connected(kazoo, ping_interval=0.02)
    async with running(connector):

        def pings() -> list[dict[str, Any]]:
            return [m for m in kazoo.ws_messages() if m.get("action") == "ping"]

        await until(lambda: len(pings()) >= 3, "three pings")
        assert connector.status()["connected"]
        assert connector.status()["reconnects"] == 0


async def test_a_kazoo_that_stops_answering_is_detected_by_ping(kazoo: FakeKazoo) -> None:
    connector, sink = await connected(kazoo, ping_interval=0.02, request_timeout=0.3)
    async with running(connector):
        await until(lambda: connector.status()["connected"], "connection")
        kazoo.set_unresponsive(True)
        await until(lambda: "no reply" in (connector.status()["last_error"] or ""), "timeout")
        assert not connector.status()["connected"]
        kazoo.set_unresponsive(False)
        await until(lambda: len(sink.resyncs) == 2, "resync after the hang")
        await until(lambda: connector.status()["connected"], "reconnection")


async def test_refused_binding_is_logged_and_the_others_served(
    kazoo: FakeKazoo, caplog: pytest.LogCaptureFixture
) -> None:
    bindings = ("call.CHANNEL_NOPE.*", "call.CHANNEL_CREATE.*")
    connector, sink = await connected(kazoo, bindings=bindings)
    async with running(connector):
        await until(lambda: connector.status()["connected"], "connection")
        await kazoo.publish(ACCOUNT, call_event("CHANNEL_CREATE", "leg-a"))
        await until(lambda: len(sink.received) == 1, "event")
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == [
        f"kazoo: subscribe call.CHANNEL_NOPE.* for account {ACCOUNT} refused: "
        "event CHANNEL_NOPE not supported"
    ]


BOUND = 20
"""The event queue's size in the backpressure tests (far fewer than the events sent)."""


async def test_a_slow_sink_holds_the_websocket_back_and_loses_nothing(kazoo: FakeKazoo) -> None:
    sink = SlowSink()
    connector = KazooConnector(settings_for(kazoo, queue_size=BOUND), sink=sink)
    sink.probe = lambda: connector.status()["events_queued"]
    legs = [f"leg-{n:03}" for n in range(15 * BOUND)]
    async with running(connector):
        await until(lambda: connector.status()["connected"], "connection")
        sink.gate.clear()  # the sink stalls until the queue is full
        for n, leg in enumerate(legs):
            await kazoo.publish(ACCOUNT, call_event("CHANNEL_CREATE", leg, at=n))
        await until(lambda: connector.status()["events_queued"] == BOUND, "a full queue")
        sink.gate.set()
        await until(lambda: len(sink.received) == len(legs), "every event")
        status = connector.status()
    assert_held_back(sink, legs, status, BOUND)
    assert status["events_received"] == len(legs)


async def test_pings_unanswered_behind_a_full_queue_do_not_end_the_session(
    kazoo: FakeKazoo,
) -> None:
    sink = SlowSink()
    overrides = {"queue_size": BOUND, "ping_interval": 0.02, "request_timeout": 0.1}
    connector = KazooConnector(settings_for(kazoo, **overrides), sink=sink)

    def pings() -> int:
        return sum(m.get("action") == "ping" for m in kazoo.ws_messages())

    legs = [f"leg-{n:03}" for n in range(3 * BOUND)]
    async with running(connector):
        await until(lambda: connector.status()["connected"], "connection")
        sink.gate.clear()
        for leg in legs:
            await kazoo.publish(ACCOUNT, call_event("CHANNEL_CREATE", leg))
        await until(lambda: connector.status()["events_queued"] == BOUND, "a full queue")
        held_at = pings()
        await until(lambda: pings() >= held_at + 3, "three pings while the reader is held")
        sink.gate.set()
        await until(lambda: len(sink.received) == len(legs), "every event")
        status = connector.status()
    assert sink.leg_ids() == legs
    assert status["connected"] and status["reconnects"] == 0 and len(sink.resyncs) == 1


@contextlib.asynccontextmanager
async def proxied(
    kazoo: FakeKazoo, script: dict[str, list[httpx.Response]]
) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client to ``kazoo`` whose replies for a path come from ``script`` first."""
    async with httpx.AsyncClient(base_url=kazoo.url) as upstream:

        async def handler(request: httpx.Request) -> httpx.Response:
            scripted = script.get(request.url.path)
            if scripted:
                return scripted.pop(0)
            reply = await upstream.request(
                request.method, request.url.path, content=request.content,
                headers={"X-Auth-Token": request.headers.get("X-Auth-Token", "")},
            )  # fmt: skip
            return httpx.Response(reply.status_code, content=reply.content)

        async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as http:
            yield http


async def test_crossbar_trouble_is_retried_and_bad_channels_skipped(
    kazoo: FakeKazoo, caplog: pytest.LogCaptureFixture
) -> None:
    listing = {
        "status": "success",
        "data": [
            {"uuid": "good", "direction": "inbound", "resource_id": "carrier"},
            {"uuid": "bad", "caller_id_number": {"x": 1}},
            {"uuid": "loop", "is_loopback": True},
        ],
    }
    script = {
        "/v2/api_auth": [httpx.Response(500), httpx.Response(200, content=b"<html>")],
        f"/v2/accounts/{ACCOUNT}/channels": [httpx.Response(200, json=listing)],
    }
    sink = RecordingSink()
    async with proxied(kazoo, script) as http:
        connector = KazooConnector(settings_for(kazoo), sink=sink, http=http)
        async with running(connector):
            await until(lambda: connector.status()["connected"], "connection")
            status = connector.status()
        assert not http.is_closed  # a client handed in is not the connector's to close
    assert status["reconnects"] == 2 and status["events_skipped"] == 1
    [(_, live, _)] = sink.resyncs
    assert [(e.leg_id, e.party) for e in live] == [("good", Party.TRUNK)]
    messages = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert any("call_id=bad" in m and "caller_id_number" in m for m in messages)


async def test_pbx_down_is_retried_until_it_is_back(kazoo: FakeKazoo) -> None:
    kazoo.set_available(False)
    connector, sink = await connected(kazoo)
    async with running(connector):
        await until(lambda: connector.status()["reconnects"] >= 2, "retries")
        assert "503" in connector.status()["last_error"]
        kazoo.set_available(True)
        await until(lambda: connector.status()["connected"], "connection")
        assert len(sink.resyncs) == 1


# -- the Kazoo-compatible server itself ---------------------------------------------------------


async def login(http: httpx.AsyncClient) -> str:
    reply = await http.put("/v2/api_auth", json={"data": {"api_key": API_KEY}})
    assert reply.status_code == 200
    body = reply.json()
    assert body["status"] == "success" and body["data"]["account_id"] == ACCOUNT
    return str(body["auth_token"])


async def test_server_rest_auth_and_directory(kazoo: FakeKazoo) -> None:
    async with httpx.AsyncClient(base_url=kazoo.url) as http:
        refused = await http.put("/v2/api_auth", json={"data": {"api_key": "nope"}})
        assert refused.status_code == 401
        assert refused.json() | {"data": None} == {
            "error": "401", "message": "invalid_credentials", "status": "error", "data": None,
        }  # fmt: skip
        assert (await http.get(f"/v2/accounts/{ACCOUNT}/users")).status_code == 401
        token = await login(http)
        headers = {"X-Auth-Token": token}
        users = (await http.get(f"/v2/accounts/{ACCOUNT}/users", headers=headers)).json()
        assert [(u["id"], u["first_name"], u["presence_id"]) for u in users["data"]] == [
            ("user1", "Ada", "201")
        ]
        devices = (await http.get(f"/v2/accounts/{ACCOUNT}/devices", headers=headers)).json()
        assert [(d["id"], d["owner_id"]) for d in devices["data"]] == [("dev1", "user1")]
        assert (await http.get("/v2/accounts/other/users", headers=headers)).status_code == 403
        assert (await http.get("/v2/whatever", headers=headers)).status_code == 404
        kazoo.expire_tokens()
        assert (await http.get(f"/v2/accounts/{ACCOUNT}/users", headers=headers)).status_code == 401


async def test_server_channel_table_follows_events(kazoo: FakeKazoo) -> None:
    await kazoo.publish(ACCOUNT, call_event("CHANNEL_CREATE", "leg-a"))
    await kazoo.publish(ACCOUNT, call_event("CHANNEL_ANSWER", "leg-a"))
    await kazoo.publish(ACCOUNT, call_event("CHANNEL_HOLD", "leg-a"))
    bridge = call_event("CHANNEL_BRIDGE", "leg-a", bridge_a_unique_id="leg-a")
    await kazoo.publish(ACCOUNT, {**bridge, "bridge_b_unique_id": "leg-b"})
    await kazoo.publish(ACCOUNT, call_event("CHANNEL_CREATE", "loop", channel_name="loopback/x"))
    await kazoo.publish(ACCOUNT, call_event("CHANNEL_CREATE", "gone"))
    await kazoo.publish(ACCOUNT, call_event("CHANNEL_DESTROY", "gone"))
    async with httpx.AsyncClient(base_url=kazoo.url) as http:
        token = await login(http)
        reply = await http.get(f"/v2/accounts/{ACCOUNT}/channels", headers={"X-Auth-Token": token})
    channels = {c["uuid"]: c for c in reply.json()["data"]}
    assert set(channels) == {"leg-a", "loop"}
    leg = channels["leg-a"]
    assert (leg["answered"], leg["is_onhold"], leg["other_leg"]) == (True, True, "leg-b")
    assert (leg["authorizing_type"], leg["owner_id"], leg["direction"]) == (
        "device", "user1", "inbound",
    )  # fmt: skip
    assert leg["destination"] == "+441202528735" and leg["node"] == "fs1.example.net"
    assert leg["interaction_id"].endswith("-leg-a") and leg["elapsed_s"] >= 0
    assert channels["loop"]["is_loopback"] is True


async def test_server_quickcall(kazoo: FakeKazoo) -> None:
    seen: list[QuickCall] = []

    async def hook(call: QuickCall) -> None:
        seen.append(call)

    kazoo.on_quickcall = hook
    async with httpx.AsyncClient(base_url=kazoo.url) as http:
        headers = {"X-Auth-Token": await login(http)}
        path = f"/v2/accounts/{ACCOUNT}/users/user1/quickcall/+441202528735"
        reply = await http.get(path, params={"auto_answer": "true", "ctibridge_req": "r1"},
                               headers=headers)  # fmt: skip
        missing = await http.get(
            f"/v2/accounts/{ACCOUNT}/devices/nope/quickcall/1", headers=headers
        )
    assert reply.status_code == 202 and missing.status_code == 404
    data = reply.json()["data"]
    call_id = data["endpoints"][0]["outbound_call_id"]
    assert re.fullmatch(r"[0-9a-f]{36}-quickcall", call_id)
    assert data["custom_application_vars"] == {"ctibridge_req": "r1"}
    assert data["application_data"] == {"route": "+441202528735"}
    [call] = kazoo.quickcalls()
    assert (call.target_type, call.target_id, call.call_id) == ("user", "user1", call_id)
    assert call.options == {"auto_answer": "true"}
    await until(lambda: seen == [call], "the quickcall hook")


async def test_server_blackhole_commands(kazoo: FakeKazoo) -> None:
    async with httpx.AsyncClient(base_url=kazoo.url) as http:
        token = await login(http)
    with pytest.raises(InvalidStatus) as refused:
        async with connect(kazoo.ws_url, subprotocols=["chat"]):  # type: ignore[list-item]
            pass
    assert refused.value.response.status_code == 400

    async with connect(kazoo.ws_url + "any/path") as ws:

        async def ask(message: dict[str, Any]) -> dict[str, Any]:
            await ws.send(json.dumps(message))
            reply: dict[str, Any] = json.loads(await ws.recv())
            return reply

        sub = {"action": "subscribe", "request_id": "r-1"}
        no_token = await ask({**sub, "data": {"account_id": ACCOUNT, "binding": "call.*.*"}})
        assert no_token["data"] == {"errors": ["authentication token required"]}
        many = {"account_id": ACCOUNT, "bindings": ["call.CHANNEL_CREATE.*"]}
        reply = await ask({**sub, "auth_token": token, "data": many})
        assert reply == {
            "action": "reply", "request_id": "r-1", "status": "error",
            "data": {"errors": ["missing required keys : binding"]},
        }  # fmt: skip
        other = {"account_id": "elsewhere", "binding": "call.CHANNEL_CREATE.*"}
        reply = await ask({**sub, "data": other})
        assert reply["data"] == {"errors": ["unauthorized account id"]}
        good = {"account_id": ACCOUNT, "binding": "call.CHANNEL_CREATE.*"}
        reply = await ask({**sub, "request_id": "r-2", "data": good})
        assert (reply["status"], reply["data"]) == ("success", {"subscribed": [good["binding"]]})
        assert (await ask({"action": "ping", "request_id": "r-3"}))["data"] == {"response": "pong"}

        await kazoo.publish(ACCOUNT, call_event("CHANNEL_ANSWER", "leg-a"))  # not subscribed
        await kazoo.publish(ACCOUNT, call_event("CHANNEL_CREATE", "leg.a"))
        event = json.loads(await ws.recv())
        assert {k: v for k, v in event.items() if k != "data"} == {
            "action": "event",
            "name": "CHANNEL_CREATE",
            "subscribed_key": "call.CHANNEL_CREATE.*",
            "subscription_key": f"call.{ACCOUNT}.CHANNEL_CREATE.*",
            "routing_key": "call.CHANNEL_CREATE.leg%2Ea",
        }
        assert event["data"]["call_id"] == "leg.a"
        assert event["data"]["custom_channel_vars"]["owner_id"] == "user1"

        reply = await ask({"action": "unsubscribe", "request_id": "r-4", "data": good})
        assert reply["data"] == {"unsubscribed": [good["binding"]], "subscribed": []}
        assert kazoo.subscriptions() == []

        await ask({**sub, "data": good})
        reply = await ask({"action": "unsubscribe"})
        assert reply["data"] == {"unsubscribed": [good["binding"]], "subscribed": []}
        assert (await ask({"action": "dance"}))["data"] == {
            "errors": ["action dance not supported"]
        }
        await ws.send("not json")
        assert json.loads(await ws.recv())["data"] == {"errors": ["invalid json"]}


async def test_server_legacy_frames_are_capitalised(kazoo: FakeKazoo) -> None:
    async with httpx.AsyncClient(base_url=kazoo.url) as http:
        token = await login(http)
    async with connect(kazoo.ws_url) as ws:
        sub = {"account_id": ACCOUNT, "binding": "call.*.*"}
        await ws.send(json.dumps({"action": "subscribe", "auth_token": token, "data": sub}))
        assert json.loads(await ws.recv())["status"] == "success"
        kazoo.set_legacy_format(True)
        await kazoo.publish(ACCOUNT, call_event("CHANNEL_CREATE", "leg-a", msg_id="m1"))
        frame = json.loads(await ws.recv())
    assert set(frame) == {"name", "args"} and frame["name"] == "CHANNEL_CREATE"
    args = frame["args"]
    assert (args["Call-ID"], args["Msg-ID"], args["Caller-ID-Number"]) == ("leg-a", "m1", "201")
    assert args["Custom-Channel-Vars"]["Owner-ID"] == "user1"
    assert args["Custom-Channel-Vars"]["Call-Interaction-ID"].endswith("-leg-a")


async def test_cancelled_at_any_moment_the_connector_ends(kazoo: FakeKazoo) -> None:
    async def churn() -> None:
        for n in range(3):
            await kazoo.publish(ACCOUNT, call_event("CHANNEL_CREATE", f"churn-{n}", at=n))
        await kazoo.drop_websockets()

    settings = settings_for(kazoo, ping_interval=0.003)
    await assert_ends_whenever_cancelled(
        lambda: KazooConnector(settings, sink=RecordingSink()).run(), churn
    )
