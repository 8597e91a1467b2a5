"""Calls: channel events in (from any connector), call changes out to storage and the bus."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from ctibridge.bus.base import Bus
from ctibridge.callstate.events import ChannelEvent
from ctibridge.callstate.model import Call, CallChanged, CallEventName, CallState
from ctibridge.callstate.normaliser import Normaliser
from ctibridge.errors import NoSuchCall
from ctibridge.observability import ACTIVE_CALLS, CALLS, CHANNEL_EVENTS
from ctibridge.services.directory import AgentDirectory
from ctibridge.services.notifier import CallNotifier
from ctibridge.services.writer import CallWriter
from ctibridge.storage.base import CallPage, CallQuery, Storage, StoredCall
from ctibridge.types import AgentId, CallId, TenantId

__all__ = ["CallsService"]

logger = logging.getLogger(__name__)

Listener = Callable[[CallChanged, StoredCall], None]

READ_WAIT = 2.0
"""Seconds a read of stored calls waits for the changes pushed before it to be written (a
database that is down answers with its own error after that)."""


class CallsService:
    """Implements the connectors' ``EventSink``: ``events()`` and ``resync()``."""

    def __init__(
        self,
        *,
        storage: Storage,
        bus: Bus,
        directory: AgentDirectory,
        writer: CallWriter,
        internal_digits: int = 5,
        listeners: Sequence[Listener] = (),
    ) -> None:
        self._storage = storage
        self._directory = directory
        self._writer = writer
        self.notifier = CallNotifier(bus)
        self._normaliser = Normaliser(internal_digits=internal_digits)
        self._active: dict[str, StoredCall] = {}
        self._listeners = list(listeners)
        self._counted: dict[str, Any] = {}
        """pbx -> its channel-event counter (``labels()`` is too slow for every event)."""

    def listen(self, listener: Listener) -> None:
        """Call ``listener(change, stored)`` after each change is published (it must not block:
        schedule work in a task)."""
        self._listeners.append(listener)

    # -- EventSink ----------------------------------------------------------------------

    async def events(self, events: Sequence[ChannelEvent]) -> None:
        await self._publish(self.ingest(events))

    async def resync(self, tenant_id: str, live: Sequence[ChannelEvent], at: float) -> None:
        """``Normaliser.reconcile``, with the events it applies (the listing, and a hang-up
        for each leg that went away) logged like channel events: a restart replays them too,
        so the calls it rebuilds are the calls stored (same states, same seq)."""
        gone = self._normaliser.vanished(tenant_id, live, at)
        items = self._fold([*gone, *live])
        logger.info(
            "resync of %s: %d live leg(s), %d gone, %d call change(s)",
            tenant_id,
            len(live),
            len(gone),
            len(items),
        )
        await self._publish(items)

    # -- restart ----------------------------------------------------------------------------

    def restore(self, events: Iterable[ChannelEvent]) -> int:
        """Fold in the saved events of the calls in progress before a restart, so the first
        resync can end the legs that went away meanwhile. Nothing is stored, published or
        counted again: the changes these events cause were stored when they first came in.
        Returns the number of calls in progress afterwards."""
        norm = self._normaliser
        for event in events:
            norm.apply(event)
        self._active = {c.call_id: self._stored(c) for c in norm.active_calls()}
        ACTIVE_CALLS.set(len(self._active))
        if self._active:
            logger.info("restored %d call(s) in progress from the database", len(self._active))
        return len(self._active)

    # -- ingest ---------------------------------------------------------------------------

    def ingest(self, events: Sequence[ChannelEvent]) -> list[tuple[CallChanged, StoredCall]]:
        """Fold events in and queue them with the changes for storage; publishing is separate
        (so a batch is published in one go, in order)."""
        counted = self._counted
        for event in events:
            counter = counted.get(event.pbx)
            if counter is None:
                counter = counted[event.pbx] = CHANNEL_EVENTS.labels(event.pbx)
            counter.inc()
        return self._fold(events)

    def _fold(self, events: Sequence[ChannelEvent]) -> list[tuple[CallChanged, StoredCall]]:
        norm = self._normaliser
        out: list[tuple[CallChanged, StoredCall]] = []
        for event in events:
            changes = norm.apply(event)
            for index, change in enumerate(changes):
                # The event is logged once, with the last change it caused.
                logged = (event,) if index == len(changes) - 1 else ()
                out.append((change, self._track(change, logged)))
            if changes:
                continue
            call = norm.call_of(event.tenant_id, event.leg_id)
            if call is None:
                logger.debug("event for a forgotten leg %s dropped", event.leg_id)
            else:  # nothing visible changed: the event is still logged with its call
                self._writer.add(self._stored(call), (event,))
        return out

    def _track(self, change: CallChanged, events: Sequence[ChannelEvent] = ()) -> StoredCall:
        stored = self._stored(change.call)
        call = stored.call
        for old in change.replaces:
            self._active.pop(old, None)
        if call.state is CallState.ENDED:
            self._active.pop(call.call_id, None)
            if change.name is CallEventName.ENDED:
                outcome = call.end_reason.value if call.end_reason else "unknown"
                CALLS.labels(call.direction.value, outcome).inc()
        else:
            self._active[call.call_id] = stored
        self._writer.add(stored, events, change.replaces)
        ACTIVE_CALLS.set(len(self._active))
        return stored

    async def _publish(self, items: Sequence[tuple[CallChanged, StoredCall]]) -> None:
        for change, stored in items:
            if not self.notifier.call_changed_nowait(change.name, stored, change.replaces):
                await self.notifier.call_changed(change.name, stored, change.replaces)
            for listener in self._listeners:
                listener(change, stored)

    def _stored(self, call: Call) -> StoredCall:
        resolve = self._directory.resolve_all
        return StoredCall(
            call,
            handled_by=resolve(call.tenant_id, call.agents),
            rung=resolve(call.tenant_id, call.rung),
        )

    # -- queries --------------------------------------------------------------------------

    def tenants(self) -> list[str]:
        """Tenants with calls in progress."""
        return sorted({s.call.tenant_id for s in self._active.values()})

    def active(self, tenant_id: str, agent_id: AgentId | None = None) -> list[StoredCall]:
        calls = [s for s in self._active.values() if s.call.tenant_id == tenant_id]
        if agent_id is not None:
            calls = [s for s in calls if agent_id in s.handled_by or agent_id in s.rung]
        return sorted(calls, key=lambda s: (s.call.started_at, s.call.call_id))

    async def list_calls(self, query: CallQuery) -> CallPage:
        await self._writer.caught_up(READ_WAIT)
        return await self._storage.list_calls(query)

    async def get(self, tenant_id: TenantId, call_id: CallId) -> StoredCall:
        live = self._active.get(call_id)
        if live is not None and live.call.tenant_id == tenant_id:
            return live
        await self._writer.caught_up(READ_WAIT)
        stored = await self._storage.get_call(tenant_id, call_id)
        if stored is None:
            raise NoSuchCall(f"no call {call_id}", details={"call_id": call_id})
        return stored
