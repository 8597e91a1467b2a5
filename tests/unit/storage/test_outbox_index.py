"""The admin's reads and writes of the outbox: failing items per tenant, one item, discard."""

from __future__ import annotations

from dataclasses import replace

from ctibridge.storage import SqlStorage
from ctibridge.storage.base import OutboxItem
from ctibridge.storage.outbox_index import DISCARDED, OutboxIndex
from tests.unit.storage.builders import T1, T2

NOW = 1_700_000_000.0


def _item(key: str, **changes: object) -> OutboxItem:
    item = OutboxItem(
        key=key,
        topic="crm.call_log",
        payload={"call_id": key, "agent_id": "agent-101"},
        tenant_id=T1,
        next_attempt_at=NOW,
        created_at=NOW - 1,
    )
    return replace(item, **changes)  # type: ignore[arg-type]


async def _ids(storage: SqlStorage) -> dict[str, int]:
    due = await storage.outbox_due(NOW + 10_000, 100)
    return {d.key: d.item_id for d in due if d.item_id is not None}


async def test_failing_lists_tried_undelivered_items_of_the_tenant_newest_first(
    storage: SqlStorage,
) -> None:
    await storage.outbox_add(
        [_item("new"), _item("failed-1"), _item("failed-2"), _item("other", tenant_id=T2)]
    )
    await storage.outbox_add([_item("delivered")])
    ids = await _ids(storage)
    for key in ("failed-1", "failed-2", "other", "delivered"):
        await storage.outbox_retry(ids[key], f"{key} refused", NOW + 30, error_code="CODE")
    await storage.outbox_done(ids["delivered"], NOW + 40)
    index = OutboxIndex(storage)

    failing = await index.failing(T1)
    assert [(i.key, i.attempts, i.last_error_code, i.last_error) for i in failing] == [
        ("failed-2", 1, "CODE", "failed-2 refused"),
        ("failed-1", 1, "CODE", "failed-1 refused"),
    ]
    assert await index.count_failing(T1) == 2
    assert [i.key for i in await index.failing(T1, limit=1)] == ["failed-2"]
    assert [i.key for i in await index.failing(T2)] == ["other"]
    got = await index.get(ids["failed-1"])
    assert got is not None and got.payload == {"call_id": "failed-1", "agent_id": "agent-101"}
    assert await index.get(999_999) is None


async def test_discard_marks_done_keeps_the_error_and_happens_once(storage: SqlStorage) -> None:
    await storage.outbox_add([_item("k1"), _item("k2")])
    ids = await _ids(storage)
    await storage.outbox_retry(ids["k1"], "x" * 1995, NOW + 30, error_code="MALFORMED_ID")
    index = OutboxIndex(storage)

    assert await index.discard(ids["k1"], NOW + 5) is True
    gone = await index.get(ids["k1"])
    assert gone is not None and gone.done_at == NOW + 5
    assert gone.last_error == (DISCARDED + "x" * 1995)[:2000]
    assert gone.last_error_code == "MALFORMED_ID"
    assert await index.discard(ids["k1"], NOW + 6) is False  # done already
    assert await index.failing(T1) == []
    assert [d.key for d in await storage.outbox_due(NOW + 10_000, 10)] == ["k2"]
    # a discarded key stays taken: the same log added again is not written
    await storage.outbox_add([_item("k1")])
    assert await storage.outbox_pending(T1) == 1
