"""A sink that falls behind, for the connectors' backpressure tests."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence

from ctibridge.callstate.events import ChannelEvent

__all__ = ["SlowSink", "assert_held_back"]


class SlowSink:
    """Takes each batch only once ``gate`` is open (it is, unless a test closes it), then
    ``delay`` seconds later; notes how many events the connector had queued at each batch
    (``probe``)."""

    def __init__(self, delay: float = 0.002) -> None:
        self.delay = delay
        self.gate = asyncio.Event()
        self.gate.set()
        self.probe: Callable[[], int] | None = None
        self.queued: list[int] = []
        self.received: list[ChannelEvent] = []
        self.resyncs: list[tuple[str, list[ChannelEvent], float]] = []

    async def events(self, events: Sequence[ChannelEvent]) -> None:
        if self.probe is not None:
            self.queued.append(self.probe())
        await self.gate.wait()
        await asyncio.sleep(self.delay)
        self.received.extend(events)

    async def resync(self, tenant_id: str, live: Sequence[ChannelEvent], at: float) -> None:
        self.resyncs.append((tenant_id, list(live), at))

    def leg_ids(self) -> list[str]:
        return [event.leg_id for event in self.received]


def assert_held_back(
    sink: SlowSink, legs: Sequence[str], status: dict[str, object], bound: int
) -> None:
    """Every event arrived, in order; the queue never held more than ``bound``; the reader
    paused (the socket was held back) rather than the session being cut."""
    assert sink.leg_ids() == list(legs)
    assert max(sink.queued) <= bound
    assert status["queue_peak"] == bound
    assert isinstance(status["reader_pauses"], int) and status["reader_pauses"] >= 1
    assert status["reconnects"] == 0
