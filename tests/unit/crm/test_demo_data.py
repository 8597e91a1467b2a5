"""The demo CRM data set: deterministic, realistic, with every demo caller, and quick to load."""

from __future__ import annotations

import re
import time
from collections import Counter
from collections.abc import Callable

from ctibridge.crm.base import CallLog
from ctibridge.crm.builtin import BuiltinCrm
from ctibridge.demo.crm_data import SHARED_NUMBERS, demo_crm_data, seed_demo_crm
from ctibridge.demo.directory import DEMO
from ctibridge.numbers import to_e164
from ctibridge.storage import SqlStorage
from tests.unit.crm.conftest import count_rows

TENANT = DEMO.account_id
PHONES = ("phone", "mobile_phone", "other_phone")
DRAMA = re.compile(
    r"^\+44(1134960|1144960|1154960|1164960|1174960|1184960|1214960|1314960|1414960|1514960"
    r"|1614960|1914980|2079460|2896496|2920180|1632960|7700900)\d{3}$"
)
"""Ofcom's drama ranges: numbers never given to subscribers."""


def _numbers() -> list[tuple[str, str]]:
    data = demo_crm_data()
    return [
        (row[field], str(to_e164(row[field])))
        for rows in (data.accounts, data.contacts, data.leads)
        for row in rows
        for field in PHONES
        if row.get(field)
    ]  # type: ignore[misc]


def test_the_data_set_is_deterministic_and_about_10000_records() -> None:
    built = demo_crm_data.__wrapped__()
    assert built == demo_crm_data.__wrapped__()
    assert 9_500 <= len(built) <= 10_500
    assert len(built.contacts) > len(built.leads) > len(built.accounts) > 1000
    ids = [row["id"] for rows in (built.accounts, built.contacts, built.leads) for row in rows]
    assert len(set(ids)) == len(ids)


def test_contacts_belong_to_accounts_that_exist() -> None:
    data = demo_crm_data()
    accounts = {row["id"] for row in data.accounts}
    with_account = [row for row in data.contacts if row.get("account_id")]
    assert len(with_account) > 0.95 * len(data.contacts)
    assert all(row["account_id"] in accounts for row in with_account)


def test_numbers_are_fictional_uk_numbers_in_mixed_spellings() -> None:
    numbers = _numbers()
    foreign = {c.number for c in DEMO.callers if not c.number.startswith("+44")}
    assert all(DRAMA.match(e164) or e164 in foreign for _, e164 in numbers)
    shapes = Counter(re.sub(r"\d", "9", spelled) for spelled, _ in numbers)
    assert len(shapes) >= 15  # national, +44, 0044, (0...), dashes, +44 (0)... per range
    spelled = [number for number, _ in numbers]
    for start in ("+44 (0)", "+44 ", "+44", "(0", "0044 ", "01", "07700 "):
        assert any(number.startswith(start) for number in spelled), start
    assert any("-" in number for number in spelled)


def test_a_few_numbers_are_shared() -> None:
    per_number = Counter(e164 for _, e164 in _numbers())
    assert {n for n, count in per_number.items() if count > 1} == set(SHARED_NUMBERS)


async def test_seed_makes_every_demo_caller_pop(
    storage: SqlStorage, make_crm: Callable[..., BuiltinCrm]
) -> None:
    crm = make_crm()
    demo_crm_data.cache_clear()
    to_e164.cache_clear()  # time a cold load: build the data, read every number
    started = time.process_time()  # CPU of this process (SQLite runs in it): immune to load
    counts = await seed_demo_crm(crm, TENANT)
    elapsed = time.process_time() - started
    assert sum(counts.values()) == len(demo_crm_data())
    if storage.engine.dialect.name == "sqlite":
        assert elapsed < 2.0
    for caller in DEMO.callers:
        found = await crm.lookup_by_number(TENANT, caller.number)
        assert caller.name in [r.name for r in found], caller
        if caller.number not in SHARED_NUMBERS:
            assert len(found) == 1, caller
    chooser = await crm.lookup_by_number(TENANT, "+441134960215")
    assert [(r.ref.object, r.name) for r in chooser] == [
        ("Contact", "Bethany Shaw"),
        ("Contact", "Imran Hussain"),
        ("Account", "Aire Valley Estates"),
    ]


async def test_seeding_again_changes_nothing_and_keeps_activity(
    storage: SqlStorage, make_crm: Callable[..., BuiltinCrm]
) -> None:
    crm = make_crm()
    await seed_demo_crm(crm, TENANT)
    tables = ("crm_accounts", "crm_contacts", "crm_leads", "crm_phones")
    before = [await count_rows(storage, table) for table in tables]
    (sarah, *_) = await crm.lookup_by_number(TENANT, DEMO.callers[0].number)
    await crm.log_call(
        CallLog(
            key="c:a", tenant_id=TENANT, call_id="c", agent_id="a", crm_user_id=None,
            call_type="Inbound", subject="s", started_at=1.0, ended_at=2.0,
            duration_seconds=1, disposition="Answered", who=sarah.ref,
        )
    )  # fmt: skip
    await seed_demo_crm(crm, TENANT)
    assert [await count_rows(storage, table) for table in tables] == before
    again = await crm.get_record(TENANT, sarah.ref)
    assert again is not None
    assert again.last_activity_at == 2.0
