"""Calls, legs, agent links and the event log: the batched write path and the queries."""

from __future__ import annotations

import functools
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from ctibridge.callstate.codec import event_from_dict
from ctibridge.callstate.events import ChannelEvent
from ctibridge.errors import InvalidRequest
from ctibridge.storage import _codec
from ctibridge.storage.base import CallPage, CallQuery, CallWrite, StoredCall
from ctibridge.storage.tables import call_agents, call_events, calls, legs
from ctibridge.types import AgentId, CallId, TenantId

__all__ = [
    "MAX_PAGE",
    "WritePlan",
    "call_events_of",
    "get_call",
    "list_calls",
    "open_call_events",
    "plan_writes",
    "save_plan",
]

MAX_PAGE = 1000
"""The largest ``CallQuery.limit`` accepted."""

_CHUNK = 500
"""Ids per ``IN (...)`` list: far below SQLite's and asyncpg's bind-parameter limits."""

_UPDATED_ON_CONFLICT = [c.name for c in calls.columns if c.name != "call_id"]


@dataclass(frozen=True, slots=True)
class WritePlan:
    """What a batch of writes does to the database, worked out before any SQL runs."""

    upserts: dict[str, CallWrite]
    """Call id → the write to store (the newest seq the batch holds for that call)."""
    merged: dict[str, str]
    """Replaced call id → the call that survives it (chains already followed)."""
    events: list[tuple[ChannelEvent, str]]
    """Each event with the call id it is logged under, in batch order."""


def _survivor(call_id: str, merged: dict[str, str]) -> str:
    seen = {call_id}
    while call_id in merged and merged[call_id] not in seen:
        call_id = merged[call_id]
        seen.add(call_id)
    return call_id


def plan_writes(writes: Sequence[CallWrite]) -> WritePlan:
    """Apply the writes in order: each upserts its call, then removes the calls it replaces."""
    upserts: dict[str, CallWrite] = {}
    merged: dict[str, str] = {}
    for write in writes:
        call_id = write.stored.call_id
        merged.pop(call_id, None)
        kept = upserts.get(call_id)
        if kept is None or write.stored.call.seq >= kept.stored.call.seq:
            upserts[call_id] = write
        for old in write.replaces:
            if old != call_id:
                upserts.pop(old, None)
                merged[old] = call_id
    survivors = {old: _survivor(old, merged) for old in merged}
    events = [
        (event, survivors.get(w.stored.call_id, w.stored.call_id))
        for w in writes
        for event in w.events
    ]
    return WritePlan(upserts, survivors, events)


def _chunks(items: Sequence[str]) -> Iterator[Sequence[str]]:
    for start in range(0, len(items), _CHUNK):
        yield items[start : start + _CHUNK]


# The write path's statements are built once: building them (above all the upsert, whose
# ``excluded`` alias copies every column) cost more than running them, on every batch.


@functools.cache
def _upsert_statement(dialect: str) -> postgresql.Insert | sqlite.Insert:
    stmt = postgresql.insert(calls) if dialect == "postgresql" else sqlite.insert(calls)
    return stmt.on_conflict_do_update(
        index_elements=[calls.c.call_id],
        set_={name: stmt.excluded[name] for name in _UPDATED_ON_CONFLICT},
        # The seq guard: an older state of a call never overwrites a newer one.
        where=(calls.c.seq <= stmt.excluded.seq) & (calls.c.tenant_id == stmt.excluded.tenant_id),
    )


_WINNERS = sa.select(calls.c.call_id, calls.c.seq).where(
    calls.c.call_id.in_(sa.bindparam("ids", expanding=True))
)
_DELETES = {
    table.name: sa.delete(table).where(table.c.call_id.in_(sa.bindparam("ids", expanding=True)))
    for table in (calls, legs, call_agents)
}
_INSERTS = {table.name: sa.insert(table) for table in (legs, call_agents, call_events)}


