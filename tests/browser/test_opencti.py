"""The softphone inside Salesforce Lightning (Open CTI), against a fake Lightning page on
another origin, the real server, the demo phone system and the built-in CRM.

The fake host's origin (127.0.0.1) is not a Salesforce origin, so the softphone's
Content-Security-Policy rightly does not let it frame the page nor load scripts from it. The
browser asks the server for the softphone as framed by a Salesforce org (STAND_IN), checks that
the policy names that org in ``script-src`` and ``frame-ancestors``, and lets the fake host
stand in for it there. Nothing else of the server's answer changes.
"""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
import pytest_asyncio
from playwright.async_api import FrameLocator, Locator, Page, Route, expect

from ctibridge.crm.base import CrmRef
from ctibridge.demo.directory import DEMO
from ctibridge.demo.scenarios.script import greg_from_unix
from ctibridge.launcher import DemoSystem
from tests.browser.conftest import WIDE, Pages, ScriptedCall, eventually, scripted_call
from tests.browser.test_console import (
    MARK_DAVIES,
    PETER_LAWSON,
    UNKNOWN,
    CrmApi,
    chosen,
    play_on_scenario_clock,
    until,
)
from tests.fakes.fake_salesforce import FakeSalesforce
from tests.fakes.lightning import HostRecord, LightningHost
from tests.integration.test_salesforce_calls import stack as salesforce_stack

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="session")]

RING = 1
STAND_IN = "https://acme.lightning.force.com"


@pytest_asyncio.fixture(loop_scope="session")
async def lightning() -> AsyncIterator[LightningHost]:
    async with LightningHost() as host:
        yield host


def host_record(item: dict[str, Any]) -> HostRecord:
    return HostRecord(item["object"], item["id"], item["name"], (("Phone", item["number"]),))


def crm_records(demo: DemoSystem) -> Callable[[str], Awaitable[HostRecord | None]]:
    """The fake org has the records of the CRM behind ctibridge."""
    crm = demo.services.crm
    assert crm is not None

    async def find(record_id: str) -> HostRecord | None:
        for kind in ("Contact", "Lead", "Account"):
            found = await crm.get_record(demo.account.account_id, CrmRef(kind, record_id))
            if found is not None:
                return HostRecord(kind, record_id, found.name)
        return None

    return find


def policy_of(header: str) -> dict[str, list[str]]:
    directives = (part.split() for part in header.split(";") if part.strip())
    return {d[0]: d[1:] for d in directives}


def as_salesforce_org(lightning: LightningHost, policies: list[dict[str, list[str]]]) -> Any:
    """Fetch the softphone as framed by STAND_IN, then let the fake host be that org."""
    real, stand_in = quote(lightning.origin, safe=""), quote(STAND_IN, safe="")

    async def handle(route: Route) -> None:
        response = await route.fetch(url=route.request.url.replace(real, stand_in))
        headers = dict(response.headers)
        policy = headers["content-security-policy"]
        policies.append(policy_of(policy))
        headers["content-security-policy"] = policy.replace(STAND_IN, lightning.origin)
        await route.fulfill(response=response, headers=headers)

    return handle


async def open_in_lightning(
    demo: DemoSystem,
    lightning: LightningHost,
    pages: Pages,
    records: list[dict[str, Any]],
    *,
    ready: bool = True,
    signed_in: bool = True,
) -> tuple[Page, FrameLocator]:
    """The fake Lightning page with the softphone in its utility bar (agent 101 signed in)."""
    lightning.set_records([host_record(r) for r in records])
    lightning.set_resolver(crm_records(demo))
    lightning.frame(demo.http.url, demo.tokens["101"] if signed_in else None)
    context = await pages.browser.new_context(
        viewport=WIDE,  # type: ignore[arg-type]
        locale="en-GB",
        timezone_id="Europe/London",
        # Both sides are on this machine: Chromium lets a page on one port reach another
        # (the softphone → its server, the library) only with this grant.
        permissions=["local-network-access"],
    )
    pages.contexts.append(context)
    policies: list[dict[str, list[str]]] = []
    await context.route(f"{demo.http.url}/softphone?*", as_salesforce_org(lightning, policies))
    page = await context.new_page()
    page.on("pageerror", lambda exc: pages.errors.append(str(exc)))
    await page.goto(lightning.page_url)
    softphone = page.frame_locator("[data-testid=sf-softphone]")
    await eventually(lambda: policies, what="the softphone page")
    # The server lets the org (and only it) frame the softphone and serve Open CTI.
    assert policies[0]["script-src"] == ["'self'", STAND_IN]
    assert STAND_IN in policies[0]["frame-ancestors"]
    if not ready:
        return page, softphone
    await expect(softphone.get_by_test_id("connection")).to_have_attribute(
        "data-status", "connected"
    )
    await expect(softphone.get_by_test_id("host-status")).to_have_attribute("data-state", "ready")
    return page, softphone


