"""What every PBX connector shares: the event sink, the bounded event queue between a
session's reader and its pump, backoff and the retry decision."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import random
from collections.abc import Awaitable, Callable, Iterator, Sequence
from typing import Any, Final, Generic, Protocol, TypeVar

import httpx
import websockets.exceptions

from ctibridge.callstate.events import ChannelEvent
from ctibridge.errors import PbxAuthError, PbxUnavailable, ProtocolError

__all__ = [
    "BATCH",
    "EventQueue",
    "EventSink",
    "QueueStats",
    "Reconnector",
    "backoff",
    "close_writer",
    "is_retryable",
]

logger = logging.getLogger(__name__)

BATCH: Final = 500
"""The most events a connector hands the sink in one ``events()`` call."""


class EventSink(Protocol):
    """Where a connector hands what it reads (the calls service, or the bus in ingest mode)."""

    async def events(self, events: Sequence[ChannelEvent]) -> None:
        """Channel events in the order the PBX sent them."""

    async def resync(self, tenant_id: str, live: Sequence[ChannelEvent], at: float) -> None:
        """After a (re)connect: exactly the legs of ``tenant_id`` alive at ``at`` (SNAPSHOTs).

        Legs the sink knows that are not in ``live`` ended while we were away."""


def backoff(
    initial: float, maximum: float, factor: float = 1.6, *, rng: random.Random | None = None
) -> Iterator[float]:
    """Endless reconnect delays with full jitter: uniform in [0, min(maximum, initial·factorⁿ)]."""
    if initial <= 0 or maximum < initial or factor < 1:
        raise ValueError("backoff needs 0 < initial <= maximum and factor >= 1")
    draw = rng or random.Random()
    ceiling = initial
    while True:
        yield draw.uniform(0, ceiling)
        ceiling = min(maximum, ceiling * factor)


def is_retryable(exc: BaseException) -> bool:
    """Network trouble and broken streams retry; refused credentials and bugs do not."""
    if isinstance(exc, PbxAuthError):
        return False
    return isinstance(
        exc,
        PbxUnavailable
        | ProtocolError
        | OSError
        | EOFError
        | httpx.TransportError
        | websockets.exceptions.WebSocketException,
    )


class Reconnector:
    """The connect loop's waiting: one INFO line per retry, then a jittered delay.

    ``connected()`` after a successful login restarts the delays from ``initial``.
    """

    def __init__(
        self,
        name: str,
        *,
        initial: float,
        maximum: float,
        rng: random.Random | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._name = name
        self._initial = initial
        self._maximum = maximum
        self._rng = rng
        self._sleep = sleep
        self._delays = backoff(initial, maximum, rng=rng)
        self.retries = 0
        self.last_error: str | None = None

    def connected(self) -> None:
        self._delays = backoff(self._initial, self._maximum, rng=self._rng)

    async def wait(self, exc: BaseException) -> None:
        """Sleep before the next attempt; re-raise ``exc`` when it is not retryable."""
        self.last_error = f"{type(exc).__name__}: {exc}"
        if not is_retryable(exc):
            raise exc
        delay = next(self._delays)
        self.retries += 1
        logger.info("%s: %s; reconnecting in %.2fs", self._name, self.last_error, delay)
        await self._sleep(delay)


_T = TypeVar("_T")


class EventQueue(Generic[_T]):
    """A session's events on their way from its reader to its pump: in order, bounded,
    never dropped.

    ``put`` waits while ``maxsize`` events are queued. A reader that awaits it stops reading
    its socket, so the kernel's receive buffer fills and TCP pushes back on the PBX: a sink
    that falls behind slows the PBX down instead of growing our memory. ``fail`` never
    waits: the reason is kept beside the events, not among them, and ``next_batch`` raises
    it once every event queued before it has been handed on.
    """

    def __init__(self, maxsize: int) -> None:
        if maxsize < 1:
            raise ValueError("an event queue holds at least one event")
        self.maxsize = maxsize
        self._items: collections.deque[_T] = collections.deque()
        self._failure: BaseException | None = None
        self._readable = asyncio.Event()
        self._writable = asyncio.Event()
        self._writable.set()
        self.peak = 0
        """The most events queued at once (never more than ``maxsize``)."""
        self.stalls = 0
        """How many times ``put`` had to wait for room (the reader was held back)."""

    def __len__(self) -> int:
        return len(self._items)

    @property
    def failure(self) -> BaseException | None:
        return self._failure

    @property
    def holding(self) -> bool:
        """The reader is waiting for room now."""
        return not self._writable.is_set()

    def held_back(self, exc: BaseException, stalls: int) -> bool:
        """Whether a request that failed with ``exc`` may have failed only because this
        queue held the reader back: the session is up, the request timed out
        (PbxUnavailable), and the reader has waited for room since ``stalls`` was read, or
        waits now. Its reply may be queued behind events we have not read yet."""
        if self._failure is not None or not isinstance(exc, PbxUnavailable):
            return False
        return self.holding or self.stalls != stalls

    async def put(self, item: _T) -> None:
        """Queue ``item``, once there is room. After ``fail`` it is dropped at once: the
        session is over and nobody will take it."""
        if len(self._items) >= self.maxsize and self._failure is None:
            self.stalls += 1
            while len(self._items) >= self.maxsize and self._failure is None:
                self._writable.clear()
                await self._writable.wait()
        if self._failure is not None:
            return
        self._items.append(item)
        self.peak = max(self.peak, len(self._items))
        self._readable.set()

    def fail(self, reason: BaseException) -> None:
        """End the session: ``next_batch`` raises ``reason`` after the events queued so far
        (the first reason wins). Never waits, however full the queue is, and frees a
        reader waiting for room."""
        if self._failure is None:
            self._failure = reason
        self._readable.set()
        self._writable.set()

    async def next_batch(self, limit: int = BATCH) -> list[_T]:
        """The next events in order: waits for one, then takes what is already queued (up
        to ``limit``). With nothing queued, a failure is raised."""
        while not self._items:
            if self._failure is not None:
                raise self._failure
            self._readable.clear()
            await self._readable.wait()
        batch = [self._items.popleft() for _ in range(min(limit, len(self._items)))]
        self._writable.set()
        return batch


class QueueStats:
    """A connector's event queues over all its sessions, for ``status()``."""

    def __init__(self) -> None:
        self._peak = 0
        self._pauses = 0

    def session_ended(self, queue: EventQueue[Any]) -> None:
        self._peak = max(self._peak, queue.peak)
        self._pauses += queue.stalls

    def status(self, queue: EventQueue[Any] | None) -> dict[str, int]:
        """``events_queued`` now, ``queue_peak`` (the most at once) and ``reader_pauses``
        (how often the sink was so far behind that reading the PBX paused)."""
        if queue is None:
            return {"events_queued": 0, "queue_peak": self._peak, "reader_pauses": self._pauses}
        return {
            "events_queued": len(queue),
            "queue_peak": max(self._peak, queue.peak),
            "reader_pauses": self._pauses + queue.stalls,
        }


async def close_writer(writer: asyncio.StreamWriter, within: float) -> None:
    """Close a TCP session without waiting longer than ``within`` seconds for the peer."""
    writer.close()
    with contextlib.suppress(OSError, TimeoutError):
        async with asyncio.timeout(within):
            await writer.wait_closed()
