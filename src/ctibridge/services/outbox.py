"""At-least-once delivery of outbox items (CRM call logs) with backoff.

Items are written to the outbox in the same database as the calls, so nothing is lost when
the CRM is down or ctibridge restarts; the worker delivers what is due, marks it done, or
schedules the next attempt (jittered exponential backoff, capped; a ``retry_after`` from
the error is respected). Receivers are idempotent by the item key, so a repeat is harmless.

An item's ``last_error`` is the error's message and ``last_error_code`` the outside
service's own code for it, when it gave one (``details["error_code"]``, e.g. Salesforce's
``FIELD_CUSTOM_VALIDATION_EXCEPTION``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence

from ctibridge.errors import CtiError
from ctibridge.storage.base import OutboxItem, Storage
from ctibridge.tasks import stop

__all__ = ["Deliver", "OutboxWorker", "error_code", "next_delay"]

logger = logging.getLogger(__name__)

Deliver = Callable[[Sequence[OutboxItem]], Awaitable[Sequence[CtiError | None]]]
"""Deliver a batch of one topic; return, per item, None (delivered) or the error."""


def error_code(error: CtiError) -> str | None:
    """The outside service's own code for ``error`` (``details["error_code"]``), if any."""
    code = error.details.get("error_code")
    return code if isinstance(code, str) and code else None


def next_delay(
    attempts: int, *, base: float = 2.0, cap: float = 3600.0, rng: random.Random | None = None
) -> float:
    """Seconds before attempt ``attempts + 1``: 2, 4, 8… capped, with ±25 % jitter."""
    delay = min(cap, base * (2 ** max(0, attempts - 1)))
    draw = rng.random() if rng is not None else random.random()
    return float(delay * (0.75 + 0.5 * draw))


class OutboxWorker:
    def __init__(
        self,
        storage: Storage,
        handlers: Mapping[str, Deliver],
        *,
        batch: int = 25,
        interval: float = 1.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._storage = storage
        self._handlers = dict(handlers)
        self._batch = batch
        self._interval = interval
        self._clock = clock
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def kick(self) -> None:
        """Deliver now (new items were added)."""
        self._wake.set()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="outbox")

    async def stop(self) -> None:
        await stop(self._task)
        self._task = None

    async def _run(self) -> None:
        while True:
            try:
                while await self.run_once():
                    pass
            except CtiError as exc:
                logger.warning("outbox delivery round failed: %s", exc)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._interval):
                    await self._wake.wait()
            self._wake.clear()

    async def run_once(self) -> int:
        """Deliver one round of due items; returns how many were delivered."""
        due = await self._storage.outbox_due(self._clock(), self._batch)
        by_topic: dict[str, list[OutboxItem]] = {}
        for item in due:
            by_topic.setdefault(item.topic, []).append(item)
        delivered = 0
        for topic, items in by_topic.items():
            delivered += await self._deliver(topic, items)
        return delivered

    async def _deliver(self, topic: str, items: list[OutboxItem]) -> int:
        handler = self._handlers.get(topic)
        if handler is None:
            errors: Sequence[CtiError | None] = [
                CtiError(f"no handler for outbox topic {topic!r}") for _ in items
            ]
        else:
            try:
                errors = await handler(items)
            except CtiError as exc:
                errors = [exc for _ in items]
        delivered = 0
        now = self._clock()
        for item, error in zip(items, errors, strict=True):
            assert item.item_id is not None
            if error is None:
                await self._storage.outbox_done(item.item_id, now)
                delivered += 1
                continue
            wait = next_delay(item.attempts + 1)
            retry_after = error.details.get("retry_after")
            if isinstance(retry_after, int | float):
                wait = max(wait, float(retry_after))
            logger.warning(
                "delivery of %s failed (attempt %d), next in %.0f s: %s",
                item.key,
                item.attempts + 1,
                wait,
                error.message,
                extra={"topic": topic, "error_id": error.error_id, "details": error.details},
            )
            await self._storage.outbox_retry(
                item.item_id, error.message, now + wait, error_code=error_code(error)
            )
        return delivered

    async def deliver_now(self, item: OutboxItem) -> bool:
        """Deliver one item at once, due or not (an admin's "retry now"); True when it was
        delivered. A failure is recorded and the next attempt scheduled as in a round."""
        return await self._deliver(item.topic, [item]) == 1
