"""Stopping background tasks without swallowing the stopper's own cancellation.

``task.cancel()`` then ``with suppress(CancelledError): await task`` is the usual idiom, and
it has a flaw: if the task running it is cancelled while it waits, that CancelledError is
suppressed too, and the caller goes on as if nobody had asked it to stop. A connector's
reconnect loop that stops its reader that way can outlive its own cancellation and never
end. ``stop`` waits with ``asyncio.wait``, which never raises the tasks' CancelledError,
so only a cancellation of the caller itself comes out of it.
"""

from __future__ import annotations

import asyncio
from typing import Any

__all__ = ["stop"]


async def stop(*tasks: asyncio.Future[Any] | None) -> None:
    """Cancel ``tasks`` (``None`` entries are ignored) and wait until every one has ended.
    Raises the first exception one of them ended with other than its cancellation, and
    CancelledError if the caller itself is cancelled meanwhile."""
    live = [task for task in tasks if task is not None]
    if not live:
        return
    for task in live:
        task.cancel()
    await asyncio.wait(live)
    for task in live:
        failure = None if task.cancelled() else task.exception()
        if failure is not None:
            raise failure
