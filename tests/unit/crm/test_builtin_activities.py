"""Call logs: ``log_call`` is idempotent by key, moves last activity, and builds the history."""

from __future__ import annotations

import dataclasses

from ctibridge.crm.base import CallLog, CrmRef
from ctibridge.crm.builtin import BuiltinCrm
from ctibridge.storage import SqlStorage
from tests.unit.crm.conftest import TENANT, Clock, count_rows

T0 = 1_800_000_000.0


def make_log(key: str = "call-1:agent-1", **changes: object) -> CallLog:
    log = CallLog(
        key=key,
        tenant_id=TENANT,
        call_id=key.partition(":")[0],
        agent_id=key.partition(":")[2],
        crm_user_id="005000000000001",
        call_type="Inbound",
        subject="Inbound call from 01134960215 (Ann Lee)",
        started_at=T0,
        ended_at=T0 + 95,
        duration_seconds=95,
        disposition="Answered",
        remote_number="+441134960215",
        remote_name="Ann Lee",
        recording_url="https://rec.example/1.mp3",
        description="Asked about the deposit",
        timezone="Europe/London",
    )
    return dataclasses.replace(log, **changes)  # type: ignore[arg-type]


async def _people(crm: BuiltinCrm) -> tuple[CrmRef, CrmRef]:
    acme = await crm.create_record(TENANT, "Account", {"name": "Acme"})
    ann = await crm.create_record(
        TENANT, "Contact", {"last_name": "Lee", "account_id": acme.ref.record_id}
    )
    return ann.ref, acme.ref


async def test_log_call_is_idempotent_by_key(
    crm: BuiltinCrm, storage: SqlStorage, clock: Clock
) -> None:
    ann, acme = await _people(crm)
    log = make_log(who=ann, what=acme)
    first = await crm.log_call(log)
    clock.advance(30)
    again = await crm.log_call(dataclasses.replace(log, description="a retry"))
    assert again == first
    assert await count_rows(storage, "crm_activities") == 1
    (activity,) = await crm.activities(TENANT, ann)
    assert activity.activity_id == first
    assert activity.log == log  # the first write stays
    assert activity.logged_at == clock.now - 30


async def test_each_agent_on_a_call_logs_separately(crm: BuiltinCrm) -> None:
    ann, _ = await _people(crm)
    one = await crm.log_call(make_log("call-1:agent-1", who=ann))
    two = await crm.log_call(make_log("call-1:agent-2", who=ann, started_at=T0 + 200))
    assert one != two
    assert [a.activity_id for a in await crm.activities(TENANT, ann)] == [two, one]


async def test_log_call_moves_last_activity_forward_only(crm: BuiltinCrm) -> None:
    ann, acme = await _people(crm)
    await crm.log_call(make_log("call-2:agent-1", who=ann, what=acme, ended_at=T0 + 500))
    await crm.log_call(make_log("call-1:agent-1", who=ann, ended_at=T0 + 100))  # older call
    for ref in (ann, acme):
        record = await crm.get_record(TENANT, ref)
        assert record is not None
        assert record.last_activity_at == T0 + 500


async def test_relogging_a_key_does_not_move_last_activity(crm: BuiltinCrm) -> None:
    ann, _ = await _people(crm)
    await crm.log_call(make_log(who=ann, ended_at=T0 + 10))
    await crm.log_call(make_log(who=ann, ended_at=T0 + 9999))
    record = await crm.get_record(TENANT, ann)
    assert record is not None
    assert record.last_activity_at == T0 + 10


async def test_history_is_per_record_as_who_or_what(crm: BuiltinCrm) -> None:
    ann, acme = await _people(crm)
    bob = (await crm.create_record(TENANT, "Lead", {"last_name": "Bob"})).ref
    both = await crm.log_call(make_log("c1:a", who=ann, what=acme, started_at=T0))
    only_bob = await crm.log_call(make_log("c2:a", who=bob, started_at=T0 + 10))
    only_acme = await crm.log_call(make_log("c3:a", what=acme, started_at=T0 + 20))
    unlinked = await crm.log_call(make_log("c4:a", started_at=T0 + 30))
    assert [a.activity_id for a in await crm.activities(TENANT, acme)] == [only_acme, both]
    assert [a.activity_id for a in await crm.activities(TENANT, ann)] == [both]
    assert [a.activity_id for a in await crm.activities(TENANT, bob)] == [only_bob]
    assert unlinked not in {only_bob, only_acme, both}
    assert len(await crm.activities(TENANT, acme, limit=1)) == 1
    assert await crm.activities("other-tenant", acme) == []


async def test_logs_on_objects_the_builtin_crm_lacks_are_kept(crm: BuiltinCrm) -> None:
    case = CrmRef("Case", "500000000000001")
    activity_id = await crm.log_call(make_log(what=case))
    (activity,) = await crm.activities(TENANT, case)
    assert activity.activity_id == activity_id
    assert activity.log.what == case
    assert activity.log.who is None


async def test_deleting_a_record_keeps_its_history(crm: BuiltinCrm) -> None:
    ann, _ = await _people(crm)
    await crm.log_call(make_log(who=ann))
    await crm.delete_record(TENANT, ann)
    assert len(await crm.activities(TENANT, ann)) == 1
