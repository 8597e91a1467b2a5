"""The CRM console and the screen pop, in a real browser against the real server, the demo
phone system and the built-in CRM filled with the demo data set."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.async_api import Locator, Page, expect

from ctibridge.crm.base import CallLog, CrmRef
from ctibridge.demo.directory import DEMO
from ctibridge.demo.recordings import CONTENT_TYPE, call_sound, recording_id
from ctibridge.demo.scenarios.script import greg_from_unix
from ctibridge.launcher import DemoSystem
from ctibridge.services.recordings import recording_url
from tests.browser.conftest import WIDE, Pages, ScriptedCall, scripted_call
from tests.browser.test_recordings import play_recorded_call, recording_rows

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="session")]

RING = 1
"""Scenario second at which the agent's phone starts ringing."""

MARK_DAVIES = "+447700900457"
"""A demo caller with exactly one record (a contact, on his mobile)."""
PETER_LAWSON = "+441632960274"
"""His direct line is also his firm's number: a contact and an account."""
UNKNOWN = "+12025550199"
"""In no record."""
DEMO_OLIVIA = DEMO.agent("101")


async def until(check: Callable[[], Awaitable[Any]], *, within: float = 8.0, what: str) -> Any:
    """Await ``check()`` until it returns something truthy; fail after ``within`` seconds."""
    deadline = time.monotonic() + within
    while True:
        result = await check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {within}s waiting for {what}")
        await asyncio.sleep(0.05)


class CrmApi:
    """The REST API as an agent sees it."""

    def __init__(self, demo: DemoSystem, extension: str = "101") -> None:
        self.client = httpx.AsyncClient(
            base_url=demo.http.url, headers={"Authorization": f"Bearer {demo.tokens[extension]}"}
        )

    async def lookup(self, number: str) -> list[dict[str, Any]]:
        response = await self.client.get("/api/crm/lookup", params={"number": number})
        response.raise_for_status()
        items: list[dict[str, Any]] = response.json()["items"]
        return items

    async def record(self, object_name: str, record_id: str) -> dict[str, Any]:
        response = await self.client.get(f"/api/crm/records/{object_name}/{record_id}")
        response.raise_for_status()
        body: dict[str, Any] = response.json()
        return body

    async def logged_calls(self, object_name: str, record_id: str) -> list[str]:
        record = await self.record(object_name, record_id)
        return [a["call_id"] for a in record["activities"]]

    async def close(self) -> None:
        await self.client.aclose()


def console_url(demo: DemoSystem, path: str = "/console", extension: str = "101") -> str:
    return f"{demo.http.url}{path}#token={demo.tokens[extension]}"


async def connected(page: Page) -> None:
    await expect(page.get_by_test_id("connection")).to_have_attribute("data-status", "connected")


async def settled(card: Locator) -> None:
    await expect(card).not_to_have_class(re.compile(r"\bis-entering\b"))


def chosen(demo: DemoSystem, call_id: str, agent_id: str = "agent-101") -> CrmRef | None:
    logging = demo.services.crm_logging
    assert logging is not None
    return logging.context(call_id, agent_id).chosen