def methods(lightning: LightningHost) -> list[str]:
    """Open CTI methods in the order the softphone called them (its callId counter)."""
    return [c["methodName"] for c in sorted(lightning.calls(), key=lambda c: c["callId"])]


def last_args(lightning: LightningHost, method: str) -> dict[str, Any]:
    found = lightning.calls(method)
    assert found, f"no {method} call"
    args: dict[str, Any] = found[-1]["args"]
    return args


async def test_joins_lightning_and_click_to_dial_reaches_the_phone_system(
    demo: DemoSystem, lightning: LightningHost, pages: Pages, artifacts: Path
) -> None:
    api = CrmApi(demo)
    [mark] = await api.lookup(MARK_DAVIES)
    demo.kazoo.on_quickcall = None  # the test plays the call itself
    page, softphone = await open_in_lightning(demo, lightning, pages, [mark])

    # The library came from the org's origin, at the versioned Lightning path.
    assert lightning.library_requests() == ["/support/api/57.0/lightning/opencti_min.js"]
    await eventually(lambda: "enableClickToDial" in methods(lightning), what="enableClickToDial")
    calls = lightning.calls()
    # One counter from 0, no gaps (the host may record replies out of order: sort first)
    assert sorted(c["callId"] for c in calls) == list(range(len(calls)))
    assert {c["apiVersion"] for c in calls} == {57}
    first = methods(lightning)[:4]
    assert first[0] == "notifyInitializationComplete"
    assert {"onClickToDial", "onNavigationChange", "enableClickToDial"} <= set(first)
    registered = {c["methodName"] for c in calls if c["isListenerRegistered"]}
    assert registered == {"onClickToDial", "onNavigationChange"}

    # The agent opens Mark Davies in Salesforce and clicks his number.
    await page.get_by_test_id(f"sf-nav-{mark['id']}").click()
    await page.get_by_test_id("sf-phone").click()
    quick = await until(lambda: _first(demo.kazoo.quickcalls()), what="the quickcall")
    assert quick.number == MARK_DAVIES
    assert last_args(lightning, "setSoftphonePanelVisibility") == {"visible": True}
    await expect(page.get_by_test_id("sf-panel")).to_have_attribute("data-visible", "true")
    await expect(softphone.get_by_test_id("toast")).to_contain_text("Calling Mark Davies")

    call = scripted_call(
        demo, "click_to_dial", agent="101", number=MARK_DAVIES,
        request_id=quick.custom_application_vars["ctibridge_req"], ring_seconds=1, talk_seconds=5,
    )  # fmt: skip
    start = greg_from_unix(time.time())
    await play_on_scenario_clock(call, start, until=1)
    card = softphone.get_by_test_id("call-card")
    await expect(card).to_have_attribute("data-view", "dialling")
    await play_on_scenario_clock(call, start, until=4)
    await expect(card).to_have_attribute("data-state", "answered")
    await expect(card.get_by_test_id("crm-chosen")).to_contain_text("Mark Davies")
    await expect(page.get_by_test_id("sf-utility")).to_have_text("On a call")
    # An outbound call is not searched: the agent is on the record already.
    assert lightning.calls("searchAndScreenPop") == []
    await page.screenshot(path=artifacts / "lightning-click-to-dial.png")

    await play_on_scenario_clock(call, start, until=60)
    call_id = call.call_id()
    await until(lambda: _has(api, "Contact", mark["id"], call_id), what="the log on the record")
    await api.close()


