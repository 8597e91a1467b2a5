"""Recordings of call legs that ended while ctibridge was away from the phone system.

After a reconnect the normaliser ends every leg the channel listing no longer shows, with
the hang-up cause ``GONE_DURING_RESYNC`` (``Normaliser.reconcile``). Their DESTROY was never
seen, so neither were the recordings it named. For a phone system that can list the
recordings of a leg (Kazoo: ``GET .../recordings?filter_call_id=<leg>``, reference §1.5) we
ask for each such leg, a few times (Kazoo may still be storing a recording when we come
back), and attach what we find as a late DESTROY of that leg that carries the recordings.
The normaliser adds them to the ended call (an ``updated`` change), which stores the call,
pushes its card and queues the fetch, as for any DESTROY that names recordings.

Asterisk and FreeSWITCH have nothing to ask: ``CoreShowChannels`` and ``show channels``
list live channels only, and a file a MixMonitor or ``record_session`` wrote names no call
we could look it up by. Recordings named by legs that ended while we watched are on the
call and fetched as usual; for the legs that ended while we were away we log it and move on.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Final, Protocol, runtime_checkable

from ctibridge.callstate.events import ChannelEvent, LegEventKind, Recording
from ctibridge.callstate.model import Call, Leg
from ctibridge.callstate.normaliser import RESYNC_CAUSE
from ctibridge.errors import CtiError

__all__ = ["FIND_DELAYS", "AwayRecordings", "ChannelEventSink", "RecordingFinder"]

logger = logging.getLogger(__name__)

FIND_DELAYS: Final = (0.0, 10.0, 60.0)
"""When to ask for a leg's recordings, in seconds after the call ended (each wait follows the
previous one): at once, then twice more for a recording the PBX was still storing."""
_AT_ONCE: Final = 4
"""Leg look-ups under way at once (a reconnect after a long outage can end many calls)."""


@runtime_checkable
class RecordingFinder(Protocol):
    """A fetcher that can list what one leg recorded (KazooFetcher)."""

    async def recordings_of(self, tenant_id: str, call_id: str) -> list[Recording]: ...


@runtime_checkable
class ChannelEventSink(Protocol):
    """Where channel events are folded into calls (the calls service)."""

    async def events(self, events: Sequence[ChannelEvent]) -> None: ...


class AwayRecordings:
    """Looks for the recordings of legs closed by a resync and attaches them to their call."""

    def __init__(
        self,
        *,
        fetchers: Mapping[str, object],
        sink: ChannelEventSink | None,
        queue: Callable[[Call, Sequence[Recording]], Awaitable[Any]],
        delays: Sequence[float] = FIND_DELAYS,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._fetchers = fetchers
        self._sink = sink
        self._queue = queue
        """Without a sink: queue a call's recordings for fetching (they are fetched and
        served, but the call record does not show them)."""
        self._delays = tuple(delays)
        self._sleep = sleep
        self._limit = asyncio.Semaphore(_AT_ONCE)
        self._tasks: set[asyncio.Task[list[Recording]]] = set()

    def call_ended(self, call: Call) -> None:
        """Listener step for an ended call: look for its legs' recordings in a task, when
        some of its legs ended while we were away."""
        if not _away_legs(call):
            return
        task = asyncio.create_task(self.find(call), name=f"recordings-of-{call.call_id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def find(self, call: Call) -> list[Recording]:
        """Ask for the recordings of ``call``'s legs that ended while we were away, at each
        of the delays until every leg named one; attach the new ones. Returns them."""
        legs = {leg.leg_id: leg for leg in _away_legs(call)}
        fetcher = self._fetchers.get(call.pbx)
        if not legs or fetcher is None:  # no fetcher: recordings of this PBX are not wanted
            return []
        if not isinstance(fetcher, RecordingFinder):
            logger.info(
                "call %s ended while ctibridge was away from %s: the recordings of leg(s) %s "
                "cannot be learned from it (its channel listing names none); recordings "
                "named earlier on the call are fetched as usual",
                call.call_id, call.pbx, ", ".join(sorted(legs)),
            )  # fmt: skip
            return []
        known = {r.ref for r in call.recordings}
        found: list[Recording] = []
        for delay in self._delays:
            await self._sleep(delay)
            for leg_id in list(legs):
                listed = await self._ask(fetcher, call, leg_id)
                if listed:
                    new = [r for r in listed if r.ref not in known]
                    known.update(r.ref for r in new)
                    found += await self._attach(call, legs.pop(leg_id), new)
            if not legs:
                break
        if not found:
            logger.info(
                "call %s: no recording found on %s for leg(s) that ended while ctibridge was away",
                call.call_id, call.pbx,
            )  # fmt: skip
        return found

    async def _ask(self, finder: RecordingFinder, call: Call, leg_id: str) -> list[Recording]:
        try:
            async with self._limit:
                return await finder.recordings_of(call.tenant_id, leg_id)
        except CtiError as exc:
            logger.info(
                "call %s: could not list the recordings of leg %s on %s: %s",
                call.call_id, leg_id, call.pbx, exc.message,
            )  # fmt: skip
            return []

    async def _attach(self, call: Call, leg: Leg, new: list[Recording]) -> list[Recording]:
        if not new:
            return []
        logger.info(
            "call %s: leg %s ended while ctibridge was away; %s lists its recording(s) %s",
            call.call_id, leg.leg_id, call.pbx, ", ".join(r.ref for r in new),
        )  # fmt: skip
        if self._sink is None:
            await self._queue(call, new)
            return new
        late_destroy = ChannelEvent(
            kind=LegEventKind.DESTROYED,
            tenant_id=call.tenant_id,
            leg_id=leg.leg_id,
            at=leg.ended_at if leg.ended_at is not None else call.ended_at or call.started_at,
            pbx=call.pbx,
            event_id="ctibridge-found-recordings:" + ",".join(sorted(r.ref for r in new)),
            hangup_cause=leg.hangup_cause,
            recordings=tuple(new),
        )
        await self._sink.events([late_destroy])
        return new


def _away_legs(call: Call) -> list[Leg]:
    return [leg for leg in call.legs if leg.hangup_cause == RESYNC_CAUSE]