async def test_a_known_caller_pops_their_record_and_the_call_is_logged_there(
    demo: DemoSystem, pages: Pages, artifacts: Path
) -> None:
    api = CrmApi(demo)
    [mark] = await api.lookup(MARK_DAVIES)
    page = await pages.open(console_url(demo), viewport=WIDE)
    await connected(page)
    await expect(page.get_by_test_id("record-row").first).to_be_visible()

    call = scripted_call(demo, "inbound_answered", agent="101", caller=MARK_DAVIES, ring_seconds=3)
    await call.play_until(RING)
    card = page.get_by_test_id("call-card")
    await expect(card).to_have_attribute("data-state", "ringing")
    crm = card.get_by_test_id("crm")
    await expect(crm).to_have_attribute("data-crm", "chosen")
    # The screen pop: the caller's record opens by itself, and the server is told.
    record_page = page.get_by_test_id("record-page")
    await expect(record_page).to_have_attribute("data-record-id", mark["id"])
    assert page.url.endswith(f"/console/records/Contact/{mark['id']}")
    await expect(page.get_by_test_id("record-name")).to_have_text("Mark Davies")
    await expect(page.get_by_test_id("call-link")).to_contain_text("logged to this record")
    assert chosen(demo, call.call_id()) == CrmRef("Contact", mark["id"])
    await expect(crm.get_by_test_id("crm-record")).to_contain_text("Mark Davies")
    await settled(card)
    await page.screenshot(path=artifacts / "console-screen-pop.png")

    await call.play_rest()
    await expect(card).to_have_attribute("data-state", "ended")
    call_id = call.call_id()
    await until(lambda: _has(api.logged_calls("Contact", mark["id"]), call_id), what="the log")
    # The open record's history shows the new call without a reload.
    activity = page.get_by_test_id("activity").filter(has_text="Inbound Call")
    await expect(activity.first).to_have_attribute("data-call-id", call_id, timeout=8000)
    await page.screenshot(path=artifacts / "console-logged.png")
    await api.close()


async def _has(calls: Awaitable[list[str]], call_id: str) -> bool:
    return call_id in await calls


async def test_one_match_offers_to_open_it_from_the_softphone(
    demo: DemoSystem, pages: Pages, artifacts: Path
) -> None:
    api = CrmApi(demo)
    [mark] = await api.lookup(MARK_DAVIES)
    page = await pages.open(demo.softphone_url("101"))
    await connected(page)
    call = scripted_call(demo, "inbound_answered", agent="101", caller=MARK_DAVIES, ring_seconds=3)
    await call.play_until(RING)
    crm = page.get_by_test_id("call-card").get_by_test_id("crm")
    await expect(crm).to_have_attribute("data-crm", "single")
    await expect(crm.get_by_test_id("crm-record")).to_contain_text(
        f"Contact · Mobile · {mark['number']}"
    )
    open_button = crm.get_by_test_id("crm-open")
    await expect(open_button).to_have_text("Open Mark Davies")
    # The softphone alone does not pop anything by itself; the single match needs no choice.
    assert chosen(demo, call.call_id()) is None
    await settled(page.get_by_test_id("call-card"))
    await page.screenshot(path=artifacts / "softphone-single-match.png")
    async with page.context.expect_page() as opened:
        await open_button.click()
    console = await opened.value
    await expect(console.get_by_test_id("record-page")).to_have_attribute(
        "data-record-id", mark["id"]
    )
    await expect(crm).to_have_attribute("data-crm", "chosen")
    assert chosen(demo, call.call_id()) == CrmRef("Contact", mark["id"])
    await call.play_rest()
    await api.close()


