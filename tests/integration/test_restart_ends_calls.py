"""A call that ends while ctibridge is down is ended by the next start, and logged once.

The demo phone system (a Kazoo-compatible server) stays up while ctibridge is stopped; the call
hangs up meanwhile, so the new runtime's channel listing no longer has it. The new runtime
restores the calls in progress from the database's event log, and its first resync ends this
one: stored as ended, published, and logged to the built-in CRM.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from ctibridge.callstate.model import CallChanged, CallEventName, CallState
from ctibridge.callstate.normaliser import RESYNC_CAUSE
from ctibridge.demo.directory import DEMO
from ctibridge.launcher import HttpServer, seed_demo_agents
from ctibridge.services.runtime import Services, build_services
from ctibridge.storage import SqlStorage
from ctibridge.storage.base import StoredCall
from ctibridge.types import CallId
from ctibridge.web.app import create_app
from tests.integration.conftest import PG_URL, until
from tests.integration.test_call_contexts import (
    TENANT,
    Rig,
    _call_in_two,
    _sam_taylor_twice,
    rig,
    until_async,
)


async def _start_recording(cti: Rig, seen: list[tuple[CallChanged, StoredCall]]) -> None:
    """``Rig.start``, with a listener on the call changes from before the connector starts."""
    storage = None
    if cti.schema is not None:
        server_settings = {"search_path": cti.schema}
        storage = SqlStorage(PG_URL, connect_args={"server_settings": server_settings})
    services = await build_services(cti.settings, storage=storage)
    services.calls.listen(lambda change, stored: seen.append((change, stored)))
    cti.http = HttpServer(create_app(cti.settings, services), cti.settings)
    await cti.http.start()
    await until(lambda: _connected(services), what="the Kazoo connector to connect")


def _connected(services: Services) -> bool:
    connectors = services.status()["connectors"]
    assert isinstance(connectors, list)
    return bool(connectors[0].get("connected"))


@pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
async def test_a_call_that_ends_while_ctibridge_is_down_ends_on_restart(
    backend: str, tmp_path: Path
) -> None:
    async with rig(backend, tmp_path) as cti:
        await cti.start()
        await seed_demo_agents(cti.services, DEMO)
        contact, lead = await _sam_taylor_twice(cti.crm)
        assert await cti.crm.delete_record(TENANT, lead)  # one match: the log goes there
        before_hang_up, hang_up = _call_in_two(seed=11)

        await cti.publish(before_hang_up)
        stored: StoredCall = await until(
            lambda: (s := cti.live()) is not None and s.call.state is CallState.ANSWERED and s,
            what="the answered call",
        )
        call_id = stored.call.call_id

        await cti.stop()
        await cti.publish(hang_up)  # the call ends while ctibridge is down
        assert cti.kazoo.channels(TENANT) == []

        seen: list[tuple[CallChanged, StoredCall]] = []
        await _start_recording(cti, seen)
        storage = cti.services.storage
        ended = await until_async(
            lambda: _ended(storage, call_id), what="the call to end in storage"
        )
        assert ended.call.end_reason is not None
        assert {leg.hangup_cause for leg in ended.call.legs} == {RESYNC_CAUSE}
        assert cti.services.calls.active(TENANT) == []
        assert [(c.name, s.call.call_id) for c, s in seen] == [(CallEventName.ENDED, call_id)]

        logged = await until_async(lambda: cti.crm.activities(TENANT, contact), what="the log")
        assert [(a.log.call_id, a.log.agent_id) for a in logged] == [(call_id, "agent-101")]

        await cti.stop()  # and a further restart neither restores nor logs it again
        seen.clear()
        await _start_recording(cti, seen)
        assert cti.services.calls.active(TENANT) == []
        assert seen == []
        assert len(await cti.crm.activities(TENANT, contact)) == 1


async def _ended(storage: object, call_id: str) -> StoredCall | None:
    assert isinstance(storage, SqlStorage)
    stored = await storage.get_call(TENANT, CallId(call_id))
    return stored if stored is not None and stored.call.state is CallState.ENDED else None


@pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
async def test_two_restarts_in_a_row_still_end_the_call(backend: str, tmp_path: Path) -> None:
    """Down once while the call is answered (the resync after the first restart learns it),
    down again while it hangs up: the second restart must replay what the first resync
    learnt, or the call it rebuilds is older than the stored one and never ends."""
    async with rig(backend, tmp_path) as cti:
        await cti.start()
        await seed_demo_agents(cti.services, DEMO)
        before_hang_up, hang_up = _call_in_two(seed=5)
        answer = next(
            i for i, s in enumerate(before_hang_up) if s.data["event_name"] == "CHANNEL_ANSWER"
        )
        await cti.publish(before_hang_up[:answer])
        ringing: StoredCall = await until(
            lambda: (s := cti.live()) is not None and s.call.state is CallState.RINGING and s,
            what="the ringing call",
        )
        call_id = ringing.call.call_id

        await cti.stop()
        await cti.publish(before_hang_up[answer:])  # answered while ctibridge is down
        await _start_recording(cti, [])
        storage = cti.services.storage
        answered = await until_async(
            lambda: _in_state(storage, call_id, CallState.ANSWERED), what="the answer stored"
        )
        assert answered.call.seq > ringing.call.seq

        await cti.stop()
        await cti.publish(hang_up)  # and it ends during the next stop
        seen: list[tuple[CallChanged, StoredCall]] = []
        await _start_recording(cti, seen)
        ended = await until_async(
            lambda: _in_state(cti.services.storage, call_id, CallState.ENDED),
            what="the call to end in storage",
        )
        assert ended.call.seq > answered.call.seq
        assert cti.services.calls.active(TENANT) == []
        assert [(c.name, s.call.call_id) for c, s in seen] == [(CallEventName.ENDED, call_id)]


async def _in_state(storage: object, call_id: str, state: CallState) -> StoredCall | None:
    assert isinstance(storage, SqlStorage)
    stored = await storage.get_call(TENANT, CallId(call_id))
    return stored if stored is not None and stored.call.state is state else None


async def test_calls_older_than_the_restore_window_are_left_as_they_are(tmp_path: Path) -> None:
    async with rig("sqlite", tmp_path) as cti:
        await cti.start()
        await seed_demo_agents(cti.services, DEMO)
        before_hang_up, hang_up = _call_in_two(seed=3)
        await cti.publish(before_hang_up)
        stored: StoredCall = await until(
            lambda: (s := cti.live()) is not None and s.call.state is CallState.ANSWERED and s,
            what="the answered call",
        )
        await cti.stop()
        await cti.publish(hang_up)
        calls = dataclasses.replace(cti.settings.calls, restore_window_hours=0.0)
        cti.settings = dataclasses.replace(cti.settings, calls=calls)
        seen: list[tuple[CallChanged, StoredCall]] = []
        await _start_recording(cti, seen)
        assert cti.services.calls.active(TENANT) == []  # not restored, so nothing ends it
        assert seen == []
        kept = await cti.services.storage.get_call(TENANT, CallId(stored.call.call_id))
        assert kept is not None and kept.call.state is CallState.ANSWERED
