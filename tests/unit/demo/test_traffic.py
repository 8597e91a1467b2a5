"""The demo call generator: per-leg order, busy agents, determinism, play and control."""

from __future__ import annotations

import asyncio
import json
import logging
import random
from collections import defaultdict
from collections.abc import Callable
from typing import Any

import pytest

from ctibridge.demo.directory import DEMO
from ctibridge.demo.scenarios.inbound import inbound_answered
from ctibridge.demo.scenarios.script import GREG_OFFSET, ScenarioContext, total_seconds
from ctibridge.demo.traffic import DemoTraffic
from ctibridge.errors import InvalidRequest

FAKE_NOW = 1_795_000_000.0
FAST = 20_000.0


class Recorder:
    """A ``publish`` that keeps what it gets."""

    def __init__(self) -> None:
        self.published: list[tuple[str, dict[str, Any]]] = []

    async def __call__(self, account_id: str, data: dict[str, Any]) -> None:
        self.published.append((account_id, data))

    @property
    def events(self) -> list[dict[str, Any]]:
        return [data for _, data in self.published]


async def until(condition: Callable[[], bool], within: float = 5.0) -> None:
    """Bounded poll."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not condition():
        assert loop.time() < deadline, "condition not met in time"
        await asyncio.sleep(0.005)


def traffic(recorder: Recorder, seed: int = 7, **options: Any) -> DemoTraffic:
    options.setdefault("speed", FAST)
    options.setdefault("gap_seconds", (1.0, 6.0))
    return DemoTraffic(recorder, rng=random.Random(seed), clock=lambda: FAKE_NOW, **options)


async def generate(seed: int = 7, limit: int = 30, **options: Any) -> list[dict[str, Any]]:
    recorder = Recorder()
    await asyncio.wait_for(traffic(recorder, seed, **options).run(limit=limit), timeout=20)
    assert {account for account, _ in recorder.published} == {DEMO.account_id}
    return recorder.events


def is_final(event: dict[str, Any]) -> bool:
    return event["event_name"] == "CHANNEL_DESTROY" and not event.get("channel_moving")


def usec(event: dict[str, Any]) -> int:
    return int(event["msg_id"])


# generated traffic -------------------------------------------------------------------


async def test_events_come_out_in_a_valid_per_leg_order() -> None:
    events = await generate()
    legs: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for event in events:
        legs[event["call_id"]].append(event)
    assert len(legs) > 40
    for call_id, leg in legs.items():
        names = [e["event_name"] for e in leg]
        assert names[0] == "CHANNEL_CREATE" and names.count("CHANNEL_CREATE") == 1, call_id
        assert is_final(leg[-1]) and sum(map(is_final, leg)) == 1, call_id
        assert len({e["call_direction"] for e in leg}) == 1, call_id
        iids = {e["custom_channel_vars"].get("call_interaction_id") for e in leg} - {None}
        assert len(iids) == 1, call_id
        for event in leg:
            assert event.get("other_leg_call_id") in (None, *legs), call_id
        assert [usec(e) for e in leg] == sorted(usec(e) for e in leg)


async def test_timestamps_follow_the_given_clock() -> None:
    events = await generate(limit=5)
    first = min(e["timestamp"] for e in events) - GREG_OFFSET
    assert FAKE_NOW <= first < FAKE_NOW + 60
    for event in events:
        assert int(event["msg_id"]) // 1_000_000 == event["timestamp"] - GREG_OFFSET


async def test_no_agent_is_rung_while_on_another_call() -> None:
    events = await generate(seed=11, limit=40, max_concurrent=6)
    by_owner: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for event in events:
        owner = event["custom_channel_vars"].get("owner_id")
        if owner is not None:
            by_owner[owner].append(event)
    assert len(by_owner) == len(DEMO.agents)
    for owner, owned in by_owner.items():
        alive: set[str] = set()
        for event in sorted(owned, key=usec):
            rings = (
                event["event_name"] == "CHANNEL_CREATE" and event["call_direction"] == "outbound"
            )
            if rings:
                assert not alive, f"agent {owner} rung while on {alive}"
            if event["event_name"] == "CHANNEL_CREATE":
                alive.add(event["call_id"])
            elif is_final(event):
                alive.discard(event["call_id"])


async def test_at_most_max_concurrent_calls() -> None:
    weights = {"internal_answered": 1.0, "inbound_answered": 1.0}
    events = await generate(limit=12, max_concurrent=1, weights=weights)
    alive: dict[str, int] = defaultdict(int)
    for event in sorted(events, key=usec):
        iid = event["custom_channel_vars"]["call_interaction_id"]
        if event["event_name"] == "CHANNEL_CREATE":
            alive[iid] += 1
        elif is_final(event):
            alive[iid] -= 1
        assert sum(1 for count in alive.values() if count > 0) <= 1


async def test_deterministic_for_a_seed() -> None:
    def canonical(events: list[dict[str, Any]]) -> list[str]:
        return sorted(json.dumps(e, sort_keys=True) for e in events)

    first = await generate(seed=3, limit=15)
    again = await generate(seed=3, limit=15, speed=FAST / 4)
    other = await generate(seed=4, limit=15)
    assert canonical(first) == canonical(again)
    assert canonical(first) != canonical(other)


async def test_only_weighted_scenarios_are_played() -> None:
    events = await generate(limit=6, weights={"outbound_busy": 1.0})
    causes = {e["hangup_cause"] for e in events if e["event_name"] == "CHANNEL_DESTROY"}
    assert causes == {"USER_BUSY"}


async def test_run_until_cancelled_stops_its_calls() -> None:
    recorder = Recorder()
    demo = traffic(recorder, speed=200.0)
    runner = asyncio.create_task(demo.run())
    await until(lambda: len(recorder.published) >= 3)
    runner.cancel()
    with pytest.raises(asyncio.CancelledError):
        await runner
    assert demo.playing == 0  # every call it started was stopped with it


def test_rejects_bad_options() -> None:
    with pytest.raises(ValueError, match="speed"):
        DemoTraffic(Recorder(), speed=0)
    with pytest.raises(ValueError, match="unknown scenarios"):
        DemoTraffic(Recorder(), weights={"no_such_call": 1.0})


# play and start_scenario ---------------------------------------------------------------


def _steps() -> list[Any]:
    ctx = ScenarioContext(DEMO.account_id, DEMO.realm, 63_962_400_000, random.Random(2))
    return inbound_answered(ctx, agent=DEMO.agents[0], caller=DEMO.callers[0], talk_seconds=30)


async def test_play_publishes_each_step_after_its_delay() -> None:
    recorder, steps = Recorder(), _steps()
    demo = traffic(recorder, speed=1000.0)
    loop = asyncio.get_running_loop()
    started = loop.time()
    await demo.play(steps)
    elapsed = loop.time() - started
    assert recorder.events == [step.data for step in steps]
    assert elapsed >= total_seconds(steps) / 1000.0 * 0.95


async def test_publish_failures_are_logged_and_the_call_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    seen: list[str] = []

    async def flaky(account_id: str, data: dict[str, Any]) -> None:
        seen.append(data["event_name"])
        if len(seen) == 1:
            raise ConnectionError("server gone")

    demo = DemoTraffic(flaky, rng=random.Random(1), speed=FAST)
    with caplog.at_level(logging.ERROR, logger="ctibridge.demo.traffic"):
        await demo.play(_steps())
    assert len(seen) == len(_steps())
    assert "not published" in caplog.text


async def test_start_scenario_by_extension_marks_the_agent_busy() -> None:
    recorder = Recorder()
    demo = traffic(recorder, speed=2000.0)
    task = demo.start_scenario("inbound_answered", agent="103", caller="+447700900123")
    assert "103" in demo.busy_agents()
    with pytest.raises(InvalidRequest) as busy:
        demo.start_scenario("internal_answered", caller="103", callee="104")
    assert busy.value.details == {"agents": ["103"]}
    await asyncio.wait_for(task, timeout=5)
    owners = {e["custom_channel_vars"].get("owner_id") for e in recorder.events} - {None}
    assert owners == {DEMO.agent("103").user_id}
    assert recorder.events[0]["caller_id_name"] == "Sarah Mitchell"
    await until(lambda: "103" not in demo.busy_agents())
    await asyncio.wait_for(demo.start_scenario("internal_missed", caller="103"), timeout=5)


async def test_start_scenario_errors() -> None:
    demo = traffic(Recorder())
    with pytest.raises(InvalidRequest, match="unknown demo scenario"):
        demo.start_scenario("conference")
    with pytest.raises(InvalidRequest, match="no agent"):
        demo.start_scenario("inbound_answered", agent="999")
    with pytest.raises(InvalidRequest, match="bad parameters"):
        demo.start_scenario("inbound_answered", colour="blue")
    await demo.close()


async def test_no_free_agents_means_no_new_call() -> None:
    demo = traffic(Recorder(), speed=50.0)
    tasks = [demo.start_scenario("internal_missed", ring_seconds=30) for _ in range(3)]
    assert len(demo.busy_agents()) == 6
    with pytest.raises(InvalidRequest, match="no free agents"):
        demo.start_scenario("inbound_missed")
    assert demo.playing == 3
    await demo.close()
    assert all(task.cancelled() for task in tasks)
    assert demo.playing == 0