async def test_several_matches_show_the_chooser_and_the_chosen_record_gets_the_log(
    demo: DemoSystem, pages: Pages, artifacts: Path
) -> None:
    api = CrmApi(demo)
    contact, account = await api.lookup(PETER_LAWSON)
    assert (contact["object"], account["object"]) == ("Contact", "Account")
    page = await pages.open(demo.softphone_url("101"))
    await connected(page)

    # Internal calls are never looked up: no CRM part on the card.
    internal = scripted_call(demo, "internal_answered", caller="102", callee="101")
    await internal.play_until(RING)
    card = page.locator(f"[data-testid=call-card][data-call-id='{internal.call_id()}']")
    await expect(card).to_have_attribute("data-state", "ringing")
    await expect(card.get_by_test_id("crm")).to_be_hidden()
    assert demo.services.screenpop is not None
    assert demo.services.screenpop.card_extra(_stored(demo, internal.call_id())) == {}
    await internal.play_rest()

    call = scripted_call(
        demo, "inbound_answered", seed=2, agent="101", caller=PETER_LAWSON, ring_seconds=3
    )
    await call.play_until(RING + 3)
    card = page.get_by_test_id("call-card").filter(has_text="Peter Lawson")
    await expect(card).to_have_attribute("data-state", "answered")
    crm = card.get_by_test_id("crm")
    await expect(crm).to_have_attribute("data-crm", "many")
    choices = crm.get_by_test_id("crm-choice")
    await expect(choices).to_have_count(2)
    # Name, object, the field that matched and the number as the CRM stores it.
    await expect(choices.nth(0)).to_contain_text("Peter Lawson")
    await expect(choices.nth(0)).to_contain_text(f"Contact · Phone · {contact['number']}")
    await expect(choices.nth(0)).to_contain_text("Lawson & Co Solicitors")
    await expect(choices.nth(1)).to_contain_text(f"Account · Phone · {account['number']}")
    assert chosen(demo, call.call_id()) is None
    await settled(card)
    await page.screenshot(path=artifacts / "softphone-chooser.png")

    await choices.filter(has_text="Account").click()
    await expect(crm).to_have_attribute("data-crm", "chosen")
    await expect(crm.get_by_test_id("crm-chosen")).to_contain_text("Lawson & Co Solicitors")
    await until(
        lambda: _is(chosen(demo, call.call_id()), CrmRef("Account", account["id"])),
        what="the choice on the server",
    )
    await page.screenshot(path=artifacts / "softphone-chosen.png")
    # "Open" shows the record in the console, in a tab of its own.
    async with page.context.expect_page() as opened:
        await crm.get_by_test_id("crm-open").click()
    console = await opened.value
    await expect(console.get_by_test_id("record-name")).to_have_text("Lawson & Co Solicitors")
    assert console.url.endswith(f"/console/records/Account/{account['id']}")

    await call.play_rest()
    call_id = call.call_id()
    await until(lambda: _has(api.logged_calls("Account", account["id"]), call_id), what="the log")
    assert call_id not in await api.logged_calls("Contact", contact["id"])
    await api.close()


def _stored(demo: DemoSystem, call_id: str) -> Any:
    calls = demo.services.calls.active(demo.account.account_id)
    return next(s for s in calls if s.call.call_id == call_id)


async def _is(value: Any, expected: Any) -> bool:
    return bool(value == expected)


async def test_no_match_offers_new_and_the_new_record_gets_the_log(
    demo: DemoSystem, pages: Pages, artifacts: Path
) -> None:
    api = CrmApi(demo)
    assert await api.lookup(UNKNOWN) == []
    page = await pages.open(console_url(demo), viewport=WIDE)
    await connected(page)
    call = scripted_call(demo, "inbound_answered", agent="101", caller=UNKNOWN, ring_seconds=2)
    await call.play_until(RING + 2)
    card = page.get_by_test_id("call-card")
    await expect(card).to_have_attribute("data-state", "answered")
    crm = card.get_by_test_id("crm")
    await expect(crm).to_have_attribute("data-crm", "none")
    await expect(crm).to_contain_text("No CRM record for +1 202-555-0199")
    await crm.get_by_test_id("crm-new").click()
    form = crm.get_by_test_id("crm-new-form")
    await expect(form.get_by_test_id("field-phone")).to_have_value(UNKNOWN)
    await form.get_by_test_id("new-lead").click()
    await form.get_by_test_id("field-first_name").fill("Grace")
    await form.get_by_test_id("field-last_name").fill("Okonkwo")
    await form.get_by_test_id("field-company").fill("Bayview Relocations")
    await settled(card)
    await page.evaluate("window.scrollTo(0, 0)")  # Playwright scrolled to reach the form
    await page.screenshot(path=artifacts / "console-new-record.png")
    await form.get_by_test_id("crm-create").click()

    # The new record opens, and the call is linked to it.
    record_page = page.get_by_test_id("record-page")
    await expect(record_page).to_have_attribute("data-object", "Lead")
    await expect(page.get_by_test_id("record-name")).to_have_text("Grace Okonkwo")
    await expect(page.get_by_test_id("call-link")).to_be_visible()
    await expect(crm).to_have_attribute("data-crm", "chosen")
    lead_id = await record_page.get_attribute("data-record-id")
    assert lead_id
    lead = await api.record("Lead", lead_id)
    assert lead["fields"]["company"] == "Bayview Relocations"
    assert lead["fields"]["phone"] == UNKNOWN
    assert chosen(demo, call.call_id()) == CrmRef("Lead", lead_id)

    await call.play_rest()
    call_id = call.call_id()
    await until(lambda: _has(api.logged_calls("Lead", lead_id), call_id), what="the log")
    await expect(page.get_by_test_id("activity").first).to_have_attribute(
        "data-call-id", call_id, timeout=8000
    )
    await api.close()


