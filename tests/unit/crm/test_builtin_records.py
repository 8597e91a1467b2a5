"""Records: create, read, update, delete, list and search, and the phone index following them."""

from __future__ import annotations

from typing import Any

import pytest

from ctibridge.crm.base import CrmRef
from ctibridge.crm.builtin import BuiltinCrm
from ctibridge.errors import InvalidRequest, NotFound
from ctibridge.storage import SqlStorage
from tests.unit.crm.conftest import OTHER_TENANT, TENANT, Clock, count_rows, phone_index

ANN = {
    "first_name": "Ann",
    "last_name": "Lee",
    "email": "ann.lee@example.com",
    "phone": "0113 496 0215",
    "mobile_phone": "07700 900123",
}


async def test_create_then_get(crm: BuiltinCrm, clock: Clock) -> None:
    created = await crm.create_record(TENANT, "Contact", {**ANN, "title": " Director "})
    assert created.ref.object == "Contact"
    assert created.name == "Ann Lee"
    assert created.fields["title"] == "Director"  # stripped
    assert created.fields["other_phone"] is None
    assert created.fields["created_at"] == clock.now
    assert created.url == f"/console/records/Contact/{created.ref.record_id}"
    assert await crm.get_record(TENANT, created.ref) == created
    assert await crm.get_record(OTHER_TENANT, created.ref) is None
    assert await crm.get_record(TENANT, CrmRef("Case", created.ref.record_id)) is None


async def test_lead_status_defaults_to_open(crm: BuiltinCrm) -> None:
    lead = await crm.create_record(TENANT, "leads", {"last_name": "Hale", "company": "Vaughan"})
    assert (lead.fields["status"], lead.account_name) == ("Open", "Vaughan")


@pytest.mark.parametrize(
    ("object", "fields", "field"),
    [
        ("Case", {"last_name": "X"}, "object"),
        ("Contact", {"last_name": "X", "fax": "0113 496 0215"}, "fax"),
        ("Contact", {"first_name": "No surname"}, "last_name"),
        ("Contact", {"last_name": "   "}, "last_name"),
        ("Account", {"phone": "0113 496 0215"}, "name"),
        ("Contact", {"last_name": "X", "phone": "not a number"}, "phone"),
        ("Contact", {"last_name": "X", "mobile_phone": "2001"}, "mobile_phone"),
        ("Lead", {"last_name": "X", "other_phone": "+44 12"}, "other_phone"),
        ("Contact", {"last_name": "X", "email": "ann at example"}, "email"),
        ("Contact", {"last_name": "X", "title": 42}, "title"),
        ("Contact", {"last_name": "X" * 256}, "last_name"),
    ],
)
async def test_create_refuses_bad_input_naming_the_field(
    sqlite_crm: BuiltinCrm, object: str, fields: dict[str, Any], field: str
) -> None:
    with pytest.raises(InvalidRequest) as caught:
        await sqlite_crm.create_record(TENANT, object, fields)
    assert caught.value.details["field"] == field
    assert caught.value.status_code == 400
    assert await sqlite_crm.search(TENANT, "X") == []


async def test_refused_records_write_nothing(crm: BuiltinCrm, storage: SqlStorage) -> None:
    bad = [
        {"last_name": "X", "account_id": "no-such-account", "phone": "0113 496 0215"},
        {"last_name": "X", "phone": "0113 496 0215", "mobile_phone": "not a number"},
    ]
    for fields in bad:
        with pytest.raises(InvalidRequest):
            await crm.create_record(TENANT, "Contact", fields)
    assert await count_rows(storage, "crm_contacts") == 0
    assert await phone_index(storage) == set()


