"""Screen pop: ``BuiltinCrm.lookup_by_number`` over spellings, ordering, limits and tenants."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import sqlalchemy as sa

from ctibridge.crm._builtin_queries import LOOKUP
from ctibridge.crm.base import CallLog, CrmRef
from ctibridge.crm.builtin import BuiltinCrm
from tests.unit.crm.conftest import OTHER_TENANT, TENANT, Clock

E164 = "+441134960215"
STORED_SPELLINGS = (
    "0113 496 0215",
    "+44 113 496 0215",
    "01134960215",
    "(0113) 496-0215",
    "0044 113 496 0215",
    "+44 (0)113 496 0215 ext. 204",
)
LOOKUP_SPELLINGS = (
    E164,
    "01134960215",
    "0113 496 0215",
    "+44 113 496 0215",
    "+44-113-496-0215",
    "00441134960215",
    "0044 113 496 0215",
    "(0113) 496 0215",
    "+44 (0)113 496 0215",
    "0113 496 0215 x12",
    "  0113.496.0215  ",
)


def _log(key: str, who: CrmRef | None, ended_at: float, what: CrmRef | None = None) -> CallLog:
    return CallLog(
        key=key,
        tenant_id=TENANT,
        call_id=key.partition(":")[0],
        agent_id="agent-1",
        crm_user_id=None,
        call_type="Inbound",
        subject="Inbound call",
        started_at=ended_at - 60,
        ended_at=ended_at,
        duration_seconds=60,
        disposition="Answered",
        remote_number=E164,
        who=who,
        what=what,
    )


@contextmanager
def counting_statements(crm_engine: Any) -> Iterator[list[str]]:
    statements: list[str] = []

    def before(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        statements.append(statement)

    sa.event.listen(crm_engine.sync_engine, "before_cursor_execute", before)
    try:
        yield statements
    finally:
        sa.event.remove(crm_engine.sync_engine, "before_cursor_execute", before)


async def test_every_spelling_finds_every_spelling(crm: BuiltinCrm) -> None:
    ids = set()
    for i, spelling in enumerate(STORED_SPELLINGS):
        record = await crm.create_record(
            TENANT, "Contact", {"first_name": f"P{i}", "last_name": "Caller", "phone": spelling}
        )
        ids.add(record.ref.record_id)
    for spelling in LOOKUP_SPELLINGS:
        found = await crm.lookup_by_number(TENANT, spelling)
        assert {r.ref.record_id for r in found} == ids, spelling
        assert {r.number for r in found} == set(STORED_SPELLINGS)  # as stored


async def test_foreign_numbers_in_international_spellings(crm: BuiltinCrm) -> None:
    record = await crm.create_record(
        TENANT, "Lead", {"last_name": "Walsh", "mobile_phone": "+1 (202) 555-0143"}
    )
    for spelling in ("+12025550143", "001 202 555 0143", "+1 202-555-0143"):
        found = await crm.lookup_by_number(TENANT, spelling)
        assert [r.ref for r in found] == [record.ref]
    # the same digits read as a UK national number are another number
    assert await crm.lookup_by_number(TENANT, "2025550143") == []


async def test_a_match_tells_what_matched_and_where_to_open_it(crm: BuiltinCrm) -> None:
    account = await crm.create_record(TENANT, "Account", {"name": "Aire Valley Estates"})
    contact = await crm.create_record(
        TENANT,
        "contacts",
        {
            "first_name": "Imran",
            "last_name": "Hussain",
            "email": "imran@aire.example",
            "account_id": account.ref.record_id,
            "phone": "0161 496 0000",
            "mobile_phone": "07700 900 123",
        },
    )
    (found,) = await crm.lookup_by_number(TENANT, "+447700900123")
    assert found.ref == CrmRef("Contact", contact.ref.record_id)
    assert found.name == "Imran Hussain"
    assert found.matched_field == "mobile_phone"
    assert found.number == "07700 900 123"
    assert found.account_name == "Aire Valley Estates"
    assert found.url == f"/console/records/Contact/{contact.ref.record_id}"
    assert found.fields == {"email": "imran@aire.example"}
    assert found.last_activity_at is None


async def test_a_record_with_the_number_twice_comes_back_once(crm: BuiltinCrm) -> None:
    await crm.create_record(
        TENANT,
        "Contact",
        {"last_name": "Twice", "other_phone": "0113 496 0215", "phone": "01134960215"},
    )
    (found,) = await crm.lookup_by_number(TENANT, E164)
    assert (found.matched_field, found.number) == ("phone", "01134960215")


async def _make(crm: BuiltinCrm, object: str, name: str) -> CrmRef:
    fields = {"name": name} if object == "Account" else {"last_name": name}
    record = await crm.create_record(TENANT, object, {**fields, "phone": E164})
    return record.ref


async def test_shared_number_order_activity_then_object_then_name(
    crm: BuiltinCrm, clock: Clock
) -> None:
    account = await _make(crm, "Account", "Acme")
    lead = await _make(crm, "Lead", "Adams")
    zed = await _make(crm, "Contact", "Zed")
    bob = await _make(crm, "Contact", "Bob")

    async def order() -> list[CrmRef]:
        return [r.ref for r in await crm.lookup_by_number(TENANT, E164)]

    assert await order() == [bob, zed, lead, account]
    await crm.log_call(_log("call-1:agent-1", lead, clock.advance(10)))
    assert await order() == [lead, bob, zed, account]
    await crm.log_call(_log("call-2:agent-1", None, clock.advance(10), what=account))
    assert await order() == [account, lead, bob, zed]


async def test_same_name_and_object_are_ordered_by_id(crm: BuiltinCrm) -> None:
    refs = [await _make(crm, "Contact", "Smith") for _ in range(4)]
    found = await crm.lookup_by_number(TENANT, E164)
    assert [r.ref for r in found] == sorted(refs, key=lambda ref: ref.record_id)


async def test_limit_keeps_the_best_matches(crm: BuiltinCrm) -> None:
    for name in ("D", "C", "B", "A"):
        await _make(crm, "Contact", name)
    found = await crm.lookup_by_number(TENANT, E164, limit=2)
    assert [r.name for r in found] == ["A", "B"]
    assert await crm.lookup_by_number(TENANT, E164, limit=0) == []


async def test_tenants_never_see_each_other(crm: BuiltinCrm) -> None:
    await crm.create_record(OTHER_TENANT, "Contact", {"last_name": "Other", "phone": E164})
    assert await crm.lookup_by_number(TENANT, E164) == []
    mine = await crm.create_record(TENANT, "Contact", {"last_name": "Mine", "phone": E164})
    assert [r.ref for r in await crm.lookup_by_number(TENANT, E164)] == [mine.ref]


@pytest.mark.parametrize("number", ["101", "2001", "12345", "*97", "ext 4001", "", "abc", "+"])
async def test_internal_and_unusable_numbers_are_never_looked_up(
    sqlite_crm: BuiltinCrm, number: str
) -> None:
    await sqlite_crm.create_record(TENANT, "Contact", {"last_name": "Someone", "phone": E164})
    with counting_statements(sqlite_crm._engine) as statements:
        assert await sqlite_crm.lookup_by_number(TENANT, number) == []
    assert statements == []


async def test_internal_digits_setting_moves_the_line(crm: BuiltinCrm, storage: Any) -> None:
    six = BuiltinCrm(storage, internal_digits=6)  # never opens its lookup connection
    with counting_statements(storage.engine) as statements:
        assert await six.lookup_by_number(TENANT, "123456") == []
    assert statements == []


async def test_lookup_is_one_indexed_query(
    crm: BuiltinCrm, monkeypatch: pytest.MonkeyPatch
) -> None:
    await _make(crm, "Contact", "Indexed")
    # The lookup runs on the driver directly when it can (FastLookup), else through the
    # engine: either way exactly one query.
    answered: list[bool] = []
    real_fetch = crm._fast.fetch

    async def counted(params: Any) -> Any:
        rows = await real_fetch(params)
        answered.append(rows is not None)
        return rows

    monkeypatch.setattr(crm._fast, "fetch", counted)
    with counting_statements(crm._engine) as statements:
        assert len(await crm.lookup_by_number(TENANT, E164)) == 1
    assert answered.count(True) + len(statements) == 1
    engine = crm._engine
    query = LOOKUP.params(tenant_id=TENANT, e164=E164, limit=60)
    sql = str(query.compile(dialect=engine.dialect, compile_kwargs={"literal_binds": True}))
    async with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            rows = await conn.exec_driver_sql("EXPLAIN QUERY PLAN " + sql)
        else:
            await conn.exec_driver_sql("SET enable_seqscan = off")
            rows = await conn.exec_driver_sql("EXPLAIN " + sql)
        plan = " ".join(str(row) for row in rows)
    assert "ix_crm_phones_e164" in plan
