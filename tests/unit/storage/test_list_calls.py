"""list_calls: filters, newest-first order and keyset paging with an opaque cursor."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from ctibridge.callstate.model import CallState, Direction
from ctibridge.errors import InvalidRequest
from ctibridge.storage import SqlStorage
from ctibridge.storage.base import CallQuery
from ctibridge.types import AgentId
from tests.unit.storage.builders import T1, T2, make_call, write

BASE = 1_700_000_000.0


@pytest.fixture
async def seeded(storage: SqlStorage) -> SqlStorage:
    """Six calls of T1 (c1 oldest .. c6 newest) and one of T2."""
    batch = [
        write(make_call("c1", started_at=BASE + 1, state=CallState.ENDED, missed=True,
                        from_number="+441202111111"), rung=["alice", "bob"]),
        write(make_call("c2", started_at=BASE + 2, state=CallState.ENDED,
                        direction=Direction.OUTBOUND, from_number=None,
                        to_number="+33123456789"), handled=["alice"]),
        write(make_call("c3", started_at=BASE + 3, state=CallState.RINGING), rung=["bob"]),
        write(make_call("c4", started_at=BASE + 4, state=CallState.HELD,
                        direction=Direction.INTERNAL, from_number="201", to_number="202"),
              handled=["bob", "alice"]),
        write(make_call("c5", started_at=BASE + 5, state=CallState.ANSWERED,
                        from_number="+44 100%_ok")),
        write(make_call("c6", started_at=BASE + 6, state=CallState.ENDED)),
        write(make_call("x1", tenant_id=T2, started_at=BASE + 9), handled=["alice"]),
    ]  # fmt: skip
    await storage.save_calls(batch, received_at=BASE + 10)
    return storage


async def _ids(store: SqlStorage, **filters: Any) -> list[str]:
    page = await store.list_calls(CallQuery(T1, limit=100, **filters))
    assert page.next_cursor is None
    return [s.call_id for s in page.items]


FILTER_CASES: list[tuple[dict[str, Any], list[str]]] = [
    ({}, ["c6", "c5", "c4", "c3", "c2", "c1"]),
    ({"agent_id": AgentId("alice")}, ["c4", "c2", "c1"]),
    ({"agent_id": AgentId("bob")}, ["c4", "c3", "c1"]),
    ({"agent_id": AgentId("carol")}, []),
    ({"direction": Direction.OUTBOUND}, ["c2"]),
    ({"direction": Direction.INBOUND}, ["c6", "c5", "c3", "c1"]),
    ({"state": CallState.ENDED}, ["c6", "c2", "c1"]),
    ({"state": CallState.HELD}, ["c4"]),
    ({"active": True}, ["c5", "c4", "c3"]),
    ({"active": False}, ["c6", "c2", "c1"]),
    ({"missed": True}, ["c1"]),
    ({"missed": False}, ["c6", "c5", "c4", "c3", "c2"]),
    ({"number": "111111"}, ["c1"]),
    ({"number": "+33"}, ["c2"]),
    ({"number": "20"}, ["c6", "c5", "c4", "c3", "c1"]),
    ({"number": "%_"}, ["c5"]),
    ({"number": "0%"}, ["c5"]),
    ({"since": BASE + 3}, ["c6", "c5", "c4", "c3"]),
    ({"until": BASE + 3}, ["c2", "c1"]),
    ({"since": BASE + 2, "until": BASE + 5}, ["c4", "c3", "c2"]),
    ({"agent_id": AgentId("alice"), "active": False}, ["c2", "c1"]),
]
"""(CallQuery filters, the T1 call ids they select): one seeded database for all of them."""


async def test_filters(seeded: SqlStorage) -> None:
    for filters, expected in FILTER_CASES:
        assert await _ids(seeded, **filters) == expected, filters


async def test_other_tenant_sees_only_its_calls(seeded: SqlStorage) -> None:
    page = await seeded.list_calls(CallQuery(T2))
    assert [s.call_id for s in page.items] == ["x1"]
    assert page.items[0].handled_by == ("alice",)


async def test_items_carry_agent_links(seeded: SqlStorage) -> None:
    page = await seeded.list_calls(CallQuery(T1, agent_id=AgentId("bob"), limit=1))
    assert (page.items[0].call_id, page.items[0].handled_by) == ("c4", ("bob", "alice"))


async def test_pages_follow_each_other(seeded: SqlStorage) -> None:
    seen: list[list[str]] = []
    cursor = None
    while True:
        page = await seeded.list_calls(CallQuery(T1, limit=4, cursor=cursor))
        seen.append([s.call_id for s in page.items])
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert seen == [["c6", "c5", "c4", "c3"], ["c2", "c1"]]


async def test_exact_last_page_has_no_cursor(seeded: SqlStorage) -> None:
    first = await seeded.list_calls(CallQuery(T1, limit=3))
    second = await seeded.list_calls(CallQuery(T1, limit=3, cursor=first.next_cursor))
    assert [s.call_id for s in second.items] == ["c3", "c2", "c1"]
    assert second.next_cursor is None


async def test_same_start_time_orders_by_call_id_and_pages_cleanly(storage: SqlStorage) -> None:
    batch = [write(make_call(f"s{i}", started_at=BASE)) for i in (3, 1, 4, 2, 5)]
    await storage.save_calls(batch, received_at=BASE)
    first = await storage.list_calls(CallQuery(T1, limit=2))
    second = await storage.list_calls(CallQuery(T1, limit=2, cursor=first.next_cursor))
    third = await storage.list_calls(CallQuery(T1, limit=2, cursor=second.next_cursor))
    pages = [[s.call_id for s in p.items] for p in (first, second, third)]
    assert pages == [["s5", "s4"], ["s3", "s2"], ["s1"]]


async def test_cursor_is_stable_when_newer_calls_arrive(seeded: SqlStorage) -> None:
    first = await seeded.list_calls(CallQuery(T1, limit=3))
    await seeded.save_calls([write(make_call("c7", started_at=BASE + 7))], received_at=BASE)
    second = await seeded.list_calls(CallQuery(T1, limit=3, cursor=first.next_cursor))
    assert [s.call_id for s in second.items] == ["c3", "c2", "c1"]


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode()


BAD_CURSORS = [
    "",
    "!!!not base64!!!",
    _b64(b"\xff\xfe"),
    _b64(b"not json"),
    _b64(json.dumps({"started_at": 1, "call_id": "c"}).encode()),
    _b64(json.dumps([1.0]).encode()),
    _b64(json.dumps(["yesterday", "c"]).encode()),
    _b64(json.dumps([True, "c"]).encode()),
    _b64(json.dumps([1.0, 2]).encode()),
    _b64(b'[NaN, "c"]'),
]


async def test_invalid_cursor(seeded: SqlStorage) -> None:
    for cursor in BAD_CURSORS:
        with pytest.raises(InvalidRequest, match="invalid cursor"):
            await seeded.list_calls(CallQuery(T1, cursor=cursor))


@pytest.mark.parametrize("limit", [0, -1, 1001])
async def test_invalid_limit(storage: SqlStorage, limit: int) -> None:
    with pytest.raises(InvalidRequest, match="limit"):
        await storage.list_calls(CallQuery(T1, limit=limit))