async def test_update_reindexes_changed_numbers(crm: BuiltinCrm, storage: SqlStorage) -> None:
    ann = await crm.create_record(TENANT, "Contact", ANN)
    rid = ann.ref.record_id
    assert await phone_index(storage) == {
        ("Contact", rid, "phone", "+441134960215", "0113 496 0215"),
        ("Contact", rid, "mobile_phone", "+447700900123", "07700 900123"),
    }
    updated = await crm.update_record(
        TENANT, ann.ref, {"phone": "+44 20 7946 0381", "mobile_phone": "", "title": "Boss"}
    )
    assert updated.fields["mobile_phone"] is None
    assert updated.fields["title"] == "Boss"
    assert updated.fields["first_name"] == "Ann"  # untouched
    assert await phone_index(storage) == {
        ("Contact", rid, "phone", "+442079460381", "+44 20 7946 0381"),
    }
    assert await crm.lookup_by_number(TENANT, "+441134960215") == []
    assert await crm.lookup_by_number(TENANT, "+447700900123") == []
    assert [r.ref for r in await crm.lookup_by_number(TENANT, "02079460381")] == [ann.ref]


async def test_update_of_a_name_shows_in_lookups(crm: BuiltinCrm) -> None:
    ann = await crm.create_record(TENANT, "Contact", ANN)
    await crm.update_record(TENANT, ann.ref, {"first_name": "Anne"})
    (found,) = await crm.lookup_by_number(TENANT, "01134960215")
    assert found.name == "Anne Lee"


async def test_bad_update_changes_nothing(crm: BuiltinCrm, storage: SqlStorage) -> None:
    ann = await crm.create_record(TENANT, "Contact", ANN)
    before = await phone_index(storage)
    for fields in ({"phone": "12"}, {"last_name": ""}, {"colour": "red"}):
        with pytest.raises(InvalidRequest):
            await crm.update_record(TENANT, ann.ref, fields)
    assert await crm.get_record(TENANT, ann.ref) == ann
    assert await phone_index(storage) == before


async def test_update_of_a_missing_record_is_not_found(crm: BuiltinCrm) -> None:
    with pytest.raises(NotFound):
        await crm.update_record(TENANT, CrmRef("Lead", "nope"), {"title": "x"})


async def test_delete_removes_the_record_and_its_numbers(
    crm: BuiltinCrm, storage: SqlStorage
) -> None:
    ann = await crm.create_record(TENANT, "Contact", ANN)
    keep = await crm.create_record(TENANT, "Lead", {"last_name": "Keep", "phone": "01134960215"})
    assert await crm.delete_record(TENANT, ann.ref) is True
    assert await crm.get_record(TENANT, ann.ref) is None
    assert {row[1] for row in await phone_index(storage)} == {keep.ref.record_id}
    assert [r.ref for r in await crm.lookup_by_number(TENANT, "01134960215")] == [keep.ref]
    assert await crm.delete_record(TENANT, ann.ref) is False
    assert await crm.delete_record(TENANT, CrmRef("Case", "x")) is False


async def test_deleting_an_account_keeps_its_contacts(crm: BuiltinCrm) -> None:
    acme = await crm.create_record(TENANT, "Account", {"name": "Acme", "phone": "0113 496 0999"})
    ann = await crm.create_record(TENANT, "Contact", {**ANN, "account_id": acme.ref.record_id})
    assert ann.account_name == "Acme"
    await crm.delete_record(TENANT, acme.ref)
    after = await crm.get_record(TENANT, ann.ref)
    assert after is not None
    assert (after.fields["account_id"], after.account_name) == (None, None)


async def test_list_pages_by_name(crm: BuiltinCrm) -> None:
    names = ["Cole", "Abbott", "Brook", "Dale", "Abbott"]
    for name in names:
        await crm.create_record(TENANT, "Contact", {"last_name": name})
    await crm.create_record(TENANT, "Lead", {"last_name": "Aaron"})
    seen, cursor = [], None
    while True:
        page = await crm.list_records(TENANT, "contacts", limit=2, cursor=cursor)
        assert len(page.records) <= 2
        seen += page.records
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert [r.name for r in seen] == sorted(names)
    assert len({r.ref for r in seen}) == len(names)
    abbotts = [r.ref.record_id for r in seen if r.name == "Abbott"]
    assert abbotts == sorted(abbotts)


async def test_list_filters_by_text(crm: BuiltinCrm) -> None:
    await crm.create_record(TENANT, "Contact", ANN)
    await crm.create_record(TENANT, "Contact", {"last_name": "Other"})
    page = await crm.list_records(TENANT, "Contact", query="LEE")
    assert [r.name for r in page.records] == ["Ann Lee"]
    assert page.next_cursor is None


