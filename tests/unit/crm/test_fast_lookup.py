"""The lookup's own connection: fresh reads after writes, reuse, reconnection, turns, close.

The PostgreSQL cases break the connection the way production does, from the server's side:
``pg_terminate_backend`` from another connection, while the lookup connection is idle and
while a lookup is running on it (held up by a table lock taken on another connection). The
same lock stands in for a server that stops answering, and for a lookup cancelled mid-way.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import pytest

from ctibridge.crm import _fast_lookup as fast_lookup
from ctibridge.crm._fast_lookup import PostgresReader
from ctibridge.crm.base import CrmRef
from ctibridge.crm.builtin import BuiltinCrm
from ctibridge.errors import StorageError
from ctibridge.storage import SqlStorage
from tests.unit.crm.conftest import PG_DSN, PG_URL, TENANT, pg_execute

E164 = "+441134960215"
OTHER_E164 = "+441134960999"

LOGGER = "ctibridge.crm._fast_lookup"

postgres_only = pytest.mark.postgres


@pytest.fixture
async def pg_schema() -> AsyncIterator[str]:
    schema = f"c_{secrets.token_hex(8)}"
    await pg_execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield schema
    finally:
        await pg_execute(f'DROP SCHEMA "{schema}" CASCADE')


@pytest.fixture
async def pg_storage(pg_schema: str) -> AsyncIterator[SqlStorage]:
    store = SqlStorage(PG_URL, connect_args={"server_settings": {"search_path": pg_schema}})
    await store.start()
    try:
        yield store
    finally:
        await store.close()


@pytest.fixture
async def pg_crm(pg_storage: SqlStorage) -> AsyncIterator[BuiltinCrm]:
    crm = BuiltinCrm(pg_storage)
    try:
        yield crm
    finally:
        await crm.close()


async def pg_value(sql: str, *args: Any) -> Any:
    conn = await asyncpg.connect(PG_DSN)
    try:
        return await conn.fetchval(sql, *args)
    finally:
        await conn.close()


async def until(check: Callable[[], Awaitable[bool]], what: str, within: float = 10.0) -> None:
    deadline = time.monotonic() + within
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        await asyncio.sleep(0.02)


def lookup_pid(crm: BuiltinCrm) -> int | None:
    """The server process of the CRM's lookup connection (None while it has none)."""
    reader = crm._fast.reader
    assert isinstance(reader, PostgresReader)
    return reader.server_pid


def backend_gone(pid: int | None) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        return await pg_value("SELECT count(*) FROM pg_stat_activity WHERE pid = $1", pid) == 0

    return check


def waiting_for_a_lock(pid: int | None) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        sql = "SELECT wait_event_type FROM pg_stat_activity WHERE pid = $1"
        return await pg_value(sql, pid) == "Lock"

    return check


@asynccontextmanager
async def locked_phones(schema: str) -> AsyncIterator[None]:
    """The phone index locked by another connection: lookups wait until the block ends."""
    locker = await asyncpg.connect(PG_DSN, server_settings={"search_path": schema})
    try:
        async with locker.transaction():
            await locker.execute("LOCK TABLE crm_phones IN ACCESS EXCLUSIVE MODE")
            yield
    finally:
        await locker.close()


async def refs(crm: BuiltinCrm, number: str = E164) -> list[CrmRef]:
    return [record.ref for record in await crm.lookup_by_number(TENANT, number)]


async def test_a_lookup_sees_every_write_made_just_before(crm: BuiltinCrm) -> None:
    assert await refs(crm) == []  # the lookup connection is open from here on
    record = await crm.create_record(TENANT, "Contact", {"last_name": "Fresh", "phone": E164})
    assert await refs(crm) == [record.ref]
    await crm.update_record(TENANT, record.ref, {"phone": OTHER_E164})
    assert await refs(crm) == []
    assert await refs(crm, OTHER_E164) == [record.ref]
    await crm.delete_record(TENANT, record.ref)
    assert await refs(crm, OTHER_E164) == []


