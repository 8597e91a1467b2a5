"""The built-in CRM's writes: a record and its phone index rows, always in one transaction.

Single records (create, update, delete) and chunks of records (CSV import, demo data) go
through the same row builders, so the phone index is right whichever path wrote a record.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from ctibridge.crm._builtin_schema import (
    ACCOUNT,
    CONTACT,
    NumberRules,
    ObjectSpec,
    display_name,
    phone_rows,
)
from ctibridge.storage._engine import insert_for
from ctibridge.storage.crm_tables import crm_accounts, crm_contacts, crm_phones

__all__ = [
    "BulkRow",
    "BulkWriter",
    "delete_record",
    "existing_ids",
    "insert_record",
    "larger_page_cache",
    "new_id",
    "update_record",
]

IN_CHUNK = 500
"""Ids per ``IN (...)`` list."""


BULK_CACHE_KIB = 131_072
"""SQLite page cache for bulk writes (the default is 2 MiB): with 1,000,000 records the
indexes no longer fit the default, and an import then runs about a third slower."""


@asynccontextmanager
async def larger_page_cache(conn: AsyncConnection) -> AsyncIterator[None]:
    """On SQLite, a bigger page cache on this connection while the block runs."""
    if conn.dialect.name != "sqlite":
        yield
        return
    previous = (await conn.exec_driver_sql("PRAGMA cache_size")).scalar_one()
    await conn.exec_driver_sql(f"PRAGMA cache_size=-{BULK_CACHE_KIB}")
    await conn.commit()  # end the transaction the PRAGMAs began: the block starts its own
    try:
        yield
    finally:
        await conn.exec_driver_sql(f"PRAGMA cache_size={int(previous)}")
        await conn.commit()


def new_id() -> str:
    return secrets.token_hex(8)


def _record_row(
    spec: ObjectSpec, tenant_id: str, record_id: str, values: Mapping[str, Any], now: float
) -> dict[str, Any]:
    return {
        **values,
        "tenant_id": tenant_id,
        "id": record_id,
        "name": display_name(spec, values),
        "created_at": now,
        "updated_at": now,
        "last_activity_at": None,
    }


def _index_rows(
    spec: ObjectSpec,
    tenant_id: str,
    record_id: str,
    values: Mapping[str, Any],
    rules: NumberRules,
) -> list[dict[str, Any]]:
    return [
        {
            "tenant_id": tenant_id,
            "object": spec.name,
            "record_id": record_id,
            "field": row.field,
            "e164": row.e164,
            "number": row.number,
        }
        for row in phone_rows(spec, values, rules)
    ]


def _chunks(items: Sequence[str], size: int = IN_CHUNK) -> Iterable[Sequence[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


async def _unindex(
    conn: AsyncConnection, spec: ObjectSpec, tenant_id: str, record_ids: Sequence[str]
) -> None:
    p = crm_phones.c
    for chunk in _chunks(record_ids):
        await conn.execute(
            sa.delete(crm_phones).where(
                p.tenant_id == tenant_id, p.object == spec.name, p.record_id.in_(chunk)
            )
        )


async def _insert(conn: AsyncConnection, table: sa.Table, rows: list[dict[str, Any]]) -> None:
    if rows:
        await conn.execute(table.insert(), rows)


async def insert_record(
    conn: AsyncConnection,
    spec: ObjectSpec,
    tenant_id: str,
    record_id: str,
    values: Mapping[str, Any],
    *,
    now: float,
    rules: NumberRules,
) -> None:
    await conn.execute(spec.table.insert(), [_record_row(spec, tenant_id, record_id, values, now)])
    await _insert(conn, crm_phones, _index_rows(spec, tenant_id, record_id, values, rules))


async def update_record(
    conn: AsyncConnection,
    spec: ObjectSpec,
    tenant_id: str,
    record_id: str,
    values: Mapping[str, Any],
    changes: Mapping[str, Any],
    *,
    now: float,
    rules: NumberRules,
) -> None:
    """Store ``values`` (every field, ``changes`` applied) and re-index the changed numbers.

    Numbers not changed keep their index rows, so a number imported with another region
    (``--region FR``) stays indexed as it was read then."""
    table = spec.table
    row = {**values, "name": display_name(spec, values), "updated_at": now}
    await conn.execute(
        sa.update(table).where(table.c.tenant_id == tenant_id, table.c.id == record_id).values(row)
    )
    changed = [f.name for f in spec.phone_fields if f.name in changes]
    if not changed:
        return
    p = crm_phones.c
    await conn.execute(
        sa.delete(crm_phones).where(
            p.tenant_id == tenant_id,
            p.object == spec.name,
            p.record_id == record_id,
            p.field.in_(changed),
        )
    )
    await _insert(conn, crm_phones, _index_rows(spec, tenant_id, record_id, changes, rules))


async def delete_record(
    conn: AsyncConnection, spec: ObjectSpec, tenant_id: str, record_id: str
) -> bool:
    """Delete the record and its index rows; an account's contacts lose their account."""
    table = spec.table
    result = await conn.execute(
        sa.delete(table).where(table.c.tenant_id == tenant_id, table.c.id == record_id)
    )
    if not result.rowcount:
        return False
    await _unindex(conn, spec, tenant_id, [record_id])
    if spec is ACCOUNT:
        c = crm_contacts.c
        await conn.execute(
            sa.update(crm_contacts)
            .where(c.tenant_id == tenant_id, c.account_id == record_id)
            .values(account_id=None)
        )
    return True