async def _first(items: list[Any]) -> Any:
    return items[0] if items else None


async def _has(api: CrmApi, object_name: str, record_id: str, call_id: str) -> bool:
    return call_id in await api.logged_calls(object_name, record_id)


async def test_an_inbound_call_opens_the_panel_and_pops_the_caller(
    demo: DemoSystem, lightning: LightningHost, pages: Pages, artifacts: Path
) -> None:
    api = CrmApi(demo)
    [mark] = await api.lookup(MARK_DAVIES)
    page, softphone = await open_in_lightning(demo, lightning, pages, [mark])
    await expect(page.get_by_test_id("sf-panel")).to_have_attribute("data-visible", "false")

    call = scripted_call(demo, "inbound_answered", agent="101", caller=MARK_DAVIES, ring_seconds=3)
    await call.play_until(RING)
    await expect(page.get_by_test_id("sf-panel")).to_have_attribute("data-visible", "true")
    search = await eventually(lambda: lightning.calls("searchAndScreenPop"), what="the search")
    assert search[0]["args"] == {
        "searchParams": MARK_DAVIES,
        "callType": "inbound",
        "deferred": False,
        "defaultFieldValues": {"Phone": MARK_DAVIES},
    }
    assert {"visible": True} in [c["args"] for c in lightning.calls("setSoftphonePanelVisibility")]
    # Salesforce popped the only match; its navigation tells the server.
    await expect(page.get_by_test_id("sf-record-name")).to_have_text("Mark Davies")
    await expect(page.get_by_test_id("sf-utility")).to_have_text("Incoming call")
    card = softphone.get_by_test_id("call-card")
    await expect(card.get_by_test_id("crm-chosen")).to_contain_text("Mark Davies")
    await until(
        lambda: _is(chosen(demo, call.call_id()), CrmRef("Contact", mark["id"])),
        what="the record on the server",
    )
    await expect(card).not_to_have_class(re.compile(r"\bis-entering\b"))
    await page.screenshot(path=artifacts / "lightning-screen-pop.png")

    await call.play_rest()
    call_id = call.call_id()
    await until(lambda: _has(api, "Contact", mark["id"], call_id), what="the log on the record")
    await expect(page.get_by_test_id("sf-utility")).to_have_text("Softphone")
    assert len(lightning.calls("searchAndScreenPop")) == 1
    await api.close()


async def test_several_matches_open_the_search_page_and_the_record_opened_gets_the_log(
    demo: DemoSystem, lightning: LightningHost, pages: Pages, artifacts: Path
) -> None:
    api = CrmApi(demo)
    contact, account = await api.lookup(PETER_LAWSON)
    page, softphone = await open_in_lightning(demo, lightning, pages, [contact, account])

    call = scripted_call(demo, "inbound_answered", agent="101", caller=PETER_LAWSON, ring_seconds=2)
    await call.play_until(RING + 2)
    # Salesforce shows its search page for the number, and the card the chooser.
    pop = await eventually(lambda: lightning.calls("screenPop"), what="the search page pop")
    assert pop[0]["args"] == {"type": "search", "params": {"searchString": PETER_LAWSON}}
    assert lightning.calls("searchAndScreenPop") == []
    await expect(page.get_by_test_id("sf-page")).to_have_attribute("data-page", "search")
    await expect(page.get_by_test_id("sf-search-result")).to_have_count(2)
    card = softphone.get_by_test_id("call-card")
    await expect(card).to_have_attribute("data-state", "answered")
    await expect(card.get_by_test_id("crm-choice")).to_have_count(2)
    # The search page is not a record: nothing is chosen yet.
    assert chosen(demo, call.call_id()) is None
    await page.screenshot(path=artifacts / "lightning-chooser.png")

    # The agent opens the firm from Salesforce's search page: that record gets the log.
    await page.get_by_test_id("sf-search-result").filter(has_text="Lawson & Co").click()
    await expect(card.get_by_test_id("crm-chosen")).to_contain_text("Lawson & Co Solicitors")
    await until(
        lambda: _is(chosen(demo, call.call_id()), CrmRef("Account", account["id"])),
        what="the record on the server",
    )
    # ...and changes their mind in the softphone's chooser: Salesforce shows that one.
    await card.get_by_test_id("crm-change").click()
    await card.get_by_test_id("crm-choice").filter(has_text="Peter Lawson").click()
    await expect(page.get_by_test_id("sf-record-name")).to_have_text("Peter Lawson")
    pops = await eventually(lambda: lightning.calls("screenPop")[1:], what="the record pop")
    assert pops[-1]["args"] == {"type": "sobject", "params": {"recordId": contact["id"]}}
    await until(
        lambda: _is(chosen(demo, call.call_id()), CrmRef("Contact", contact["id"])),
        what="the new choice on the server",
    )

    await call.play_rest()
    call_id = call.call_id()
    await until(lambda: _has(api, "Contact", contact["id"], call_id), what="the log")
    assert call_id not in await api.logged_calls("Account", account["id"])
    await api.close()


