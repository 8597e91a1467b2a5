"""Agent presence: what each agent shows colleagues and admins right now.

An agent chooses ``available``, ``busy`` or ``away``; while it is on a live call (one of the
call's ``current`` agents: it placed the call or answered it, and has not left) it shows
``on_call``, then its chosen status again. Every change of what an agent shows is published
on the bus as ``agent.presence`` (payload ``{"event": "presence", "agent_id", "tenant_id",
"status", "chosen", "since"}``, routed to the agent and its tenant's admins).

Held in memory: after a restart every agent is ``available`` until it chooses otherwise.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from ctibridge.bus.base import Bus, Message
from ctibridge.callstate.model import CallChanged, CallState
from ctibridge.errors import InvalidRequest
from ctibridge.services.directory import AgentDirectory
from ctibridge.storage.base import Agent, StoredCall
from ctibridge.types import AgentId, TenantId

__all__ = ["CHOSEN", "ON_CALL", "PRESENCE_EVENT", "Presence", "PresenceService"]

logger = logging.getLogger(__name__)

AVAILABLE = "available"
CHOSEN = (AVAILABLE, "busy", "away")
"""What an agent may choose."""
ON_CALL = "on_call"
PRESENCE_EVENT = "agent.presence"


@dataclass(frozen=True, slots=True)
class Presence:
    agent_id: AgentId
    tenant_id: TenantId
    status: str
    """What the agent shows: one of :data:`CHOSEN`, or ``on_call``."""
    chosen: str
    """What the agent chose (shown again when its calls are over)."""
    since: float
    """Unix time the shown status began."""

    def as_dict(self) -> dict[str, Any]:
        return {
            "agent_id": self.agent_id,
            "tenant_id": self.tenant_id,
            "status": self.status,
            "chosen": self.chosen,
            "since": self.since,
        }


class PresenceService:
    def __init__(
        self,
        *,
        bus: Bus,
        directory: AgentDirectory,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._bus = bus
        self._directory = directory
        self._clock = clock
        self._started = clock()
        self._chosen: dict[AgentId, str] = {}
        self._shown: dict[AgentId, Presence] = {}
        self._calls: dict[str, frozenset[AgentId]] = {}
        """Live call id → our agents on it right now."""
        self._on_calls: dict[AgentId, int] = {}
        """Agent → how many live calls it is on."""
        self._tasks: set[asyncio.Task[None]] = set()

    # -- queries --------------------------------------------------------------------------

    def get(self, agent: Agent) -> Presence:
        shown = self._shown.get(agent.agent_id)
        if shown is not None:
            return shown
        status, chosen = self._status(agent.agent_id), self._chosen.get(agent.agent_id, AVAILABLE)
        return Presence(agent.agent_id, agent.tenant_id, status, chosen, self._started)

    def list(self, agents: Iterable[Agent]) -> list[Presence]:
        return [self.get(agent) for agent in agents]

    # -- changes --------------------------------------------------------------------------

    def choose(self, agent: Agent, status: object) -> Presence:
        """The agent chose a status (shown at once unless it is on a call)."""
        if not isinstance(status, str) or status not in CHOSEN:
            raise InvalidRequest(
                f"status must be one of {', '.join(CHOSEN)}",
                details={"field": "status", "allowed": list(CHOSEN)},
            )
        self._chosen[agent.agent_id] = status
        return self._refresh(agent.agent_id, agent.tenant_id)

    def on_call_changed(self, change: CallChanged, stored: StoredCall) -> None:
        """A :class:`~ctibridge.services.calls.CallsService` listener."""
        call = stored.call
        touched: set[AgentId] = set()
        for old in change.replaces:
            touched |= self._set_call(old, frozenset())
        on_it: frozenset[AgentId] = frozenset()
        if call.state is not CallState.ENDED:
            on_it = frozenset(self._directory.resolve_all(call.tenant_id, call.current))
        touched |= self._set_call(call.call_id, on_it)
        for agent_id in sorted(touched):
            self._refresh(agent_id, TenantId(call.tenant_id))

    async def stop(self) -> None:
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    # -- internals ------------------------------------------------------------------------

    def _set_call(self, call_id: str, agents: frozenset[AgentId]) -> set[AgentId]:
        """Record who is on a call now; returns the agents whose count changed."""
        before = self._calls.pop(call_id, frozenset())
        if agents:
            self._calls[call_id] = agents
        for agent_id in before - agents:
            left = self._on_calls.get(agent_id, 0) - 1
            if left > 0:
                self._on_calls[agent_id] = left
            else:
                self._on_calls.pop(agent_id, None)
        for agent_id in agents - before:
            self._on_calls[agent_id] = self._on_calls.get(agent_id, 0) + 1
        return set(before ^ agents)

    def _status(self, agent_id: AgentId) -> str:
        if self._on_calls.get(agent_id):
            return ON_CALL
        return self._chosen.get(agent_id, AVAILABLE)

    def _refresh(self, agent_id: AgentId, tenant_id: TenantId) -> Presence:
        """The agent's presence now; published if it differs from what was last shown."""
        old = self._shown.get(agent_id) or Presence(
            agent_id, tenant_id, AVAILABLE, AVAILABLE, self._started
        )
        status, chosen = self._status(agent_id), self._chosen.get(agent_id, AVAILABLE)
        if (status, chosen) == (old.status, old.chosen):
            return old
        since = old.since if status == old.status else self._clock()
        new = Presence(agent_id, tenant_id, status, chosen, since)
        self._shown[agent_id] = new
        self._publish(new)
        return new

    def _publish(self, presence: Presence) -> None:
        message = Message(
            name=PRESENCE_EVENT,
            tenant_id=presence.tenant_id,
            payload={"event": "presence", **presence.as_dict()},
            agent_ids=(presence.agent_id,),
        )
        publish_nowait = getattr(self._bus, "publish_nowait", None)
        if publish_nowait is not None:
            publish_nowait(message)
            return
        task = asyncio.create_task(self._bus.publish(message))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