async def _upsert_calls(conn: AsyncConnection, rows: list[dict[str, Any]]) -> None:
    await conn.execute(_upsert_statement(conn.dialect.name), rows)


async def _stored_winners(conn: AsyncConnection, upserts: dict[str, CallWrite]) -> list[str]:
    """The call ids whose row now holds this batch's write (the seq guard let it through)."""
    winners: list[str] = []
    for chunk in _chunks(list(upserts)):
        for call_id, seq in (await conn.execute(_WINNERS, {"ids": list(chunk)})).all():
            if seq == upserts[call_id].stored.call.seq:
                winners.append(call_id)
    return winners


async def _delete_where_call_in(conn: AsyncConnection, table: sa.Table, ids: Sequence[str]) -> None:
    for chunk in _chunks(ids):
        await conn.execute(_DELETES[table.name], {"ids": list(chunk)})


async def _insert_rows(conn: AsyncConnection, table: sa.Table, rows: list[dict[str, Any]]) -> None:
    if rows:
        await conn.execute(_INSERTS[table.name], rows)


async def _replace_children(conn: AsyncConnection, writes: Iterable[CallWrite]) -> None:
    """Rewrite the legs and agent links of the calls this batch stored."""
    writes = list(writes)
    ids = [w.stored.call_id for w in writes]
    await _delete_where_call_in(conn, legs, ids)
    await _delete_where_call_in(conn, call_agents, ids)
    await _insert_rows(conn, legs, [row for w in writes for row in _codec.leg_rows(w.stored.call)])
    await _insert_rows(
        conn, call_agents, [row for w in writes for row in _codec.link_rows(w.stored)]
    )


async def _merge(conn: AsyncConnection, merged: dict[str, str]) -> None:
    """Re-point the merged calls' events to their survivors, then delete the merged calls
    (their legs and agent links go with them: ``ON DELETE CASCADE``)."""
    repoint = (
        sa.update(call_events)
        .where(call_events.c.call_id == sa.bindparam("old_id"))
        .values(call_id=sa.bindparam("new_id"))
    )
    await conn.execute(repoint, [{"old_id": o, "new_id": n} for o, n in merged.items()])
    await _delete_where_call_in(conn, calls, list(merged))


async def save_plan(conn: AsyncConnection, plan: WritePlan, received_at: float) -> None:
    """Run ``plan`` on ``conn``; the caller owns the transaction."""
    if plan.upserts:
        rows = [_codec.call_row(w.stored.call, received_at) for w in plan.upserts.values()]
        await _upsert_calls(conn, rows)
        winners = await _stored_winners(conn, plan.upserts)
        await _replace_children(conn, (plan.upserts[i] for i in winners))
    if plan.merged:
        await _merge(conn, plan.merged)
    event_rows = [_codec.event_row(e, call_id, received_at) for e, call_id in plan.events]
    await _insert_rows(conn, call_events, event_rows)


async def _with_agents(conn: AsyncConnection, rows: Sequence[sa.RowMapping]) -> list[StoredCall]:
    ids = [row["call_id"] for row in rows]
    links: dict[tuple[str, str], list[AgentId]] = {}
    for chunk in _chunks(ids):
        query = (
            sa.select(call_agents.c.call_id, call_agents.c.role, call_agents.c.agent_id)
            .where(call_agents.c.call_id.in_(chunk))
            .order_by(call_agents.c.call_id, call_agents.c.role, call_agents.c.position)
        )
        for call_id, role, agent_id in (await conn.execute(query)).all():
            links.setdefault((call_id, role), []).append(AgentId(agent_id))
    return [
        StoredCall(
            _codec.call_from_row(row),
            handled_by=tuple(links.get((row["call_id"], "handled"), ())),
            rung=tuple(links.get((row["call_id"], "rung"), ())),
        )
        for row in rows
    ]


