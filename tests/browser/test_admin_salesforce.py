"""The admin page's Salesforce panel and live agent presence, in a real browser against the
real server, the demo phone system and the fake Salesforce (its own two ports)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest
import pytest_asyncio
from playwright.async_api import Locator, Page, Route, expect
from websockets.asyncio.client import ClientConnection, connect

from ctibridge.demo.directory import DEMO
from ctibridge.launcher import DemoSystem
from ctibridge.types import AgentId, TenantId
from tests.browser.conftest import WIDE, Pages, eventually, scripted_call
from tests.fakes.fake_salesforce import FakeSalesforce
from tests.integration.test_salesforce_connect import stack

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="session")]


@pytest_asyncio.fixture(loop_scope="session")
async def fake() -> AsyncIterator[FakeSalesforce]:
    async with FakeSalesforce() as server:
        yield server


@pytest_asyncio.fixture(loop_scope="session")
async def system(tmp_path: Path, fake: FakeSalesforce) -> AsyncIterator[DemoSystem]:
    """The demo with Salesforce as its CRM; the app's callback registered at the fake."""
    async with stack(tmp_path, fake) as running:
        await eventually(
            lambda: running.services.status()["connectors"][0]["connected"],
            within=10,
            what="the Kazoo connector",
        )
        yield running


def admin_link(system: DemoSystem) -> str:
    return f"{system.admin_url()}&tenant={DEMO.account_id}"


async def next_frame(socket: ClientConnection, kind: str) -> dict[str, Any]:
    """The next frame of type ``kind`` (others skipped), within five seconds."""
    async with asyncio.timeout(5):
        while True:
            frame: dict[str, Any] = json.loads(await socket.recv())
            if frame["type"] == kind:
                return frame


def agent_row(page: Page, extension: str) -> Locator:
    return page.locator(f"[data-testid=agent-row][data-extension='{extension}']")


async def test_connect_match_and_disconnect_from_the_panel(
    system: DemoSystem, fake: FakeSalesforce, pages: Pages, artifacts: Path
) -> None:
    page = await pages.open(admin_link(system), viewport=WIDE)
    panel = page.get_by_test_id("sf-panel")
    await expect(panel).to_be_visible()
    await expect(page.get_by_test_id("sf-state")).to_have_attribute("data-state", "disconnected")
    await expect(page.get_by_test_id("sf-match")).to_be_hidden()

    visited: list[str] = []
    page.on("request", lambda r: visited.append(r.url) if r.is_navigation_request() else None)
    await panel.get_by_role("button", name="Connect Salesforce").click()
    await expect(page.get_by_test_id("sf-state")).to_have_attribute("data-state", "connected")
    authorize = [u for u in visited if u.startswith(f"{fake.login_url}/services/oauth2/authorize")]
    assert len(authorize) == 1, visited
    assert any("/salesforce/callback?code=" in u for u in visited), visited
    await expect(page.get_by_test_id("sf-notice")).to_have_text("Salesforce is connected.")
    assert page.url == f"{system.http.url}/admin"  # the flag is gone from the address bar
    await expect(page.get_by_test_id("sf-user")).to_have_text(
        "Integration User (integration@example.com)"
    )
    await expect(page.get_by_test_id("sf-instance")).to_have_text(fake.instance_url[7:])
    await expect(page.get_by_test_id("sf-usage")).to_contain_text(f"of {fake.API_MAX:,}")

    fake.add_record(
        "User", {"Name": "Olivia B.", "FederationIdentifier": "olivia.bennett", "IsActive": True}
    )
    fake.add_record(
        "User",
        {"Name": "James W.", "Email": "james.whitfield@harbourside.example", "IsActive": True},
    )
    for name in ("Priya Raman", "Priya Raman (admin)"):
        fake.add_record(
            "User", {"Name": name, "Email": "priya.raman@harbourside.example", "IsActive": True}
        )
    await page.get_by_role("button", name="Match agents to Salesforce users").click()
    report = page.get_by_test_id("sf-report")
    await expect(report).to_be_visible()
    await expect(page.get_by_test_id("sf-matched")).to_have_text("2 matched")
    await expect(page.get_by_test_id("sf-ambiguous")).to_have_text("1 ambiguous")
    await expect(page.get_by_test_id("sf-unmatched")).to_have_text("3 unmatched")
    priya = report.locator("[data-testid=sf-report-row][data-agent-id=agent-103]")
    await expect(priya).to_have_attribute("data-outcome", "ambiguous")
    await expect(priya).to_contain_text("2 users: Priya Raman, Priya Raman (admin)")
    olivia = report.locator("[data-testid=sf-report-row][data-agent-id=agent-101]")
    await expect(olivia).to_contain_text("Olivia B.")
    await expect(olivia).to_contain_text("federation id")
    await page.screenshot(path=artifacts / "admin-salesforce.png", full_page=True)
    stored = await system.services.storage.get_agent(AgentId("agent-101"))
    assert stored is not None and stored.crm_user_id and stored.crm_user_id.startswith("005")

    disconnect = page.get_by_test_id("sf-disconnect")
    await disconnect.click()
    await expect(disconnect).to_have_text("Click again to disconnect")
    await disconnect.click()
    await expect(page.get_by_test_id("sf-state")).to_have_attribute("data-state", "disconnected")
    await expect(page.get_by_test_id("sf-notice")).to_contain_text("disconnected")
    await expect(report).to_be_hidden()