async def test_click_to_dial_from_a_record_page_reaches_the_phone_system(
    demo: DemoSystem, pages: Pages, artifacts: Path
) -> None:
    api = CrmApi(demo)
    [mark] = await api.lookup(MARK_DAVIES)
    demo.kazoo.on_quickcall = None  # this test plays the call itself, at its own pace
    page = await pages.open(console_url(demo), viewport=WIDE)
    await connected(page)
    await page.get_by_test_id("record-search").fill("Mark Davies")
    row = page.get_by_test_id("record-row").filter(has_text="Mark Davies")
    await expect(row).to_have_count(1)
    assert "q=Mark+Davies" in page.url
    await row.get_by_test_id("record-link").click()
    await expect(page.get_by_test_id("record-page")).to_have_attribute("data-record-id", mark["id"])
    assert page.url.endswith(f"/console/records/Contact/{mark['id']}")

    link = page.get_by_test_id("record-fields").get_by_test_id("dial-link")
    await expect(link).to_have_text("07700 900457")
    await link.click()
    await expect(page.get_by_test_id("toast")).to_contain_text("Calling Mark Davies")
    quick = await until(
        lambda: _first(demo.kazoo.quickcalls()), what="the quickcall at the phone system"
    )
    assert quick.number == MARK_DAVIES
    assert quick.target_id in (DEMO_OLIVIA.user_id, DEMO_OLIVIA.device_id)
    request_id = quick.custom_application_vars["ctibridge_req"]

    call = scripted_call(
        demo, "click_to_dial", agent="101", number=MARK_DAVIES, request_id=request_id,
        ring_seconds=1, talk_seconds=5,
    )  # fmt: skip
    start = greg_from_unix(time.time())
    await play_on_scenario_clock(call, start, until=1)  # the agent's phone answers by itself
    card = page.get_by_test_id("call-card")
    await expect(card).to_have_attribute("data-view", "dialling")
    await play_on_scenario_clock(call, start, until=4)  # the far end rings, and answers
    await expect(card).to_have_attribute("data-state", "answered")
    await expect(card.get_by_test_id("crm")).to_have_attribute("data-crm", "chosen")
    await expect(page.get_by_test_id("call-link")).to_be_visible()
    await settled(card)
    await page.screenshot(path=artifacts / "console-click-to-dial.png")

    await play_on_scenario_clock(call, start, until=60)
    call_id = call.call_id()
    await until(lambda: _has(api.logged_calls("Contact", mark["id"]), call_id), what="the log")
    await expect(page.get_by_test_id("activity").first).to_have_attribute(
        "data-call-id", call_id, timeout=8000
    )
    await api.close()


async def play_on_scenario_clock(call: ScriptedCall, start: int, *, until: float) -> None:
    """Publish the steps of the first ``until`` seconds now, each stamped with its own second
    of the scenario (``ScriptedCall`` stamps a burst with one second; the five legs of a
    quickcall all in one second cannot be told apart)."""
    while call.played < len(call.steps) and call.steps[call.played][0] < until + 1:
        at, step = call.steps[call.played]
        await call.system.publish({**step.data, "timestamp": start + int(at)})
        call.played += 1


async def _first(items: list[Any]) -> Any:
    return items[0] if items else None


