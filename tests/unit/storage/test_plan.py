"""How a batch of call writes is planned before any SQL runs, and the page cursor."""

from __future__ import annotations

from ctibridge.storage._calls import plan_writes
from ctibridge.storage._codec import decode_cursor, encode_cursor
from tests.unit.storage.builders import make_call, make_event, write


def test_last_highest_seq_write_per_call_wins() -> None:
    plan = plan_writes(
        [write(make_call("a", seq=2)), write(make_call("a", seq=1)), write(make_call("b"))]
    )
    assert {k: w.stored.call.seq for k, w in plan.upserts.items()} == {"a": 2, "b": 1}


def test_replaced_calls_are_dropped_and_chains_followed() -> None:
    plan = plan_writes(
        [
            write(make_call("b")),
            write(make_call("a"), replaces=["b"]),
            write(make_call("c"), replaces=["a", "c"]),
        ]
    )
    assert list(plan.upserts) == ["c"]
    assert plan.merged == {"b": "c", "a": "c"}


def test_a_call_written_after_its_merge_lives_again() -> None:
    plan = plan_writes([write(make_call("a"), replaces=["b"]), write(make_call("b"))])
    assert sorted(plan.upserts) == ["a", "b"]
    assert plan.merged == {}


def test_events_are_logged_under_the_surviving_call_in_order() -> None:
    e1, e2 = make_event("l1", 1.0), make_event("l2", 2.0)
    plan = plan_writes(
        [write(make_call("b"), events=[e1]), write(make_call("a"), events=[e2], replaces=["b"])]
    )
    assert plan.events == [(e1, "a"), (e2, "a")]


def test_cursor_round_trip_is_exact() -> None:
    started_at = 1_700_000_000.123456789
    assert decode_cursor(encode_cursor(started_at, "call/é 1")) == (started_at, "call/é 1")
