"""The outbox: idempotent adds, due items oldest first, retries and completion."""

from __future__ import annotations

from dataclasses import replace

from ctibridge.storage import SqlStorage
from ctibridge.storage.base import OutboxItem
from tests.unit.storage.builders import T1, T2

NOW = 1_700_000_000.0


def _item(key: str, **changes: object) -> OutboxItem:
    item = OutboxItem(
        key=key,
        topic="crm.call_log",
        payload={"call_id": key, "agents": ["a-1"], "talk_seconds": 12.5},
        tenant_id=T1,
        next_attempt_at=NOW,
        created_at=NOW - 1,
    )
    return replace(item, **changes)  # type: ignore[arg-type]


async def test_add_then_due_round_trip(storage: SqlStorage) -> None:
    await storage.outbox_add([_item("k1")])
    (due,) = await storage.outbox_due(NOW, 10)
    assert due.item_id is not None
    assert replace(due, item_id=None) == _item("k1")


async def test_add_is_idempotent_by_key(storage: SqlStorage) -> None:
    await storage.outbox_add([_item("k1"), _item("k1", topic="other")])
    await storage.outbox_add([_item("k1", payload={"changed": True}), _item("k2")])
    due = await storage.outbox_due(NOW, 10)
    assert [(d.key, d.topic, d.payload["call_id"]) for d in due] == [
        ("k1", "crm.call_log", "k1"),
        ("k2", "crm.call_log", "k2"),
    ]
    assert await storage.outbox_pending() == 2


async def test_due_means_not_done_and_time_reached_oldest_first(storage: SqlStorage) -> None:
    await storage.outbox_add([_item("late", next_attempt_at=NOW + 60)])
    await storage.outbox_add([_item(f"k{i}", next_attempt_at=NOW - i) for i in range(4)])
    assert [d.key for d in await storage.outbox_due(NOW, 10)] == ["k0", "k1", "k2", "k3"]
    assert [d.key for d in await storage.outbox_due(NOW, 2)] == ["k0", "k1"]
    # "late" was added first: once due it comes first
    assert [d.key for d in await storage.outbox_due(NOW + 60, 10)][:2] == ["late", "k0"]
    assert await storage.outbox_due(NOW, 0) == []


async def test_retry_counts_attempts_and_postpones(storage: SqlStorage) -> None:
    await storage.outbox_add([_item("k1")])
    (item,) = await storage.outbox_due(NOW, 10)
    assert item.item_id is not None
    await storage.outbox_retry(item.item_id, "CRM said 503", NOW + 30)
    assert await storage.outbox_due(NOW + 29, 10) == []
    await storage.outbox_retry(item.item_id, "timeout", NOW + 90)
    (again,) = await storage.outbox_due(NOW + 90, 10)
    assert (again.attempts, again.last_error, again.next_attempt_at) == (2, "timeout", NOW + 90)
    assert await storage.outbox_pending() == 1


async def test_the_outside_service_error_code_is_kept_beside_the_message(
    storage: SqlStorage,
) -> None:
    await storage.outbox_add([_item("k1")])
    (item,) = await storage.outbox_due(NOW, 10)
    assert item.item_id is not None and item.last_error_code is None
    code = "FIELD_CUSTOM_VALIDATION_EXCEPTION"
    await storage.outbox_retry(item.item_id, "Call result is required", NOW, error_code=code)
    (again,) = await storage.outbox_due(NOW, 10)
    assert (again.last_error_code, again.last_error) == (code, "Call result is required")
    # the next failure without a code clears it
    await storage.outbox_retry(item.item_id, "[NOT_A_CODE] just text", NOW)
    (third,) = await storage.outbox_due(NOW, 10)
    assert (third.last_error_code, third.last_error) == (None, "[NOT_A_CODE] just text")
    assert third.attempts == 2


async def test_long_errors_are_cut(storage: SqlStorage) -> None:
    await storage.outbox_add([_item("k1")])
    (item,) = await storage.outbox_due(NOW, 1)
    assert item.item_id is not None
    await storage.outbox_retry(item.item_id, "x" * 10_000, NOW, error_code="C" * 1000)
    (again,) = await storage.outbox_due(NOW, 1)
    assert again.last_error == "x" * 2000
    assert again.last_error_code == "C" * 200


async def test_done_items_leave_due_and_pending(storage: SqlStorage) -> None:
    await storage.outbox_add([_item("k1"), _item("k2")])
    first, _ = await storage.outbox_due(NOW, 10)
    assert first.item_id is not None
    await storage.outbox_done(first.item_id, NOW + 1)
    assert [d.key for d in await storage.outbox_due(NOW + 100, 10)] == ["k2"]
    assert await storage.outbox_pending() == 1
    await storage.outbox_add([_item("k1")])  # a done key stays done
    assert await storage.outbox_pending() == 1


async def test_pending_per_tenant(storage: SqlStorage) -> None:
    assert await storage.outbox_pending() == 0
    await storage.outbox_add([_item("k1"), _item("k2", tenant_id=T2), _item("k3", tenant_id=T2)])
    assert await storage.outbox_pending() == 3
    assert await storage.outbox_pending(T1) == 1
    assert await storage.outbox_pending(T2) == 2
