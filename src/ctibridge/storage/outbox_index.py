"""``OutboxIndex``: what an admin needs of the ``outbox`` table (items that keep failing).

Like :class:`~ctibridge.recordings.index.RecordingIndex`, it borrows the engine of a started
``SqlStorage`` and never disposes it; the worker's own reads and writes stay in
:class:`~ctibridge.storage.sql.SqlStorage`. Database failures come out as
:class:`~ctibridge.errors.StorageError`.
"""

from __future__ import annotations

import sqlalchemy as sa

from ctibridge.storage import _codec
from ctibridge.storage._engine import EngineUser
from ctibridge.storage.base import OutboxItem
from ctibridge.storage.tables import outbox
from ctibridge.types import TenantId

__all__ = ["DISCARDED", "OutboxIndex"]

DISCARDED = "discarded: "
"""``last_error`` of a discarded item starts with this (then the error it had)."""


def _failing(tenant_id: TenantId) -> sa.ColumnElement[bool]:
    """Not delivered (nor discarded), and tried at least once."""
    c = outbox.c
    return sa.and_(c.tenant_id == tenant_id, c.done_at.is_(None), c.attempts > 0)


class OutboxIndex(EngineUser):
    async def failing(self, tenant_id: TenantId, *, limit: int = 100) -> list[OutboxItem]:
        """The tenant's items that failed and wait for another attempt, newest first."""
        query = (
            sa.select(outbox)
            .where(_failing(tenant_id))
            .order_by(outbox.c.id.desc())
            .limit(max(limit, 0))
        )
        async with self._connect("reading the failing outbox items") as conn:
            rows = (await conn.execute(query)).mappings().all()
        return [_codec.outbox_from_row(row) for row in rows]

    async def count_failing(self, tenant_id: TenantId) -> int:
        query = sa.select(sa.func.count()).select_from(outbox).where(_failing(tenant_id))
        async with self._connect("counting the failing outbox items") as conn:
            return int((await conn.execute(query)).scalar_one())

    async def get(self, item_id: int) -> OutboxItem | None:
        query = sa.select(outbox).where(outbox.c.id == item_id)
        async with self._connect("reading an outbox item") as conn:
            row = (await conn.execute(query)).mappings().first()
        return _codec.outbox_from_row(row) if row is not None else None

    async def discard(self, item_id: int, now: float) -> bool:
        """Give up on an item not yet done: it is never tried again (its row stays, marked
        done at ``now`` with ``last_error`` starting with :data:`DISCARDED`). False when the
        item was done already."""
        c = outbox.c
        text = sa.literal(DISCARDED) + sa.func.coalesce(c.last_error, "")
        stmt = (
            sa.update(outbox)
            .where(c.id == item_id, c.done_at.is_(None))
            .values(
                done_at=now,
                last_error=sa.func.substr(text, 1, _codec.MAX_ERROR_LENGTH),
            )
        )
        async with self._connect("discarding an outbox item", write=True) as conn:
            result = await conn.execute(stmt)
        return bool(result.rowcount == 1)
