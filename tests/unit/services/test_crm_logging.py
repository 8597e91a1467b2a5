"""Ended calls become CRM call logs through the outbox; a CRM that is down loses nothing."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from ctibridge.callstate.normaliser import Normaliser
from ctibridge.crm.base import CrmRecord, CrmRef
from ctibridge.crm.memory import MemoryCrm
from ctibridge.errors import CrmRejected, CrmUnavailable
from ctibridge.services.call_contexts import RETENTION
from ctibridge.services.call_log import AgentContext
from ctibridge.services.crm_logging import TOPIC, CrmLoggingService, log_from_dict, log_to_dict
from ctibridge.services.directory import AgentDirectory
from ctibridge.storage import SqlStorage
from ctibridge.storage.base import Agent, CallContext, StoredCall, Tenant
from ctibridge.types import AgentId, CallId, TenantId
from tests.unit.callstate import test_normaliser as scenarios


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def storage(tmp_path: Path) -> AsyncIterator[SqlStorage]:
    store = SqlStorage(f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}")
    await store.start()
    await store.upsert_tenant(Tenant(TenantId("acc1"), "acc1"))
    yield store
    await store.close()


def _service(storage: SqlStorage, crm: MemoryCrm, clock: Clock) -> CrmLoggingService:
    directory = AgentDirectory(
        Agent(
            AgentId(f"agent-{e}"),
            TenantId("acc1"),
            f"Agent {e}",
            extension=e,
            pbx_user_id=f"user-{e}",
            crm_user_id=f"005{e}",
        )
        for e in ("101", "102")
    )
    return CrmLoggingService(storage=storage, directory=directory, crm=crm, clock=clock)


def _stored(build: object, *handled: str) -> StoredCall:
    norm = Normaliser()
    norm.apply_many(build().events)  # type: ignore[operator]
    (call,) = norm.calls()
    return StoredCall(call, handled_by=tuple(AgentId(f"agent-{e}") for e in handled))


async def test_an_ended_call_is_logged_once_per_agent(storage: SqlStorage) -> None:
    crm, clock = MemoryCrm(), Clock()
    service = _service(storage, crm, clock)
    stored = _stored(scenarios.blind_transfer, "101", "102")
    service.remember(stored.call.call_id, "agent-101", chosen=CrmRef("Contact", "003X"))
    await service.call_ended(stored)
    await service.call_ended(stored)  # a repeat adds nothing (same keys)
    assert await storage.outbox_pending() == 2
    assert await service.worker.run_once() == 2
    logs = {key: log for key, (_, log) in crm.logs.items()}
    assert set(logs) == {f"{stored.call.call_id}:agent-101", f"{stored.call.call_id}:agent-102"}
    first = logs[f"{stored.call.call_id}:agent-101"]
    assert first.who == CrmRef("Contact", "003X") and first.disposition == "Transferred"
    assert await storage.outbox_pending() == 0


async def test_a_crm_that_is_down_gets_the_log_later_exactly_once(storage: SqlStorage) -> None:
    crm, clock = MemoryCrm(), Clock()
    service = _service(storage, crm, clock)
    crm.fail_next(
        CrmUnavailable("salesforce is down"),
        CrmUnavailable("still down", details={"retry_after": 120}),
    )
    stored = _stored(scenarios.inbound_answered, "101")
    await service.call_ended(stored)
    assert await service.worker.run_once() == 0
    assert await service.worker.run_once() == 0  # not due yet: backing off
    clock.now += 10
    assert await service.worker.run_once() == 0  # second failure asks for 120 s
    clock.now += 60
    assert await service.worker.run_once() == 0
    clock.now += 120
    assert await service.worker.run_once() == 1
    assert len(crm.logs) == 1 and crm.requests.count("log_call") == 3


async def test_a_rejected_log_stays_in_the_outbox_with_the_crm_message(storage: SqlStorage) -> None:
    crm, clock = MemoryCrm(), Clock()
    service = _service(storage, crm, clock)
    crm.fail_next(
        CrmRejected("OwnerId: invalid cross reference id", details={"fields": ["OwnerId"]})
    )
    await service.call_ended(_stored(scenarios.inbound_answered, "101"))
    await service.worker.run_once()
    (item,) = await storage.outbox_due(clock.now + 3600, 10)
    assert item.topic == TOPIC and item.attempts == 1
    assert item.last_error == "OwnerId: invalid cross reference id"


def test_call_log_round_trips_through_the_outbox_payload() -> None:
    stored = _stored(scenarios.inbound_answered, "101")
    directory_agent = Agent(AgentId("agent-101"), TenantId("acc1"), "A", extension="101")
    from ctibridge.services.call_log import call_logs

    (log,) = call_logs(
        stored,
        {AgentId("agent-101"): directory_agent},
        {AgentId("agent-101"): AgentContext(clicked=CrmRef("Account", "001"))},
        resolve=lambda ref: AgentId(f"agent-{ref.extension}"),
    )
    assert log_from_dict(log_to_dict(log)) == log


SARAH = CrmRecord(CrmRef("Contact", "003A"), "Sarah Mitchell", "Phone", "07700 900123")
SARAH_LEAD = CrmRecord(CrmRef("Lead", "00QB"), "Sarah Mitchell", "MobilePhone", "07700900123")


async def test_what_the_agent_did_is_written_to_the_database_as_it_happens(
    storage: SqlStorage,
) -> None:
    service = _service(storage, MemoryCrm(), Clock())
    service.remember("call-1", "agent-101", tenant_id="acc1", matches=[SARAH, SARAH_LEAD])
    service.remember("call-1", "agent-101", chosen=CrmRef("Lead", "00QB"))  # tenant: the agent's
    service.remember("call-1", "agent-999", chosen=CrmRef("Lead", "00QB"))  # unknown: memory only
    await service.contexts.saved()
    (stored,) = await storage.list_call_contexts(TenantId("acc1"), CallId("call-1"))
    assert (stored.agent_id, stored.chosen) == ("agent-101", ("Lead", "00QB"))
    assert [m["id"] for m in stored.matches or ()] == ["003A", "00QB"]
    assert service.context("call-1", "agent-999").chosen == CrmRef("Lead", "00QB")


async def test_the_choice_survives_a_restart_and_is_forgotten_once_logged(
    storage: SqlStorage,
) -> None:
    stored = _stored(scenarios.inbound_answered, "101")
    call_id = stored.call.call_id
    before = _service(storage, MemoryCrm(), Clock())
    before.remember(call_id, "agent-101", tenant_id="acc1", matches=[SARAH, SARAH_LEAD])
    before.remember(call_id, "agent-101", chosen=CrmRef("Lead", "00QB"))
    await before.stop()

    crm = MemoryCrm()
    after = _service(storage, crm, Clock())  # a new process: nothing in memory
    assert after.context(call_id, "agent-101") == AgentContext()
    after.remember(call_id, "agent-101", tenant_id="acc1", matches=[SARAH, SARAH_LEAD])  # re-lookup
    await after.call_ended(stored)
    assert await after.worker.run_once() == 1
    ((_, log),) = crm.logs.values()
    assert (log.who, log.what) == (CrmRef("Lead", "00QB"), None)
    assert await storage.list_call_contexts(TenantId("acc1"), CallId(call_id)) == []
    assert after.context(call_id, "agent-101") == AgentContext()


async def test_what_this_process_saw_wins_over_an_older_stored_choice(
    storage: SqlStorage,
) -> None:
    stored = _stored(scenarios.inbound_answered, "101")
    call_id = stored.call.call_id
    await storage.upsert_call_contexts(
        [CallContext(TenantId("acc1"), CallId(call_id), AgentId("agent-101"), chosen=("Lead", "1"))]
    )
    crm = MemoryCrm()
    service = _service(storage, crm, Clock())
    service.remember(call_id, "agent-101", chosen=CrmRef("Account", "001C"))
    await service.call_ended(stored)
    await service.worker.run_once()
    ((_, log),) = crm.logs.values()
    assert (log.who, log.what) == (None, CrmRef("Account", "001C"))


async def test_contexts_of_calls_never_seen_ending_expire(storage: SqlStorage) -> None:
    clock = Clock()
    service = _service(storage, MemoryCrm(), clock)
    service.remember("lost-call", "agent-101", chosen=CrmRef("Contact", "003A"))
    clock.now += 3600
    service.remember("live-call", "agent-101", chosen=CrmRef("Contact", "003A"))
    await service.contexts.saved()
    clock.now += RETENTION - 1800
    assert await service.contexts.expire() == 1
    assert await storage.list_call_contexts(TenantId("acc1"), CallId("lost-call")) == []
    assert len(await storage.list_call_contexts(TenantId("acc1"), CallId("live-call"))) == 1
    clock.now += 3600
    service.start()  # the sweeper expires on start, then hourly
    try:
        for _ in range(500):  # bounded: 10 s
            if not await storage.list_call_contexts(TenantId("acc1"), CallId("live-call")):
                break
            await asyncio.sleep(0.02)
        else:
            raise AssertionError("the sweeper never expired live-call")
    finally:
        await service.stop()
