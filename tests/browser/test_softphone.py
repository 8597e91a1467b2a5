"""The agent softphone in a real browser against the real server and demo phone system."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.async_api import Locator, Page, expect

from ctibridge.demo.directory import DEMO
from ctibridge.errors import NotAuthenticated
from ctibridge.launcher import DemoSystem
from tests.browser.conftest import Pages, scripted_call

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="session")]

RING = 1
"""Scenario second at which the agent's phone starts ringing (the carrier leg is routed)."""


async def connected(page: Page) -> None:
    await expect(page.get_by_test_id("connection")).to_have_attribute("data-status", "connected")


async def settled(card: Locator) -> None:
    """Wait for the card's entrance animation to finish (for screenshots)."""
    await expect(card).not_to_have_class(re.compile(r"\bis-entering\b"))


async def test_a_call_rings_connects_and_ends_in_the_history(
    demo: DemoSystem, pages: Pages, artifacts: Path
) -> None:
    page = await pages.open(demo.softphone_url("101"))
    await connected(page)
    assert "token" not in page.url
    await expect(page.get_by_test_id("agent-name")).to_have_text("Olivia Bennett")
    await expect(page.get_by_test_id("agent-extension")).to_have_text("Ext. 101")
    await expect(page.get_by_test_id("history-empty")).to_be_visible()

    call = scripted_call(
        demo, "inbound_answered", agent="101", caller="+447700900123", ring_seconds=5
    )
    await call.play_until(RING)
    card = page.get_by_test_id("call-card")
    await expect(card).to_have_attribute("data-state", "ringing")
    await expect(card).to_have_attribute("data-call-id", call.call_id())
    await expect(card.get_by_test_id("call-state")).to_have_text("Ringing")
    await expect(card.get_by_test_id("call-number")).to_have_text("07700 900123")
    await expect(card.get_by_test_id("call-number")).to_be_visible()
    await expect(card.get_by_test_id("call-name")).to_have_text("Sarah Mitchell")
    await expect(page.locator("[data-role=announcer]")).to_have_text(
        "Incoming call from Sarah Mitchell, 07700 900123"
    )
    await expect(page).to_have_title(re.compile("Incoming call"))
    await settled(card)
    await page.screenshot(path=artifacts / "softphone-ringing.png")

    await call.play_until(RING + 5)
    await expect(card).to_have_attribute("data-state", "answered")
    await expect(card.get_by_test_id("call-state")).to_have_text("Connected")
    timer = card.get_by_test_id("call-timer")
    await expect(timer).to_have_text(re.compile(r"^00:0\d$"))
    before = await timer.inner_text()
    await expect(timer).not_to_have_text(before, timeout=3000)
    await page.screenshot(path=artifacts / "softphone-connected.png")

    await call.play_rest()
    await expect(card).to_have_attribute("data-state", "ended")
    await expect(card.get_by_test_id("call-state")).to_have_text("Ended")
    row = page.get_by_test_id("history-row")
    await expect(row).to_have_attribute("data-call-id", call.call_id(), timeout=8000)
    await expect(page.get_by_test_id("call-card")).to_have_count(0)
    await expect(row).to_contain_text("Sarah Mitchell")
    await expect(row.get_by_test_id("history-outcome")).to_have_text("Answered")
    await expect(page.get_by_test_id("history-empty")).to_be_hidden()
    await page.screenshot(path=artifacts / "softphone-history.png")


async def test_sign_in_with_the_form_and_sign_out(demo: DemoSystem, pages: Pages) -> None:
    agent = DEMO.agent("102")
    page = await pages.open(f"{demo.http.url}/softphone")
    form = page.get_by_test_id("signin-form")
    await expect(form).to_be_visible()
    await page.get_by_label("Login").fill(agent.login)
    await page.get_by_label("Password").fill("not-the-password")
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_test_id("signin-message")).to_contain_text("login and password")

    await page.get_by_label("Password").fill(agent.password)
    await page.get_by_role("button", name="Sign in").click()
    await connected(page)
    await expect(page.get_by_test_id("agent-name")).to_have_text(agent.name)
    await expect(page.get_by_test_id("agent-extension")).to_have_text("Ext. 102")
    token = await page.evaluate("localStorage.getItem('ctibridge.softphone.token')")
    assert token

    await page.reload()
    await connected(page)
    await expect(page.get_by_test_id("agent-name")).to_have_text(agent.name)

    await page.get_by_role("button", name="Sign out").click()
    await expect(form).to_be_visible()
    await expect(page.get_by_test_id("signin-message")).to_have_text("You have signed out.")
    assert await page.evaluate("localStorage.getItem('ctibridge.softphone.token')") is None
    with pytest.raises(NotAuthenticated):
        await demo.services.agents.authenticate(token)


