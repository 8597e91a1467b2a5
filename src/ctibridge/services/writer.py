"""Write-behind for call changes: the push never waits for the database.

Changes are coalesced per call and written in one transaction per batch every
``flush_interval`` seconds. When the database is down the batch is kept (nothing is lost)
and retried with backoff; ``pending`` tells how much is waiting.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence

from ctibridge.callstate.events import ChannelEvent
from ctibridge.errors import StorageError
from ctibridge.observability import STORAGE_FLUSH, STORAGE_PENDING
from ctibridge.storage.base import CallWrite, Storage, StoredCall
from ctibridge.types import CallId

__all__ = ["CallWriter"]

logger = logging.getLogger(__name__)


class _Pending:
    __slots__ = ("events", "replaces", "stored")

    def __init__(self, stored: StoredCall) -> None:
        self.stored = stored
        self.events: list[ChannelEvent] = []
        self.replaces: set[CallId] = set()


class CallWriter:
    def __init__(
        self,
        storage: Storage,
        *,
        flush_interval: float = 0.02,
        chunk: int = 25,
        retry_max: float = 10.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._storage = storage
        self._interval = flush_interval
        self._chunk = max(1, chunk)
        self._retry_max = retry_max
        self._clock = clock
        self._pending: dict[str, _Pending] = {}
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._added = 0
        """Changes added so far (a counter)."""
        self._written = 0
        """The value of ``_added`` that the last fully written batch covered."""
        self._progress = asyncio.Event()

    @property
    def pending(self) -> int:
        return len(self._pending)

    def add(
        self,
        stored: StoredCall,
        events: Sequence[ChannelEvent] = (),
        replaces: Sequence[str] = (),
    ) -> None:
        call_id = stored.call.call_id
        item = self._pending.get(call_id)
        if item is None:
            item = self._pending[call_id] = _Pending(stored)
        elif stored.call.seq >= item.stored.call.seq:
            item.stored = stored
        item.events.extend(events)
        for old in replaces:
            item.replaces.add(CallId(old))
            merged = self._pending.pop(old, None)
            if merged is not None:
                item.events[:0] = merged.events
        self._added += 1
        self._idle.clear()
        self._wake.set()
        STORAGE_PENDING.set(len(self._pending))

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="call-writer")

    async def stop(self) -> None:
        self._stopping = True
        self._wake.set()
        if self._task is not None:
            await self._task
            self._task = None

    async def drained(self) -> None:
        """Wait until everything added so far is written."""
        await self._idle.wait()

    async def caught_up(self, within: float) -> bool:
        """Wait until every change added before this call is written (changes added later
        do not hold it up), at most ``within`` seconds; whether it was. A read of the
        database after it sees what was pushed before it: an agent who reloads right after
        a call ends finds it in the history."""
        target = self._added
        try:
            async with asyncio.timeout(within):
                while self._written < target:
                    await self._progress.wait()
        except TimeoutError:
            return False
        return True

    async def _run(self) -> None:
        delay = 0.0
        while True:
            await self._wake.wait()
            self._wake.clear()
            if delay:
                await asyncio.sleep(delay)
            elif self._interval and not self._stopping:
                await asyncio.sleep(self._interval)
            ok = await self.flush()
            if ok:
                delay = 0.0
            else:
                delay = min(self._retry_max, max(0.2, delay * 2))
                self._wake.set()
            if self._stopping and (ok or not self._pending):
                return
            if not self._pending:
                self._idle.set()

    async def flush(self) -> bool:
        """Write what is pending, ``chunk`` calls per transaction.

        Building the rows is CPU work on the event loop; small transactions, with the loop
        free to push call cards between them, keep that work from stalling the pushes."""
        if not self._pending:
            return True
        batch, self._pending = self._pending, {}
        covers = self._added
        items = list(batch.items())
        for start in range(0, len(items), self._chunk):
            part = items[start : start + self._chunk]
            if not await self._write(part):
                self._restore(items[start:])
                return False
            await asyncio.sleep(0)  # let the pushes waiting behind this chunk go first
        STORAGE_PENDING.set(len(self._pending))
        self._written = max(self._written, covers)
        self._progress.set()  # wakes the readers waiting in caught_up(), then a new one
        self._progress = asyncio.Event()
        return True

    async def _write(self, part: list[tuple[str, _Pending]]) -> bool:
        writes = [
            CallWrite(p.stored, events=p.events, replaces=tuple(sorted(p.replaces)))
            for _, p in part
        ]
        started = time.perf_counter()
        try:
            await self._storage.save_calls(writes, received_at=self._clock())
        except StorageError as exc:
            logger.warning("storing %d call(s) failed, will retry: %s", len(writes), exc)
            return False
        STORAGE_FLUSH.observe(time.perf_counter() - started)
        return True

    def _restore(self, items: list[tuple[str, _Pending]]) -> None:
        """Unwritten changes go back in front of anything newer for the same calls."""
        for call_id, item in items:
            newer = self._pending.get(call_id)
            if newer is None:
                self._pending[call_id] = item
            else:
                newer.events[:0] = item.events
                newer.replaces |= item.replaces
        STORAGE_PENDING.set(len(self._pending))
