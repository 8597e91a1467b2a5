"""The fake Salesforce keeps the documented shapes the adapter relies on."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from ctibridge.crm.salesforce.auth import RefreshGrant, SalesforceAuth, Session
from ctibridge.crm.salesforce.client import SalesforceClient, SubRequest
from ctibridge.errors import CrmRejected
from tests.fakes.fake_salesforce import FakeSalesforce


@pytest.fixture
async def client(fake: FakeSalesforce) -> AsyncIterator[SalesforceClient]:
    session = Session(refresh_token=fake.grant_refresh_token())
    sf = SalesforceClient(SalesforceAuth(session, RefreshGrant(fake.login_url, fake.CLIENT_ID)))
    yield sf
    await sf.aclose()


async def test_composite_substitutes_references(
    fake: FakeSalesforce, client: SalesforceClient
) -> None:
    answers = await client.composite(
        [
            SubRequest("POST", client.path("sobjects", "Account"), "acc", {"Name": "Acme"}),
            SubRequest(
                "POST",
                client.path("sobjects", "Contact"),
                "con",
                {"LastName": "Doe", "AccountId": "@{acc.id}"},
            ),
            SubRequest(
                "GET", client.path("sobjects", "Contact") + "/@{con.id}?fields=AccountId", "get"
            ),
        ]
    )
    assert [a.status for a in answers] == [201, 201, 200]
    assert answers[2].body["AccountId"] == answers[0].body["id"]
    assert len(fake.api_requests()) == 1  # one API call for all three


async def test_composite_all_or_none_rolls_back(
    fake: FakeSalesforce, client: SalesforceClient
) -> None:
    answers = await client.composite(
        [
            SubRequest("POST", client.path("sobjects", "Account"), "ok", {"Name": "Acme"}),
            SubRequest("POST", client.path("sobjects", "Lead"), "bad", {"LastName": "NoCompany"}),
            SubRequest(
                "POST",
                client.path("sobjects", "Contact"),
                "after",
                {"LastName": "X", "AccountId": "@{bad.id}"},
            ),
        ],
        all_or_none=True,
    )
    assert [a.status for a in answers] == [400, 400, 400]
    assert answers[0].body[0]["errorCode"] == "PROCESSING_HALTED"
    assert answers[1].body == [
        {
            "message": "Required fields are missing: [Company]",
            "errorCode": "REQUIRED_FIELD_MISSING",
            "fields": ["Company"],
        }
    ]
    assert fake.records("Account") == []


async def test_collection_upsert_results_use_status_code(
    fake: FakeSalesforce, client: SalesforceClient
) -> None:
    part = client.collection_upsert(
        "Task",
        "ctibridge_Key__c",
        [
            {"ctibridge_Key__c": "k1", "Subject": "a"},
            {"ctibridge_Key__c": "k2", "CallType": "Sideways"},
        ],
        reference_id="tasks",
    )
    (answer,) = await client.composite([part])
    ok, bad = answer.body
    assert ok["success"] and ok["created"] and ok["id"].startswith("00T")
    assert bad["success"] is False
    assert bad["errors"][0]["statusCode"] == "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST"
    assert bad["errors"][0]["fields"] == ["CallType"]


async def test_single_upsert_creates_then_updates(
    fake: FakeSalesforce, client: SalesforceClient
) -> None:
    first = await client.upsert(
        "KazooCallData__c", "ctibridge_Key__c", "c1:a1", {"CallId__c": "c1"}
    )
    again = await client.upsert(
        "KazooCallData__c", "ctibridge_Key__c", "c1:a1", {"CallId__c": "c1b"}
    )
    assert first.created and not again.created and first.id == again.id
    assert [r["CallId__c"] for r in fake.records("KazooCallData__c")] == ["c1b"]
    with pytest.raises(CrmRejected, match="external ID field does not exist"):
        await client.upsert("KazooCallData__c", "CallId__c", "c1", {})


async def test_unknown_custom_fields_are_refused(client: SalesforceClient) -> None:
    with pytest.raises(CrmRejected, match="No such column 'Bogus__c'"):
        await client.create("KazooCallData__c", {"Bogus__c": 1})


@pytest.mark.parametrize(
    ("sosl", "code"),
    [
        ("FIND {+441632960123} RETURNING Contact(Id)", "MALFORMED_SEARCH"),
        ('FIND {"(01632) 960123"} RETURNING Contact(Id)', "MALFORMED_SEARCH"),
        ("FIND {x} RETURNING Contact(Id)", "INVALID_SEARCH"),
        ("FIND {ada} RETURNING Contact(Nope)", "INVALID_FIELD"),
        ("FIND {ada} RETURNING Nothing(Id)", "INVALID_TYPE"),
    ],
)
async def test_sosl_is_strict(client: SalesforceClient, sosl: str, code: str) -> None:
    with pytest.raises(CrmRejected) as caught:
        await client.search(sosl)
    assert caught.value.details["error_code"] == code


async def test_update_and_retrieve(fake: FakeSalesforce, client: SalesforceClient) -> None:
    lead = await client.create("Lead", {"LastName": "A", "Company": "B"})
    await client.update("Lead", lead, {"FirstName": "Ada"})
    row = await client.retrieve("Lead", lead, ["Name", "Company"])
    assert row is not None and (row["Name"], row["Company"]) == ("Ada A", "B")
    assert row["attributes"]["type"] == "Lead"
