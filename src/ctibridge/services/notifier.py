"""Publishes call-card events on the bus, routed by tenant and the agents concerned."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from ctibridge.bus.base import Bus, Message
from ctibridge.callstate.model import CallEventName
from ctibridge.observability import CALL_EVENTS
from ctibridge.services.cards import call_card
from ctibridge.storage.base import StoredCall

__all__ = ["CallNotifier"]


@functools.cache
def _counter(event: CallEventName) -> Any:
    return CALL_EVENTS.labels(event.value)


class CallNotifier:
    """``call.<event>`` messages; payload ``{"event", "call": card, "replaces": [call ids
    merged into this one]}``; headers: every agent who handled the call or was rung for it."""

    def __init__(self, bus: Bus) -> None:
        self._bus = bus
        self.decorators: list[Callable[[StoredCall], dict[str, Any]]] = []
        """Extra card fields from other services (the screen pop's ``crm``)."""
        publish_nowait = getattr(bus, "publish_nowait", None)
        self._nowait = publish_nowait

    async def call_changed(
        self, event: CallEventName, stored: StoredCall, replaces: tuple[str, ...] = ()
    ) -> None:
        await self._bus.publish(self.message(event, stored, replaces))

    def call_changed_nowait(
        self, event: CallEventName, stored: StoredCall, replaces: tuple[str, ...] = ()
    ) -> bool:
        """Publish without yielding when the bus allows it (the in-process bus)."""
        if self._nowait is None:
            return False
        self._nowait(self.message(event, stored, replaces))
        return True

    def card(self, stored: StoredCall) -> dict[str, Any]:
        card = call_card(stored)
        for decorate in self.decorators:
            card.update(decorate(stored))
        return card

    def message(
        self, event: CallEventName, stored: StoredCall, replaces: tuple[str, ...] = ()
    ) -> Message:
        _counter(event).inc()
        agents = stored.handled_by + tuple(a for a in stored.rung if a not in stored.handled_by)
        return Message(
            name=f"call.{event.value}",
            tenant_id=stored.call.tenant_id,
            payload={"event": event.value, "call": self.card(stored), "replaces": list(replaces)},
            agent_ids=agents,
        )
