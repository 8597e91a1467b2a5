"""Fixtures for the built-in CRM tests: every test runs on SQLite and on PostgreSQL.

As in ``tests/unit/storage``, each PostgreSQL test gets a fresh schema (``c_<random>``),
chosen through asyncpg's ``search_path`` server setting and dropped afterwards.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import sqlalchemy as sa

from ctibridge.crm.builtin import BuiltinCrm
from ctibridge.storage import SqlStorage

PG_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
PG_DSN = "postgresql://postgres@127.0.0.1:5432/test"
TENANT = "tenant-a"
OTHER_TENANT = "tenant-b"


@dataclass
class Backend:
    name: str
    url: str
    connect_args: dict[str, Any] = field(default_factory=dict)

    def make(self) -> SqlStorage:
        return SqlStorage(self.url, connect_args=self.connect_args)


async def pg_execute(sql: str, dsn: str = PG_DSN) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def backend(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Backend]:
    if request.param == "sqlite":
        yield Backend("sqlite", f"sqlite+aiosqlite:///{tmp_path / 'data' / 'ctibridge.db'}")
        return
    schema = f"c_{secrets.token_hex(8)}"
    await pg_execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield Backend("postgres", PG_URL, {"server_settings": {"search_path": schema}})
    finally:
        await pg_execute(f'DROP SCHEMA "{schema}" CASCADE')


@pytest.fixture
async def storage(backend: Backend) -> AsyncIterator[SqlStorage]:
    store = backend.make()
    await store.start()
    try:
        yield store
    finally:
        await store.close()


class Clock:
    """A settable clock: ``now`` seconds, moved on by ``advance``."""

    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float = 1.0) -> float:
        self.now += seconds
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def crm(storage: SqlStorage, clock: Clock) -> AsyncIterator[BuiltinCrm]:
    crm = BuiltinCrm(storage, default_region="GB", internal_digits=5, clock=clock)
    try:
        yield crm
    finally:
        await crm.close()  # its lookup connection, before the storage closes


@pytest.fixture
async def make_crm(storage: SqlStorage) -> AsyncIterator[Callable[..., BuiltinCrm]]:
    """``make_crm(**options)``: more CRMs on the storage, each closed after the test."""
    made: list[BuiltinCrm] = []

    def make(**options: Any) -> BuiltinCrm:
        made.append(BuiltinCrm(storage, **options))
        return made[-1]

    yield make
    for crm in made:
        await crm.close()


async def count_rows(storage: SqlStorage, table: str, tenant_id: str | None = None) -> int:
    sql = f"SELECT count(*) FROM {table}" + (" WHERE tenant_id = :t" if tenant_id else "")
    async with storage.engine.connect() as conn:
        return int((await conn.execute(sa.text(sql), {"t": tenant_id})).scalar_one())


async def phone_index(storage: SqlStorage, tenant_id: str = TENANT) -> set[tuple[str, ...]]:
    """The tenant's phone index as ``(object, record_id, field, e164, number)`` tuples."""
    sql = "SELECT object, record_id, field, e164, number FROM crm_phones WHERE tenant_id = :t"
    async with storage.engine.connect() as conn:
        return {tuple(row) for row in (await conn.execute(sa.text(sql), {"t": tenant_id}))}


@pytest.fixture
async def sqlite_crm(tmp_path: Path, clock: Clock) -> AsyncIterator[BuiltinCrm]:
    """A CRM on SQLite only, for checks made before any SQL runs (input validation, numbers
    that are never looked up): they cannot differ between databases."""
    store = SqlStorage(f"sqlite+aiosqlite:///{tmp_path / 'only-sqlite.db'}")
    await store.start()
    crm = BuiltinCrm(store, clock=clock)
    try:
        yield crm
    finally:
        await crm.close()
        await store.close()
