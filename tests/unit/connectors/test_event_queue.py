"""The bounded queue between a connector session's reader and its pump."""

from __future__ import annotations

import asyncio

import pytest

from ctibridge.connectors.base import EventQueue
from ctibridge.errors import PbxAuthError, PbxUnavailable


async def test_put_waits_for_room_and_order_is_kept() -> None:
    queue: EventQueue[int] = EventQueue(3)
    for n in range(3):
        await queue.put(n)
    blocked = asyncio.create_task(queue.put(3))
    await asyncio.sleep(0)
    assert not blocked.done() and queue.holding and len(queue) == 3
    assert await queue.next_batch(2) == [0, 1]
    await blocked
    assert not queue.holding
    assert await queue.next_batch() == [2, 3]
    assert (queue.peak, queue.stalls) == (3, 1)


async def test_the_reason_goes_in_whatever_the_queue_holds_and_comes_out_last() -> None:
    queue: EventQueue[int] = EventQueue(2)
    await queue.put(1)
    await queue.put(2)
    reason = PbxUnavailable("gone")
    queue.fail(reason)  # does not wait, although the queue is full
    queue.fail(PbxUnavailable("a later reason"))  # the first one wins
    assert len(queue) == 2
    assert await queue.next_batch() == [1, 2]
    with pytest.raises(PbxUnavailable) as raised:
        await queue.next_batch()
    assert raised.value is reason


async def test_a_reader_waiting_for_room_is_freed_by_a_failure() -> None:
    queue: EventQueue[int] = EventQueue(1)
    await queue.put(1)
    blocked = asyncio.create_task(queue.put(2))
    await asyncio.sleep(0)
    queue.fail(PbxUnavailable("gone"))
    await asyncio.wait_for(blocked, 1)
    await queue.put(3)  # the session is over: dropped, not queued
    assert await queue.next_batch() == [1]
    with pytest.raises(PbxUnavailable):
        await queue.next_batch()


async def test_next_batch_waits_for_an_event_or_a_failure() -> None:
    queue: EventQueue[str] = EventQueue(10)
    waiting = asyncio.create_task(queue.next_batch())
    await asyncio.sleep(0)
    assert not waiting.done()
    await queue.put("a")
    assert await waiting == ["a"]
    waiting = asyncio.create_task(queue.next_batch())
    await asyncio.sleep(0)
    queue.fail(PbxUnavailable("gone"))
    with pytest.raises(PbxUnavailable):
        await waiting


async def test_held_back_excuses_only_timeouts_while_the_reader_is_held() -> None:
    queue: EventQueue[int] = EventQueue(1)
    timeout = PbxUnavailable("no reply")
    stalls = queue.stalls
    assert not queue.held_back(timeout, stalls)
    await queue.put(1)
    blocked = asyncio.create_task(queue.put(2))
    await asyncio.sleep(0)
    assert queue.held_back(timeout, stalls)  # held now
    assert not queue.held_back(PbxAuthError("refused"), stalls)
    await queue.next_batch()
    await blocked
    assert queue.held_back(timeout, stalls)  # was held since the request went out
    assert not queue.held_back(timeout, queue.stalls)
    queue.fail(timeout)
    assert not queue.held_back(timeout, stalls)  # the session is over


def test_a_queue_holds_at_least_one_event() -> None:
    with pytest.raises(ValueError):
        EventQueue(0)
