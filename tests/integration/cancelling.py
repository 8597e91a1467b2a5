"""The connectors' cancellation test: run() ends whenever it is cancelled."""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

__all__ = ["assert_ends_whenever_cancelled"]


async def assert_ends_whenever_cancelled(
    run: Callable[[], Coroutine[Any, Any, None]],
    churn: Callable[[], Awaitable[None]],
    *,
    rounds: int = 60,
    seed: int = 7,
) -> None:
    """Start ``run()`` ``rounds`` times and cancel it after a random moment, while ``churn()``
    (send a few events, cut the session) repeats every few ms: cancellations land in
    connecting, login, resync, pumping, stopping a session's tasks and waiting to reconnect.
    Every time the task must end as cancelled, within two seconds."""
    rng = random.Random(seed)

    async def churning() -> None:
        while True:
            await asyncio.sleep(rng.uniform(0.002, 0.02))
            await churn()

    churner = asyncio.create_task(churning())
    try:
        for _ in range(rounds):
            task = asyncio.create_task(run())
            await asyncio.sleep(rng.uniform(0, 0.03))
            task.cancel()
            done, _ = await asyncio.wait([task], timeout=2)
            assert done, "run() went on after it was cancelled"
            assert task.cancelled()
    finally:
        churner.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await churner
