"""Fan-out of call events to agents' sockets: bounded queue per connection, slow ones dropped.

One bus subscription feeds every connection. A message goes to the connections of the agents
in its routing header, and to admin connections of its tenant. A connection whose queue is
full is closed (code 4008) rather than allowed to slow the server down; the browser
reconnects and starts again from a fresh snapshot.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import orjson

from ctibridge.bus.base import Bus, Message
from ctibridge.observability import WS_CONNECTIONS, WS_DROPPED
from ctibridge.services.agents import ALL_TENANTS, Principal
from ctibridge.tasks import stop

__all__ = ["CLOSE_TOO_SLOW", "PushConnection", "PushHub"]

logger = logging.getLogger(__name__)

CLOSE_TOO_SLOW = 4008
SUBSCRIBED = ("call.*", "agent.*")
"""Call events and their side messages (screen pop); agent messages (presence)."""


class PushConnection:
    """One agent (or admin) socket's outgoing side."""

    def __init__(self, principal: Principal, queue_size: int) -> None:
        self.principal = principal
        self.queue: asyncio.Queue[str | dict[str, Any] | None] = asyncio.Queue(queue_size)
        self.seen: dict[str, int] = {}
        """call id -> newest seq sent (drops deltas the snapshot already covered)."""
        self.dropped = False

    def offer(self, payload: str | dict[str, Any]) -> bool:
        """Queue a message; False (and the connection is marked dropped) when full."""
        if self.dropped:
            return False
        try:
            self.queue.put_nowait(payload)
        except asyncio.QueueFull:
            self.dropped = True
            with contextlib.suppress(asyncio.QueueEmpty):
                self.queue.get_nowait()
            self.queue.put_nowait(None)
            return False
        return True

    def fresh(self, call: dict[str, Any]) -> bool:
        call_id, seq = call["call_id"], call["seq"]
        if self.seen.get(call_id, -1) >= seq:
            return False
        self.seen[call_id] = seq
        if call["state"] == "ended":
            self.seen.pop(call_id, None)
        return True


class PushHub:
    def __init__(self, bus: Bus, *, queue_size: int = 256) -> None:
        self._bus = bus
        self._queue_size = queue_size
        self._by_agent: dict[str, set[PushConnection]] = {}
        self._admins: set[PushConnection] = set()
        self._tasks: list[asyncio.Task[None]] = []
        self.on_drop: Callable[[PushConnection], Awaitable[None]] | None = None

    def start(self) -> None:
        for pattern in SUBSCRIBED:
            subscription = self._bus.subscribe(pattern)
            task = asyncio.create_task(self._run(subscription), name=f"push-hub {pattern}")
            self._tasks.append(task)

    async def stop(self) -> None:
        await stop(*self._tasks)
        self._tasks.clear()

    def connect(self, principal: Principal) -> PushConnection:
        conn = PushConnection(principal, self._queue_size)
        if principal.is_admin:
            self._admins.add(conn)
        elif principal.agent_id is not None:
            self._by_agent.setdefault(principal.agent_id, set()).add(conn)
        WS_CONNECTIONS.inc()
        return conn

    def disconnect(self, conn: PushConnection) -> None:
        agent_id = conn.principal.agent_id
        if conn in self._admins:
            self._admins.discard(conn)
        elif agent_id is not None and agent_id in self._by_agent:
            self._by_agent[agent_id].discard(conn)
            if not self._by_agent[agent_id]:
                del self._by_agent[agent_id]
        else:
            return
        WS_CONNECTIONS.dec()

    def drop(self, agent_id: str) -> int:
        """Close every socket of one agent as if it fell behind (it reconnects and resyncs).
        Returns how many were closed."""
        conns = list(self._by_agent.get(agent_id, ()))
        for conn in conns:
            conn.dropped = True
            with contextlib.suppress(asyncio.QueueFull):
                conn.queue.put_nowait(None)
        return len(conns)

    def _side(self, message: Message) -> None:
        # Encoded once for every socket it goes to (orjson: several times the stdlib's speed).
        text = orjson.dumps({"type": message.payload["event"], **message.payload}).decode()
        for conn in self._targets(message):
            if not conn.offer(text):
                WS_DROPPED.inc()

    def _targets(self, message: Message) -> set[PushConnection]:
        targets: set[PushConnection] = set()
        for agent_id in message.agent_ids:
            targets |= self._by_agent.get(agent_id, set())
        for conn in self._admins:
            if conn.principal.tenant_id in (ALL_TENANTS, message.tenant_id):
                targets.add(conn)
        return targets

    @property
    def connections(self) -> int:
        return sum(len(c) for c in self._by_agent.values()) + len(self._admins)

    async def _run(self, subscription: Any) -> None:
        async for message in subscription:
            self.route(message)

    def route(self, message: Message) -> None:
        payload = message.payload
        if "call" not in payload:  # a side message about a call (e.g. the screen pop)
            self._side(message)
            return
        frame = {"type": "event", "event": payload["event"], "call": payload["call"]}
        if payload.get("replaces"):
            frame["replaces"] = payload["replaces"]
        text: str | None = None
        for conn in self._targets(message):
            if not conn.fresh(payload["call"]):
                continue
            if text is None:
                text = json.dumps(frame, separators=(",", ":"))
            if not conn.offer(text):
                WS_DROPPED.inc()
                logger.warning(
                    "dropped a slow push connection",
                    extra={"agent_id": conn.principal.agent_id, "role": conn.principal.role},
                )
