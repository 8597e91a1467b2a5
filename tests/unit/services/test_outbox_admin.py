"""CRM writes that failed, as the admin sees them: listed with the CRM's code and message,
retried now (delivered or failed again), discarded; both actions audited in the log."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from ctibridge.crm.memory import MemoryCrm
from ctibridge.errors import CrmError, CrmRejected, CrmUnavailable, NotFound
from ctibridge.services.outbox import OutboxWorker, error_code
from ctibridge.services.outbox_admin import OutboxAdminService
from ctibridge.storage import SqlStorage
from ctibridge.storage.base import Tenant
from ctibridge.storage.outbox_index import OutboxIndex
from ctibridge.types import TenantId
from tests.unit.callstate import test_normaliser as scenarios
from tests.unit.services.test_crm_logging import Clock, _service, _stored

TENANT = TenantId("acc1")
REJECTED = CrmRejected(
    "Call result must be set",
    details={"status": 400, "error_code": "FIELD_CUSTOM_VALIDATION_EXCEPTION", "fields": []},
)


@pytest.fixture
async def storage(tmp_path: Path) -> AsyncIterator[SqlStorage]:
    store = SqlStorage(f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}")
    await store.start()
    await store.upsert_tenant(Tenant(TENANT, "acc1"))
    yield store
    await store.close()


async def _failed_log(
    storage: SqlStorage, *errors: CrmError
) -> tuple[OutboxAdminService, MemoryCrm, Clock, OutboxWorker]:
    """One call ended, its log refused by the CRM (``errors``, in turn)."""
    crm, clock = MemoryCrm(), Clock()
    logging_service = _service(storage, crm, clock)
    crm.fail_next(*errors)
    await logging_service.call_ended(_stored(scenarios.inbound_answered, "101"))
    assert await logging_service.worker.run_once() == 0
    admin = OutboxAdminService(
        index=OutboxIndex(storage),
        worker=logging_service.worker,
        directory=logging_service._directory,
        crm=crm.name,
        clock=clock,
    )
    return admin, crm, clock, logging_service.worker


def test_the_error_code_is_the_one_the_outside_service_gave() -> None:
    assert error_code(REJECTED) == "FIELD_CUSTOM_VALIDATION_EXCEPTION"
    assert error_code(CrmRejected("OwnerId: invalid", details={"fields": ["OwnerId"]})) is None
    assert error_code(CrmRejected("x", details={"error_code": ""})) is None
    assert error_code(CrmRejected("x", details={"error_code": 42})) is None


async def test_the_code_and_the_message_are_stored_apart(storage: SqlStorage) -> None:
    await _failed_log(storage, REJECTED)
    (item,) = await OutboxIndex(storage).failing(TENANT)
    assert item.last_error_code == "FIELD_CUSTOM_VALIDATION_EXCEPTION"
    assert item.last_error == "Call result must be set"


async def test_failed_writes_are_listed_with_the_crm_words(storage: SqlStorage) -> None:
    admin, _, clock, _ = await _failed_log(storage, REJECTED)
    (item,), total = await admin.failing(TENANT)
    assert total == 1
    assert item.kind == "call_log" and item.attempts == 1
    assert (item.agent_id, item.agent_name) == ("agent-101", "Agent 101")
    assert item.call_id and item.key == f"{item.call_id}:agent-101"
    assert item.subject and item.subject.startswith("Inbound Call")
    assert (item.error_code, item.error_message) == (
        "FIELD_CUSTOM_VALIDATION_EXCEPTION",
        "Call result must be set",
    )
    assert item.created_at == clock.now and clock.now < item.next_attempt_at <= clock.now + 3
    assert item.as_dict()["last_error"] == "Call result must be set"
    assert await admin.failing(TenantId("someone-else")) == ([], 0)


async def test_retry_now_fails_again_then_delivers_once_and_is_audited(
    storage: SqlStorage, caplog: pytest.LogCaptureFixture
) -> None:
    admin, crm, _, _ = await _failed_log(
        storage, REJECTED, CrmUnavailable("Service temporarily unavailable")
    )
    ((item,), _) = await admin.failing(TENANT)
    caplog.set_level(logging.INFO, logger="ctibridge.services.outbox_admin")

    again = await admin.retry_now(TENANT, item.item_id, by="admin (all tenants) from 10.0.0.7")
    assert again.delivered is False and again.item.attempts == 2
    assert (again.item.error_code, again.item.error_message) == (
        None,
        "Service temporarily unavailable",
    )
    done = await admin.retry_now(TENANT, item.item_id, by="admin (all tenants) from 10.0.0.7")
    assert done.delivered is True and done.item.done
    assert len(crm.logs) == 1 and crm.requests.count("log_call") == 3
    assert await admin.failing(TENANT) == ([], 0)
    with pytest.raises(NotFound):
        await admin.retry_now(TENANT, item.item_id, by="admin")

    audit = [r for r in caplog.records if getattr(r, "audit", None) == "outbox.retry"]
    assert [r.delivered for r in audit] == [False, True]  # type: ignore[attr-defined]
    assert all(r.by == "admin (all tenants) from 10.0.0.7" for r in audit)  # type: ignore[attr-defined]
    assert audit[0].key == item.key  # type: ignore[attr-defined]
    assert "failed again: Service temporarily unavailable" in audit[0].getMessage()
    assert "delivered" in audit[1].getMessage()


async def test_discard_never_writes_the_log_and_is_audited(
    storage: SqlStorage, caplog: pytest.LogCaptureFixture
) -> None:
    admin, crm, clock, worker = await _failed_log(storage, REJECTED)
    ((item,), _) = await admin.failing(TENANT)
    caplog.set_level(logging.INFO, logger="ctibridge.services.outbox_admin")
    with pytest.raises(NotFound):
        await admin.discard(TenantId("someone-else"), item.item_id, by="admin")

    shown = await admin.discard(TENANT, item.item_id, by="admin (acc1) from 10.0.0.7")
    assert shown.item_id == item.item_id
    assert await admin.failing(TENANT) == ([], 0)
    assert await storage.outbox_pending(TENANT) == 0
    clock.now += 1e9  # never due again, however long one waits
    assert await worker.run_once() == 0 and crm.logs == {}
    with pytest.raises(NotFound):
        await admin.discard(TENANT, item.item_id, by="admin")

    (audit,) = [r for r in caplog.records if getattr(r, "audit", None) == "outbox.discard"]
    assert audit.error_code == "FIELD_CUSTOM_VALIDATION_EXCEPTION"  # type: ignore[attr-defined]
    assert "Call result must be set" in audit.getMessage()
    assert "admin (acc1) from 10.0.0.7" in audit.getMessage()
