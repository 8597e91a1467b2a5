"""CSV import (all or nothing, or ``skip_bad``) and export, in Salesforce's export shape."""

from __future__ import annotations

import csv
import io
from typing import Any

import pytest

from ctibridge.crm import csvio
from ctibridge.crm._builtin_schema import object_spec
from ctibridge.crm.base import CrmRef
from ctibridge.crm.builtin import BuiltinCrm
from ctibridge.errors import InvalidRequest
from ctibridge.storage import SqlStorage
from tests.unit.crm.conftest import OTHER_TENANT, TENANT, count_rows, phone_index

CONTACTS = (
    "Id,FirstName,LastName,Email,Phone,MobilePhone,OtherPhone,AccountName,Title\r\n"
    "0031x000001,Sarah,Mitchell,sarah@mail.example,,07700 900123,,,Landlord\r\n"
    '0031x000002,Peter,Lawson,peter@lawson.example,"+44 (0)1632 960274",,,Lawson & Co,\r\n'
    "0031x000003,Imran,Hussain,imran@aire.example,(0113) 496-0215,,01134960999,Aire Valley,\r\n"
    "0031x000004,Bethany,Shaw,,0113 496 0215,,,Aire Valley,Office Manager\r\n"
)


async def _import(
    crm: BuiltinCrm, text: str | bytes, object: str = "contacts", **kw: Any
) -> csvio.ImportReport:
    data = io.BytesIO(text if isinstance(text, bytes) else text.encode())
    return await csvio.import_csv(crm, TENANT, data, object, **kw)


async def _counts(storage: SqlStorage) -> dict[str, int]:
    tables = ("crm_accounts", "crm_contacts", "crm_leads", "crm_phones")
    return {table: await count_rows(storage, table) for table in tables}


async def test_salesforce_contacts_import_without_a_mapping(
    crm: BuiltinCrm, storage: SqlStorage
) -> None:
    existing = await crm.create_record(TENANT, "Account", {"name": "Aire Valley"})
    progress: list[tuple[int, int, int]] = []
    report = await _import(crm, CONTACTS, progress=lambda *a: progress.append(a))
    assert report.bad == ()
    assert report.rows == 4
    assert report.written == {"Contact": 4, "Account": 1}  # Lawson & Co created
    assert progress[-1] == (len(CONTACTS), len(CONTACTS), 4)

    (shaw, hussain) = await crm.lookup_by_number(TENANT, "+441134960215")  # by name
    assert (shaw.name, hussain.name) == ("Bethany Shaw", "Imran Hussain")
    assert hussain.ref == CrmRef("Contact", "0031x000003")  # the Salesforce Id is kept
    assert hussain.account_name == "Aire Valley"
    record = await crm.get_record(TENANT, hussain.ref)
    assert record is not None
    assert record.fields["account_id"] == existing.ref.record_id  # found by name
    (lawson,) = await crm.lookup_by_number(TENANT, "01632 960274")
    assert (lawson.account_name, lawson.number) == ("Lawson & Co", "+44 (0)1632 960274")
    assert (await _counts(storage))["crm_phones"] == 5


async def test_accounts_and_leads_import(crm: BuiltinCrm) -> None:
    accounts = "Id,Name,Phone,Website,BillingCity\r\n001A,Vaughan Capital,020 7946 0927,,London\r\n"
    leads = (
        "FirstName,LastName,Company,Phone,Status\r\nRupert,Vaughan,Vaughan Capital,02079460927,\r\n"
    )
    assert (await _import(crm, accounts, "accounts")).written == {"Account": 1}
    assert (await _import(crm, leads, "leads")).written == {"Lead": 1}
    found = await crm.lookup_by_number(TENANT, "+442079460927")
    assert [(r.ref.object, r.name) for r in found] == [
        ("Lead", "Rupert Vaughan"),
        ("Account", "Vaughan Capital"),
    ]
    lead = await crm.get_record(TENANT, found[0].ref)
    assert lead is not None
    assert lead.fields["status"] == "Open"


async def test_bad_rows_leave_the_store_unchanged_and_are_all_named(
    crm: BuiltinCrm, storage: SqlStorage
) -> None:
    before_record = await crm.create_record(TENANT, "Lead", {"last_name": "Before"})
    before = await _counts(storage)
    text = (
        b"Id,FirstName,LastName,Phone,Shoe Size\r\n"
        b"1,Good,Row,0113 496 0001,9\r\n"
        b"2,Bad,Number,0113 496 02155555,9\r\n"
        b"1,Dup,Id,0113 496 0003,9\r\n"
        b"4,Broken,Caf\xe9,0113 496 0004,9\r\n"
        b"5,No,,0113 496 0005,9\r\n"
        b"6,Ext,Ension,2001,9\r\n"
    )
    report = await _import(crm, text)
    assert report.written == {}
    assert not report.committed
    assert [(b.line, b.column) for b in report.bad] == [
        (1, "Shoe Size"),
        (3, "Phone"),
        (4, "Id"),
        (5, "LastName"),
        (6, "LastName"),
        (7, "Phone"),
    ]
    reasons = [b.reason for b in report.bad]
    assert "unknown column" in reasons[0]
    assert "'0113 496 02155555' is not a phone number" in reasons[1]
    assert "duplicate id 1 (line 2)" in reasons[2]
    assert "UTF-8" in reasons[3]
    assert "required" in reasons[4]
    assert "extension" in reasons[5]
    assert str(report.bad[1]) == "line 3, column Phone: '0113 496 02155555' is not a phone number"
    assert await _counts(storage) == before
    assert await crm.get_record(TENANT, before_record.ref) == before_record