@postgres_only
async def test_a_write_on_a_plain_driver_connection_is_seen_at_once(
    pg_crm: BuiltinCrm, pg_schema: str
) -> None:
    record = await pg_crm.create_record(TENANT, "Lead", {"last_name": "Moved", "phone": E164})
    assert await refs(pg_crm) == [record.ref]
    pid = lookup_pid(pg_crm)
    writer = await asyncpg.connect(PG_DSN, server_settings={"search_path": pg_schema})
    try:
        await writer.execute("UPDATE crm_phones SET e164 = $1", OTHER_E164)
    finally:
        await writer.close()
    assert await refs(pg_crm) == []
    assert await refs(pg_crm, OTHER_E164) == [record.ref]
    assert lookup_pid(pg_crm) == pid  # the same connection: no transaction held between reads


@postgres_only
async def test_lookups_keep_one_connection_outside_the_pool(
    pg_crm: BuiltinCrm, pg_storage: SqlStorage
) -> None:
    assert lookup_pid(pg_crm) is None  # opened on the first lookup, not before
    await pg_crm.create_record(TENANT, "Contact", {"last_name": "Reused", "phone": E164})
    await refs(pg_crm)
    pid = lookup_pid(pg_crm)
    assert pid is not None
    for _ in range(20):
        assert len(await refs(pg_crm)) == 1
    assert lookup_pid(pg_crm) == pid
    assert pg_storage.engine.pool.checkedout() == 0  # type: ignore[attr-defined]


@postgres_only
async def test_concurrent_lookups_take_turns_on_the_connection(pg_crm: BuiltinCrm) -> None:
    numbers = [f"+44113496{n:04d}" for n in range(40)]
    rows = [
        {"id": f"c{n:02d}", "last_name": f"N{n}", "phone": e164} for n, e164 in enumerate(numbers)
    ]
    await pg_crm.upsert_many(TENANT, "Contact", rows)
    await refs(pg_crm)
    pid = lookup_pid(pg_crm)
    found = await asyncio.gather(*(refs(pg_crm, e164) for e164 in numbers * 3))
    assert found == [[CrmRef("Contact", f"c{n:02d}")] for n in range(40)] * 3
    assert lookup_pid(pg_crm) == pid


@postgres_only
async def test_a_connection_the_server_closed_while_idle_is_replaced(
    pg_crm: BuiltinCrm, caplog: pytest.LogCaptureFixture
) -> None:
    record = await pg_crm.create_record(TENANT, "Contact", {"last_name": "Idle", "phone": E164})
    assert await refs(pg_crm) == [record.ref]
    old = lookup_pid(pg_crm)
    assert await pg_value("SELECT pg_terminate_backend($1)", old)
    await until(backend_gone(old), "the terminated backend to exit")
    with caplog.at_level(logging.INFO, logger=LOGGER):
        assert await refs(pg_crm) == [record.ref]
    assert "server closed the lookup connection" in caplog.text
    assert lookup_pid(pg_crm) not in (None, old)


@postgres_only
async def test_a_lookup_right_after_the_server_drops_the_connection_answers(
    pg_crm: BuiltinCrm,
) -> None:
    record = await pg_crm.create_record(TENANT, "Contact", {"last_name": "Racy", "phone": E164})
    for _ in range(5):
        assert await refs(pg_crm) == [record.ref]
        assert await pg_value("SELECT pg_terminate_backend($1)", lookup_pid(pg_crm))
        assert await refs(pg_crm) == [record.ref]  # the backend may not have exited yet