async def existing_ids(
    conn: AsyncConnection, table: sa.Table, tenant_id: str, record_ids: Iterable[str]
) -> set[str]:
    wanted = sorted(set(record_ids))
    found: set[str] = set()
    for chunk in _chunks(wanted):
        query = sa.select(table.c.id).where(table.c.tenant_id == tenant_id, table.c.id.in_(chunk))
        found.update((await conn.execute(query)).scalars())
    return found


@dataclass(frozen=True, slots=True)
class BulkRow:
    """One record to upsert: its id, its cleaned values (every field of the object), and for
    a contact the name of an account to find or create (used when ``account_id`` is empty)."""

    record_id: str
    values: dict[str, str | None]
    account_name: str | None = None


@dataclass
class BulkWriter:
    """Upserts chunks of records on one connection, inside the caller's transaction.

    New records cost one multi-row ``INSERT ... ON CONFLICT DO NOTHING RETURNING id`` and
    one insert of their index rows per chunk. Records that already existed (the ids the
    insert did not return) are then updated and their index rows replaced, one primary-key
    statement per record, so no query depends on table statistics that a large import makes
    stale. An existing record keeps its ``created_at`` and ``last_activity_at``."""

    conn: AsyncConnection
    tenant_id: str
    rules: NumberRules
    now: float
    discarded: bool = False
    """Set by :meth:`discard`: the transaction is rolled back instead of committed."""
    counts: dict[str, int] = field(default_factory=dict)
    """Records upserted per object (``Contact`` → 120; ``Account`` includes the accounts
    created for contacts' account names)."""
    _account_ids: dict[str, str] = field(default_factory=dict)
    """Account name → id, for names already found or created."""
    _known_accounts: set[str] = field(default_factory=set)
    _analyzed: bool = False

    def discard(self) -> None:
        self.discarded = True

    async def upsert(self, spec: ObjectSpec, rows: Sequence[BulkRow]) -> None:
        """Write ``rows`` (ids unique among them)."""
        if not rows:
            return
        if spec is CONTACT:
            rows = await self._with_accounts(rows)
        records = [_record_row(spec, self.tenant_id, r.record_id, r.values, self.now) for r in rows]
        inserted = set((await self.conn.execute(self._insert_new(spec), records)).scalars())
        existing = [r for r in records if r["id"] not in inserted]
        if existing:
            await self._overwrite(spec, existing)
        index = [
            entry
            for r in rows
            for entry in _index_rows(spec, self.tenant_id, r.record_id, r.values, self.rules)
        ]
        await _insert(self.conn, crm_phones, index)
        if spec is ACCOUNT:
            self._known_accounts.update(r.record_id for r in rows)
        self.counts[spec.name] = self.counts.get(spec.name, 0) + len(rows)

    def _insert_new(self, spec: ObjectSpec) -> Any:
        stmt = insert_for(self.conn, spec.table).on_conflict_do_nothing(
            index_elements=["tenant_id", "id"]
        )
        return stmt.returning(spec.table.c.id)

    async def _overwrite(self, spec: ObjectSpec, records: list[dict[str, Any]]) -> None:
        table = spec.table
        kept = {"tenant_id", "id", "created_at", "last_activity_at"}
        columns = [c.name for c in table.c if c.name not in kept]
        update = (
            sa.update(table)
            .where(
                table.c.tenant_id == sa.bindparam("b_tenant"), table.c.id == sa.bindparam("b_id")
            )
            .values({name: sa.bindparam(name) for name in columns})
        )
        params = [
            {"b_tenant": r["tenant_id"], "b_id": r["id"], **{n: r[n] for n in columns}}
            for r in records
        ]
        await self.conn.execute(update, params)
        p = crm_phones.c
        unindex = sa.delete(crm_phones).where(
            p.tenant_id == sa.bindparam("b_tenant"),
            p.object == spec.name,
            p.record_id == sa.bindparam("b_id"),
        )
        await self.conn.execute(
            unindex, [{"b_tenant": r["tenant_id"], "b_id": r["id"]} for r in records]
        )

    async def existing_accounts(self, account_ids: Iterable[str]) -> set[str]:
        """Which of these account ids the tenant has."""
        wanted = set(account_ids)
        unknown = wanted - self._known_accounts
        if unknown:
            await self._fresh_account_statistics()
            self._known_accounts |= await existing_ids(
                self.conn, crm_accounts, self.tenant_id, unknown
            )
        return wanted & self._known_accounts

    async def _fresh_account_statistics(self) -> None:
        """PostgreSQL plans ``id IN (...)`` and ``name IN (...)`` from table statistics; after
        a large account import they may still describe an empty table, and the planner
        would then scan every account of the tenant for each chunk. Refresh them once."""
        if not self._analyzed and self.conn.dialect.name == "postgresql":
            await self.conn.execute(sa.text("ANALYZE crm_accounts"))
        self._analyzed = True

    async def _with_accounts(self, rows: Sequence[BulkRow]) -> list[BulkRow]:
        names = {r.account_name for r in rows if r.account_name and not r.values["account_id"]}
        await self._find_or_create_accounts(names - set(self._account_ids))
        out = []
        for row in rows:
            if row.account_name and not row.values["account_id"]:
                values = {**row.values, "account_id": self._account_ids[row.account_name]}
                row = BulkRow(row.record_id, values, row.account_name)
            out.append(row)
        return out

    async def _find_or_create_accounts(self, names: set[str]) -> None:
        """Map each name to the tenant's account of that name (the lowest id when several
        share it), creating the missing ones."""
        if not names:
            return
        await self._fresh_account_statistics()
        a = crm_accounts.c
        for chunk in _chunks(sorted(names)):
            query = (
                sa.select(a.name, sa.func.min(a.id))
                .where(a.tenant_id == self.tenant_id, a.name.in_(chunk))
                .group_by(a.name)
            )
            self._account_ids.update({row[0]: row[1] for row in await self.conn.execute(query)})
        missing = sorted(names - set(self._account_ids))
        new = [BulkRow(new_id(), _account_values(name)) for name in missing]
        self._account_ids.update(zip(missing, (r.record_id for r in new), strict=True))
        await self.upsert(ACCOUNT, new)


def _account_values(name: str) -> dict[str, str | None]:
    values: dict[str, str | None] = {f.name: None for f in ACCOUNT.fields}
    values["name"] = name
    return values
