"""Call logs as a Task plus a KazooCallData__c record, idempotent, batched by 25."""

from __future__ import annotations

import dataclasses

import pytest

from ctibridge.crm.base import CrmRef
from ctibridge.crm.salesforce import SalesforceAdapter, StaticOrgs
from ctibridge.errors import CrmAuthError, CrmError, CrmRejected, CrmUnavailable
from tests.fakes.fake_salesforce import FakeSalesforce
from tests.unit.crm.salesforce.conftest import T0, TENANT, make_log, org_for

SYSTEM = {"Id", "CreatedDate", "LastModifiedDate", "IsClosed", "Priority", "Name"}


def _composites(fake: FakeSalesforce) -> int:
    return sum(r.path.endswith("/composite") for r in fake.api_requests())


async def test_log_call_writes_exactly_the_expected_task(
    fake: FakeSalesforce, adapter: SalesforceAdapter
) -> None:
    contact = fake.add_record("Contact", {"LastName": "Lovelace"})
    account = fake.add_record("Account", {"Name": "Acme"})
    log = make_log(
        7,
        crm_user_id=fake.USER_ID,
        started_at=T0 - 1800,  # 23:30 UTC on the 12th is the 13th in Berlin
        timezone="Europe/Berlin",
        who=CrmRef("Contact", contact),
        what=CrmRef("Account", account),
        description="Wants a callback on Friday.",
        recording_url="https://cti.example.com/recordings/call-7.mp3",
        disposition="Answered",
    )
    task_id = await adapter.log_call(log)
    (task,) = fake.records("Task")
    assert task["Id"] == task_id
    assert {k: v for k, v in task.items() if k not in SYSTEM} == {
        "ctibridge_Key__c": "call-7:agent-1",
        "TaskSubtype": "Call",
        "Status": "Completed",
        "Subject": "Inbound call from +44 1632 960007",
        "CallType": "Inbound",
        "CallDurationInSeconds": 95,
        "CallObject": "call-7",
        "CallDisposition": "Answered",
        "ActivityDate": "2026-03-13",
        "OwnerId": fake.USER_ID,
        "WhoId": contact,
        "WhatId": account,
        "Description": "Wants a callback on Friday.\nRecording: https://cti.example.com/recordings/call-7.mp3",
    }
    assert task["IsClosed"] is True


async def test_log_call_writes_one_call_data_record(
    fake: FakeSalesforce, adapter: SalesforceAdapter
) -> None:
    contact = fake.add_record("Contact", {"LastName": "Lovelace"})
    log = make_log(3, who=CrmRef("Contact", contact), recording_url="https://r.example.com/3.mp3")
    await adapter.log_call(log)
    (data,) = fake.records("KazooCallData__c")
    assert {k: v for k, v in data.items() if k not in SYSTEM} == {
        "ctibridge_Key__c": "call-3:agent-1",
        "CallId__c": "call-3",
        "AgentId__c": "agent-1",
        "Direction__c": "Inbound",
        "Disposition__c": "Answered",
        "Subject__c": "Inbound call from +44 1632 960003",
        "StartedAt__c": "2026-03-13T00:00:03.000Z",
        "EndedAt__c": "2026-03-13T00:01:38.000Z",
        "DurationSeconds__c": 95,
        "RemoteNumber__c": "+441632960003",
        "RemoteName__c": "Ada Lovelace",
        "RecordingUrl__c": "https://r.example.com/3.mp3",
        "WhoId__c": contact,
        "OwnerId": fake.USER_ID,
    }
    assert data["Name"] == "KCD-000001"


async def test_the_same_log_twice_makes_one_task(
    fake: FakeSalesforce, adapter: SalesforceAdapter
) -> None:
    log = make_log(1)
    first = await adapter.log_call(log)
    again = await adapter.log_call(
        dataclasses.replace(log, disposition="Answered, callback promised")
    )
    assert again == first
    (task,) = fake.records("Task")
    assert task["CallDisposition"] == "Answered, callback promised"
    assert task["TaskSubtype"] == "Call"
    assert len(fake.records("KazooCallData__c")) == 1
    assert first == await adapter.logged_task_id(TENANT, log.key)


async def test_thirty_logs_take_two_composite_requests(
    fake: FakeSalesforce, adapter: SalesforceAdapter
) -> None:
    logs = [make_log(n) for n in range(30)]
    results = await adapter.log_calls(logs)
    assert all(isinstance(r, str) for r in results)
    assert _composites(fake) == 2
    assert len(fake.api_requests()) == 2
    tasks = {t["ctibridge_Key__c"]: t["Id"] for t in fake.records("Task")}
    assert results == [tasks[log.key] for log in logs]
    assert len(fake.records("KazooCallData__c")) == 30


