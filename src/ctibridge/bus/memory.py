"""In-process bus: one asyncio queue per subscription."""

from __future__ import annotations

import asyncio
import fnmatch
import logging
from collections.abc import AsyncIterator

from ctibridge.bus.base import Message

__all__ = ["MemoryBus", "MemorySubscription"]

logger = logging.getLogger(__name__)

_CLOSED = object()


class MemorySubscription:
    def __init__(self, bus: MemoryBus, pattern: str) -> None:
        self.pattern = pattern
        self._queue: asyncio.Queue[object] = asyncio.Queue()
        self._bus = bus
        self._exact = not any(ch in pattern for ch in "*?[")

    def matches(self, name: str) -> bool:
        return name == self.pattern if self._exact else fnmatch.fnmatchcase(name, self.pattern)

    def deliver(self, message: Message) -> None:
        self._queue.put_nowait(message)

    def __aiter__(self) -> AsyncIterator[Message]:
        return self

    async def __anext__(self) -> Message:
        item = await self._queue.get()
        if item is _CLOSED:
            raise StopAsyncIteration
        assert isinstance(item, Message)
        return item

    def pending(self) -> int:
        return self._queue.qsize()

    def close(self) -> None:
        self._bus.unsubscribe(self)
        self._queue.put_nowait(_CLOSED)


class MemoryBus:
    """Delivery is synchronous into each subscriber's queue, so order is publish order."""

    def __init__(self) -> None:
        self._subs: list[MemorySubscription] = []
        self._closed = False

    async def publish(self, message: Message) -> None:
        self.publish_nowait(message)

    def publish_nowait(self, message: Message) -> None:
        if self._closed:
            logger.debug("bus closed; dropped %s", message.name)
            return
        for sub in self._subs:
            if sub.matches(message.name):
                sub.deliver(message)

    def subscribe(self, pattern: str) -> MemorySubscription:
        sub = MemorySubscription(self, pattern)
        self._subs.append(sub)
        return sub

    def unsubscribe(self, sub: MemorySubscription) -> None:
        if sub in self._subs:
            self._subs.remove(sub)

    async def close(self) -> None:
        self._closed = True
        for sub in list(self._subs):
            sub.close()