@pytest_asyncio.fixture(loop_scope="session")
async def salesforce() -> AsyncIterator[FakeSalesforce]:
    async with FakeSalesforce() as server:
        yield server


@pytest_asyncio.fixture(loop_scope="session")
async def sf_demo(tmp_path: Path, salesforce: FakeSalesforce) -> AsyncIterator[DemoSystem]:
    """The demo with Salesforce (the fake) as its CRM; agents 101 and 102 are its users."""
    async with salesforce_stack(tmp_path, salesforce) as system:
        yield system


async def _task_of(fake: FakeSalesforce, call_id: str) -> dict[str, Any]:
    async def found() -> dict[str, Any] | None:
        return next((t for t in fake.records("Task") if t.get("CallObject") == call_id), None)

    task: dict[str, Any] = await until(found, what=f"the Task of {call_id}")
    return task


async def test_several_salesforce_matches_log_to_the_record_opened_or_chosen_else_none(
    sf_demo: DemoSystem,
    salesforce: FakeSalesforce,
    lightning: LightningHost,
    pages: Pages,
    artifacts: Path,
) -> None:
    """Three calls from a number on a Contact and an Account: each shows Salesforce's search
    page and the chooser; the Task goes to the record opened in Salesforce, then to the one
    picked on the card, then (nothing chosen) to no record."""
    sarah = DEMO.callers[0]
    account = salesforce.add_record("Account", {"Name": "Mitchell Lettings", "Phone": sarah.number})
    contact = salesforce.add_record(
        "Contact", {"FirstName": "Sarah", "LastName": "Mitchell", "Phone": sarah.number}
    )
    records = [
        {"object": "Account", "id": account, "name": "Mitchell Lettings", "number": sarah.number},
        {"object": "Contact", "id": contact, "name": "Sarah Mitchell", "number": sarah.number},
    ]
    page, softphone = await open_in_lightning(sf_demo, lightning, pages, records)

    async def ring(seed: int) -> tuple[ScriptedCall, Locator]:
        call = scripted_call(
            sf_demo, "inbound_answered", seed=seed, agent="101", caller=sarah.number,
            ring_seconds=2, talk_seconds=30,
        )  # fmt: skip
        before = len(lightning.calls("screenPop"))
        await call.play_until(RING + 2)
        card = softphone.locator(f"[data-testid=call-card][data-call-id='{call.call_id()}']")
        # Salesforce shows its search page for the caller's number; the card, the chooser.
        pops = await eventually(
            lambda: lightning.calls("screenPop")[before:], what="the search page pop"
        )
        assert pops[0]["args"] == {"type": "search", "params": {"searchString": sarah.number}}
        await expect(page.get_by_test_id("sf-page")).to_have_attribute("data-page", "search")
        await expect(page.get_by_test_id("sf-search-result")).to_have_count(2)
        await expect(card.get_by_test_id("crm-choice")).to_have_count(2)
        assert chosen(sf_demo, call.call_id()) is None
        return call, card

    # 1. The agent opens the Account from Salesforce's search page.
    call, card = await ring(1)
    await page.screenshot(path=artifacts / "lightning-salesforce-search-page.png")
    await page.locator(f"[data-testid=sf-search-result][data-record-id='{account}']").click()
    await expect(card.get_by_test_id("crm-chosen")).to_contain_text("Mitchell Lettings")
    await until(
        lambda: _is(chosen(sf_demo, call.call_id()), CrmRef("Account", account)),
        what="the record on the server",
    )
    await call.play_rest()
    task = await _task_of(salesforce, call.call_id())
    assert (task.get("WhoId"), task.get("WhatId")) == (None, account)

    # 2. The agent picks the Contact on the card: Salesforce opens it, the Task goes there.
    call, card = await ring(2)
    await card.get_by_test_id("crm-choice").filter(has_text="Sarah Mitchell").click()
    await expect(page.get_by_test_id("sf-record-name")).to_have_text("Sarah Mitchell")
    await expect(card.get_by_test_id("crm-chosen")).to_contain_text("Sarah Mitchell")
    assert last_args(lightning, "screenPop") == {"type": "sobject", "params": {"recordId": contact}}
    await until(
        lambda: _is(chosen(sf_demo, call.call_id()), CrmRef("Contact", contact)),
        what="the record on the server",
    )
    await call.play_rest()
    task = await _task_of(salesforce, call.call_id())
    assert (task.get("WhoId"), task.get("WhatId")) == (contact, None)

    # 3. Neither: the Task goes to no record.
    call, card = await ring(3)
    await call.play_rest()
    task = await _task_of(salesforce, call.call_id())
    assert (task.get("WhoId"), task.get("WhatId")) == (None, None)
    assert len(salesforce.records("Task")) == 3
    assert lightning.calls("searchAndScreenPop") == []