async def test_a_record_page_links_recordings_and_unknown_records_say_so(
    demo: DemoSystem, pages: Pages, artifacts: Path
) -> None:
    api = CrmApi(demo)
    [mark] = await api.lookup(MARK_DAVIES)
    crm = demo.services.crm
    assert crm is not None
    # A recorded call whose recordings the demo Kazoo does not have yet.
    account = demo.account.account_id
    names = await play_recorded_call(demo, stored=False)
    [row, *_] = await until(lambda: recording_rows(demo, names), within=15, what="a first try")
    url = recording_url(account, row.ref)
    now = time.time()
    await crm.log_call(
        CallLog(
            key="rec-1:agent-101",
            tenant_id=account,
            call_id=row.call_id,
            agent_id="agent-101",
            crm_user_id=None,
            call_type="Inbound",
            subject="Inbound Call at 09:12:05 Europe/London from 07700900457 (Mark Davies)",
            started_at=now - 3600,
            ended_at=now - 3400,
            duration_seconds=200,
            disposition="Answered",
            who=CrmRef("Contact", mark["id"]),
            recording_url=url,
        )
    )
    page = await pages.open(
        console_url(demo, f"/console/records/Contact/{mark['id']}"), viewport=WIDE
    )
    activity = page.get_by_test_id("activity")
    await expect(activity).to_have_count(1)
    await expect(activity).to_contain_text("Answered · 3m 20s · Olivia Bennett")
    note = activity.get_by_test_id("recording-state")
    await expect(note).to_have_attribute("data-state", "pending")
    await expect(note).to_have_text("Recording — processing…")
    await expect(activity.get_by_test_id("recording-link")).to_have_count(0)
    await page.screenshot(path=artifacts / "console-record-processing.png")

    # Kazoo has the recordings now; the worker's next try stores them; the page looks again.
    for name in names:
        leg = name.removeprefix("call_recording_").removesuffix(".mp3")
        demo.kazoo.add_recording(
            account, recording_id(name), call_sound(), name=name, call_id=leg,
            content_type=CONTENT_TYPE,
        )  # fmt: skip
    service = demo.services.recordings
    assert service is not None
    await service.index.make_due(time.time())
    service.kick()
    link = activity.get_by_test_id("recording-link")
    await expect(link).to_be_visible(timeout=20_000)
    await expect(note).to_have_count(0)
    await link.click()
    audio = activity.get_by_test_id("recording-audio")
    await expect(audio).to_have_attribute("src", re.compile(rf"^{re.escape(url)}\?token=[\w.-]+$"))
    await page.screenshot(path=artifacts / "console-record.png")

    await page.goto(console_url(demo, "/console/records/Contact/no-such-id"))
    await expect(page.get_by_test_id("record-error")).to_contain_text("No such contact")
    await page.get_by_test_id("tab-Lead").click()
    await expect(page.get_by_test_id("record-list-page")).to_have_attribute("data-object", "Lead")
    await expect(page.get_by_test_id("record-row").first).to_be_visible()
    assert page.url.endswith("/console?object=Lead")

    # A record created from the list (no call): it opens, with its number to dial.
    await page.get_by_test_id("new-record").click()
    form = page.get_by_test_id("crm-new-form")
    await expect(form.get_by_test_id("new-lead")).to_have_attribute("aria-checked", "true")
    await form.get_by_test_id("crm-create").click()
    await expect(form).to_contain_text("Enter a last name.")
    await form.get_by_test_id("field-last_name").fill("Adeyemi")
    await form.get_by_test_id("field-phone").fill("0113 496 0999")
    await form.get_by_test_id("crm-create").click()
    await expect(page.get_by_test_id("record-name")).to_have_text("Adeyemi")
    await expect(page.get_by_test_id("record-page")).to_have_attribute("data-object", "Lead")
    await expect(page.get_by_test_id("dial-link")).to_have_text("0113 496 0999")
    await expect(page.get_by_test_id("activities-empty")).to_be_visible()
    await page.go_back()
    await expect(page.get_by_test_id("record-list-page")).to_have_attribute("data-object", "Lead")
    await api.close()


