"""Fake Kazoo over a real websocket → ctibridge → real database → agents' WebSockets."""

from __future__ import annotations

import asyncio
import dataclasses
import random

import httpx
import websockets

from ctibridge.callstate.normaliser import RESYNC_CAUSE
from ctibridge.demo.scenarios.inbound import inbound_answered
from ctibridge.demo.scenarios.script import ScenarioContext, greg_from_unix
from ctibridge.demo.traffic import DemoTraffic
from ctibridge.launcher import DemoSystem
from ctibridge.storage.base import CallQuery
from ctibridge.types import AgentId, CallId, TenantId
from tests.integration.conftest import AgentClient, until


def _context(system: DemoSystem, seed: int) -> ScenarioContext:
    return ScenarioContext(
        account=system.account.account_id,
        realm=system.account.realm,
        start_greg=greg_from_unix(1_790_000_000 + seed * 1000),
        rng=random.Random(seed),
    )


async def test_each_agent_gets_exactly_its_own_cards_in_order(system: DemoSystem) -> None:
    traffic = DemoTraffic(system.kazoo.publish, account=system.account, speed=200.0)
    async with (
        AgentClient(system, system.tokens["101"]) as alice,
        AgentClient(system, system.tokens["102"]) as bob,
    ):
        first = traffic.start_scenario("inbound_answered", agent="101", ring_seconds=2)
        second = traffic.start_scenario("inbound_answered", agent="102", ring_seconds=3)
        await asyncio.gather(first, second)
        for client in (alice, bob):
            await until(lambda c=client: any(e[1] == "ended" for e in c.events()), what="ended")
    a_calls = {call_id for call_id, _, _ in alice.events()}
    b_calls = {call_id for call_id, _, _ in bob.events()}
    assert len(a_calls) == len(b_calls) == 1 and not a_calls & b_calls
    for client in (alice, bob):
        names = [name for _, name, _ in client.events() if name != "updated"]
        assert names == ["ringing", "answered", "ended"]
        seqs = [f["call"]["seq"] for f in client.frames if f["type"] == "event"]
        assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)

    await system.services.writer.drained()
    tenant = TenantId(system.account.account_id)
    (stored,) = (
        await system.services.storage.list_calls(CallQuery(tenant, agent_id=AgentId("agent-101")))
    ).items
    assert stored.call.call_id in a_calls and stored.call.state.value == "ended"
    assert stored.handled_by == (AgentId("agent-101"),)
    events = await system.services.storage.call_events(tenant, CallId(stored.call.call_id))
    assert next(e.kind.value for e in events) == "created" and events[-1].kind.value == "destroyed"

    async with httpx.AsyncClient(base_url=system.http.url) as http:
        mine = await http.get(
            "/api/calls", headers={"authorization": f"Bearer {system.tokens['102']}"}
        )
        assert mine.status_code == 200
        assert {c["call_id"] for c in mine.json()["items"]} == b_calls


async def test_a_dropped_kazoo_socket_is_recovered_through_the_channel_listing(
    system: DemoSystem,
) -> None:
    agent = system.account.agent("101")
    caller = system.account.callers[0]
    steps = inbound_answered(_context(system, 1), agent=agent, caller=caller)
    answered_at = next(i for i, s in enumerate(steps) if s.data["event_name"] == "CHANNEL_BRIDGE")
    live, rest = steps[: answered_at + 1], steps[answered_at + 1 :]
    newcomer = inbound_answered(
        _context(system, 2), agent=system.account.agent("103"), caller=system.account.callers[1]
    )
    async with (
        AgentClient(system, system.tokens["101"]) as alice,
        AgentClient(system, system.tokens["103"]) as carol,
    ):
        for step in live:
            await system.publish(step.data)
        await until(lambda: any(e[1] == "answered" for e in alice.events()), what="answered")
        reconnects = system.services.status()["connectors"][0]["reconnects"]

        # Kazoo goes away mid-call; meanwhile the call ends and another one starts.
        system.kazoo.set_available(False)
        await system.kazoo.drop_websockets()
        for step in rest:
            await system.publish(step.data)
        await system.publish(newcomer[0].data)  # the caller's leg
        await system.publish(newcomer[1].data)  # Carol's phone rings
        system.kazoo.set_available(True)

        await until(lambda: any(e[1] == "ended" for e in alice.events()), what="ended after resync")
        await until(lambda: carol.events(), what="the new call after resync")
        status = system.services.status()["connectors"][0]
        assert status["reconnects"] > reconnects
    (call_id,) = {c for c, _, _ in alice.events()}
    await system.services.writer.drained()
    tenant = TenantId(system.account.account_id)
    stored = await system.services.storage.get_call(tenant, CallId(call_id))
    assert stored is not None and stored.call.state.value == "ended"
    assert stored.call.answered_by is not None and stored.call.answered_by.extension == "101"
    # Closed by the resync (the DESTROYs were sent while we were away), not by live events.
    assert {leg.hangup_cause for leg in stored.call.legs} == {RESYNC_CAUSE}
    (carol_call, _event, state) = carol.events()[0]
    assert state == "ringing" and carol_call != call_id


async def test_a_socket_without_a_valid_token_is_refused(system: DemoSystem) -> None:
    url = system.http.url.replace("http", "ws", 1) + "/ws?token=not-a-token"
    async with websockets.connect(url) as ws:
        first = await ws.recv()
        assert "not-authenticated" in str(first)
        try:
            await asyncio.wait_for(ws.recv(), 5)
        except websockets.ConnectionClosed as exc:
            assert exc.rcvd is not None and exc.rcvd.code == 4001
        else:
            raise AssertionError("the socket stayed open")


async def test_a_call_of_an_unknown_agent_is_stored_but_pushed_to_nobody(
    sqlite_system: DemoSystem,
) -> None:
    system = sqlite_system
    stranger = dataclasses.replace(
        system.account.agent("106"), extension="199", user_id="f" * 32, device_id="e" * 32
    )
    steps = inbound_answered(_context(system, 3), agent=stranger, caller=system.account.callers[2])
    async with AgentClient(system, system.tokens["101"]) as alice:
        for step in steps:
            await system.publish(step.data)
        tenant = TenantId(system.account.account_id)

        async def stored() -> int:
            await system.services.writer.drained()
            page = await system.services.storage.list_calls(CallQuery(tenant))
            return len([c for c in page.items if c.call.state.value == "ended"])

        for _ in range(500):
            if await stored():
                break
            await asyncio.sleep(0.01)
        page = await system.services.storage.list_calls(CallQuery(tenant))
        (call,) = page.items
        assert call.handled_by == () and call.call.answered_by is not None
        assert call.call.answered_by.extension == "199"
        assert alice.events() == []
