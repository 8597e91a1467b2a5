"""``SqlStorage``: the :class:`~ctibridge.storage.base.Storage` contract on SQLAlchemy 2 async.

One implementation for SQLite (``sqlite+aiosqlite:///path``, the default) and PostgreSQL
(``postgresql+asyncpg://user@host/db``). The schema is in ``tables.py``; ``start()`` brings the
database to it with the Alembic migrations in ``migrations/``. Every database failure comes
out as :class:`~ctibridge.errors.StorageError`.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from ctibridge.callstate.events import AgentRef, ChannelEvent
from ctibridge.storage import _calls, _codec, migrate
from ctibridge.storage._engine import create_engine, db_errors, insert_for, parse_url, sqlite_path
from ctibridge.storage.base import (
    Agent,
    ApiToken,
    CallContext,
    CallPage,
    CallQuery,
    CallWrite,
    OutboxItem,
    Storage,
    StoredCall,
    Tenant,
)
from ctibridge.storage.tables import (
    agent_identities,
    agents,
    api_tokens,
    call_contexts,
    outbox,
    tenants,
)
from ctibridge.types import AgentId, CallId, TenantId

__all__ = ["SqlStorage"]

logger = logging.getLogger(__name__)

_AnySelect = sa.Select[*tuple[Any, ...]]

_CONTEXT_FIELDS = (
    "clicked_object", "clicked_id", "chosen_object", "chosen_id", "matches",
)  # fmt: skip
"""``call_contexts`` columns an upsert merges (a NULL given keeps the stored value)."""

_MIGRATION_LOCK = 0x63746962  # "ctib": one migrating instance at a time on PostgreSQL


class SqlStorage(Storage):
    """Calls, agents, tokens, the event log and the outbox in a SQL database."""

    def __init__(
        self, url: str, *, echo: bool = False, connect_args: Mapping[str, Any] | None = None
    ) -> None:
        """``connect_args`` go to the driver, e.g. asyncpg's ``server_settings``."""
        self._url = parse_url(url)
        self._engine = create_engine(self._url, echo=echo, connect_args=connect_args or {})

    def __repr__(self) -> str:
        return f"SqlStorage({self._url!r})"

    @property
    def engine(self) -> AsyncEngine:
        """The SQLAlchemy engine, for tools and tests."""
        return self._engine

    @asynccontextmanager
    async def _connect(self, what: str, *, write: bool = False) -> AsyncIterator[AsyncConnection]:
        """A connection; with ``write``, inside one transaction committed on success."""
        with db_errors(what):
            async with self._engine.begin() if write else self._engine.connect() as conn:
                yield conn

    async def start(self) -> None:
        path = sqlite_path(self._url)
        with db_errors(f"creating the folder of {path}"):
            if path is not None:
                path.parent.mkdir(parents=True, exist_ok=True)
        async with self._connect("migrating the schema", write=True) as conn:
            if conn.dialect.name == "postgresql":
                await conn.execute(sa.select(sa.func.pg_advisory_xact_lock(_MIGRATION_LOCK)))
            await conn.run_sync(migrate.upgrade)
        logger.info("storage ready: %r at schema revision %s", self._url, migrate.head_revision())

    async def close(self) -> None:
        await self._engine.dispose()

    # tenants and agents

    async def upsert_tenant(self, tenant: Tenant) -> None:
        async with self._connect("saving a tenant", write=True) as conn:
            await _upsert(conn, tenants, ["tenant_id"], [_codec.tenant_row(tenant)])

    async def get_tenant(self, tenant_id: TenantId) -> Tenant | None:
        query = sa.select(tenants).where(tenants.c.tenant_id == tenant_id)
        row = await self._first("reading a tenant", query)
        return _codec.tenant_from_row(row) if row else None

    async def list_tenants(self) -> list[Tenant]:
        query = sa.select(tenants).order_by(tenants.c.tenant_id)
        return [_codec.tenant_from_row(r) for r in await self._all("listing tenants", query)]

    async def upsert_agent(self, agent: Agent) -> None:
        """Save the agent and re-index its PBX identities. An identity another agent of the
        tenant held moves to this one: the last upsert wins."""
        async with self._connect("saving an agent", write=True) as conn:
            await _upsert(conn, agents, ["agent_id"], [_codec.agent_row(agent)])
            await conn.execute(
                sa.delete(agent_identities).where(agent_identities.c.agent_id == agent.agent_id)
            )
            rows = _codec.identity_rows(agent)
            if rows:
                await _upsert(conn, agent_identities, ["tenant_id", "kind", "value"], rows)

    async def get_agent(self, agent_id: AgentId) -> Agent | None:
        return await self._one_agent("reading an agent", agents.c.agent_id == agent_id)

    async def get_agent_by_login(self, login: str) -> Agent | None:
        return await self._one_agent("reading an agent by login", agents.c.login == login)

    async def find_agent(self, tenant_id: TenantId, ref: AgentRef) -> Agent | None:
        """The tenant's agent the PBX names by ``ref``: by user id, else device id, else
        extension (inactive agents included)."""
        lookups = _codec.identity_lookups(ref)
        if not lookups:
            return None
        ids = agent_identities.c
        rank = sa.case({kind: i for i, kind in enumerate(_codec.IDENTITY_KINDS)}, value=ids.kind)
        query = (
            sa.select(agents)
            .join(agent_identities, ids.agent_id == agents.c.agent_id)
            .where(ids.tenant_id == tenant_id)
            .where(sa.or_(*((ids.kind == kind) & (ids.value == v) for kind, v in lookups)))
            .order_by(rank)
            .limit(1)
        )
        row = await self._first("finding an agent", query)
        return _codec.agent_from_row(row) if row else None

    async def list_agents(self, tenant_id: TenantId) -> list[Agent]:
        query = (
            sa.select(agents)
            .where(agents.c.tenant_id == tenant_id)
            .order_by(agents.c.name, agents.c.agent_id)
        )
        return [_codec.agent_from_row(r) for r in await self._all("listing agents", query)]

    async def remove_agent(self, agent_id: AgentId) -> None:
        """Delete the agent, its identities and its tokens; its calls keep their links."""
        async with self._connect("removing an agent", write=True) as conn:
            await conn.execute(sa.delete(agents).where(agents.c.agent_id == agent_id))

    # tokens

    async def add_token(self, token: ApiToken) -> None:
        """Store a token by its hash. Adding a hash already stored changes nothing (so a
        revoked token stays revoked)."""
        async with self._connect("saving a token", write=True) as conn:
            stmt = insert_for(conn, api_tokens).on_conflict_do_nothing()
            await conn.execute(stmt, [_codec.token_row(token)])

    async def get_token(self, token_hash: str) -> ApiToken | None:
        query = sa.select(api_tokens).where(api_tokens.c.token_hash == token_hash)
        row = await self._first("reading a token", query)
        return _codec.token_from_row(row) if row else None

    async def revoke_token(self, token_hash: str) -> None:
        stmt = sa.update(api_tokens).where(api_tokens.c.token_hash == token_hash)
        await self._run("revoking a token", stmt.values(revoked=True))

    # calls and the event log

    async def save_calls(self, writes: Sequence[CallWrite], *, received_at: float) -> None:
        """In one transaction: upsert each call unless the stored one has a higher ``seq``
        (then rewrite its legs and agent links), delete the calls it replaces (re-pointing
        their events to it) and append its channel events. In a batch, writes apply in order."""
        if not writes:
            return
        plan = _calls.plan_writes(writes)
        async with self._connect("saving calls", write=True) as conn:
            await _calls.save_plan(conn, plan, received_at)
        logger.debug(
            "saved %d calls (%d merged), %d events",
            len(plan.upserts), len(plan.merged), len(plan.events),
        )  # fmt: skip

    async def get_call(self, tenant_id: TenantId, call_id: CallId) -> StoredCall | None:
        async with self._connect("reading a call") as conn:
            return await _calls.get_call(conn, tenant_id, call_id)

    async def list_calls(self, query: CallQuery) -> CallPage:
        """Newest first (``started_at``, then ``call_id``, descending). ``since`` is
        inclusive, ``until`` exclusive. InvalidRequest for a bad cursor or limit."""
        async with self._connect("listing calls") as conn:
            return await _calls.list_calls(conn, query)

    async def call_events(self, tenant_id: TenantId, call_id: CallId) -> list[ChannelEvent]:
        """The call's channel events in the order they were saved."""
        async with self._connect("reading call events") as conn:
            return await _calls.call_events_of(conn, tenant_id, call_id)

    async def open_call_events(self, updated_since: float) -> list[ChannelEvent]:
        """The channel events, in the order they were saved, of the calls not ended that were
        updated at or after ``updated_since``. Older calls not ended are left out (logged)."""
        async with self._connect("reading the events of calls in progress") as conn:
            events, old = await _calls.open_call_events(conn, updated_since)
        for tenant_id, call_id, updated_at in old:
            logger.warning(
                "call %s of %s is still in progress in the database but was last updated at "
                "%.0f, before the restore window: left as it is",
                call_id, tenant_id, updated_at,
            )  # fmt: skip
        return events

    # outbox

    async def outbox_add(self, items: Sequence[OutboxItem]) -> None:
        """Queue items; an item whose key is already queued (or done) is left as it is."""
        if not items:
            return
        async with self._connect("adding to the outbox", write=True) as conn:
            stmt = insert_for(conn, outbox).on_conflict_do_nothing(index_elements=["key"])
            await conn.execute(stmt, [_codec.outbox_row(item) for item in items])

    async def outbox_due(self, now: float, limit: int) -> list[OutboxItem]:
        """Up to ``limit`` items not done and due by ``now``, oldest (first added) first."""
        query = (
            sa.select(outbox)
            .where(outbox.c.done_at.is_(None), outbox.c.next_attempt_at <= now)
            .order_by(outbox.c.id)
            .limit(max(limit, 0))
        )
        return [_codec.outbox_from_row(r) for r in await self._all("reading the outbox", query)]

    async def outbox_done(self, item_id: int, now: float) -> None:
        stmt = sa.update(outbox).where(outbox.c.id == item_id).values(done_at=now)
        await self._run("completing an outbox item", stmt)

    async def outbox_retry(
        self, item_id: int, error: str, next_attempt_at: float, *, error_code: str | None = None
    ) -> None:
        """One more failed attempt: its message, the outside service's code for it (None
        when it gave none, clearing an earlier code), and when to try next."""
        stmt = (
            sa.update(outbox)
            .where(outbox.c.id == item_id)
            .values(
                attempts=outbox.c.attempts + 1,
                last_error=error[: _codec.MAX_ERROR_LENGTH],
                last_error_code=error_code[: _codec.MAX_ERROR_CODE_LENGTH] if error_code else None,
                next_attempt_at=next_attempt_at,
            )
        )
        await self._run("rescheduling an outbox item", stmt)

    async def outbox_pending(self, tenant_id: TenantId | None = None) -> int:
        query = sa.select(sa.func.count()).select_from(outbox).where(outbox.c.done_at.is_(None))
        if tenant_id is not None:
            query = query.where(outbox.c.tenant_id == tenant_id)
        async with self._connect("counting the outbox") as conn:
            return int((await conn.execute(query)).scalar_one())

    # what agents did in the CRM during calls

    async def upsert_call_contexts(self, contexts: Sequence[CallContext]) -> None:
        """Insert each context, or merge it into the stored one: the fields it gives replace
        the stored ones, the others stay (``COALESCE``). Contexts of the same key in one
        batch are merged first, in order."""
        rows = [_codec.context_row(c) for c in _codec.merge_contexts(contexts)]
        if not rows:
            return
        async with self._connect("saving call contexts", write=True) as conn:
            stmt = insert_for(conn, call_contexts)
            table, given = call_contexts.c, stmt.excluded
            stmt = stmt.on_conflict_do_update(
                index_elements=["tenant_id", "call_id", "agent_id"],
                set_={name: sa.func.coalesce(given[name], table[name]) for name in _CONTEXT_FIELDS}
                | {"updated_at": given.updated_at},
            )
            await conn.execute(stmt, rows)

    async def list_call_contexts(self, tenant_id: TenantId, call_id: CallId) -> list[CallContext]:
        c = call_contexts.c
        query = (
            sa.select(call_contexts)
            .where(c.tenant_id == tenant_id, c.call_id == call_id)
            .order_by(c.agent_id)
        )
        rows = await self._all("reading call contexts", query)
        return [_codec.context_from_row(r) for r in rows]

    async def remove_call_contexts(self, tenant_id: TenantId, call_id: CallId) -> None:
        c = call_contexts.c
        stmt = sa.delete(call_contexts).where(c.tenant_id == tenant_id, c.call_id == call_id)
        await self._run("removing call contexts", stmt)

    async def expire_call_contexts(self, before: float) -> int:
        stmt = sa.delete(call_contexts).where(call_contexts.c.updated_at < before)
        async with self._connect("expiring call contexts", write=True) as conn:
            return int((await conn.execute(stmt)).rowcount)

    # helpers

    async def _run(self, what: str, stmt: sa.Executable) -> None:
        async with self._connect(what, write=True) as conn:
            await conn.execute(stmt)

    async def _first(self, what: str, query: _AnySelect) -> sa.RowMapping | None:
        async with self._connect(what) as conn:
            return (await conn.execute(query)).mappings().first()

    async def _all(self, what: str, query: _AnySelect) -> Sequence[sa.RowMapping]:
        async with self._connect(what) as conn:
            return (await conn.execute(query)).mappings().all()

    async def _one_agent(self, what: str, where: sa.ColumnElement[bool]) -> Agent | None:
        row = await self._first(what, sa.select(agents).where(where))
        return _codec.agent_from_row(row) if row else None


async def _upsert(
    conn: AsyncConnection, table: sa.Table, keys: list[str], rows: list[dict[str, Any]]
) -> None:
    """Insert ``rows``, or overwrite the non-key columns of the rows with the same keys."""
    stmt = insert_for(conn, table)
    others = [c.name for c in table.columns if c.name not in keys]
    stmt = stmt.on_conflict_do_update(
        index_elements=keys, set_={name: stmt.excluded[name] for name in others}
    )
    await conn.execute(stmt, rows)
