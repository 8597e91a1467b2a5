"""Write-behind of call changes: chunked transactions; nothing lost when the database fails."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from ctibridge.callstate.model import Call, CallState, Direction
from ctibridge.errors import StorageError
from ctibridge.services.writer import CallWriter
from ctibridge.storage import SqlStorage
from ctibridge.storage.base import CallQuery, CallWrite, StoredCall
from ctibridge.types import TenantId


@pytest.fixture
async def storage(tmp_path: Path) -> AsyncIterator[SqlStorage]:
    store = SqlStorage(f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}")
    await store.start()
    yield store
    await store.close()


def _call(n: int, seq: int = 1) -> StoredCall:
    return StoredCall(
        Call(
            f"c{n:03d}", "t1", CallState.RINGING, Direction.INBOUND, started_at=1000.0 + n, seq=seq
        )
    )


async def _stored(storage: SqlStorage) -> dict[str, int]:
    page = await storage.list_calls(CallQuery(TenantId("t1"), limit=500))
    return {s.call.call_id: s.call.seq for s in page.items}


async def test_a_flush_writes_in_chunks(
    storage: SqlStorage, monkeypatch: pytest.MonkeyPatch
) -> None:
    sizes: list[int] = []
    real = storage.save_calls

    async def counting(writes: Sequence[CallWrite], *, received_at: float) -> None:
        sizes.append(len(writes))
        await real(writes, received_at=received_at)

    monkeypatch.setattr(storage, "save_calls", counting)
    writer = CallWriter(storage, chunk=10)
    for n in range(25):
        writer.add(_call(n))
    assert await writer.flush()
    assert sizes == [10, 10, 5]
    assert len(await _stored(storage)) == 25 and writer.pending == 0


async def test_what_failed_to_write_stays_pending_and_newer_changes_win(
    storage: SqlStorage, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = storage.save_calls
    calls = 0

    async def second_chunk_fails(writes: Sequence[CallWrite], *, received_at: float) -> Any:
        nonlocal calls
        calls += 1
        if calls == 2:
            raise StorageError("database is locked")
        await real(writes, received_at=received_at)

    monkeypatch.setattr(storage, "save_calls", second_chunk_fails)
    writer = CallWriter(storage, chunk=10)
    for n in range(25):
        writer.add(_call(n))
    assert not await writer.flush()
    assert writer.pending == 15  # the failed chunk and the one after it
    writer.add(_call(24, seq=2))  # a newer change of a pending call meanwhile
    assert await writer.flush()
    stored = await _stored(storage)
    assert len(stored) == 25 and stored["c024"] == 2


async def test_a_read_waits_for_what_was_added_before_it_not_after(storage: SqlStorage) -> None:
    writer = CallWriter(storage, flush_interval=0.05)
    writer.start()
    try:
        assert await writer.caught_up(0.01)  # nothing added: at once
        writer.add(_call(1))
        waiting = asyncio.create_task(writer.caught_up(5))
        await asyncio.sleep(0)
        assert await _stored(storage) == {} and not waiting.done()
        assert await waiting
        assert await _stored(storage) == {"c001": 1}  # written before the read goes on
    finally:
        await writer.stop()


async def test_a_read_gives_up_waiting_while_the_database_fails(
    storage: SqlStorage, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def down(writes: Sequence[CallWrite], *, received_at: float) -> Any:
        raise StorageError("database is locked")

    monkeypatch.setattr(storage, "save_calls", down)
    writer = CallWriter(storage, flush_interval=0.01)
    writer.start()
    writer.add(_call(1))
    assert not await writer.caught_up(0.3)
    assert writer.pending == 1  # kept for the next try
    monkeypatch.undo()
    assert await writer.caught_up(5)
    await writer.stop()
