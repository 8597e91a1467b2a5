"""Browser tests: the real stack (demo phone system + ctibridge) driven by Debian's chromium.

One chromium for the whole session; a fresh demo system and browser context per test. Calls
are played step by step from the demo scenarios (:class:`ScriptedCall`), so a test can look
at the page between two events; each step is stamped with the time it is published, as a
real phone system would.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from playwright.async_api import Browser, BrowserContext, Page, async_playwright

from ctibridge import config
from ctibridge.demo.directory import DEMO, Caller
from ctibridge.demo.scenarios.registry import SCENARIOS
from ctibridge.demo.scenarios.script import ScenarioContext, Step, greg_from_unix
from ctibridge.launcher import DemoSystem, running_demo

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
PANEL = {"width": 400, "height": 760}
"""A Salesforce-style softphone panel."""
WIDE = {"width": 1280, "height": 860}


async def eventually(check: Callable[[], Any], *, within: float = 5.0, what: str = "") -> Any:
    """Poll ``check()`` until it returns something truthy; fail after ``within`` seconds."""
    deadline = time.monotonic() + within
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {within}s waiting for {what or check}")
        await asyncio.sleep(0.02)


def _resolve(name: str, key: str, value: Any) -> Any:
    if key in ("agent", "callee") or (key == "caller" and name.startswith("internal")):
        return DEMO.agent(value)
    if key == "agents":
        return tuple(DEMO.agent(v) for v in value)
    if key == "caller":
        return next((c for c in DEMO.callers if c.number == value), Caller(value, ""))
    return value


@dataclass
class ScriptedCall:
    """A demo scenario played on demand: ``play_until(t)`` publishes every step scripted in
    the first ``t`` whole seconds of the scenario (second ``t`` included), stamped with the
    current time."""

    system: DemoSystem
    steps: list[tuple[float, Step]]
    played: int = 0
    known_id: str | None = None

    async def play_until(self, second: float) -> None:
        while self.played < len(self.steps) and self.steps[self.played][0] < second + 1:
            data = dict(self.steps[self.played][1].data)
            data["timestamp"] = greg_from_unix(time.time())
            await self.system.publish(data)
            self.played += 1
            if self.known_id is None:
                await self._learn_id()

    async def _learn_id(self, within: float = 10.0) -> None:
        """Wait until the server has the call (its first event crosses the Kazoo websocket
        and the connector asynchronously), so ``call_id()`` works from now on."""
        deadline = time.monotonic() + within
        while self._lookup() is None:
            if time.monotonic() > deadline:
                raise AssertionError("the server never saw the call start")
            await asyncio.sleep(0.01)

    async def play_rest(self) -> None:
        await self.play_until(float("inf"))

    def _lookup(self) -> str | None:
        active = self.system.services.calls.active(self.system.account.account_id)
        leg_ids = {step.data["call_id"] for _, step in self.steps}
        for stored in active:
            if {leg.leg_id for leg in stored.call.legs} & leg_ids:
                self.known_id = stored.call.call_id
        return self.known_id

    def call_id(self) -> str:
        """The call's id as the server knows it (learnt as soon as the call started; a
        transfer that merges it into another call is followed while the call is active)."""
        known = self._lookup()
        if known is None:
            raise LookupError("the call has not started")
        return known


def scripted_call(system: DemoSystem, name: str, *, seed: int = 1, **params: Any) -> ScriptedCall:
    """Build scenario ``name`` (agents by extension, callers by number) without playing it."""
    ctx = ScenarioContext(
        account=system.account.account_id,
        realm=system.account.realm,
        start_greg=greg_from_unix(time.time()),
        rng=random.Random(seed),
    )
    resolved = {key: _resolve(name, key, value) for key, value in params.items()}
    steps = SCENARIOS[name](ctx, **resolved)
    timeline: list[tuple[float, Step]] = []
    at = 0.0
    for step in steps:
        at += step.delay
        timeline.append((at, step))
    return ScriptedCall(system, timeline)


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            await chromium.close()


@pytest_asyncio.fixture(loop_scope="session")
async def demo(tmp_path: Path) -> AsyncIterator[DemoSystem]:
    settings = config.load(None, {}, {"data_dir": str(tmp_path), "web": {"port": 0}})
    async with running_demo(settings, traffic=False) as system:
        await eventually(
            lambda: system.services.status()["connectors"][0]["connected"],
            within=10,
            what="the Kazoo connector",
        )
        yield system


@dataclass
class Pages:
    """Opens pages in fresh browser contexts (own storage each) and checks them for
    uncaught script errors at the end of the test."""

    browser: Browser
    contexts: list[BrowserContext] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    async def open(
        self, url: str, *, viewport: dict[str, int] = PANEL, bypass_csp: bool = False
    ) -> Page:
        """Pages run under the app's Content-Security-Policy; ``bypass_csp`` only for tests
        that evaluate JavaScript strings of their own (Playwright's ``wait_for_function``)."""
        context = await self.browser.new_context(
            viewport=viewport,  # type: ignore[arg-type]
            locale="en-GB",
            timezone_id="Europe/London",
            bypass_csp=bypass_csp,
        )
        self.contexts.append(context)
        page = await context.new_page()
        page.on("pageerror", lambda exc: self.errors.append(str(exc)))
        await page.goto(url)
        return page


@pytest_asyncio.fixture(loop_scope="session")
async def pages(browser: Browser) -> AsyncIterator[Pages]:
    opened = Pages(browser)
    try:
        yield opened
    finally:
        for context in opened.contexts:
            await context.close()
    assert opened.errors == [], f"uncaught errors in the page: {opened.errors}"