async def test_opening_a_record_during_a_call_links_the_call_to_it(
    demo: DemoSystem, pages: Pages, artifacts: Path
) -> None:
    api = CrmApi(demo)
    contact, account = await api.lookup(PETER_LAWSON)
    page = await pages.open(console_url(demo), viewport=WIDE)
    await connected(page)
    call = scripted_call(demo, "inbound_answered", agent="101", caller=PETER_LAWSON, ring_seconds=2)
    await call.play_until(RING + 2)
    card = page.get_by_test_id("call-card")
    await expect(card).to_have_attribute("data-state", "answered")
    await expect(card.get_by_test_id("crm")).to_have_attribute("data-crm", "many")
    # Several matches: nothing opens by itself.
    await expect(page.get_by_test_id("record-list-page")).to_be_visible()

    # The agent finds the firm in the console: opening it links the call.
    await page.get_by_test_id("tab-Account").click()
    await page.get_by_test_id("record-search").fill("Lawson & Co")
    await page.get_by_test_id("record-link").filter(has_text="Lawson & Co Solicitors").click()
    await expect(page.get_by_test_id("record-page")).to_have_attribute(
        "data-record-id", account["id"]
    )
    await expect(page.get_by_test_id("call-link")).to_contain_text("Peter Lawson")
    await expect(card.get_by_test_id("crm-chosen")).to_contain_text("Lawson & Co Solicitors")
    await until(
        lambda: _is(chosen(demo, call.call_id()), CrmRef("Account", account["id"])),
        what="the choice on the server",
    )
    await settled(card)
    await page.screenshot(path=artifacts / "console-navigated.png")
    # Picking in the card's chooser instead opens that record here.
    await card.get_by_test_id("crm-change").click()
    await card.get_by_test_id("crm-choice").filter(has_text="Peter Lawson").click()
    await expect(page.get_by_test_id("record-page")).to_have_attribute(
        "data-record-id", contact["id"]
    )
    await until(
        lambda: _is(chosen(demo, call.call_id()), CrmRef("Contact", contact["id"])),
        what="the new choice on the server",
    )
    await call.play_rest()
    call_id = call.call_id()
    await until(lambda: _has(api.logged_calls("Contact", contact["id"]), call_id), what="the log")
    await api.close()


async def test_a_call_dialled_by_hand_on_a_record_page_is_logged_there(
    demo: DemoSystem, pages: Pages
) -> None:
    """Seed 002: dialled from the handset while a record is open, the call goes to it."""
    api = CrmApi(demo)
    [mark] = await api.lookup(MARK_DAVIES)
    page = await pages.open(console_url(demo, f"/console/records/Contact/{mark['id']}"))
    await connected(page)
    await expect(page.get_by_test_id("record-name")).to_have_text("Mark Davies")
    call = scripted_call(demo, "outbound_answered", agent="101", number=UNKNOWN, ring_seconds=2)
    await call.play_until(RING)
    card = page.get_by_test_id("call-card")
    await expect(card.get_by_test_id("crm-chosen")).to_contain_text("Mark Davies")
    await until(
        lambda: _is(chosen(demo, call.call_id()), CrmRef("Contact", mark["id"])),
        what="the record on the server",
    )
    await call.play_rest()
    call_id = call.call_id()
    await until(lambda: _has(api.logged_calls("Contact", mark["id"]), call_id), what="the log")
    await api.close()


