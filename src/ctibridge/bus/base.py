"""The bus contract: messages named ``<domain>.<event>`` with routing headers.

Every message carries its tenant and the agents it concerns as headers, so a subscriber (the
WebSocket fan-out, a CRM logger, a Redis/NATS bridge later) routes on headers without
reading the payload. Payloads are plain JSON-able dicts: a message must survive a trip
through a broker between processes unchanged.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Protocol

__all__ = ["Bus", "Message", "Subscription"]


@dataclass(frozen=True, slots=True)
class Message:
    name: str
    """``call.created``, ``call.answered``... (fnmatch patterns select them)."""
    tenant_id: str
    payload: dict[str, Any]
    agent_ids: tuple[str, ...] = ()
    """Our agents this message concerns (routing header)."""
    headers: dict[str, str] = field(default_factory=dict)


class Subscription(Protocol):
    """An async iterator of messages; ``close()`` ends it."""

    def __aiter__(self) -> AsyncIterator[Message]: ...

    async def __anext__(self) -> Message: ...

    def close(self) -> None: ...


class Bus(Protocol):
    async def publish(self, message: Message) -> None:
        """Hand a message to every matching subscriber, in publish order."""

    def subscribe(self, pattern: str) -> Subscription:
        """Messages whose name matches ``pattern`` (fnmatch), from now on."""

    async def close(self) -> None: ...
