from __future__ import annotations

import asyncio

from ctibridge.bus.base import Message
from ctibridge.bus.memory import MemoryBus


async def test_subscribers_get_matching_messages_in_publish_order() -> None:
    bus = MemoryBus()
    calls = bus.subscribe("call.*")
    ended = bus.subscribe("call.ended")
    for name in ("call.created", "agent.status", "call.ended"):
        await bus.publish(Message(name, "t1", {"n": name}))
    got = [await asyncio.wait_for(calls.__anext__(), 1) for _ in range(2)]
    assert [m.name for m in got] == ["call.created", "call.ended"]
    assert (await asyncio.wait_for(ended.__anext__(), 1)).name == "call.ended"
    await bus.close()
    assert [m async for m in calls] == []