async def get_call(
    conn: AsyncConnection, tenant_id: TenantId, call_id: CallId
) -> StoredCall | None:
    query = sa.select(calls.c.call_id, calls.c.data).where(
        calls.c.call_id == call_id, calls.c.tenant_id == tenant_id
    )
    rows = (await conn.execute(query)).mappings().all()
    found = await _with_agents(conn, rows)
    return found[0] if found else None


def _filters(query: CallQuery) -> list[sa.ColumnElement[bool]]:
    where: list[sa.ColumnElement[bool]] = [calls.c.tenant_id == query.tenant_id]
    if query.agent_id is not None:
        linked = sa.select(call_agents.c.call_id).where(call_agents.c.agent_id == query.agent_id)
        where.append(calls.c.call_id.in_(linked))
    if query.direction is not None:
        where.append(calls.c.direction == query.direction.value)
    if query.state is not None:
        where.append(calls.c.state == query.state.value)
    if query.active is not None:
        ended = calls.c.state == "ended"
        where.append(sa.not_(ended) if query.active else ended)
    if query.missed is not None:
        where.append(calls.c.missed == query.missed)
    if query.number:
        where.append(
            calls.c.from_number.contains(query.number, autoescape=True)
            | calls.c.to_number.contains(query.number, autoescape=True)
        )
    if query.since is not None:
        where.append(calls.c.started_at >= query.since)
    if query.until is not None:
        where.append(calls.c.started_at < query.until)
    return where


def _after(cursor: str) -> sa.ColumnElement[bool]:
    started_at, call_id = _codec.decode_cursor(cursor)
    return (calls.c.started_at < started_at) | (
        (calls.c.started_at == started_at) & (calls.c.call_id < call_id)
    )


async def list_calls(conn: AsyncConnection, query: CallQuery) -> CallPage:
    if not 1 <= query.limit <= MAX_PAGE:
        raise InvalidRequest(
            f"limit must be between 1 and {MAX_PAGE}", details={"limit": query.limit}
        )
    where = _filters(query)
    if query.cursor is not None:
        where.append(_after(query.cursor))
    stmt = (
        sa.select(calls.c.call_id, calls.c.started_at, calls.c.data)
        .where(*where)
        .order_by(calls.c.started_at.desc(), calls.c.call_id.desc())
        .limit(query.limit + 1)
    )
    rows = (await conn.execute(stmt)).mappings().all()
    page, more = rows[: query.limit], len(rows) > query.limit
    last = page[-1] if more else None
    next_cursor = _codec.encode_cursor(last["started_at"], last["call_id"]) if last else None
    return CallPage(await _with_agents(conn, page), next_cursor)


async def call_events_of(
    conn: AsyncConnection, tenant_id: TenantId, call_id: CallId
) -> list[ChannelEvent]:
    query = (
        sa.select(call_events.c.payload)
        .where(call_events.c.call_id == call_id, call_events.c.tenant_id == tenant_id)
        .order_by(call_events.c.id)
    )
    return [event_from_dict(payload) for payload in (await conn.execute(query)).scalars()]


async def open_call_events(
    conn: AsyncConnection, updated_since: float
) -> tuple[list[ChannelEvent], list[tuple[str, str, float]]]:
    """The channel events of the calls not ended and updated since ``updated_since``, in id
    order; and (tenant, call id, updated at) of the older calls not ended, left out."""
    open_call = calls.c.state != "ended"
    query = (
        sa.select(call_events.c.payload)
        .join(
            calls,
            (calls.c.call_id == call_events.c.call_id)
            & (calls.c.tenant_id == call_events.c.tenant_id),
        )
        .where(open_call, calls.c.updated_at >= updated_since)
        .order_by(call_events.c.id)
    )
    events = [event_from_dict(payload) for payload in (await conn.execute(query)).scalars()]
    stale = sa.select(calls.c.tenant_id, calls.c.call_id, calls.c.updated_at).where(
        open_call, calls.c.updated_at < updated_since
    )
    old = [(t, c, u) for t, c, u in (await conn.execute(stale)).all()]
    return events, old
