"""Caller lookup by SOSL over phone fields, search, and records, against the fake."""

from __future__ import annotations

import pytest

from ctibridge.crm.base import CrmRef
from ctibridge.crm.salesforce import SalesforceAdapter
from ctibridge.crm.salesforce.search import escape, phone_sosl
from ctibridge.errors import CrmRejected
from tests.fakes.fake_salesforce import FakeSalesforce
from tests.unit.crm.salesforce.conftest import TENANT

NUMBER = "+441632960123"


def _searches(fake: FakeSalesforce) -> list[str]:
    return [r.query["q"] for r in fake.api_requests() if r.path.endswith("/search")]


async def test_one_match(fake: FakeSalesforce, adapter: SalesforceAdapter) -> None:
    account = fake.add_record("Account", {"Name": "Acme Ltd"})
    contact = fake.add_record(
        "Contact",
        {"FirstName": "Ada", "LastName": "Lovelace", "MobilePhone": NUMBER, "AccountId": account},
    )
    (record,) = await adapter.lookup_by_number(TENANT, "01632 960123")
    assert record.ref == CrmRef("Contact", contact)
    assert (record.name, record.matched_field, record.number) == (
        "Ada Lovelace",
        "MobilePhone",
        NUMBER,
    )
    assert record.account_name == "Acme Ltd"
    assert record.url == f"{fake.instance_url}/lightning/r/Contact/{contact}/view"


async def test_many_matches_most_recent_activity_first(
    fake: FakeSalesforce, adapter: SalesforceAdapter
) -> None:
    fake.add_record(
        "Lead",
        {"LastName": "Old Lead", "Company": "X", "Phone": NUMBER, "LastActivityDate": "2025-01-01"},
    )
    fake.add_record(
        "Account", {"Name": "Busy Account", "Phone": NUMBER, "LastActivityDate": "2026-03-01"}
    )
    fake.add_record(
        "Contact", {"LastName": "Recent", "Phone": NUMBER, "LastActivityDate": "2026-03-10"}
    )
    fake.add_record(
        "Contact",
        {"LastName": "Same Day Contact", "HomePhone": NUMBER, "LastActivityDate": "2026-03-01"},
    )
    found = await adapter.lookup_by_number(TENANT, NUMBER)
    assert [r.name for r in found] == ["Recent", "Same Day Contact", "Busy Account", "Old Lead"]
    assert [r.ref.object for r in found] == ["Contact", "Contact", "Account", "Lead"]
    assert len(await adapter.lookup_by_number(TENANT, NUMBER, limit=2)) == 2


async def test_no_match(fake: FakeSalesforce, adapter: SalesforceAdapter) -> None:
    fake.add_record("Contact", {"LastName": "Other", "Phone": "+441632960999"})
    assert await adapter.lookup_by_number(TENANT, NUMBER) == []
    assert len(_searches(fake)) == 1


async def test_every_stored_spelling_is_found_and_near_misses_dropped(
    fake: FakeSalesforce, adapter: SalesforceAdapter
) -> None:
    spellings = [
        "+441632960123",
        "+44 1632 960123",
        "01632 960123",
        "01632960123",
        "0044 1632 960123",
        "(01632) 960-123",
    ]
    for n, spelling in enumerate(spellings):
        fake.add_record("Contact", {"LastName": f"C{n}", "Phone": spelling})
    near = fake.add_record("Contact", {"LastName": "Near", "Phone": "+44 1632 960124"})
    far = fake.add_record("Lead", {"LastName": "Far", "Company": "Y", "Phone": "+1 415 555 1632"})
    found = await adapter.lookup_by_number(TENANT, NUMBER)
    assert sorted(r.name for r in found) == [f"C{n}" for n in range(len(spellings))]
    assert {near, far}.isdisjoint(r.ref.record_id for r in found)
    (sosl,) = _searches(fake)
    assert sosl.startswith('FIND {"\\+441632960123" OR "\\+44 1632 960123" OR "01632 960123"')
    assert "IN PHONE FIELDS RETURNING Contact(" in sosl


