"""``RecordingIndex``: the ``recordings`` table, on the storage's engine (SQLite or PostgreSQL).

It borrows the engine of a started ``SqlStorage`` (whose ``start()`` created the table) and
never disposes it. Database failures come out as :class:`~ctibridge.errors.StorageError`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

import sqlalchemy as sa

from ctibridge.recordings.base import RecordingRow, RecordingState
from ctibridge.storage._engine import EngineUser, HasEngine, insert_for
from ctibridge.storage.tables import recordings
from ctibridge.types import CallId, TenantId

__all__ = ["HasEngine", "RecordingIndex"]

_MAX_ERROR = 2000


class RecordingIndex(EngineUser):
    async def add(self, rows: Sequence[RecordingRow]) -> None:
        """Insert new rows. A recording already known keeps its state and moves to the call
        of the new row (a call merged into another reports it again)."""
        if not rows:
            return
        async with self._connect("adding recordings", write=True) as conn:
            stmt = insert_for(conn, recordings)
            stmt = stmt.on_conflict_do_update(
                index_elements=["recording_id"], set_={"call_id": stmt.excluded.call_id}
            )
            await conn.execute(stmt, [_row(r) for r in rows])

    async def save(self, row: RecordingRow) -> None:
        """Overwrite the row's fetch state (after an attempt). Its call is left alone: only
        :meth:`add` moves a recording to another call, even while a fetch is under way."""
        values = _row(row)
        del values["call_id"]
        stmt = (
            sa.update(recordings)
            .where(recordings.c.recording_id == values.pop("recording_id"))
            .values(**values)
        )
        async with self._connect("saving a recording", write=True) as conn:
            await conn.execute(stmt)

    async def make_due(self, now: float) -> None:
        """Every pending row due by ``now`` (on start: try them all again at once)."""
        c = recordings.c
        stmt = (
            sa.update(recordings)
            .where(c.state == RecordingState.PENDING.value, c.next_attempt_at > now)
            .values(next_attempt_at=now)
        )
        async with self._connect("rescheduling recordings", write=True) as conn:
            await conn.execute(stmt)

    async def get(self, recording_id: str) -> RecordingRow | None:
        query = sa.select(recordings).where(recordings.c.recording_id == recording_id)
        rows = await self._all("reading a recording", query)
        return rows[0] if rows else None

    async def states(self, recording_ids: Sequence[str]) -> dict[str, RecordingState]:
        """The state of each of ``recording_ids`` that has a row, in one query."""
        if not recording_ids:
            return {}
        c = recordings.c
        query = sa.select(c.recording_id, c.state).where(c.recording_id.in_(set(recording_ids)))
        async with self._connect("reading recording states") as conn:
            rows = (await conn.execute(query)).all()
        return {str(recording_id): RecordingState(state) for recording_id, state in rows}

    async def for_call(self, tenant_id: TenantId, call_id: CallId) -> list[RecordingRow]:
        c = recordings.c
        query = (
            sa.select(recordings)
            .where(c.tenant_id == tenant_id, c.call_id == call_id)
            .order_by(c.created_at, c.recording_id)
        )
        return await self._all("listing a call's recordings", query)

    async def due(self, now: float, limit: int) -> list[RecordingRow]:
        """Pending rows due by ``now``, the longest waiting first."""
        c = recordings.c
        query = (
            sa.select(recordings)
            .where(c.state == RecordingState.PENDING.value, c.next_attempt_at <= now)
            .order_by(c.next_attempt_at, c.recording_id)
            .limit(max(limit, 0))
        )
        return await self._all("reading due recordings", query)

    async def next_due(self) -> float | None:
        """When the next pending row is due; None when none is pending."""
        c = recordings.c
        query = sa.select(sa.func.min(c.next_attempt_at)).where(
            c.state == RecordingState.PENDING.value
        )
        async with self._connect("reading the next due recording") as conn:
            value = (await conn.execute(query)).scalar_one_or_none()
        return float(value) if value is not None else None

    async def counts(self) -> dict[str, int]:
        """How many rows are in each state."""
        c = recordings.c
        query = sa.select(c.state, sa.func.count()).group_by(c.state)
        async with self._connect("counting recordings") as conn:
            rows = (await conn.execute(query)).all()
        return {str(state): int(n) for state, n in rows}

    async def _all(self, what: str, query: sa.Select[Any]) -> list[RecordingRow]:
        async with self._connect(what) as conn:
            return [_from_row(r) for r in (await conn.execute(query)).mappings().all()]


def _row(row: RecordingRow) -> dict[str, Any]:
    values = asdict(row)
    values["state"] = row.state.value
    if row.last_error is not None:
        values["last_error"] = row.last_error[:_MAX_ERROR]
    return values


def _from_row(row: sa.RowMapping) -> RecordingRow:
    values = dict(row)
    values["state"] = RecordingState(values["state"])
    values["tenant_id"] = TenantId(values["tenant_id"])
    values["call_id"] = CallId(values["call_id"])
    return RecordingRow(**values)