async def test_an_admin_who_denies_access_sees_salesforce_words(
    system: DemoSystem, fake: FakeSalesforce, pages: Pages, artifacts: Path
) -> None:
    page = await pages.open(admin_link(system), viewport=WIDE)

    async def deny(route: Route) -> None:
        """Salesforce's answer when the admin clicks Deny: back to the callback, with why."""
        state = parse_qs(urlsplit(route.request.url).query)["state"][0]
        query = urlencode(
            {
                "error": "access_denied",
                "error_description": "end-user denied authorization",
                "state": state,
            }
        )
        await route.fulfill(status=302, headers={"Location": f"{fake.REDIRECT_URI}?{query}"})

    await page.route(f"{fake.login_url}/services/oauth2/authorize*", deny)
    await page.get_by_role("button", name="Connect Salesforce").click()
    card = page.get_by_test_id("salesforce-error")
    await expect(card).to_contain_text("Salesforce is not connected")
    await expect(card).to_contain_text("Salesforce did not connect the org")
    await expect(card.get_by_test_id("salesforce-error-code")).to_have_text("access_denied")
    await expect(card).to_contain_text("end-user denied authorization")
    await page.screenshot(path=artifacts / "admin-salesforce-denied.png")
    await card.get_by_role("link", name="Back to the admin page").click()
    await expect(page.get_by_test_id("sf-state")).to_have_attribute("data-state", "disconnected")
    tenant = await system.services.storage.get_tenant(TenantId(DEMO.account_id))
    assert tenant is not None and "salesforce" not in tenant.settings


async def test_agent_presence_is_shown_live(
    system: DemoSystem, pages: Pages, artifacts: Path
) -> None:
    page = await pages.open(admin_link(system), viewport=WIDE)
    olivia = agent_row(page, "101")
    await expect(olivia).to_have_attribute("data-status", "available")
    socket_url = system.http.url.replace("http", "ws", 1) + f"/ws?token={system.tokens['101']}"
    async with (
        httpx.AsyncClient(base_url=system.http.url) as client,
        connect(socket_url) as agent_socket,
    ):
        await next_frame(agent_socket, "snapshot")  # subscribed: it will see what follows
        headers = {"Authorization": f"Bearer {system.tokens['101']}"}
        answer = await client.put("/api/me/presence", json={"status": "away"}, headers=headers)
        assert answer.status_code == 200 and answer.json()["status"] == "away"
        await expect(olivia).to_have_attribute("data-status", "away")
        frame = await next_frame(agent_socket, "presence")  # the agent's own softphone too
        assert (frame["agent_id"], frame["status"]) == ("agent-101", "away")
        await expect(olivia.get_by_test_id("presence")).to_have_text("Away")

        call = scripted_call(system, "inbound_answered", agent="101", caller="+441632960274")
        await call.play_until(1)
        await expect(olivia).to_have_attribute("data-presence", "ringing")
        await expect(olivia).to_have_attribute("data-status", "away")  # rung, not on a call
        await call.play_until(30)
        await expect(olivia).to_have_attribute("data-status", "on_call")
        await expect(olivia.get_by_test_id("presence")).to_have_text("On a call")
        await page.screenshot(path=artifacts / "admin-presence.png")
        await call.play_rest()
        await expect(olivia).to_have_attribute("data-status", "away")
        await expect(olivia.get_by_test_id("presence")).to_have_text("Away")
        mine = (await client.get("/api/me/presence", headers=headers)).json()
        assert (mine["status"], mine["chosen"]) == ("away", "away")