async def test_no_match_pops_new_and_a_record_created_in_the_softphone_gets_the_log(
    demo: DemoSystem, lightning: LightningHost, pages: Pages, artifacts: Path
) -> None:
    api = CrmApi(demo)
    page, softphone = await open_in_lightning(demo, lightning, pages, [])
    call = scripted_call(demo, "inbound_answered", agent="101", caller=UNKNOWN, ring_seconds=2)
    await call.play_until(RING + 2)
    search = await eventually(lambda: lightning.calls("searchAndScreenPop"), what="the search")
    assert search[0]["args"]["deferred"] is False
    assert search[0]["args"]["defaultFieldValues"] == {"Phone": UNKNOWN}
    await expect(page.get_by_test_id("sf-new-title")).to_have_text("New Contact")

    card = softphone.get_by_test_id("call-card")
    await card.get_by_test_id("crm-new").click()
    form = card.get_by_test_id("crm-new-form")
    await form.get_by_test_id("field-first_name").fill("Tomasz")
    await form.get_by_test_id("field-last_name").fill("Wiśniewski")
    await form.get_by_test_id("crm-create").click()
    await expect(card.get_by_test_id("crm-chosen")).to_contain_text("Tomasz Wiśniewski")
    pop = await eventually(lambda: lightning.calls("screenPop"), what="the screen pop")
    record_id = pop[-1]["args"]["params"]["recordId"]
    assert pop[-1]["args"]["type"] == "sobject"
    await expect(page.get_by_test_id("sf-record-name")).to_have_text("Tomasz Wiśniewski")
    assert chosen(demo, call.call_id()) == CrmRef("Contact", record_id)
    await page.screenshot(path=artifacts / "lightning-new.png")

    await call.play_rest()
    call_id = call.call_id()
    await until(lambda: _has(api, "Contact", record_id, call_id), what="the log")
    assert (await api.record("Contact", record_id))["fields"]["phone"] == UNKNOWN
    await api.close()


async def _is(value: Any, expected: Any) -> bool:
    return bool(value == expected)


