"""Presence: the status an agent chooses, ``on_call`` while it is on a live call, the chosen
status again after, and one bus message per change of what an agent shows."""

from __future__ import annotations

from typing import Any

import pytest

from ctibridge.bus.base import Message
from ctibridge.bus.memory import MemoryBus, MemorySubscription
from ctibridge.callstate.events import AgentRef
from ctibridge.callstate.model import Call, CallChanged, CallEventName, CallState, Direction
from ctibridge.errors import InvalidRequest
from ctibridge.services.directory import AgentDirectory
from ctibridge.services.presence import PRESENCE_EVENT, PresenceService
from ctibridge.storage.base import Agent, StoredCall
from ctibridge.types import AgentId, TenantId

TENANT = TenantId("acc1")
ALICE = Agent(AgentId("agent-101"), TENANT, "Alice", extension="101")
BOB = Agent(AgentId("agent-102"), TENANT, "Bob", extension="102")


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def bus() -> MemoryBus:
    return MemoryBus()


@pytest.fixture
def frames(bus: MemoryBus) -> MemorySubscription:
    return bus.subscribe(PRESENCE_EVENT)


@pytest.fixture
def presence(bus: MemoryBus, clock: Clock) -> PresenceService:
    return PresenceService(bus=bus, directory=AgentDirectory([ALICE, BOB]), clock=clock)


async def published(sub: MemorySubscription) -> list[Message]:
    """The messages delivered so far (all already queued: nothing is waited for)."""
    return [await anext(sub) for _ in range(sub.pending())]


async def statuses(sub: MemorySubscription) -> list[tuple[str, str, float]]:
    return [
        (m.payload["agent_id"], m.payload["status"], m.payload["since"])
        for m in await published(sub)
    ]


def change(
    call_id: str,
    state: CallState,
    *current: str,
    event: CallEventName = CallEventName.ANSWERED,
    replaces: tuple[str, ...] = (),
) -> tuple[CallChanged, StoredCall]:
    call = Call(
        call_id,
        TENANT,
        state,
        Direction.INBOUND,
        current=tuple(AgentRef(extension=e) for e in current),
        seq=1,
    )
    return CallChanged(event, call, replaces), StoredCall(call)


def test_an_agent_nobody_heard_from_is_available(presence: PresenceService) -> None:
    shown = presence.get(ALICE)
    assert (shown.status, shown.chosen) == ("available", "available")
    assert [p.agent_id for p in presence.list([ALICE, BOB])] == ["agent-101", "agent-102"]


async def test_choosing_a_status_shows_it_and_publishes_it_once(
    presence: PresenceService, frames: MemorySubscription, clock: Clock
) -> None:
    clock.now += 5
    away = presence.choose(ALICE, "away")
    assert (away.status, away.chosen, away.since) == ("away", "away", clock.now)
    clock.now += 5
    assert presence.choose(ALICE, "away") == away  # nothing changed: same since, no message
    (message,) = await published(frames)
    assert message.name == "agent.presence"
    assert message.tenant_id == TENANT and message.agent_ids == ("agent-101",)
    assert message.payload == {
        "event": "presence",
        "agent_id": "agent-101",
        "tenant_id": TENANT,
        "status": "away",
        "chosen": "away",
        "since": away.since,
    }
    assert presence.get(ALICE) == away


@pytest.mark.parametrize("bad", ["on_call", "offline", "", None, 3, ["busy"]])
def test_only_available_busy_and_away_can_be_chosen(presence: PresenceService, bad: Any) -> None:
    with pytest.raises(InvalidRequest) as caught:
        presence.choose(ALICE, bad)
    assert caught.value.details["allowed"] == ["available", "busy", "away"]
    assert presence.get(ALICE).status == "available"


