"""Salesforce end to end: the demo phone system's calls, through ctibridge with
``crm.provider = "salesforce"``, become Tasks in the fake Salesforce at hang-up, one per
agent, associated by the rules of ``services/call_log.py``; and a Salesforce that is down for
the whole call gets exactly one Task once it is back.

Scripted calls start at a fixed past moment (2026-03-13 16:11:36 Europe/London, GMT) so each
Task's subject, date and duration are known exactly.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from ctibridge.callstate.model import CallState
from ctibridge.crm.salesforce import SalesforceOrg, TokenBox
from ctibridge.demo.directory import DEMO
from ctibridge.demo.scenarios.inbound import inbound_answered
from ctibridge.demo.scenarios.internal import internal_answered
from ctibridge.demo.scenarios.script import ScenarioContext, Step, greg_from_unix
from ctibridge.demo.scenarios.transfers import inbound_blind_transfer
from ctibridge.launcher import DemoSystem, running_demo
from ctibridge.services.crm_logging import TOPIC
from ctibridge.services.outbox import OutboxWorker
from ctibridge.services.salesforce_orgs import StoredOrgs
from ctibridge.storage.base import StoredCall
from ctibridge.types import AgentId, CallId, TenantId
from tests.fakes.fake_salesforce import FakeSalesforce
from tests.integration.conftest import fast_settings, until

TENANT = DEMO.account_id
OLIVIA, JAMES = DEMO.agent("101"), DEMO.agent("102")
SARAH = DEMO.callers[0]  # +447700900123, Sarah Mitchell
T0 = 1_773_418_296  # 2026-03-13T16:11:36Z, 16:11:36 in London (GMT)
LONDON = ZoneInfo("Europe/London")


@contextlib.asynccontextmanager
async def stack(tmp_path: Path, fake: FakeSalesforce) -> AsyncIterator[DemoSystem]:
    """The demo with Salesforce as its CRM: the tenant's org stored as the Connect button
    stores it, agents 101 and 102 mapped to Salesforce users."""
    settings = fast_settings(tmp_path, crm={"provider": "salesforce"})
    async with running_demo(settings, traffic=False, speed=1000.0) as system:
        services = system.services
        box = TokenBox.from_data_dir(services.settings.data_dir)
        org = SalesforceOrg(
            client_id=fake.CLIENT_ID,
            login_url=fake.login_url,
            refresh_token=fake.grant_refresh_token(),
            region="GB",
        )
        await StoredOrgs(services.storage, box).save(TENANT, org)
        for demo in (OLIVIA, JAMES):
            user = fake.add_record(
                "User", {"Name": demo.name, "Username": demo.email, "IsActive": True}
            )
            agent = await services.agents.get(AgentId(f"agent-{demo.extension}"))
            await services.agents.save_agent(replace(agent, crm_user_id=user))
        await until(lambda: _connected(system), what="the Kazoo connector to connect")
        yield system


def _connected(system: DemoSystem) -> bool:
    connectors = system.services.status()["connectors"]
    return isinstance(connectors, list) and bool(connectors[0].get("connected"))


@pytest.fixture
async def system(tmp_path: Path, fake: FakeSalesforce) -> AsyncIterator[DemoSystem]:
    async with stack(tmp_path, fake) as running:
        yield running


@pytest.fixture
async def http(system: DemoSystem) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=system.http.url, timeout=10) as client:
        yield client


def _auth(system: DemoSystem, extension: str) -> dict[str, str]:
    return {"authorization": f"Bearer {system.tokens[extension]}"}


def _ctx(seed: int) -> ScenarioContext:
    return ScenarioContext(
        account=TENANT, realm=DEMO.realm, start_greg=greg_from_unix(T0), rng=random.Random(seed)
    )


def _owner(fake: FakeSalesforce, name: str) -> str:
    (user,) = [u["Id"] for u in fake.records("User") if u.get("Name") == name]
    return str(user)


def _live(system: DemoSystem) -> StoredCall | None:
    return next(iter(system.services.calls.active(TENANT)), None)


async def _until_rung(system: DemoSystem, steps: list[Step]) -> StoredCall:
    """Publish the call up to (not including) its first hang-up; wait for the screen pop
    lookup to finish (what the agent saw is what the log goes to)."""
    for step in steps:
        if step.data["event_name"] == "CHANNEL_DESTROY":
            break
        await system.publish(step.data)
    stored: StoredCall = await until(
        lambda: (s := _live(system)) is not None and s.call.state is CallState.ANSWERED and s,
        what="the answered call",
    )
    popped = system.services.screenpop
    assert popped is not None
    await until(
        lambda: popped.card_extra(stored).get("crm", {}).get("status") in ("done", "error"),
        what="the screen pop lookup",
    )
    return stored


async def _finish(system: DemoSystem, steps: list[Step]) -> None:
    started = False
    for step in steps:
        started = started or step.data["event_name"] == "CHANNEL_DESTROY"
        if started:
            await system.publish(step.data)
    await until(lambda: _live(system) is None, what="the call to end")


async def _tasks(fake: FakeSalesforce, count: int) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = await until(
        lambda: len(fake.records("Task")) >= count and fake.records("Task"),
        what=f"{count} Task(s)",
    )
    return found


def _fields(task: dict[str, Any]) -> dict[str, Any]:
    keys = (
        "TaskSubtype", "CallType", "CallDurationInSeconds", "CallObject", "CallDisposition",
        "Status", "ActivityDate", "OwnerId", "WhoId", "WhatId", "Subject",
    )  # fmt: skip
    return {k: task.get(k) for k in keys}


def _expected(fake: FakeSalesforce, call_id: str, **fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "TaskSubtype": "Call",
        "CallType": "Inbound",
        "CallDurationInSeconds": 75,
        "CallObject": call_id,
        "CallDisposition": "Answered",
        "Status": "Completed",
        "ActivityDate": "2026-03-13",
        "OwnerId": _owner(fake, OLIVIA.name),
        "WhoId": None,
        "WhatId": None,
        "Subject": "Inbound Call at 16:11:36 Europe/London from 07700900123 (Sarah Mitchell)",
    }
    return base | fields


async def _inbound_to_olivia(system: DemoSystem, seed: int) -> tuple[list[Step], StoredCall]:
    steps = inbound_answered(
        _ctx(seed), agent=OLIVIA, caller=SARAH, ring_seconds=4, talk_seconds=75
    )
    return steps, await _until_rung(system, steps)


async def _pending(system: DemoSystem, count: int, within: float = 5.0) -> None:
    """Bounded poll until the outbox holds ``count`` undelivered items."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while await system.services.storage.outbox_pending(TenantId(TENANT)) != count:
        assert loop.time() < deadline, f"the outbox never held {count} item(s)"
        await asyncio.sleep(0.01)