async def test_a_retried_batch_adds_nothing(
    fake: FakeSalesforce, adapter: SalesforceAdapter
) -> None:
    logs = [make_log(n) for n in range(5)]
    first = await adapter.log_calls(logs)
    assert await adapter.log_calls([*logs, make_log(5)]) == [*first, fake.records("Task")[-1]["Id"]]
    assert len(fake.records("Task")) == 6 and len(fake.records("KazooCallData__c")) == 6


async def test_one_bad_log_fails_alone(fake: FakeSalesforce, adapter: SalesforceAdapter) -> None:
    bad = make_log(2, crm_user_id="005000000000000AAA")  # no such user
    results = await adapter.log_calls([make_log(1), bad, make_log(3)])
    assert isinstance(results[0], str) and isinstance(results[2], str)
    error = results[1]
    assert isinstance(error, CrmRejected)
    assert error.details["error_code"] == "MALFORMED_ID" and error.details["fields"] == ["OwnerId"]
    assert len(fake.records("Task")) == 2
    with pytest.raises(CrmRejected, match="id value of incorrect type"):
        await adapter.log_call(bad)


async def test_a_lead_cannot_be_combined_with_a_related_record(
    fake: FakeSalesforce, adapter: SalesforceAdapter
) -> None:
    lead = fake.add_record("Lead", {"LastName": "L", "Company": "C"})
    account = fake.add_record("Account", {"Name": "A"})
    await adapter.log_call(make_log(1, who=CrmRef("Lead", lead), what=CrmRef("Account", account)))
    (task,) = fake.records("Task")
    assert task["WhoId"] == lead and "WhatId" not in task


async def test_a_bad_call_type_is_refused_without_a_request(
    fake: FakeSalesforce, adapter: SalesforceAdapter
) -> None:
    with pytest.raises(CrmRejected, match="bad value for restricted picklist"):
        await adapter.log_call(make_log(1, call_type="Sideways"))
    with pytest.raises(CrmRejected, match="1 to 255 characters"):
        await adapter.log_call(make_log(1, key="k" * 256))
    assert fake.api_requests() == []


async def test_a_failed_request_fails_its_tenant_only_and_stops_spending(
    fake: FakeSalesforce,
) -> None:
    orgs = StaticOrgs({TENANT: org_for(fake), "other": org_for(fake)})
    crm = SalesforceAdapter(orgs=orgs)
    try:
        fake.exhaust_limits(1)
        logs = [make_log(n) for n in range(30)]
        logs += [make_log(n, tenant_id="other", key=f"o{n}") for n in range(3)]
        logs.append(make_log(99, tenant_id="unknown"))
        results = await crm.log_calls(logs)
    finally:
        await crm.close()
    assert all(isinstance(r, CrmUnavailable) for r in results[:30])
    assert all(isinstance(r, str) for r in results[30:33])
    assert isinstance(results[33], CrmAuthError)
    assert _composites(fake) == 2  # one refused for the first tenant, one for "other"


async def test_call_data_can_be_switched_off(fake: FakeSalesforce) -> None:
    crm = SalesforceAdapter(orgs=StaticOrgs({TENANT: org_for(fake, write_call_data=False)}))
    try:
        assert isinstance(await crm.log_call(make_log(1)), str)
    finally:
        await crm.close()
    assert len(fake.records("Task")) == 1 and fake.records("KazooCallData__c") == []


async def test_long_recording_urls_stay_whole_in_the_comments(
    fake: FakeSalesforce, adapter: SalesforceAdapter
) -> None:
    url = "https://r.example.com/" + "x" * 300
    await adapter.log_call(make_log(1, recording_url=url))
    assert fake.records("Task")[0]["Description"] == f"Recording: {url}"
    assert fake.records("KazooCallData__c")[0]["RecordingUrl__c"] is None


async def test_results_are_errors_not_exceptions_for_batches(
    fake: FakeSalesforce, adapter: SalesforceAdapter
) -> None:
    fake.set_down(True)
    results = await adapter.log_calls([make_log(1), make_log(2)])
    assert all(isinstance(r, CrmError) for r in results)
    fake.set_down(False)
    assert all(isinstance(r, str) for r in await adapter.log_calls([make_log(1), make_log(2)]))