async def test_a_bad_token_leads_to_the_sign_in_form(demo: DemoSystem, pages: Pages) -> None:
    page = await pages.open(f"{demo.http.url}/softphone#token=not-a-token")
    await expect(page.get_by_test_id("signin-form")).to_be_visible()
    await expect(page.get_by_test_id("signin-message")).to_contain_text("session has expired")
    assert "not-a-token" not in page.url
    assert await page.evaluate("localStorage.getItem('ctibridge.softphone.token')") is None

    await page.goto(demo.admin_url().replace("/admin", "/softphone"))
    await expect(page.get_by_test_id("signin-message")).to_contain_text("admin view")


async def test_agents_only_see_their_own_calls(demo: DemoSystem, pages: Pages) -> None:
    olivia = await pages.open(demo.softphone_url("101"))
    james = await pages.open(demo.softphone_url("102"))
    await connected(olivia)
    await connected(james)

    for_olivia = scripted_call(demo, "inbound_answered", agent="101", caller="+447700900457")
    await for_olivia.play_until(RING)
    await expect(olivia.get_by_test_id("call-card")).to_have_attribute(
        "data-call-id", for_olivia.call_id()
    )
    for_james = scripted_call(demo, "inbound_missed", seed=2, agent="102", caller="+441632960274")
    await for_james.play_until(RING)
    await expect(james.get_by_test_id("call-card")).to_have_attribute(
        "data-call-id", for_james.call_id()
    )
    await expect(james.get_by_test_id("call-card")).to_have_count(1)
    await expect(olivia.get_by_test_id("call-card")).to_have_count(1)
    await expect(james.get_by_text("Mark Davies")).to_have_count(0)

    await for_olivia.play_rest()
    await for_james.play_rest()
    await expect(olivia.get_by_test_id("call-card")).to_have_attribute("data-state", "ended")
    await expect(james.get_by_test_id("call-card")).to_have_attribute("data-state", "ended")
    # Fresh pages: the history comes from the server, per agent.
    for page, call, outcome in ((olivia, for_olivia, "Answered"), (james, for_james, "Missed")):
        await page.reload()
        row = page.get_by_test_id("history-row")
        await expect(row).to_have_attribute("data-call-id", call.call_id())
        await expect(row.get_by_test_id("history-outcome")).to_have_text(outcome)
        await expect(row).to_have_count(1)
        await expect(page.get_by_test_id("call-card")).to_have_count(0)


async def went_offline(page: Page) -> None:
    """Wait for the "Reconnecting…" state (polled every few ms: it lasts about a second)."""
    await page.wait_for_function(
        "document.querySelector('[data-testid=connection]').textContent.includes('Reconnecting')",
        polling=10,
        timeout=5000,
    )


def drop_sockets(demo: DemoSystem, agent_id: str) -> int:
    """Make the server close an agent's sockets the way it drops a slow one (code 4008)."""
    dropped: int = demo.http.app.state.hub.drop(agent_id)
    return dropped


async def test_reconnects_after_the_server_drops_the_socket(demo: DemoSystem, pages: Pages) -> None:
    page = await pages.open(demo.softphone_url("101"), bypass_csp=True)
    await connected(page)
    call = scripted_call(demo, "inbound_answered", agent="101", caller="+447700900218")
    await call.play_until(RING + 6)
    card = page.get_by_test_id("call-card")
    await expect(card).to_have_attribute("data-state", "answered")

    status = page.get_by_test_id("connection")
    await expect(status).to_have_attribute("data-connections", "1")
    assert drop_sockets(demo, "agent-101") >= 1
    await went_offline(page)
    await expect(status).to_have_attribute("data-connections", "2")
    await connected(page)
    await expect(card).to_have_attribute("data-call-id", call.call_id())
    await expect(card).to_have_attribute("data-state", "answered")
    timer = card.get_by_test_id("call-timer")
    before = await timer.inner_text()
    await expect(timer).not_to_have_text(before, timeout=3000)

    # The call ends while the page is offline: the snapshot moves it to the history.
    assert drop_sockets(demo, "agent-101") >= 1
    await went_offline(page)
    await call.play_rest()
    await expect(status).to_have_attribute("data-connections", "3")
    await connected(page)
    await expect(page.get_by_test_id("call-card")).to_have_count(0)
    row = page.get_by_test_id("history-row")
    await expect(row).to_have_attribute("data-call-id", call.call_id())
    await expect(row.get_by_test_id("history-outcome")).to_have_text("Answered")


