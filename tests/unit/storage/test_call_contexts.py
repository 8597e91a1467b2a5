"""What agents did in the CRM during calls: merged upserts, per-call reads, removal, expiry."""

from __future__ import annotations

from ctibridge.storage import SqlStorage
from ctibridge.storage.base import CallContext
from ctibridge.types import AgentId, CallId
from tests.unit.storage.builders import T1, T2

NOW = 1_700_000_000.0
CALL = CallId("call-1")
OLIVIA, JAMES = AgentId("agent-101"), AgentId("agent-102")
SARAH = {"object": "Contact", "id": "003A", "name": "Sarah Mitchell", "number": "07700900123"}
SARAH_LEAD = {"object": "Lead", "id": "00QB", "name": "Sarah Mitchell", "url": None}


def _ctx(agent: AgentId = OLIVIA, call: CallId = CALL, **fields: object) -> CallContext:
    return CallContext(T1, call, agent, **fields)  # type: ignore[arg-type]


async def test_fields_given_replace_the_stored_ones_and_the_others_stay(
    storage: SqlStorage,
) -> None:
    await storage.upsert_call_contexts([_ctx(matches=(SARAH, SARAH_LEAD), updated_at=NOW)])
    await storage.upsert_call_contexts([_ctx(chosen=("Lead", "00QB"), updated_at=NOW + 5)])
    await storage.upsert_call_contexts([_ctx(clicked=("Account", "001C"), updated_at=NOW + 6)])
    (stored,) = await storage.list_call_contexts(T1, CALL)
    assert stored == _ctx(
        clicked=("Account", "001C"),
        chosen=("Lead", "00QB"),
        matches=(SARAH, SARAH_LEAD),
        updated_at=NOW + 6,
    )

    # a new lookup (after a restart, say) replaces the matches and keeps the choice
    await storage.upsert_call_contexts([_ctx(matches=(SARAH,), updated_at=NOW + 7)])
    await storage.upsert_call_contexts([_ctx(chosen=("Contact", "003A"), updated_at=NOW + 8)])
    (stored,) = await storage.list_call_contexts(T1, CALL)
    assert (stored.chosen, stored.clicked, stored.matches) == (
        ("Contact", "003A"),
        ("Account", "001C"),
        (SARAH,),
    )


async def test_a_lookup_that_found_nothing_is_not_the_same_as_no_lookup(
    storage: SqlStorage,
) -> None:
    await storage.upsert_call_contexts([_ctx(chosen=("Lead", "00QN")), _ctx(JAMES, matches=())])
    olivia, james = await storage.list_call_contexts(T1, CALL)
    assert (olivia.agent_id, olivia.matches) == (OLIVIA, None)
    assert (james.agent_id, james.matches) == (JAMES, ())


async def test_one_batch_applies_in_order_even_for_the_same_key(storage: SqlStorage) -> None:
    await storage.upsert_call_contexts([_ctx(chosen=("Contact", "003A"), updated_at=NOW)])
    await storage.upsert_call_contexts(
        [
            _ctx(matches=(SARAH,), updated_at=NOW + 1),
            _ctx(JAMES, chosen=("Contact", "003A"), updated_at=NOW + 1),
            _ctx(chosen=("Lead", "00QB"), updated_at=NOW + 2),
            _ctx(chosen=("Account", "001C"), updated_at=NOW + 3),
        ]
    )
    await storage.upsert_call_contexts([])
    olivia, james = await storage.list_call_contexts(T1, CALL)
    assert olivia == _ctx(chosen=("Account", "001C"), matches=(SARAH,), updated_at=NOW + 3)
    assert james == _ctx(JAMES, chosen=("Contact", "003A"), updated_at=NOW + 1)


async def test_contexts_are_per_tenant_and_call_and_removed_per_call(storage: SqlStorage) -> None:
    other_call = CallId("call-2")
    await storage.upsert_call_contexts(
        [
            _ctx(chosen=("Contact", "003A")),
            _ctx(JAMES, chosen=("Lead", "00QB")),
            _ctx(call=other_call, chosen=("Account", "001C")),
            CallContext(T2, CALL, OLIVIA, chosen=("Contact", "003Z")),
        ]
    )
    assert [c.agent_id for c in await storage.list_call_contexts(T1, CALL)] == [OLIVIA, JAMES]
    (theirs,) = await storage.list_call_contexts(T2, CALL)
    assert theirs.chosen == ("Contact", "003Z")

    await storage.remove_call_contexts(T1, CALL)
    assert await storage.list_call_contexts(T1, CALL) == []
    assert len(await storage.list_call_contexts(T1, other_call)) == 1
    assert len(await storage.list_call_contexts(T2, CALL)) == 1
    await storage.remove_call_contexts(T1, CALL)  # nothing left: harmless
    assert await storage.list_call_contexts(T1, CallId("never")) == []


async def test_contexts_unchanged_for_the_retention_period_expire(storage: SqlStorage) -> None:
    await storage.upsert_call_contexts(
        [
            _ctx(chosen=("Contact", "003A"), updated_at=NOW),
            _ctx(call=CallId("call-2"), chosen=("Contact", "003A"), updated_at=NOW),
            _ctx(call=CallId("call-3"), chosen=("Contact", "003A"), updated_at=NOW + 100),
        ]
    )
    await storage.upsert_call_contexts([_ctx(matches=(), updated_at=NOW + 50)])  # a change
    assert await storage.expire_call_contexts(NOW + 50) == 1
    assert await storage.list_call_contexts(T1, CallId("call-2")) == []
    assert len(await storage.list_call_contexts(T1, CALL)) == 1
    assert await storage.expire_call_contexts(NOW + 101) == 2
    assert await storage.expire_call_contexts(NOW + 101) == 0
