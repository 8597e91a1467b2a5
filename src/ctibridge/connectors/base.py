"""What every PBX connector shares: the event sink, backoff and the retry decision."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Awaitable, Callable, Iterator, Sequence
from typing import Protocol, TypeVar

import httpx
import websockets.exceptions

from ctibridge.callstate.events import ChannelEvent
from ctibridge.errors import PbxAuthError, PbxUnavailable, ProtocolError

__all__ = ["EventSink", "Reconnector", "backoff", "close_writer", "is_retryable", "next_batch"]

logger = logging.getLogger(__name__)


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


async def next_batch(queue: asyncio.Queue[_T | BaseException], limit: int) -> list[_T]:
    """The next items of a session's queue, in order: waits for one, then takes what is
    already there (up to ``limit``). A queued exception ends the session: it is raised once
    the items before it have been delivered."""
    batch: list[_T] = []
    item = await queue.get()
    while True:
        if isinstance(item, BaseException):
            if batch:  # deliver what came before the failure first
                queue.put_nowait(item)
                return batch
            raise item
        batch.append(item)
        if queue.empty() or len(batch) >= limit:
            return batch
        item = queue.get_nowait()


async def close_writer(writer: asyncio.StreamWriter, within: float) -> None:
    """Close a TCP session without waiting longer than ``within`` seconds for the peer."""
    writer.close()
    with contextlib.suppress(OSError, TimeoutError):
        await asyncio.wait_for(writer.wait_closed(), within)