# -- the association rules ----------------------------------------------------------------


async def test_click_to_dial_from_a_record_logs_to_that_record(
    system: DemoSystem, fake: FakeSalesforce, http: httpx.AsyncClient
) -> None:
    account = fake.add_record("Account", {"Name": "Mitchell Lettings"})
    contact = fake.add_record(
        "Contact", {"FirstName": "Sarah", "LastName": "Mitchell", "AccountId": account}
    )  # no phone: the lookup finds nothing, the click decides
    reply = await http.post(
        "/api/calls",
        json={"number": "07700 900123", "record": {"object": "Contact", "id": contact}},
        headers=_auth(system, "101"),
    )
    assert reply.status_code == 202, reply.text
    (task,) = await _tasks(fake, 1)
    stored = await system.services.storage.get_call(TenantId(TENANT), CallId(task["CallObject"]))
    assert stored is not None and stored.call.origin_tag == reply.json()["request_id"]
    started = datetime.fromtimestamp(stored.call.started_at, UTC).astimezone(LONDON)
    assert _fields(task) == _expected(
        fake,
        stored.call.call_id,
        CallType="Outbound",
        CallDurationInSeconds=60,
        ActivityDate=started.date().isoformat(),
        WhoId=contact,
        Subject=f"Outbound Call at {started:%H:%M:%S} Europe/London to 07700900123",
    )


async def test_one_match_logs_to_it(system: DemoSystem, fake: FakeSalesforce) -> None:
    contact = fake.add_record(
        "Contact", {"FirstName": "Sarah", "LastName": "Mitchell", "MobilePhone": SARAH.number}
    )
    steps, stored = await _inbound_to_olivia(system, 1)
    await _finish(system, steps)
    (task,) = await _tasks(fake, 1)
    assert _fields(task) == _expected(fake, stored.call.call_id, WhoId=contact)


async def test_several_matches_log_to_the_one_the_agent_chose(
    system: DemoSystem, fake: FakeSalesforce, http: httpx.AsyncClient
) -> None:
    fake.add_record("Contact", {"LastName": "Mitchell", "Phone": SARAH.number})
    account = fake.add_record("Account", {"Name": "Mitchell Lettings", "Phone": SARAH.number})
    steps, stored = await _inbound_to_olivia(system, 2)
    assert system.services.screenpop is not None
    assert len(system.services.screenpop.matches(stored.call.call_id)) == 2
    chosen = await http.put(
        f"/api/calls/{stored.call.call_id}/record",
        json={"object": "Account", "id": account},
        headers=_auth(system, "101"),
    )
    assert chosen.status_code == 200, chosen.text
    await _finish(system, steps)
    (task,) = await _tasks(fake, 1)
    assert _fields(task) == _expected(fake, stored.call.call_id, WhatId=account)


async def test_several_matches_and_no_choice_log_to_no_record(
    system: DemoSystem, fake: FakeSalesforce
) -> None:
    fake.add_record("Contact", {"LastName": "Mitchell", "Phone": SARAH.number})
    fake.add_record("Lead", {"LastName": "Mitchell", "Company": "X", "Phone": SARAH.number})
    steps, stored = await _inbound_to_olivia(system, 3)
    assert system.services.screenpop is not None
    assert len(system.services.screenpop.matches(stored.call.call_id)) == 2
    await _finish(system, steps)
    (task,) = await _tasks(fake, 1)
    assert _fields(task) == _expected(fake, stored.call.call_id)


