"""Fixtures for the storage contract suite: every test runs on SQLite and on PostgreSQL.

PostgreSQL tests each get a fresh schema (``t_<random>``) chosen through asyncpg's
``search_path`` server setting, dropped afterwards, so runs never see each other's rows.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from ctibridge.storage import SqlStorage

PG_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
PG_DSN = "postgresql://postgres@127.0.0.1:5432/test"


@dataclass
class Backend:
    """One test's database; ``make()`` opens a new storage on it (not started)."""

    name: str
    url: str
    connect_args: dict[str, Any] = field(default_factory=dict)

    def make(self) -> SqlStorage:
        return SqlStorage(self.url, connect_args=self.connect_args)


async def _pg(sql: str) -> None:
    conn = await asyncpg.connect(PG_DSN)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def backend(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Backend]:
    if request.param == "sqlite":
        yield Backend("sqlite", f"sqlite+aiosqlite:///{tmp_path / 'data' / 'ctibridge.db'}")
        return
    schema = f"t_{secrets.token_hex(8)}"
    await _pg(f'CREATE SCHEMA "{schema}"')
    try:
        yield Backend("postgres", PG_URL, {"server_settings": {"search_path": schema}})
    finally:
        await _pg(f'DROP SCHEMA "{schema}" CASCADE')


@pytest.fixture
async def storage(backend: Backend) -> AsyncIterator[SqlStorage]:
    store = backend.make()
    await store.start()
    try:
        yield store
    finally:
        await store.close()