async def test_converted_leads_are_left_out(
    fake: FakeSalesforce, adapter: SalesforceAdapter
) -> None:
    fake.add_record(
        "Lead", {"LastName": "Converted", "Company": "X", "Phone": NUMBER, "IsConverted": True}
    )
    assert await adapter.lookup_by_number(TENANT, NUMBER) == []


@pytest.mark.parametrize(
    "number", ["", "hello", "12", "+", "201", "00000", "+44 12", "+999 123 456 789"]
)
async def test_unsearchable_numbers_are_no_match_without_a_request(
    fake: FakeSalesforce, adapter: SalesforceAdapter, number: str
) -> None:
    fake.add_record("Contact", {"LastName": "Ext", "Phone": "201"})
    assert await adapter.lookup_by_number(TENANT, number) == []
    assert _searches(fake) == []


async def test_a_term_salesforce_refuses_is_no_match(
    fake: FakeSalesforce, adapter: SalesforceAdapter
) -> None:
    fake.fail_next(
        400,
        [
            {
                "message": "search term must be longer than one character",
                "errorCode": "INVALID_SEARCH",
            }
        ],
    )
    assert await adapter.lookup_by_number(TENANT, NUMBER) == []
    fake.fail_next(400, [{"message": "No such column 'HomePhone'", "errorCode": "INVALID_FIELD"}])
    with pytest.raises(CrmRejected, match="HomePhone"):
        await adapter.lookup_by_number(TENANT, NUMBER)


def test_sosl_reserved_characters_are_escaped() -> None:
    assert escape('+1 (415) 555-0100 & "x"') == '\\+1 \\(415\\) 555\\-0100 \\& \\"x\\"'
    assert escape("?&|!{}[]()^~*:\\\"'+-") == "".join(f"\\{c}" for c in "?&|!{}[]()^~*:\\\"'+-")
    assert phone_sosl(["+1 (415) 555-0100"], 5).startswith('FIND {"\\+1 \\(415\\) 555\\-0100"}')


async def test_search_by_name_and_by_number(
    fake: FakeSalesforce, adapter: SalesforceAdapter
) -> None:
    fake.add_record("Contact", {"FirstName": "Grace", "LastName": "Hopper", "Phone": NUMBER})
    fake.add_record("Lead", {"LastName": "Hopperson", "Company": "Navy"})
    names = sorted(r.name for r in await adapter.search(TENANT, "Hopper"))
    assert names == ["Grace Hopper", "Hopperson"]
    assert [r.name for r in await adapter.search(TENANT, "01632 960123")] == ["Grace Hopper"]
    assert await adapter.search(TENANT, "x") == []
    assert await adapter.search(TENANT, "Hopper (Navy) & co") == []  # escaped, accepted, no hit


async def test_get_record(fake: FakeSalesforce, adapter: SalesforceAdapter) -> None:
    lead = fake.add_record(
        "Lead", {"FirstName": "Alan", "LastName": "Turing", "Company": "Bletchley", "Phone": NUMBER}
    )
    record = await adapter.get_record(TENANT, CrmRef("Lead", lead))
    assert record is not None
    assert (record.name, record.account_name, record.number) == ("Alan Turing", "Bletchley", NUMBER)
    assert await adapter.get_record(TENANT, CrmRef("Lead", "00QFk0000000999AAA")) is None
    assert await adapter.get_record(TENANT, CrmRef("Lead", "../../limits")) is None
    with pytest.raises(CrmRejected):
        await adapter.get_record(TENANT, CrmRef("Lead/../x", lead))


async def test_create_record_is_a_lead_with_required_fields_filled(
    fake: FakeSalesforce, adapter: SalesforceAdapter
) -> None:
    record = await adapter.create_record(TENANT, "", {"Phone": NUMBER})
    (stored,) = fake.records("Lead")
    assert record.ref == CrmRef("Lead", stored["Id"])
    assert (stored["LastName"], stored["Company"], stored["Phone"]) == (
        "Unknown caller",
        "Unknown",
        NUMBER,
    )
    assert record.name == "Unknown caller" and record.number == NUMBER
    contact = await adapter.create_record(
        TENANT, "Contact", {"FirstName": "Ada", "LastName": "Byron"}
    )
    assert contact.name == "Ada Byron" and contact.ref.object == "Contact"