SCREEN_POP_LOGIC = """async () => {
  const sp = await import("/static/js/screenpop.js");
  const link = await import("/static/js/crmlink.js");
  const views = await import("/static/js/consoleviews.js");
  const { salesforceOrigin } = await import("/static/js/softphone.js");
  const cti = await import("/static/js/opencti.js");
  const rec = (id, object = "Contact") => ({ id, object, name: `R ${id}`, matched_field: "phone" });
  const card = (crm, more = {}) => ({ call_id: "c1", direction: "inbound", crm, ...more });
  const plans = [
    sp.popPlan(card({ status: "pending", number: "+4477" })).kind,
    sp.popPlan(card({ status: "done", number: "+4477", matches: [rec("a")] })).kind,
    sp.popPlan(card({ status: "done", number: "+4477", matches: [rec("a"), rec("b")] })).kind,
    sp.popPlan(card({ status: "done", number: "+4477", matches: [] })).kind,
    sp.popPlan(card({ status: "error", number: "+4477", matches: [] })).kind,
    sp.popPlan(card({ status: "skipped", number: null, matches: [] })).kind,
    sp.popPlan(card(undefined)).kind,
    sp.popPlan(card({ status: "done", matches: [rec("a")] }, { direction: "internal" })).kind,
    sp.popPlan(card({ status: "done", matches: [rec("a"), rec("b")] }), rec("b")).kind,
  ];
  const entry = (id, kind, started, direction = "inbound") =>
    ({ card: { call_id: id, direction, started_at: started }, view: { kind } });
  const focus = [
    link.focusCall([entry("ring", "ringing", 20), entry("talk", "connected", 10)])?.call_id,
    link.focusCall([entry("old", "ringing", 10), entry("new", "ringing", 20)])?.call_id,
    link.focusCall([entry("int", "connected", 10, "internal"), entry("end", "ended", 5)]),
  ];
  const fields = views.orderedFields({ email: "a@b.example", last_name: "Ng", name: "x",
    mobile_phone: "07700 900123", phone: null, first_name: "Al", created_at: 1, custom_x: "y" });
  const api = (response, throws = false) => ({ m(args) {
    if (throws) throw "refused"; setTimeout(() => args.callback(response), 0); } });
  const outcome = (p) => p.then((v) => ["ok", v], (e) => ["error", e.message]);
  return {
    plans,
    focus,
    tails: [link.numberTail("0044 7700 900457"), link.numberTail("+447700900457"),
      link.numberTail("101")],
    fields: fields.map(([name]) => name),
    labels: [sp.fieldLabel("mobile_phone"), sp.fieldLabel("MobilePhone"), sp.objectLabel("Lead")],
    origins: [
      salesforceOrigin("?mode=Lightning&sfdcIframeOrigin=https%3A%2F%2Fa.my.salesforce.com"),
      salesforceOrigin("?mode=Lightning"),
      salesforceOrigin(""),
    ],
    library: cti.libraryUrl("https://a.lightning.force.com"),
    calls: [
      await outcome(
        cti.callOpenCti(api({ success: true, returnValue: { x: 1 }, errors: null }), "m")),
      await outcome(cti.callOpenCti(api({ success: false, returnValue: null,
        errors: [{ code: "INVALID_PARAM", description: "bad" }] }), "m")),
      await outcome(cti.callOpenCti(api(null, true), "m")),
      await outcome(cti.callOpenCti({ m() {} }, "m", {}, 30)),
    ],
  };
}"""


async def test_screen_pop_logic(demo: DemoSystem, pages: Pages) -> None:
    page = await pages.open(f"{demo.http.url}/softphone")
    result = await page.evaluate(SCREEN_POP_LOGIC)
    assert result["plans"] == [
        "pending",
        "single",
        "many",
        "none",
        "error",
        "hidden",
        "hidden",
        "hidden",
        "chosen",
    ]
    assert result["focus"] == ["talk", "new", None]
    assert result["tails"] == ["700900457", "700900457", None]
    assert result["fields"] == ["first_name", "last_name", "email", "mobile_phone", "custom_x"]
    assert result["labels"] == ["Mobile", "Mobile", "Lead"]
    assert result["origins"] == ["https://a.my.salesforce.com", None, None]
    assert result["library"] == (
        "https://a.lightning.force.com/support/api/57.0/lightning/opencti_min.js"
    )
    assert result["calls"] == [
        ["ok", {"x": 1}],
        ["error", "m INVALID_PARAM: bad"],
        ["error", "refused"],
        ["error", "Salesforce did not answer m"],
    ]
