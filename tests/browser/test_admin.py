"""The admin view in a real browser against the real server and demo phone system."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.async_api import Locator, Page, expect

from ctibridge.demo.directory import DEMO
from ctibridge.launcher import DemoSystem
from tests.browser.conftest import WIDE, Pages, scripted_call

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="session")]

RING = 1
"""Scenario second at which an inbound call reaches the agent's phone."""


async def connected(page: Page) -> None:
    await expect(page.get_by_test_id("connection")).to_have_attribute("data-status", "connected")


def agent_row(page: Page, extension: str) -> Locator:
    return page.locator(f"[data-testid=agent-row][data-extension='{extension}']")


async def test_live_calls_agents_and_recent_calls(
    demo: DemoSystem, pages: Pages, artifacts: Path
) -> None:
    page = await pages.open(demo.admin_url(), viewport=WIDE)
    await connected(page)
    assert "token" not in page.url
    # The demo's admin token is for every tenant: the page waits to see one.
    await expect(page.get_by_test_id("tenant-prompt")).to_be_visible()

    inbound = scripted_call(
        demo, "inbound_answered", agent="101", caller="+441632960274", ring_seconds=5
    )
    internal = scripted_call(
        demo, "internal_answered", seed=3, caller="102", callee="103", ring_seconds=3
    )
    await inbound.play_until(RING)
    await internal.play_until(0)
    await expect(page.get_by_test_id("tenant-select")).to_have_value(DEMO.account_id)
    await expect(page.get_by_test_id("tenant-prompt")).to_be_hidden()

    rows = page.get_by_test_id("live-call")
    await expect(rows).to_have_count(2)
    ringing = page.locator(f"[data-testid=live-call][data-call-id='{inbound.call_id()}']")
    await expect(ringing).to_have_attribute("data-state", "ringing")
    await expect(ringing).to_contain_text("Peter Lawson")
    await expect(ringing).to_contain_text("01632 960274")
    await expect(page.get_by_test_id("agent-row")).to_have_count(len(DEMO.agents))
    await expect(agent_row(page, "101")).to_contain_text("Olivia Bennett")
    await expect(agent_row(page, "101")).to_have_attribute("data-presence", "ringing")
    await expect(agent_row(page, "103")).to_have_attribute("data-presence", "ringing")
    await expect(agent_row(page, "104")).to_have_attribute("data-presence", "available")

    await inbound.play_until(RING + 5)
    await internal.play_until(3)
    await expect(ringing).to_have_attribute("data-state", "answered")
    await expect(ringing).to_contain_text("Olivia Bennett (101)")
    await expect(agent_row(page, "101")).to_have_attribute("data-presence", "busy")
    await expect(agent_row(page, "103")).to_have_attribute("data-presence", "busy")
    await expect(page.get_by_test_id("stat-active")).to_have_text("2")
    await expect(page.get_by_test_id("stat-busy")).to_have_text("3")
    timer = ringing.get_by_test_id("call-timer")
    before = await timer.inner_text()
    await expect(timer).not_to_have_text(before, timeout=3000)
    await page.screenshot(path=artifacts / "admin-live.png")

    await inbound.play_rest()
    await internal.play_rest()
    recent = page.get_by_test_id("recent-row")
    await expect(recent).to_have_count(2, timeout=8000)
    done = page.locator(f"[data-testid=recent-row][data-call-id='{inbound.call_id()}']")
    await expect(done.get_by_test_id("outcome")).to_have_text("Answered")
    await expect(ringing).to_have_attribute("data-state", "ended")
    await expect(page.get_by_test_id("stat-active")).to_have_text("0")
    await expect(agent_row(page, "101")).to_have_attribute("data-presence", "available")
    await page.screenshot(path=artifacts / "admin-recent.png")


async def test_the_token_form_and_picking_a_tenant_by_id(
    demo: DemoSystem, pages: Pages, artifacts: Path
) -> None:
    page = await pages.open(f"{demo.http.url}/admin", viewport=WIDE)
    await expect(page.get_by_test_id("signin-form")).to_be_visible()
    await page.get_by_label("Admin token", exact=True).fill(demo.tokens["101"])
    await page.get_by_role("button", name="Open the admin view").click()
    await expect(page.get_by_test_id("signin-message")).to_contain_text("agents use the softphone")

    await page.get_by_label("Admin token", exact=True).fill(demo.services.admin_token)
    await page.get_by_role("button", name="Open the admin view").click()
    await connected(page)
    await page.get_by_label("Tenant id").fill(DEMO.account_id)
    await page.get_by_role("button", name="Show").click()
    await expect(page.get_by_test_id("agent-row")).to_have_count(len(DEMO.agents))
    await expect(page.get_by_test_id("recent-empty")).to_be_visible()
    await page.screenshot(path=artifacts / "admin-empty.png")

    await page.reload()
    await connected(page)
    await expect(page.get_by_test_id("tenant-select")).to_have_value(DEMO.account_id)
    await expect(page.get_by_test_id("agent-row")).to_have_count(len(DEMO.agents))
