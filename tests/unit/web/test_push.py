"""Fan-out: routing by agent header, admins per tenant, slow consumers dropped."""

from __future__ import annotations

import json
from typing import Any

from ctibridge.bus.base import Message
from ctibridge.bus.memory import MemoryBus
from ctibridge.services.agents import ALL_TENANTS, Principal
from ctibridge.storage.base import Agent
from ctibridge.types import AgentId, TenantId
from ctibridge.web.push import PushHub


def _agent(agent_id: str) -> Principal:
    return Principal("agent", TenantId("t1"), Agent(AgentId(agent_id), TenantId("t1"), agent_id))


def _msg(
    call_id: str, seq: int, *agents: str, tenant: str = "t1", state: str = "ringing"
) -> Message:
    card = {"call_id": call_id, "seq": seq, "state": state}
    return Message("call.ringing", tenant, {"event": "ringing", "call": card}, agents)


def _drain(conn: object) -> list[Any]:
    """Frames queued for a socket (sent as JSON text), decoded; None is the close marker."""
    queue = conn.queue  # type: ignore[attr-defined]
    out = []
    while not queue.empty():
        frame = queue.get_nowait()
        out.append(json.loads(frame) if isinstance(frame, str) else frame)
    return out


def test_messages_go_to_the_agents_named_and_to_admins_of_the_tenant() -> None:
    hub = PushHub(MemoryBus(), queue_size=10)
    alice, bob = hub.connect(_agent("a")), hub.connect(_agent("b"))
    admin = hub.connect(Principal("admin", TenantId("t1")))
    everyone = hub.connect(Principal("admin", ALL_TENANTS))
    other_admin = hub.connect(Principal("admin", TenantId("t2")))
    hub.route(_msg("c1", 1, "a"))
    assert [f["call"]["call_id"] for f in _drain(alice)] == ["c1"]  # type: ignore[index]
    assert _drain(bob) == [] and _drain(other_admin) == []
    assert len(_drain(admin)) == 1 and len(_drain(everyone)) == 1
    hub.disconnect(alice)
    hub.route(_msg("c1", 2, "a"))
    assert _drain(alice) == [] and hub.connections == 4


def test_older_or_repeated_snapshots_of_a_call_are_not_sent_twice() -> None:
    hub = PushHub(MemoryBus(), queue_size=10)
    conn = hub.connect(_agent("a"))
    conn.fresh({"call_id": "c1", "seq": 3, "state": "answered"})  # covered by the snapshot
    hub.route(_msg("c1", 2, "a"))
    hub.route(_msg("c1", 3, "a"))
    hub.route(_msg("c1", 4, "a"))
    assert [f["call"]["seq"] for f in _drain(conn)] == [4]  # type: ignore[index]


def test_a_slow_consumer_is_dropped_not_waited_for() -> None:
    hub = PushHub(MemoryBus(), queue_size=3)
    slow, fast = hub.connect(_agent("a")), hub.connect(_agent("b"))
    for seq in range(1, 10):
        hub.route(_msg(f"c{seq}", 1, "a", "b"))
        _drain(fast)
    assert slow.dropped
    frames = _drain(slow)
    assert frames[-1] is None  # the sender closes the socket (4008) when it gets here
    assert len(frames) <= 3
    assert not fast.dropped
