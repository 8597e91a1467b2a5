"""The admin API of CRM writes that failed, over real HTTP: ctibridge with Salesforce as its
CRM, the fake Salesforce refusing a call's Task with a validation rule (400
``FIELD_CUSTOM_VALIDATION_EXCEPTION``). Listed with Salesforce's words; retried now (refused
again, then written: exactly one Task); discarded (never written); agents and strangers
refused.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from ctibridge.demo.directory import DEMO
from ctibridge.demo.scenarios.inbound import inbound_answered
from ctibridge.demo.scenarios.script import ScenarioContext, greg_from_unix
from ctibridge.launcher import DemoSystem
from ctibridge.storage import SqlStorage
from ctibridge.storage.outbox_index import OutboxIndex
from ctibridge.types import TenantId
from tests.fakes.fake_salesforce import FakeSalesforce
from tests.integration.test_salesforce_calls import stack

TENANT = DEMO.account_id
OLIVIA = DEMO.agent("101")
SARAH = DEMO.callers[0]
RULE = "Call Result is required on calls longer than a minute"
T0 = 1_773_418_296


@pytest.fixture
async def system(tmp_path: Path, fake: FakeSalesforce) -> AsyncIterator[DemoSystem]:
    async with stack(tmp_path, fake) as running:
        yield running


@pytest.fixture
async def admin(system: DemoSystem) -> AsyncIterator[httpx.AsyncClient]:
    headers = {"Authorization": f"Bearer {system.services.admin_token}"}
    async with httpx.AsyncClient(base_url=system.http.url, headers=headers, timeout=10) as client:
        yield client


async def refused_call(system: DemoSystem, fake: FakeSalesforce) -> int:
    """An answered call whose Task Salesforce refuses; once the first attempt failed, the
    background worker stops (the test then decides when the item is tried). Its item id."""
    fake.add_validation_rule(
        "Task",
        RULE,
        when=lambda task: int(task.get("CallDurationInSeconds") or 0) > 60,
        field="CallDisposition",
    )
    ctx = ScenarioContext(
        account=TENANT, realm=DEMO.realm, start_greg=greg_from_unix(T0), rng=random.Random(1)
    )
    for step in inbound_answered(ctx, agent=OLIVIA, caller=SARAH, ring_seconds=4, talk_seconds=75):
        await system.publish(step.data)
    storage = system.services.storage
    assert isinstance(storage, SqlStorage)
    index = OutboxIndex(storage)
    (item,) = await until_async(lambda: index.failing(TenantId(TENANT)), what="the refused log")
    logging_service = system.services.crm_logging
    assert logging_service is not None
    await logging_service.worker.stop()
    assert isinstance(item.item_id, int)
    return item.item_id


async def until_async(
    check: Callable[[], Awaitable[Any]], *, what: str, within: float = 10.0
) -> Any:
    """Bounded poll of an async ``check()`` until it returns something truthy."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        result = await check()
        if result:
            return result
        assert loop.time() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.02)


def tasks(fake: FakeSalesforce) -> list[dict[str, Any]]:
    return fake.records("Task")


async def failed(admin: httpx.AsyncClient, **params: str) -> dict[str, Any]:
    response = await admin.get("/api/outbox/failed", params={"tenant": TENANT, **params})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_a_refused_task_is_listed_with_salesforce_words(
    system: DemoSystem, fake: FakeSalesforce, admin: httpx.AsyncClient
) -> None:
    item_id = await refused_call(system, fake)
    body = await failed(admin)
    assert (body["enabled"], body["crm"], body["total"], body["tenant_id"]) == (
        True,
        "salesforce",
        1,
        TENANT,
    )
    (item,) = body["items"]
    call_id = item["call_id"]
    assert item == {
        "item_id": item_id,
        "kind": "call_log",
        "key": f"{call_id}:agent-101",
        "call_id": call_id,
        "agent_id": "agent-101",
        "agent_name": OLIVIA.name,
        "subject": "Inbound Call at 16:11:36 Europe/London from 07700900123 (Sarah Mitchell)",
        "attempts": item["attempts"],
        "error_code": "FIELD_CUSTOM_VALIDATION_EXCEPTION",
        "last_error": RULE,
        "next_attempt_at": item["next_attempt_at"],
        "created_at": item["created_at"],
        "done": False,
    }
    assert item["attempts"] >= 1
    assert item["created_at"] <= body["server_time"] < item["next_attempt_at"] + 3600
    assert tasks(fake) == []
    bad = await admin.get("/api/outbox/failed", params={"tenant": TENANT, "limit": "0"})
    assert bad.status_code == 400 and bad.json()["details"] == {"field": "limit"}


