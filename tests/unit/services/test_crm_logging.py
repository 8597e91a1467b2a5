"""Ended calls become CRM call logs through the outbox; a CRM that is down loses nothing."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from ctibridge.callstate.normaliser import Normaliser
from ctibridge.crm.base import CrmRef
from ctibridge.crm.memory import MemoryCrm
from ctibridge.errors import CrmRejected, CrmUnavailable
from ctibridge.services.crm_logging import TOPIC, CrmLoggingService, log_from_dict, log_to_dict
from ctibridge.services.directory import AgentDirectory
from ctibridge.storage import SqlStorage
from ctibridge.storage.base import Agent, StoredCall, Tenant
from ctibridge.types import AgentId, TenantId
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
    from ctibridge.services.call_log import AgentContext, call_logs

    (log,) = call_logs(
        stored,
        {AgentId("agent-101"): directory_agent},
        {AgentId("agent-101"): AgentContext(clicked=CrmRef("Account", "001"))},
        resolve=lambda ref: AgentId(f"agent-{ref.extension}"),
    )
    assert log_from_dict(log_to_dict(log)) == log
