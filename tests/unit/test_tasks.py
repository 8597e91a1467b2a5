"""ctibridge.tasks.stop: tasks end, their failures surface, the caller's cancellation is kept."""

from __future__ import annotations

import asyncio

import pytest

from ctibridge.tasks import stop


async def slow_to_stop(cleaned: list[str]) -> None:
    """Runs until cancelled, then takes a while to clean up (as a reader closing a socket)."""
    try:
        await asyncio.Event().wait()
    finally:
        await asyncio.sleep(0.05)
        cleaned.append("done")


async def test_every_task_is_cancelled_and_awaited() -> None:
    cleaned: list[str] = []
    tasks = [asyncio.create_task(slow_to_stop(cleaned)) for _ in range(3)]
    await asyncio.sleep(0)
    await stop(tasks[0], None, *tasks[1:])
    assert all(task.done() for task in tasks) and cleaned == ["done"] * 3


async def test_nothing_to_stop() -> None:
    await stop()
    await stop(None)


async def test_a_task_that_failed_raises_its_error() -> None:
    async def broken() -> None:
        raise RuntimeError("reader bug")

    task = asyncio.create_task(broken())
    await asyncio.sleep(0)
    with pytest.raises(RuntimeError, match="reader bug"):
        await stop(task)


async def test_the_callers_own_cancellation_is_not_swallowed() -> None:
    """The reconnect-loop shape: a session stops its reader, and is itself cancelled while it
    waits. With ``suppress(CancelledError)`` around ``await reader`` the loop would carry on."""
    cleaned: list[str] = []
    sessions = 0

    async def reconnect_loop() -> None:
        nonlocal sessions
        while True:
            sessions += 1
            reader = asyncio.create_task(slow_to_stop(cleaned))
            await asyncio.sleep(0)
            await stop(reader)  # the session ended on its own: stop its reader

    loop_task = asyncio.create_task(reconnect_loop())
    await asyncio.sleep(0.01)  # inside the first stop(), waiting for the reader's clean-up
    loop_task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(loop_task, 1)
    assert sessions == 1 and loop_task.cancelled()
    await asyncio.sleep(0.06)
    assert cleaned == ["done"]