async def test_no_match_and_a_new_lead_logs_to_the_new_lead(
    system: DemoSystem, fake: FakeSalesforce, http: httpx.AsyncClient
) -> None:
    steps, stored = await _inbound_to_olivia(system, 4)
    assert system.services.screenpop is not None
    assert system.services.screenpop.matches(stored.call.call_id) == []
    created = await http.post(
        "/api/crm/records/Lead",
        json={
            "fields": {"FirstName": "Sarah", "LastName": "Mitchell", "Phone": SARAH.number},
            "call_id": stored.call.call_id,
        },
        headers=_auth(system, "101"),
    )
    assert created.status_code == 201, created.text
    (lead,) = fake.records("Lead")
    assert created.json()["id"] == lead["Id"]
    await _finish(system, steps)
    (task,) = await _tasks(fake, 1)
    assert _fields(task) == _expected(fake, stored.call.call_id, WhoId=lead["Id"])


async def test_an_internal_call_logs_to_no_record(system: DemoSystem, fake: FakeSalesforce) -> None:
    fake.add_record("Contact", {"LastName": "Somebody", "Phone": "102"})
    steps = internal_answered(_ctx(5), caller=OLIVIA, callee=JAMES, talk_seconds=45)
    for step in steps:
        await system.publish(step.data)
    await until(lambda: _live(system) is None, what="the call to end")
    tasks = await _tasks(fake, 2)
    by_owner = {t["OwnerId"]: _fields(t) for t in tasks}
    call_id = tasks[0]["CallObject"]
    internal = {"CallType": "Internal", "CallDurationInSeconds": 45}
    assert by_owner == {
        _owner(fake, OLIVIA.name): _expected(
            fake,
            call_id,
            **internal,
            Subject="Internal Call at 16:11:36 Europe/London from 102 (James Whitfield)",
        ),
        _owner(fake, JAMES.name): _expected(
            fake,
            call_id,
            **internal,
            OwnerId=_owner(fake, JAMES.name),
            Subject="Internal Call at 16:11:36 Europe/London from 101 (Olivia Bennett)",
        ),
    }


async def test_a_blind_transfer_gives_one_task_per_agent(
    system: DemoSystem, fake: FakeSalesforce
) -> None:
    contact = fake.add_record("Contact", {"LastName": "Mitchell", "Phone": SARAH.number})
    steps = inbound_blind_transfer(
        _ctx(6),
        agents=(OLIVIA, JAMES),
        caller=SARAH,
        ring_seconds=4,
        talk_seconds=40,
        transfer_ring_seconds=5,
        transferred_talk_seconds=60,
    )
    stored = await _until_rung(system, steps)
    await _finish(system, steps)
    tasks = await _tasks(fake, 2)
    by_owner = {t["OwnerId"]: _fields(t) for t in tasks}
    call_id = stored.call.call_id
    assert by_owner == {
        _owner(fake, OLIVIA.name): _expected(
            fake,
            call_id,
            CallDurationInSeconds=40,
            CallDisposition="Transferred",
            WhoId=contact,
        ),
        _owner(fake, JAMES.name): _expected(
            fake,
            call_id,
            CallDurationInSeconds=60,
            OwnerId=_owner(fake, JAMES.name),
            WhoId=contact,
        ),
    }


# -- Salesforce down for the whole call ----------------------------------------------------


async def test_salesforce_down_for_the_whole_call_gives_one_task_once_back(
    system: DemoSystem, fake: FakeSalesforce
) -> None:
    logging_service = system.services.crm_logging
    assert logging_service is not None
    # Drive delivery by hand, on a clock the test moves past each retry's wait (Salesforce's
    # 503 asks for 30 s).
    await logging_service.worker.stop()
    now = [time.time()]
    worker = OutboxWorker(
        system.services.storage, {TOPIC: logging_service.deliver}, clock=lambda: now[0]
    )
    # a matching Contact, but the screen pop lookup fails while Salesforce is down
    fake.add_record("Contact", {"LastName": "Mitchell", "Phone": SARAH.number})
    fake.set_down(True)
    steps, stored = await _inbound_to_olivia(system, 7)
    await _finish(system, steps)
    await _pending(system, 1)
    now[0] = time.time() + 1

    for attempt in range(3):
        before = len(fake.requests())
        assert await worker.run_once() == 0
        assert [r.status for r in fake.requests()[before:]][:1] == [503], attempt
        now[0] += 120
    assert fake.records("Task") == []
    assert await system.services.storage.outbox_pending(TenantId(TENANT)) == 1

    fake.set_down(False)
    assert await worker.run_once() == 1
    (task,) = fake.records("Task")
    assert _fields(task) == _expected(fake, stored.call.call_id)
    await _pending(system, 0)
    now[0] += 3600
    assert await worker.run_once() == 0  # nothing left: still exactly one Task
    assert len(fake.records("Task")) == 1
