"""The admin page's panel of Salesforce writes that failed, in a real browser against the real
server, the demo phone system and the fake Salesforce refusing a call's Task with a
validation rule: the panel shows Salesforce's own words; once the rule is fixed, "Retry now"
writes exactly one Task; "Discard" (two clicks) drops a write for good."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from playwright.async_api import Page, expect

from ctibridge.demo.directory import DEMO
from ctibridge.launcher import DemoSystem
from ctibridge.storage import SqlStorage
from ctibridge.storage.outbox_index import OutboxIndex
from ctibridge.types import TenantId
from tests.browser.conftest import WIDE, Pages, scripted_call
from tests.fakes.fake_salesforce import FakeSalesforce
from tests.integration.test_salesforce_calls import stack

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="session")]

SARAH = DEMO.callers[0]
RULE = "Call Result is required: pick one before saving a logged call"


@pytest_asyncio.fixture(loop_scope="session")
async def fake() -> AsyncIterator[FakeSalesforce]:
    async with FakeSalesforce() as server:
        yield server


@pytest_asyncio.fixture(loop_scope="session")
async def system(tmp_path: Path, fake: FakeSalesforce) -> AsyncIterator[DemoSystem]:
    """The demo with Salesforce as its CRM: the org stored, agents 101 and 102 its users."""
    async with stack(tmp_path, fake) as running:
        yield running


async def refused_calls(system: DemoSystem, fake: FakeSalesforce, count: int) -> None:
    """``count`` answered calls whose Tasks Salesforce refuses; once each has failed once,
    the background worker stops, so only the admin's buttons try them again."""
    fake.add_validation_rule("Task", RULE, field="CallDisposition")
    for seed in range(count):
        call = scripted_call(
            system, "inbound_answered", seed=seed + 1, agent="101", caller=SARAH.number,
            ring_seconds=2, talk_seconds=75,
        )  # fmt: skip
        await call.play_rest()
    storage = system.services.storage
    assert isinstance(storage, SqlStorage)
    index = OutboxIndex(storage)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 10
    while await index.count_failing(TenantId(DEMO.account_id)) < count:
        assert loop.time() < deadline, "the refused logs never reached the outbox"
        await asyncio.sleep(0.02)
    logging_service = system.services.crm_logging
    assert logging_service is not None
    await logging_service.worker.stop()


async def open_admin(system: DemoSystem, pages: Pages) -> Page:
    return await pages.open(f"{system.admin_url()}&tenant={DEMO.account_id}", viewport=WIDE)


def task_calls(fake: FakeSalesforce) -> list[Any]:
    return [t["CallObject"] for t in fake.records("Task")]


async def test_a_refused_task_shows_salesforce_words_and_retry_now_writes_it_once(
    system: DemoSystem, fake: FakeSalesforce, pages: Pages, artifacts: Path
) -> None:
    await refused_calls(system, fake, 1)
    page = await open_admin(system, pages)
    panel = page.get_by_test_id("outbox-panel")
    await expect(panel).to_be_visible()
    await expect(panel.get_by_role("heading")).to_contain_text("Salesforce writes that failed")
    await expect(page.get_by_test_id("outbox-count")).to_have_text("1")
    item = panel.get_by_test_id("outbox-item")
    await expect(item).to_have_count(1)
    await expect(item.get_by_test_id("outbox-subject")).to_have_text(
        re.compile(
            r"^Inbound Call at \d\d:\d\d:\d\d Europe/London from 07700900123 \(Sarah Mitchell\)$"
        )
    )
    await expect(item).to_contain_text(DEMO.agent("101").name)
    await expect(item.get_by_test_id("outbox-error-code")).to_have_text(
        "FIELD_CUSTOM_VALIDATION_EXCEPTION"
    )
    await expect(item.get_by_test_id("outbox-error-message")).to_have_text(RULE)
    await expect(item.get_by_test_id("outbox-attempts")).to_contain_text("1 attempt")
    await expect(page.get_by_test_id("outbox-empty")).to_be_hidden()
    await panel.screenshot(path=artifacts / "admin-outbox-panel.png")
    await page.screenshot(path=artifacts / "admin-outbox.png", full_page=True)

    # Still refused: the item stays, with one more attempt, and the admin is told why.
    await item.get_by_test_id("outbox-retry").click()
    await expect(page.get_by_test_id("outbox-notice")).to_contain_text(
        f"Salesforce refused it again: {RULE}"
    )
    await expect(item.get_by_test_id("outbox-attempts")).to_contain_text("2 attempts")
    assert fake.records("Task") == []

    fake.clear_validation_rules()  # the admin fixed the rule in Salesforce
    await item.get_by_test_id("outbox-retry").click()
    await expect(page.get_by_test_id("outbox-notice")).to_contain_text("Written to Salesforce")
    await expect(panel.get_by_test_id("outbox-item")).to_have_count(0)
    await expect(page.get_by_test_id("outbox-empty")).to_be_visible()
    await expect(page.get_by_test_id("outbox-count")).to_be_hidden()
    await page.screenshot(path=artifacts / "admin-outbox-clear.png")
    assert len(task_calls(fake)) == 1
    assert await system.services.storage.outbox_pending(TenantId(DEMO.account_id)) == 0


async def test_discard_asks_twice_and_drops_the_write(
    system: DemoSystem, fake: FakeSalesforce, pages: Pages
) -> None:
    await refused_calls(system, fake, 2)
    page = await open_admin(system, pages)
    items = page.get_by_test_id("outbox-item")
    await expect(items).to_have_count(2)
    await expect(page.get_by_test_id("outbox-count")).to_have_text("2")
    first = items.first
    discard = first.get_by_test_id("outbox-discard")
    await discard.click()
    await expect(discard).to_have_text("Click again to discard")
    await expect(items).to_have_count(2)
    await discard.click()
    await expect(page.get_by_test_id("outbox-notice")).to_contain_text("Discarded")
    await expect(items).to_have_count(1)
    await expect(page.get_by_test_id("outbox-count")).to_have_text("1")
    # Only the other write is left to try, however long one waits.
    left = await system.services.storage.outbox_due(time.time() + 1e9, 10)
    assert [i.item_id for i in left] == [int(await items.first.get_attribute("data-item-id") or 0)]
    assert fake.records("Task") == []