async def test_on_call_while_on_a_live_call_then_the_chosen_status_again(
    presence: PresenceService, frames: MemorySubscription, clock: Clock
) -> None:
    presence.choose(ALICE, "busy")
    await published(frames)
    clock.now += 10
    presence.on_call_changed(*change("c1", CallState.RINGING, event=CallEventName.RINGING))
    assert presence.get(ALICE).status == "busy"  # rung, not on the call yet
    presence.on_call_changed(*change("c1", CallState.ANSWERED, "101"))
    on_call = presence.get(ALICE)
    assert (on_call.status, on_call.chosen, on_call.since) == ("on_call", "busy", clock.now)
    clock.now += 60
    presence.on_call_changed(*change("c1", CallState.HELD, "101", event=CallEventName.HELD))
    assert presence.get(ALICE).since == on_call.since  # still on the call
    clock.now += 60
    presence.on_call_changed(*change("c1", CallState.ENDED, event=CallEventName.ENDED))
    after = presence.get(ALICE)
    assert (after.status, after.chosen, after.since) == ("busy", "busy", clock.now)
    assert await statuses(frames) == [
        ("agent-101", "on_call", on_call.since),
        ("agent-101", "busy", after.since),
    ]


async def test_a_status_chosen_during_a_call_is_the_one_restored(
    presence: PresenceService, frames: MemorySubscription
) -> None:
    presence.on_call_changed(*change("c1", CallState.ANSWERED, "101"))
    during = presence.choose(ALICE, "away")
    assert (during.status, during.chosen) == ("on_call", "away")
    presence.on_call_changed(*change("c1", CallState.ENDED, event=CallEventName.ENDED))
    assert presence.get(ALICE).status == "away"
    assert [(m.payload["status"], m.payload["chosen"]) for m in await published(frames)] == [
        ("on_call", "available"),
        ("on_call", "away"),
        ("away", "away"),
    ]


def test_two_calls_at_once_end_on_call_only_when_both_end(presence: PresenceService) -> None:
    presence.on_call_changed(*change("c1", CallState.ANSWERED, "101"))
    presence.on_call_changed(*change("c2", CallState.HELD, "101", "102"))
    presence.on_call_changed(*change("c1", CallState.ENDED, event=CallEventName.ENDED))
    assert presence.get(ALICE).status == "on_call"
    assert presence.get(BOB).status == "on_call"
    presence.on_call_changed(*change("c2", CallState.ANSWERED, "102"))  # Alice left c2
    assert presence.get(ALICE).status == "available"
    assert presence.get(BOB).status == "on_call"


def test_a_call_merged_into_another_counts_once(presence: PresenceService) -> None:
    presence.on_call_changed(*change("consult", CallState.ANSWERED, "101", "102"))
    presence.on_call_changed(*change("main", CallState.ANSWERED, "102"))
    merged = change("main", CallState.ANSWERED, "102", replaces=("consult",))
    presence.on_call_changed(*merged)
    assert presence.get(ALICE).status == "available"
    assert presence.get(BOB).status == "on_call"
    presence.on_call_changed(*change("main", CallState.ENDED, event=CallEventName.ENDED))
    assert presence.get(BOB).status == "available"


async def test_people_who_are_not_our_agents_are_ignored(
    presence: PresenceService, frames: MemorySubscription
) -> None:
    presence.on_call_changed(*change("c1", CallState.ANSWERED, "999"))
    presence.on_call_changed(*change("c1", CallState.ENDED, event=CallEventName.ENDED))
    assert await published(frames) == []


async def test_a_bus_without_publish_nowait_gets_the_message_from_a_task(clock: Clock) -> None:
    class SlowBus:
        def __init__(self) -> None:
            self.messages: list[Message] = []

        async def publish(self, message: Message) -> None:
            self.messages.append(message)

    bus = SlowBus()
    service = PresenceService(bus=bus, directory=AgentDirectory([ALICE]), clock=clock)  # type: ignore[arg-type]
    service.choose(ALICE, "away")
    await service.stop()
    assert [m.payload["status"] for m in bus.messages] == ["away"]
