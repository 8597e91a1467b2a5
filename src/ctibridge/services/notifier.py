"""Publishes call-card events on the bus, routed by tenant and the agents concerned."""

from __future__ import annotations

from ctibridge.bus.base import Bus, Message
from ctibridge.callstate.model import CallEventName
from ctibridge.observability import CALL_EVENTS
from ctibridge.services.cards import call_card
from ctibridge.storage.base import StoredCall

__all__ = ["CallNotifier"]


class CallNotifier:
    """``call.<event>`` messages; payload ``{"event", "call": card, "replaces": [call ids
    merged into this one]}``; headers: every agent who handled the call or was rung for it."""

    def __init__(self, bus: Bus) -> None:
        self._bus = bus
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

    @staticmethod
    def message(
        event: CallEventName, stored: StoredCall, replaces: tuple[str, ...] = ()
    ) -> Message:
        CALL_EVENTS.labels(event.value).inc()
        agents = stored.handled_by + tuple(a for a in stored.rung if a not in stored.handled_by)
        return Message(
            name=f"call.{event.value}",
            tenant_id=stored.call.tenant_id,
            payload={"event": event.value, "call": call_card(stored), "replaces": list(replaces)},
            agent_ids=agents,
        )