async def test_retry_now_is_refused_again_then_writes_exactly_one_task(
    system: DemoSystem,
    fake: FakeSalesforce,
    admin: httpx.AsyncClient,
    caplog: pytest.LogCaptureFixture,
) -> None:
    item_id = await refused_call(system, fake)
    before = (await failed(admin))["items"][0]["attempts"]
    caplog.set_level(logging.INFO, logger="ctibridge.services.outbox_admin")
    path = f"/api/outbox/{item_id}/retry"

    again = await admin.post(path, params={"tenant": TENANT})
    assert again.status_code == 200, again.text
    assert again.json()["delivered"] is False
    assert again.json()["item"]["attempts"] == before + 1
    assert again.json()["item"]["error_code"] == "FIELD_CUSTOM_VALIDATION_EXCEPTION"
    assert tasks(fake) == []

    fake.clear_validation_rules()  # the admin fixed the rule in Salesforce
    written = await admin.post(path, params={"tenant": TENANT})
    assert written.status_code == 200 and written.json()["delivered"] is True
    (task,) = tasks(fake)
    assert task["CallObject"] == written.json()["item"]["call_id"]
    assert (await failed(admin))["items"] == []
    assert await system.services.storage.outbox_pending(TenantId(TENANT)) == 0
    gone = await admin.post(path, params={"tenant": TENANT})
    assert gone.status_code == 404 and gone.json()["error_id"] == "not-found"
    assert len(tasks(fake)) == 1

    audit = [r for r in caplog.records if getattr(r, "audit", None) == "outbox.retry"]
    assert [r.delivered for r in audit] == [False, True]  # type: ignore[attr-defined]
    assert all(r.by == "admin (all tenants) from 127.0.0.1" for r in audit)  # type: ignore[attr-defined]


async def test_discard_drops_the_write_for_good(
    system: DemoSystem,
    fake: FakeSalesforce,
    admin: httpx.AsyncClient,
    caplog: pytest.LogCaptureFixture,
) -> None:
    item_id = await refused_call(system, fake)
    caplog.set_level(logging.INFO, logger="ctibridge.services.outbox_admin")
    fake.clear_validation_rules()
    response = await admin.post(f"/api/outbox/{item_id}/discard", params={"tenant": TENANT})
    assert response.status_code == 200, response.text
    assert response.json()["discarded"] is True
    assert response.json()["item"]["item_id"] == item_id
    assert (await failed(admin))["items"] == []
    # never due again, however long one waits
    assert await system.services.storage.outbox_due(time.time() + 1e9, 10) == []
    assert await system.services.storage.outbox_pending(TenantId(TENANT)) == 0
    assert tasks(fake) == []
    again = await admin.post(f"/api/outbox/{item_id}/discard", params={"tenant": TENANT})
    assert again.status_code == 404
    (audit,) = [r for r in caplog.records if getattr(r, "audit", None) == "outbox.discard"]
    assert RULE in audit.getMessage()
    assert audit.key == response.json()["item"]["key"]  # type: ignore[attr-defined]


async def test_only_admins_of_the_tenant_may_look_or_act(
    system: DemoSystem, fake: FakeSalesforce, admin: httpx.AsyncClient
) -> None:
    item_id = await refused_call(system, fake)
    calls = [
        ("GET", "/api/outbox/failed"),
        ("POST", f"/api/outbox/{item_id}/retry"),
        ("POST", f"/api/outbox/{item_id}/discard"),
    ]
    other_admin = await system.services.agents.issue_token(TenantId("someone-else"), "admin")
    async with httpx.AsyncClient(base_url=system.http.url) as client:
        for method, path in calls:
            params = {"tenant": TENANT}
            nobody = await client.request(method, path, params=params)
            assert nobody.status_code == 401, (path, nobody.text)
            agent = {"Authorization": f"Bearer {system.tokens['101']}"}
            as_agent = await client.request(method, path, params=params, headers=agent)
            assert as_agent.status_code == 403, (path, as_agent.text)
            other = {"Authorization": f"Bearer {other_admin}"}
            foreign = await client.request(method, path, params=params, headers=other)
            assert foreign.status_code == 403, (path, foreign.text)
    # the other tenant's admin names its own tenant: the item is not there
    async with httpx.AsyncClient(base_url=system.http.url, headers=other) as client:
        own = await client.post(f"/api/outbox/{item_id}/discard")
        assert own.status_code == 404
        listing = await client.get("/api/outbox/failed")
        assert listing.status_code == 200 and listing.json()["items"] == []
    assert (await failed(admin))["total"] == 1  # nothing was changed
    missing = await admin.post("/api/outbox/not-a-number/retry", params={"tenant": TENANT})
    assert missing.status_code == 404
