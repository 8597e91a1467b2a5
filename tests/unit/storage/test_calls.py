"""save_calls: upserts with the seq guard, legs and agent links, merges, the event log."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import sqlalchemy as sa

from ctibridge.callstate.events import AgentRef, LegEventKind, Party, Recording
from ctibridge.callstate.model import (
    CallState,
    EndReason,
    Handling,
    Transfer,
)
from ctibridge.errors import StorageError
from ctibridge.storage import SqlStorage, _codec
from ctibridge.storage.base import CallQuery
from ctibridge.storage.tables import call_agents, calls, legs
from ctibridge.types import CallId
from tests.unit.storage.builders import (
    ALICE_REF,
    T1,
    T2,
    make_call,
    make_event,
    make_leg,
    write,
)

BOB_REF = AgentRef(user_id="u-bob", extension="202")
NOW = 1_700_000_100.0


async def _rows(store: SqlStorage, table: sa.Table, call_id: str) -> list[tuple[Any, ...]]:
    query = sa.select(table).where(table.c.call_id == call_id).order_by(*table.primary_key)
    async with store.engine.connect() as conn:
        return [tuple(r) for r in (await conn.execute(query)).all()]


def _full_call(**changes: Any) -> Any:
    values: dict[str, Any] = {
        "state": CallState.ENDED,
        "from_name": "Jane Caller",
        "to_name": "Sales",
        "agents": (ALICE_REF, BOB_REF),
        "rung": (ALICE_REF,),
        "current": (),
        "answered_by": ALICE_REF,
        "answered_at": 1_700_000_005.25,
        "ended_at": 1_700_000_065.5,
        "hold_seconds": 4.0,
        "talk_seconds": 56.25,
        "transfers": (Transfer("blind", 1_700_000_030.0, ALICE_REF, BOB_REF),),
        "handlings": (
            Handling(ALICE_REF, 1_700_000_005.25, 1_700_000_030.0, 4.0, BOB_REF),
            Handling(BOB_REF, 1_700_000_030.0, 1_700_000_065.5),
        ),
        "recordings": (Recording("rec-1", "https://r.example/1", 1_700_000_006.0, 59.5),),
        "end_reason": EndReason.COMPLETED,
        "origin_tag": None,
        "legs": (
            make_leg("leg-a", originator=True, hangup_cause="NORMAL_CLEARING", node="n1"),
            make_leg("leg-b", party="agent", agent=ALICE_REF, answered_at=1_700_000_005.25),
        ),
        "seq": 7,
    }
    values.update(changes)
    return make_call("call-1", **values)


async def test_call_round_trip_with_agents(storage: SqlStorage) -> None:
    call = _full_call()
    await storage.save_calls([write(call, handled=["a-1", "a-2"], rung=["a-1"])], received_at=NOW)
    stored = await storage.get_call(T1, CallId("call-1"))
    assert stored is not None
    assert stored.call == call
    assert stored.handled_by == ("a-1", "a-2")
    assert stored.rung == ("a-1",)
    assert await storage.get_call(T2, CallId("call-1")) is None
    assert await storage.get_call(T1, CallId("nope")) is None


async def test_queryable_columns_mirror_the_call(storage: SqlStorage) -> None:
    await storage.save_calls([write(_full_call(missed=True))], received_at=NOW)
    (row,) = await _rows(storage, calls, "call-1")
    assert row[:14] == (
        "call-1", T1, "kazoo", "ended", "inbound", "+441202528735", "+441202000100", True,
        1_700_000_000.0, 1_700_000_005.25, 1_700_000_065.5, "completed", 7, NOW,
    )  # fmt: skip


async def test_legs_and_links_are_rows(storage: SqlStorage) -> None:
    await storage.save_calls(
        [write(_full_call(), handled=["a-1"], rung=["a-1", "a-2"])], received_at=NOW
    )
    leg_rows = await _rows(storage, legs, "call-1")
    assert [(r[1], r[2], r[4], r[5], r[6], r[8]) for r in leg_rows] == [
        (0, "leg-a", "trunk", True, None, None),
        (1, "leg-b", "agent", False, "u-alice", "201"),
    ]
    assert await _rows(storage, call_agents, "call-1") == [
        ("call-1", "handled", 0, "a-1"),
        ("call-1", "rung", 0, "a-1"),
        ("call-1", "rung", 1, "a-2"),
    ]


async def test_newer_seq_replaces_call_legs_and_links(storage: SqlStorage) -> None:
    first = make_call("c", state=CallState.RINGING, legs=(make_leg("x"), make_leg("y")), seq=1)
    await storage.save_calls([write(first, rung=["a-1", "a-2"])], received_at=NOW)
    second = make_call("c", legs=(make_leg("x"),), seq=2, answered_at=NOW)
    await storage.save_calls([write(second, handled=["a-2"])], received_at=NOW + 1)
    stored = await storage.get_call(T1, CallId("c"))
    assert stored is not None
    assert (stored.call, stored.handled_by, stored.rung) == (second, ("a-2",), ())
    assert [r[2] for r in await _rows(storage, legs, "c")] == ["x"]
    assert await _rows(storage, call_agents, "c") == [("c", "handled", 0, "a-2")]


async def test_older_seq_never_overwrites(storage: SqlStorage) -> None:
    newer = make_call("c", state=CallState.ENDED, legs=(make_leg("x"),), seq=5)
    await storage.save_calls([write(newer, handled=["a-1"])], received_at=NOW)
    older = make_call("c", state=CallState.RINGING, legs=(make_leg("y"),), seq=4)
    late = make_event("y", NOW - 50, kind=LegEventKind.RINGING)
    await storage.save_calls([write(older, rung=["a-9"], events=[late])], received_at=NOW + 1)
    stored = await storage.get_call(T1, CallId("c"))
    assert stored is not None
    assert (stored.call, stored.handled_by, stored.rung) == (newer, ("a-1",), ())
    assert [r[2] for r in await _rows(storage, legs, "c")] == ["x"]
    assert await storage.call_events(T1, CallId("c")) == [late]  # the log keeps what happened


async def test_seq_guard_inside_one_batch(storage: SqlStorage) -> None:
    newer = make_call("c", state=CallState.ANSWERED, seq=3)
    older = make_call("c", state=CallState.RINGING, seq=2)
    await storage.save_calls([write(newer), write(older)], received_at=NOW)
    stored = await storage.get_call(T1, CallId("c"))
    assert stored is not None
    assert stored.call == newer


async def test_replaces_deletes_merged_calls_and_repoints_events(storage: SqlStorage) -> None:
    consult = make_call("b", legs=(make_leg("b1"),), seq=3)
    b_events = [make_event("b1", NOW), make_event("b1", NOW + 1, kind=LegEventKind.ANSWERED)]
    main = make_call("a", legs=(make_leg("a1"),), seq=4)
    a_events = [make_event("a1", NOW - 1)]
    await storage.save_calls(
        [
            write(main, handled=["a-1"], events=a_events),
            write(consult, rung=["a-2"], events=b_events),
        ],
        received_at=NOW,
    )
    merged = make_call("a", legs=(make_leg("a1"), make_leg("b1")), seq=5)
    a_end = make_event("b1", NOW + 2, kind=LegEventKind.BRIDGED)
    await storage.save_calls([write(merged, events=[a_end], replaces=["b"])], received_at=NOW + 2)

    assert await storage.get_call(T1, CallId("b")) is None
    assert await _rows(storage, legs, "b") == []
    assert await _rows(storage, call_agents, "b") == []
    assert await storage.call_events(T1, CallId("b")) == []
    assert await storage.call_events(T1, CallId("a")) == [*a_events, *b_events, a_end]
    page = await storage.list_calls(CallQuery(T1))
    assert [s.call_id for s in page.items] == ["a"]


async def test_merge_inside_one_batch_logs_events_under_the_survivor(storage: SqlStorage) -> None:
    b_event, a_event, c_event = (make_event(leg, NOW) for leg in ("b1", "a1", "c1"))
    batch = [
        write(make_call("b"), events=[b_event]),
        write(make_call("a"), events=[a_event], replaces=["b"]),
        write(make_call("c"), events=[c_event], replaces=["a"]),
    ]
    await storage.save_calls(batch, received_at=NOW)
    assert [s.call_id for s in (await storage.list_calls(CallQuery(T1))).items] == ["c"]
    assert await storage.call_events(T1, CallId("c")) == [b_event, a_event, c_event]


async def test_event_log_keeps_order_and_every_field(storage: SqlStorage) -> None:
    rich = make_event(
        "leg-b",
        NOW + 3,
        kind=LegEventKind.DESTROYED,
        pbx="asterisk",
        node="pbx-1",
        event_id="e-77",
        group_key="1700000000.1",
        other_leg_id="leg-a",
        party=Party.AGENT,
        agent=ALICE_REF,
        caller_number="+441202528735",
        hangup_cause="NORMAL_CLEARING",
        recordings=(Recording("r1", None, NOW, 3.5),),
    )
    first = [make_event("leg-a", NOW + 5), make_event("leg-b", NOW + 1)]
    await storage.save_calls([write(make_call("c"), events=first)], received_at=NOW)
    second = [rich, make_event("leg-a", NOW)]
    await storage.save_calls([write(make_call("c", seq=2), events=second)], received_at=NOW + 9)
    assert await storage.call_events(T1, CallId("c")) == [*first, *second]
    assert await storage.call_events(T2, CallId("c")) == []


async def test_a_failing_batch_stores_nothing(
    storage: SqlStorage, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The database refuses one row of the batch (leg_id is NOT NULL): nothing is stored.
    real_event_row = _codec.event_row

    def broken_row(event: Any, call_id: str, received_at: float) -> dict[str, Any]:
        row = real_event_row(event, call_id, received_at)
        return {**row, "leg_id": None} if event.leg_id == "broken" else row

    monkeypatch.setattr(_codec, "event_row", broken_row)
    batch = [
        write(make_call("ok"), events=[make_event("x", NOW)]),
        write(make_call("bad"), events=[make_event("broken", NOW)]),
    ]
    with pytest.raises(StorageError, match="saving calls"):
        await storage.save_calls(batch, received_at=NOW)
    assert await storage.get_call(T1, CallId("ok")) is None
    assert await storage.call_events(T1, CallId("ok")) == []


async def test_empty_batch_is_a_no_op(storage: SqlStorage) -> None:
    await storage.save_calls([], received_at=NOW)
    assert (await storage.list_calls(CallQuery(T1))).items == []


async def test_big_batch_in_one_call(storage: SqlStorage) -> None:
    batch = [
        write(
            make_call(f"c{i:04d}", started_at=NOW + i, legs=(make_leg(f"l{i}"),)),
            handled=["a-1"],
            events=[make_event(f"l{i}", NOW + i), make_event(f"l{i}", NOW + i + 1)],
        )
        for i in range(1200)
    ]
    await storage.save_calls(batch, received_at=NOW)
    page = await storage.list_calls(CallQuery(T1, agent_id="a-1", limit=1000))  # type: ignore[arg-type]
    assert len(page.items) == 1000
    assert page.items[0].call_id == "c1199"
    assert page.items[0].handled_by == ("a-1",)
    assert len(await storage.call_events(T1, CallId("c0000"))) == 2
    assert [r[2] for r in await _rows(storage, legs, "c0600")] == ["l600"]


async def test_concurrent_batches_all_land(storage: SqlStorage) -> None:
    batches = [
        [write(make_call(f"c{n}-{i}", seq=1), events=[make_event(f"l{n}", NOW)]) for i in range(5)]
        for n in range(20)
    ]
    await asyncio.gather(*(storage.save_calls(b, received_at=NOW) for b in batches))
    page = await storage.list_calls(CallQuery(T1, limit=1000))
    assert len(page.items) == 100