@pytest.mark.parametrize(
    "kwargs", [{"limit": 0}, {"limit": 1001}, {"cursor": "!!"}, {"cursor": "WzFd"}]
)
async def test_list_refuses_bad_limit_and_cursor(
    sqlite_crm: BuiltinCrm, kwargs: dict[str, Any]
) -> None:
    with pytest.raises(InvalidRequest):
        await sqlite_crm.list_records(TENANT, "Contact", **kwargs)


async def _search(crm: BuiltinCrm, text: str) -> list[str]:
    return [r.name for r in await crm.search(TENANT, text)]


async def test_search_by_name_email_company_and_digits(crm: BuiltinCrm) -> None:
    acme = await crm.create_record(TENANT, "Account", {"name": "Acme 100% Lettings"})
    await crm.create_record(TENANT, "Contact", {**ANN, "account_id": acme.ref.record_id})
    await crm.create_record(
        TENANT, "Lead", {"first_name": "Bo", "last_name": "Dee", "company": "Lee & Sons"}
    )
    await crm.create_record(OTHER_TENANT, "Contact", {**ANN, "last_name": "Leeson"})
    assert await _search(crm, "ann") == ["Ann Lee"]
    assert await _search(crm, "lee") == ["Ann Lee", "Bo Dee"]  # contact before lead
    assert await _search(crm, "EXAMPLE.COM") == ["Ann Lee"]
    assert await _search(crm, "acme") == ["Ann Lee", "Acme 100% Lettings"]
    assert await _search(crm, "100%") == ["Ann Lee", "Acme 100% Lettings"]
    assert await _search(crm, "0%L") == []  # % is literal, not a wildcard
    assert await _search(crm, "1 00%") == []
    assert await _search(crm, "496 0215") == ["Ann Lee"]
    assert await _search(crm, "07700 900123") == ["Ann Lee"]
    assert await _search(crm, "+44 7700 900") == ["Ann Lee"]
    assert await _search(crm, "  ") == []
    assert await _search(crm, "12") == []


async def test_search_respects_the_limit(crm: BuiltinCrm) -> None:
    for i in range(5):
        await crm.create_record(TENANT, "Lead", {"last_name": f"Lee {i}", "phone": "0113496021"})
    assert len(await crm.search(TENANT, "lee", limit=3)) == 3
    assert len(await crm.search(TENANT, "0113 496 021", limit=2)) == 2


async def test_upsert_many_checks_every_row_first(crm: BuiltinCrm, storage: SqlStorage) -> None:
    rows = [{"id": "a1", "name": "One", "phone": "0113 496 0001"}, {"id": "a2", "phone": "1"}]
    with pytest.raises(InvalidRequest) as caught:
        await crm.upsert_many(TENANT, "accounts", rows)
    assert (caught.value.details["row"], caught.value.details["field"]) == (1, "name")
    with pytest.raises(InvalidRequest) as caught:
        await crm.upsert_many(TENANT, "accounts", [rows[0], rows[0]])
    assert (caught.value.details["row"], caught.value.details["field"]) == (1, "id")
    assert await count_rows(storage, "crm_accounts") == 0


async def test_upsert_many_overwrites_by_id_and_reindexes(
    crm: BuiltinCrm, storage: SqlStorage
) -> None:
    first = [{"id": f"c{i}", "last_name": f"N{i}", "phone": f"0113 496 {i:04d}"} for i in range(5)]
    assert await crm.upsert_many(TENANT, "contacts", first, chunk=2) == 5
    second = [{**row, "phone": None, "mobile_phone": "07700 900001"} for row in first[:2]]
    assert await crm.upsert_many(TENANT, "contacts", second) == 2
    assert await count_rows(storage, "crm_contacts") == 5
    assert await crm.lookup_by_number(TENANT, "0113 496 0000") == []
    assert [r.ref.record_id for r in await crm.lookup_by_number(TENANT, "07700900001")] == [
        "c0",
        "c1",
    ]
    assert len(await phone_index(storage)) == 5