@postgres_only
async def test_a_connection_lost_during_a_lookup_is_replaced_and_the_lookup_answers(
    pg_crm: BuiltinCrm, pg_schema: str, caplog: pytest.LogCaptureFixture
) -> None:
    record = await pg_crm.create_record(TENANT, "Contact", {"last_name": "Cut", "phone": E164})
    assert await refs(pg_crm) == [record.ref]
    old = lookup_pid(pg_crm)
    caplog.set_level(logging.INFO, logger=LOGGER)
    async with locked_phones(pg_schema):
        lookup = asyncio.create_task(refs(pg_crm))
        await until(waiting_for_a_lock(old), "the lookup to wait for the lock")
        assert await pg_value("SELECT pg_terminate_backend($1)", old)
        await until(backend_gone(old), "the terminated backend to exit")
    found = await asyncio.wait_for(lookup, 30)  # a guard against a hang, not a measure
    assert found == [record.ref]
    assert "lookup connection was lost" in caplog.text  # during the query, not before
    assert lookup_pid(pg_crm) not in (None, old)


@postgres_only
async def test_a_failing_query_keeps_the_connection(
    pg_crm: BuiltinCrm, pg_storage: SqlStorage
) -> None:
    await refs(pg_crm)
    pid = lookup_pid(pg_crm)
    await pg_execute_in(pg_storage, "DROP TABLE crm_phones")
    with pytest.raises(StorageError, match="UndefinedTable"):
        await refs(pg_crm)
    assert lookup_pid(pg_crm) == pid  # the query failed, not the connection: no reconnect


async def pg_execute_in(storage: SqlStorage, sql: str) -> None:
    async with storage.engine.begin() as conn:
        await conn.exec_driver_sql(sql)


@postgres_only
async def test_close_closes_the_connection_and_later_lookups_use_the_engine(
    pg_crm: BuiltinCrm,
) -> None:
    record = await pg_crm.create_record(TENANT, "Contact", {"last_name": "Shut", "phone": E164})
    await refs(pg_crm)
    pid = lookup_pid(pg_crm)
    await pg_crm.close()
    await until(backend_gone(pid), "the lookup connection to close")
    assert await refs(pg_crm) == [record.ref]
    assert lookup_pid(pg_crm) is None


async def test_lookups_after_close_still_answer(crm: BuiltinCrm) -> None:
    record = await crm.create_record(TENANT, "Contact", {"last_name": "After", "phone": E164})
    assert await refs(crm) == [record.ref]
    await crm.close()
    assert await refs(crm) == [record.ref]
    await crm.close()  # twice is fine


@postgres_only
async def test_a_cancelled_lookup_leaves_the_connection_usable(
    pg_crm: BuiltinCrm, pg_schema: str
) -> None:
    record = await pg_crm.create_record(TENANT, "Contact", {"last_name": "Gone", "phone": E164})
    assert await refs(pg_crm) == [record.ref]
    pid = lookup_pid(pg_crm)
    async with locked_phones(pg_schema):
        lookup = asyncio.create_task(refs(pg_crm))
        await until(waiting_for_a_lock(pid), "the lookup to wait for the lock")
        lookup.cancel()
        with pytest.raises(asyncio.CancelledError):
            await lookup
    assert await refs(pg_crm) == [record.ref]
    assert lookup_pid(pg_crm) == pid


@postgres_only
async def test_a_lookup_that_hangs_is_given_up_after_one_new_connection(
    pg_crm: BuiltinCrm, pg_schema: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    record = await pg_crm.create_record(TENANT, "Contact", {"last_name": "Slow", "phone": E164})
    assert await refs(pg_crm) == [record.ref]
    old = lookup_pid(pg_crm)
    monkeypatch.setattr(fast_lookup, "LOOKUP_TIMEOUT", 0.3)
    async with locked_phones(pg_schema):  # the server never answers while it is held
        with pytest.raises(StorageError, match="TimeoutError"):
            await refs(pg_crm)
        assert lookup_pid(pg_crm) is None  # both connections dropped
    assert await refs(pg_crm) == [record.ref]
    assert lookup_pid(pg_crm) not in (None, old)