async def test_a_bad_row_after_written_chunks_rolls_them_back(
    crm: BuiltinCrm, storage: SqlStorage, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(csvio, "CHUNK", 10)
    rows = [f"Row{i},0113 496 {i:04d}" for i in range(55)] + ["Late,bad number"]
    report = await _import(crm, "LastName,Phone\r\n" + "\r\n".join(rows) + "\r\n")
    assert [(b.line, b.column) for b in report.bad] == [(57, "Phone")]
    assert await count_rows(storage, "crm_contacts") == 0
    assert await phone_index(storage) == set()


async def test_skip_bad_writes_the_good_rows(crm: BuiltinCrm, storage: SqlStorage) -> None:
    text = "LastName,Phone,Notes\r\nGood,0113 496 0001,x\r\nBad,12,y\r\nAlso good,,z\r\n"
    report = await _import(crm, text, skip_bad=True)
    assert [(b.line, b.column) for b in report.bad] == [(1, "Notes"), (3, "Phone")]
    assert report.written == {"Contact": 2}
    assert [r.name for r in await crm.search(TENANT, "good")] == ["Also good", "Good"]
    assert await count_rows(storage, "crm_phones") == 1


async def test_unknown_account_id_is_a_bad_row(crm: BuiltinCrm) -> None:
    acme = await crm.create_record(TENANT, "Account", {"name": "Acme"})
    text = f"LastName,AccountId\r\nKnown,{acme.ref.record_id}\r\nUnknown,001NOPE\r\n"
    report = await _import(crm, text, skip_bad=True)
    assert [(b.line, b.column, b.reason) for b in report.bad] == [
        (3, "AccountId", "no account with id 001NOPE")
    ]
    assert report.written == {"Contact": 1}


async def test_mapping_renames_and_skips_columns(crm: BuiltinCrm) -> None:
    text = "Surname,Tel,Internal Notes,OwnerId\r\nLee,0113 496 0215,vip,005x\r\n"
    mapping = {"Surname": "last_name", "Tel": "mobile_phone", "Internal Notes": ""}
    report = await _import(crm, text, mapping=mapping)
    assert report.bad == ()  # OwnerId is a Salesforce system column: skipped
    (found,) = await crm.lookup_by_number(TENANT, "+441134960215")
    assert (found.name, found.matched_field) == ("Lee", "mobile_phone")


@pytest.mark.parametrize("mapping", [{"Tel": "fax"}, {"Tel": "company"}])
async def test_mapping_to_a_field_the_object_lacks_is_refused(
    sqlite_crm: BuiltinCrm, mapping: dict[str, str]
) -> None:
    with pytest.raises(InvalidRequest, match="no field"):
        await _import(sqlite_crm, "LastName,Tel\r\nLee,01134960215\r\n", mapping=mapping)


async def test_mapped_column_missing_from_the_file_is_reported(crm: BuiltinCrm) -> None:
    report = await _import(crm, "LastName\r\nLee\r\n", mapping={"Tel": "phone"})
    assert [(b.line, b.column) for b in report.bad] == [(1, "Tel")]


async def test_line_numbers_count_blank_lines_and_quoted_newlines(crm: BuiltinCrm) -> None:
    text = (
        '\ufeffLastName,Title,Phone\r\nOne,"two\r\nline title",01134960001\r\n\r\n'
        "Three,,bad\r\nFour,x,y,z\r\n"
    )
    report = await _import(crm, text)
    assert [(b.line, b.column) for b in report.bad] == [(5, "Phone"), (6, None)]
    assert report.rows == 3


async def test_region_reads_national_numbers(crm: BuiltinCrm) -> None:
    report = await _import(crm, "LastName,Phone\r\nDupont,01 23 45 67 89\r\n", region="FR")
    assert report.written == {"Contact": 1}
    (found,) = await crm.lookup_by_number(TENANT, "+33123456789")
    # a later edit of another field keeps the number indexed as it was read
    await crm.update_record(TENANT, found.ref, {"title": "Gérant"})
    assert len(await crm.lookup_by_number(TENANT, "+33 1 23 45 67 89")) == 1


async def test_reimporting_an_id_overwrites_the_record(crm: BuiltinCrm) -> None:
    await _import(crm, "Id,LastName,Phone\r\nX1,Old,0113 496 0001\r\n")
    await _import(crm, "Id,LastName,Phone\r\nX1,New,0113 496 0002\r\n")
    assert await crm.lookup_by_number(TENANT, "01134960001") == []
    (found,) = await crm.lookup_by_number(TENANT, "01134960002")
    assert (found.ref.record_id, found.name) == ("X1", "New")


async def test_export_round_trips(crm: BuiltinCrm) -> None:
    accounts = "Id,Name,Phone,Industry\r\n001A,Aire Valley,0113 496 0215,Real estate\r\n"
    leads = 'Id,LastName,Company,Email,Status\r\n00QA,"O\'Brien, Jr",Q,q@x.example,Working\r\n'
    await _import(crm, accounts, "accounts")
    await _import(crm, CONTACTS)
    await _import(crm, leads, "leads")
    for object in ("accounts", "contacts", "leads"):
        out = io.StringIO()
        count = await csvio.export_csv(crm, TENANT, object, out)
        exported = out.getvalue()
        assert count == len(exported.splitlines()) - 1
        header = next(csv.reader(io.StringIO(exported)))
        assert header == csvio.export_header(object_spec(object))
        again = await csvio.import_csv(crm, OTHER_TENANT, io.BytesIO(exported.encode()), object)
        assert again.bad == ()
        second = io.StringIO()
        await csvio.export_csv(crm, OTHER_TENANT, object, second)
        assert second.getvalue() == exported
