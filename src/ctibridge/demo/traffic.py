"""Keeps realistic call traffic going on the demo phone system.

:class:`DemoTraffic` picks a random scenario every few seconds, fills in free agents,
callers and durations, and plays the scenario's events through ``publish`` (the demo Kazoo
server's control plane) as concurrent tasks.

Every decision is taken on the *scenario timeline*: the run loop advances a virtual time by
random gaps, an agent is busy until the virtual end of the scenario it is in, and each step
is published at ``t0 + virtual_time / speed`` on the event loop's clock. So a seed gives the
same calls, ids and timestamps whatever the speed and however late the loop runs; only the
interleaving of different calls' events may differ when the loop falls behind.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from ctibridge.demo.directory import DEMO, Agent, Caller, DemoAccount
from ctibridge.demo.scenarios.registry import SCENARIOS
from ctibridge.demo.scenarios.script import ScenarioContext, Step, greg_from_unix, total_seconds
from ctibridge.errors import InvalidRequest

__all__ = ["DEFAULT_WEIGHTS", "Clock", "DemoTraffic", "Publish"]

logger = logging.getLogger(__name__)

Publish = Callable[[str, dict[str, Any]], Awaitable[None]]
"""``publish(account_id, event_data)``: hand one call event to the phone system."""
Clock = Callable[[], float]
"""Unix seconds."""

DEFAULT_WEIGHTS: Mapping[str, float] = {
    "inbound_answered": 6.0,
    "inbound_missed": 2.0,
    "inbound_voicemail": 1.0,
    "inbound_hold": 1.5,
    "inbound_blind_transfer": 1.0,
    "inbound_attended_transfer": 0.7,
    "ring_group": 2.0,
    "outbound_answered": 3.0,
    "outbound_busy": 0.7,
    "internal_answered": 1.5,
    "internal_missed": 0.5,
    "click_to_dial": 1.5,
    "recorded_inbound": 1.0,
    "duplicate_destroy_after_move": 0.3,
}
"""How often each scenario is picked, relatively."""

_Params = dict[str, Any] | None
_Picker = Callable[[random.Random, list[Agent], DemoAccount], _Params]


class DemoTraffic:
    """Random demo calls, published as Kazoo 4.x blackhole call events."""

    def __init__(
        self,
        publish: Publish,
        *,
        account: DemoAccount = DEMO,
        rng: random.Random | None = None,
        speed: float = 1.0,
        max_concurrent: int = 4,
        weights: Mapping[str, float] = DEFAULT_WEIGHTS,
        clock: Clock = time.time,
        gap_seconds: tuple[float, float] = (3.0, 12.0),
        focus: str | None = None,
        focus_share: float = 0.5,
    ) -> None:
        if speed <= 0:
            raise ValueError("speed must be positive")
        unknown = set(weights) - set(SCENARIOS)
        if unknown:
            raise ValueError(f"unknown scenarios in weights: {sorted(unknown)}")
        self._publish = publish
        self._account = account
        self._rng = rng or random.Random()
        self._speed = speed
        self._max_concurrent = max_concurrent
        self._weights = dict(weights)
        self._clock = clock
        self._gap = gap_seconds
        self._focus = focus
        """An extension that gets about ``focus_share`` of the calls it is free for (the
        demo's signed-in agent, so the softphone the demo opens is busy)."""
        self._focus_share = focus_share
        self._t0: float | None = None
        self._epoch = 0.0
        self._busy_until: dict[str, float] = {}
        self._ends: list[float] = []
        self._tasks: set[asyncio.Task[None]] = set()

    # public ----------------------------------------------------------------------------
    async def run(self, *, limit: int | None = None) -> None:
        """Start scenarios every few (scenario) seconds until cancelled, or until ``limit``
        scenarios have started and all of them have been played."""
        started = 0
        now = self._virtual_now()
        try:
            while limit is None or started < limit:
                now += self._rng.uniform(*self._gap)
                await self._sleep_until(now)
                started += self._maybe_start(now)
            await asyncio.gather(*self._tasks)
        finally:
            await self.close()

    def start_scenario(self, name: str, **params: Any) -> asyncio.Task[None]:
        """Start one scenario now; missing parameters are picked among free agents.
        Agents may be given as extensions. Raises :class:`InvalidRequest` for an unknown
        scenario, wrong parameters or an agent already on a call."""
        return self._start(name, params, self._virtual_now())

    async def play(self, steps: list[Step]) -> None:
        """Publish ``steps`` now, each after its delay (divided by ``speed``)."""
        await self._play_from(self._virtual_now(), steps)

    def busy_agents(self) -> frozenset[str]:
        """Extensions on a call right now (on the scenario timeline)."""
        now = self._virtual_now()
        return frozenset(ext for ext, until in self._busy_until.items() if until > now)

    @property
    def playing(self) -> int:
        """Scenarios still being published."""
        return sum(1 for task in self._tasks if not task.done())

    async def close(self) -> None:
        """Stop every scenario still playing."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    # scheduling ------------------------------------------------------------------------
    def _maybe_start(self, now: float) -> int:
        self._ends = [end for end in self._ends if end > now]
        if len(self._ends) >= self._max_concurrent:
            return 0
        names = list(self._weights)
        name = self._rng.choices(names, weights=[self._weights[n] for n in names])[0]
        try:
            self._start(name, {}, now)
        except InvalidRequest as exc:
            logger.debug("demo call %s not started: %s", name, exc.message)
            return 0
        return 1

    def _start(self, name: str, given: dict[str, Any], now: float) -> asyncio.Task[None]:
        params = self._params(name, given, now)
        # Kazoo stamps whole seconds: start on the next whole second of the clock, so that
        # microsecond msg_ids and whole-second timestamps both follow the virtual timeline.
        whole = math.ceil(self._epoch + now)
        start = whole - self._epoch
        try:
            steps = SCENARIOS[name](self._context(whole), **params)
        except TypeError as exc:
            raise InvalidRequest(f"bad parameters for {name}: {exc}") from exc
        involved = _agents_in(params)
        self._reserve(involved, start + total_seconds(steps))
        logger.info("demo call %s started for %s", name, [a.extension for a in involved])
        task = asyncio.get_running_loop().create_task(self._play_from(start, steps))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def _params(self, name: str, given: dict[str, Any], now: float) -> dict[str, Any]:
        """Random parameters among free agents, overridden by ``given``; all agents free."""
        if name not in SCENARIOS:
            raise InvalidRequest(f"unknown demo scenario {name!r}", details={"scenario": name})
        free = [a for a in self._account.agents if self._busy_until.get(a.extension, 0) <= now]
        picked = None
        focus = [a for a in free if a.extension == self._focus]
        if focus and not given and self._rng.random() < self._focus_share:
            picked = _PICKERS[name](self._rng, focus, self._account)
        if picked is None:
            picked = _PICKERS[name](self._rng, free, self._account)
        if picked is None and not given:
            raise InvalidRequest(f"no free agents for {name}", details={"scenario": name})
        params = {**(picked or {}), **given}
        params = {key: self._resolve(name, key, value) for key, value in params.items()}
        busy = sorted(a.extension for a in _agents_in(params) if a not in free)
        if busy:
            raise InvalidRequest("agent already on a call", details={"agents": busy})
        return params

    def _reserve(self, agents: list[Agent], end: float) -> None:
        for agent in agents:
            self._busy_until[agent.extension] = end
        self._ends.append(end)

    def _context(self, unix: int) -> ScenarioContext:
        return ScenarioContext(
            account=self._account.account_id,
            realm=self._account.realm,
            start_greg=greg_from_unix(unix),
            rng=self._rng,
            media_server=self._account.media_servers[0],
            carrier=self._account.carrier,
            account_name=self._account.name,
        )

    def _resolve(self, name: str, key: str, value: Any) -> Any:
        """Extensions and numbers given as strings become directory entries."""
        try:
            if key in ("agent", "callee") and isinstance(value, str):
                return self._account.agent(value)
            if key == "agents" and all(isinstance(v, str) for v in value):
                return tuple(self._account.agent(v) for v in value)
            if key == "caller" and isinstance(value, str):
                if name.startswith("internal"):
                    return self._account.agent(value)
                return _caller(self._account, value)
        except KeyError as exc:
            raise InvalidRequest(f"no agent with extension {exc}") from exc
        return value

    async def _play_from(self, start: float, steps: list[Step]) -> None:
        at = start
        for step in steps:
            at += step.delay
            await self._sleep_until(at)
            try:
                await self._publish(self._account.account_id, step.data)
            except Exception:
                logger.exception("demo event %s not published", step.data.get("event_name"))

    # virtual time ----------------------------------------------------------------------
    def _virtual_now(self) -> float:
        loop_time = asyncio.get_running_loop().time()
        if self._t0 is None:
            self._t0, self._epoch = loop_time, self._clock()
        return (loop_time - self._t0) * self._speed

    async def _sleep_until(self, at: float) -> None:
        assert self._t0 is not None
        delay = self._t0 + at / self._speed - asyncio.get_running_loop().time()
        await asyncio.sleep(max(0.0, delay))


def _agents_in(params: Mapping[str, Any]) -> list[Agent]:
    found: list[Agent] = []
    for value in params.values():
        items = value if isinstance(value, tuple) else (value,)
        found.extend(item for item in items if isinstance(item, Agent) and item not in found)
    return found


def _caller(account: DemoAccount, number: str) -> Caller:
    for caller in account.callers:
        if caller.number == number:
            return caller
    return Caller(number, "")


# parameter pickers ---------------------------------------------------------------------


def _talk(rng: random.Random) -> int:
    """Conversation length: mostly one to three minutes, sometimes short or long."""
    return max(8, min(600, round(rng.lognormvariate(4.3, 0.6))))


def _pick_inbound(rng: random.Random, free: list[Agent], acc: DemoAccount) -> _Params:
    if not free:
        return None
    agent = rng.choice(free)
    main_line = acc.main_line
    did = main_line.number if main_line.target == agent.extension and rng.random() < 0.6 else None
    return {
        "agent": agent,
        "caller": rng.choice(acc.callers),
        "did": did,
        "ring_seconds": rng.randint(3, 14),
    }


def _pick_answered(rng: random.Random, free: list[Agent], acc: DemoAccount) -> _Params:
    params = _pick_inbound(rng, free, acc)
    return params and {**params, "talk_seconds": _talk(rng)}


def _pick_voicemail(rng: random.Random, free: list[Agent], acc: DemoAccount) -> _Params:
    params = _pick_inbound(rng, free, acc)
    return params and {**params, "ring_seconds": 20, "message_seconds": rng.randint(8, 50)}


def _pick_hold(rng: random.Random, free: list[Agent], acc: DemoAccount) -> _Params:
    params = _pick_inbound(rng, free, acc)
    if params is None:
        return None
    lengths = {"talk_seconds": _talk(rng) // 2, "hold_seconds": rng.randint(10, 60)}
    return {**params, **lengths, "resumed_seconds": _talk(rng) // 2}


def _pick_moved(rng: random.Random, free: list[Agent], acc: DemoAccount) -> _Params:
    params = _pick_inbound(rng, free, acc)
    if params is None:
        return None
    return {**params, "talk_seconds": rng.randint(10, 60), "hold_seconds": rng.randint(5, 30)}


def _pick_transfer(rng: random.Random, free: list[Agent], acc: DemoAccount) -> _Params:
    if len(free) < 2:
        return None
    first, second = rng.sample(free, 2)
    return {
        "agents": (first, second),
        "caller": rng.choice(acc.callers),
        "ring_seconds": rng.randint(3, 10),
        "talk_seconds": _talk(rng) // 2,
    }


def _pick_group(rng: random.Random, free: list[Agent], acc: DemoAccount) -> _Params:
    members = tuple(agent for agent in acc.group_agents() if agent in free)
    if len(members) < 2:
        return None
    return {
        "agents": members,
        "caller": rng.choice(acc.callers),
        "answered_by": rng.randrange(len(members)),
        "did": acc.group_line.number,
        "ring_seconds": rng.randint(3, 15),
        "talk_seconds": _talk(rng),
    }


def _pick_outbound(rng: random.Random, free: list[Agent], acc: DemoAccount) -> _Params:
    if not free:
        return None
    return {"agent": rng.choice(free), "number": rng.choice(acc.callers).number}


def _pick_outbound_answered(rng: random.Random, free: list[Agent], acc: DemoAccount) -> _Params:
    params = _pick_outbound(rng, free, acc)
    timing = {"ring_seconds": rng.randint(4, 20), "talk_seconds": _talk(rng)}
    return params and {**params, **timing}


def _pick_busy(rng: random.Random, free: list[Agent], acc: DemoAccount) -> _Params:
    params = _pick_outbound(rng, free, acc)
    return params and {**params, "ring_seconds": rng.randint(1, 4)}


def _pick_click(rng: random.Random, free: list[Agent], acc: DemoAccount) -> _Params:
    params = _pick_outbound_answered(rng, free, acc)
    return params and {**params, "request_id": f"demo-{rng.getrandbits(64):016x}"}


def _pick_internal(rng: random.Random, free: list[Agent], acc: DemoAccount) -> _Params:
    if len(free) < 2:
        return None
    caller, callee = rng.sample(free, 2)
    return {"caller": caller, "callee": callee, "ring_seconds": rng.randint(3, 15)}


def _pick_internal_answered(rng: random.Random, free: list[Agent], acc: DemoAccount) -> _Params:
    params = _pick_internal(rng, free, acc)
    return params and {**params, "talk_seconds": _talk(rng)}


_PICKERS: dict[str, _Picker] = {
    "inbound_answered": _pick_answered,
    "recorded_inbound": _pick_answered,
    "inbound_missed": _pick_inbound,
    "inbound_voicemail": _pick_voicemail,
    "inbound_hold": _pick_hold,
    "inbound_blind_transfer": _pick_transfer,
    "inbound_attended_transfer": _pick_transfer,
    "ring_group": _pick_group,
    "outbound_answered": _pick_outbound_answered,
    "outbound_busy": _pick_busy,
    "internal_answered": _pick_internal_answered,
    "internal_missed": _pick_internal,
    "click_to_dial": _pick_click,
    "duplicate_destroy_after_move": _pick_moved,
}