async def test_signing_in_inside_lightning_keeps_the_salesforce_parameters(
    demo: DemoSystem, lightning: LightningHost, pages: Pages
) -> None:
    page, softphone = await open_in_lightning(
        demo, lightning, pages, [], ready=False, signed_in=False
    )
    await expect(softphone.get_by_test_id("host-status")).to_have_attribute("data-state", "ready")
    await page.get_by_test_id("sf-utility").click()  # the agent opens the phone panel
    await expect(page.get_by_test_id("sf-panel")).to_have_attribute("data-visible", "true")
    agent = DEMO.agent("101")
    await softphone.get_by_label("Login").fill(agent.login)
    await softphone.get_by_label("Password").fill(agent.password)
    await softphone.get_by_role("button", name="Sign in").click()
    await expect(softphone.get_by_test_id("connection")).to_have_attribute(
        "data-status", "connected"
    )
    frame = next(f for f in page.frames if "/softphone?" in f.url)
    assert frame.url == lightning.state.softphone_url  # every parameter, untouched
    assert [c["methodName"] for c in lightning.calls()].count("notifyInitializationComplete") == 1


async def test_when_open_cti_refuses_to_start_the_agent_is_told(
    demo: DemoSystem, pages: Pages
) -> None:
    async with LightningHost(trusted=False) as untrusted:
        page, softphone = await open_in_lightning(demo, untrusted, pages, [], ready=False)
        banner = softphone.get_by_test_id("banner")
        await expect(banner).to_contain_text("Not connected to Salesforce")
        await expect(banner).to_contain_text("Open CTI could not start")
        await expect(softphone.get_by_test_id("host-status")).to_have_attribute(
            "data-state", "failed"
        )
        # Calls still show; nothing was sent to Salesforce.
        await expect(softphone.get_by_test_id("connection")).to_have_attribute(
            "data-status", "connected"
        )
        # The library loaded (and refused): it exists, but nothing reached Salesforce.
        assert untrusted.library_requests() == ["/support/api/57.0/lightning/opencti_min.js"]
        frame = next(f for f in page.frames if "/softphone?" in f.url)
        assert await frame.evaluate("typeof window.sforce.opencti.screenPop") == "function"
        assert untrusted.calls() == []


async def test_outside_salesforce_open_cti_stays_out(demo: DemoSystem, pages: Pages) -> None:
    page = await pages.open(demo.softphone_url("101"))
    scripts: list[str] = []
    page.on("request", lambda request: scripts.append(request.url))
    await page.reload()
    await expect(page.get_by_test_id("connection")).to_have_attribute("data-status", "connected")
    await expect(page.get_by_test_id("host-status")).to_be_hidden()
    assert not [url for url in scripts if "opencti" in url]

    async with httpx.AsyncClient(base_url=demo.http.url) as client:

        async def policy(*origins: str) -> dict[str, list[str]]:
            query = "".join(f"&sfdcIframeOrigin={quote(o, safe='')}" for o in origins)
            response = await client.get(f"/softphone?mode=Lightning{query}")
            return policy_of(response.headers["content-security-policy"])

        for good in SALESFORCE_ORIGINS:
            found = await policy(good)
            assert found["script-src"] == ["'self'", good], good
            assert found["frame-ancestors"][-1] == good
        for bad in OTHER_ORIGINS:
            found = await policy(*bad)
            assert found["script-src"] == ["'self'"], bad
            assert not [a for a in found["frame-ancestors"] if ".example" in a or "127." in a]
        console = await client.get("/console")
        console_policy = policy_of(console.headers["content-security-policy"])
        assert console_policy["frame-ancestors"] == ["'none'"]


SALESFORCE_ORIGINS = (
    STAND_IN,
    "https://acme--dev.sandbox.my.salesforce.com:8443",
    "https://acme.my-salesforce.com",
    "https://c.visualforce.com",
)
OTHER_ORIGINS = (
    (),
    ("http://127.0.0.1:8080",),
    ("https://acme.force.com.evil.example",),
    ("https://evil.example/.force.com",),
    ("https://acme.force.com/",),
    ("https://acme.force.com; script-src *",),
    ("javascript://x.force.com",),
    (STAND_IN, STAND_IN),  # repeated: Open CTI refuses it too
)