CARD_LOGIC = """async () => {
  const c = await import("/static/js/calls.js");
  const { backoffDelay } = await import("/static/js/socket.js");
  const { fragmentPairs } = await import("/static/js/api.js");
  const base = {
    call_id: "c1", state: "ringing", direction: "inbound", from_number: "+447700900123",
    from_name: "Sarah Mitchell", to_number: "+441202555101", to_name: null,
    remote_number: "+447700900123", agents: [], rung: ["101"], current: [],
    answered_by: null, missed: true, started_at: 100, answered_at: null, ended_at: null,
    talk_seconds: 0, transfers: [], end_reason: null, seq: 2,
  };
  const internal = { ...base, direction: "internal", from_number: "101",
    from_name: "Olivia Bennett", to_number: "102", to_name: "James Whitfield" };
  const group = { ...base, state: "answered", rung: ["103", "104"], agents: ["104"],
    current: ["104"], answered_by: "104", missed: false, answered_at: 110 };
  const blind = { ...base, state: "answered", rung: ["101", "102"], agents: ["101", "102"],
    current: ["102"], answered_by: "101", missed: false, answered_at: 110,
    transfers: [{ kind: "blind", at: 120, from: "101", to: "102" }] };
  const missedInternal = { ...internal, state: "ended", ended_at: 115, end_reason: "no_answer" };
  const view = (card, ext) => { const v = c.viewOf(card, ext); return `${v.kind}/${v.badge}`; };
  return {
    numbers: [
      c.formatNumber("+447700900123", "44"), c.formatNumber("+442079460381", "44"),
      c.formatNumber("+441134960215", "44"), c.formatNumber("+12025550143", "44"),
      c.formatNumber("0061491570156", "44"), c.formatNumber("+447700900123", null),
      c.formatNumber("102", "44"), c.formatNumber(null, "44"),
    ],
    durations: [c.formatDuration(0), c.formatDuration(65.7), c.formatDuration(3725)],
    remote: [
      c.remoteParty(internal, "101").number, c.remoteParty(internal, "102").number,
      c.remoteParty({ ...base, direction: "outbound", to_number: "+12025550143" }, "101").number,
    ],
    views: [
      view(base, "101"), view({ ...base, direction: "outbound" }, "101"),
      view(group, "103"), view(group, "104"), view(blind, "101"), view(blind, "102"),
      view({ ...base, state: "held", answered_at: 110, current: ["101"] }, "101"),
      view(missedInternal, "102"), view(missedInternal, "101"),
    ],
    outcomes: [
      c.outcomeOf(missedInternal, "102").label, c.outcomeOf(blind, "101").label,
      c.outcomeOf({ ...base, state: "ended", end_reason: "voicemail" }, "101").label,
    ],
    timers: [
      c.timerSeconds(base, 130), c.timerSeconds(group, 130),
      c.timerSeconds({ ...group, state: "ended", ended_at: 170 }, 500),
    ],
    fragment: fragmentPairs("#token=a+b%2Fc-_&tenant=t1&flag"),
    backoff: [backoffDelay(0, () => 0), backoffDelay(0, () => 1), backoffDelay(3, () => 0.5),
      backoffDelay(12, () => 1)],
  };
}"""


async def test_card_logic(demo: DemoSystem, pages: Pages) -> None:
    page = await pages.open(f"{demo.http.url}/softphone")
    result = await page.evaluate(CARD_LOGIC)
    assert result["numbers"] == [
        "07700 900123",
        "020 7946 0381",
        "0113 496 0215",
        "+1 202-555-0143",
        "+61 491 570 156",
        "+44 7700 900123",
        "Ext. 102",
        "Unknown number",
    ]
    assert result["durations"] == ["00:00", "01:05", "1:02:05"]
    assert result["remote"] == ["102", "101", "+12025550143"]
    assert result["views"] == [
        "ringing/Ringing",
        "dialling/Calling",
        "away/Answered elsewhere",
        "connected/Connected",
        "away/Transferred",
        "connected/Connected",
        "held/On hold",
        "ended/Missed",
        "ended/No answer",
    ]
    assert result["outcomes"] == ["Missed", "Transferred to 102", "Missed · voicemail"]
    assert result["timers"] == [30, 20, 60]
    assert result["backoff"] == [750, 1250, 8000, 30000]
    assert result["fragment"] == [["token", "a+b/c-_"], ["tenant", "t1"], ["flag", ""]]
