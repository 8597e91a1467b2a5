"""Table-driven normaliser scenarios: every case of issue item 4 and reference §4.5."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import pytest

from ctibridge.callstate.events import ChannelEvent, Party
from ctibridge.callstate.model import Call, CallEventName, CallState, Direction, EndReason
from ctibridge.callstate.normaliser import RESYNC_CAUSE, Normaliser
from tests.unit.callstate.scenario import K, Script, agent, rec

E = CallEventName
T0 = 1_700_000_000.0


def run(events: list[ChannelEvent], digits: int = 5) -> tuple[list[Call], list[tuple[str, str]]]:
    norm = Normaliser(internal_digits=digits)
    changes = norm.apply_many(events)
    names = [(c.call.call_id, c.name.value) for c in changes]
    return norm.calls(), names


def inbound_answered() -> Script:
    s = Script()
    c = s.leg(
        "c",
        party=Party.TRUNK,
        originator=True,
        caller_number="+447700900123",
        caller_name="Jane Customer",
        dialed_number="+441202555100",
    )
    a = s.leg("a", party=Party.AGENT, ext="101", other_leg_id="c")
    c.create(T0)
    a.create(T0 + 1)
    a.answer(T0 + 4)
    c.answer(T0 + 4)
    c.bridge(T0 + 4, "a")
    c.destroy(T0 + 30)
    a.destroy(T0 + 30)
    return s


def inbound_missed() -> Script:
    s = Script()
    c = s.leg(
        "c",
        party=Party.TRUNK,
        originator=True,
        caller_number="+447700900123",
        dialed_number="+441202555100",
    )
    a = s.leg("a", party=Party.AGENT, ext="101")
    c.create(T0)
    a.create(T0 + 1)
    c.destroy(T0 + 9, "ORIGINATOR_CANCEL")
    a.destroy(T0 + 9, "ORIGINATOR_CANCEL")
    return s


def voicemail() -> Script:
    s = Script()
    c = s.leg(
        "c",
        party=Party.TRUNK,
        originator=True,
        caller_number="+447700900123",
        dialed_number="+441202555100",
    )
    a = s.leg("a", party=Party.AGENT, ext="101")
    c.create(T0)
    a.create(T0 + 1)
    a.destroy(T0 + 16, "NO_ANSWER")
    c.answer(T0 + 16)
    c.destroy(T0 + 40)
    return s


def outbound(early_only: bool = False, busy: bool = False, number: str = "01632960123") -> Script:
    s = Script()
    a = s.leg(
        "a",
        party=Party.AGENT,
        originator=True,
        ext="102",
        caller_number="102",
        caller_name="Bob",
        dialed_number=number,
    )
    t = s.leg("t", party=Party.TRUNK, callee_number=number)
    a.create(T0)
    t.create(T0 + 1)
    t.early(T0 + 2)
    if busy:
        t.destroy(T0 + 3, "USER_BUSY")
        a.destroy(T0 + 3, "USER_BUSY")
    elif early_only:
        t.destroy(T0 + 30, "NO_ANSWER")
        a.destroy(T0 + 30, "NO_ANSWER")
    else:
        t.answer(T0 + 6)
        a.answer(T0 + 6)
        a.bridge(T0 + 6, "t")
        a.destroy(T0 + 20)
        t.destroy(T0 + 20)
    return s


def internal(answered: bool = True) -> Script:
    s = Script()
    a = s.leg(
        "a", party=Party.AGENT, originator=True, ext="101", caller_number="101", dialed_number="104"
    )
    b = s.leg("b", party=Party.AGENT, ext="104")
    a.create(T0)
    b.create(T0)
    if answered:
        b.answer(T0 + 3)
        a.answer(T0 + 3)
        a.bridge(T0 + 3, "b")
        b.destroy(T0 + 10)
        a.destroy(T0 + 10)
    else:
        a.destroy(T0 + 7, "NORMAL_CLEARING")
        b.destroy(T0 + 7, "ORIGINATOR_CANCEL")
    return s


def ring_group() -> Script:
    s = Script()
    c = s.leg(
        "c",
        party=Party.TRUNK,
        originator=True,
        caller_number="+447700900555",
        dialed_number="+441202555200",
    )
    legs = {ext: s.leg(f"g{ext}", party=Party.AGENT, ext=ext) for ext in ("101", "102", "103")}
    c.create(T0)
    for leg in legs.values():
        leg.create(T0 + 1)
    legs["102"].answer(T0 + 5)
    c.answer(T0 + 5)
    legs["101"].destroy(T0 + 5, "LOSE_RACE")
    legs["103"].destroy(T0 + 5, "LOSE_RACE")
    c.bridge(T0 + 5, "g102")
    c.destroy(T0 + 25)
    legs["102"].destroy(T0 + 25)
    return s


def hold() -> Script:
    s = inbound_answered()
    events = s.events
    s.events = events[:5]
    a = s.leg("a", party=Party.AGENT, ext="101", other_leg_id="c")
    a.hold(T0 + 10)
    a.unhold(T0 + 16)
    a.hold(T0 + 20)
    a.unhold(T0 + 22)
    s.events.extend(events[5:])
    return s


def blind_transfer() -> Script:
    s = Script()
    c = s.leg(
        "c",
        party=Party.TRUNK,
        originator=True,
        caller_number="+447700900123",
        dialed_number="+441202555100",
    )
    a = s.leg("a", party=Party.AGENT, ext="101")
    b = s.leg("b", party=Party.AGENT, ext="102")
    c.create(T0)
    a.create(T0 + 1)
    a.answer(T0 + 3)
    c.answer(T0 + 3)
    c.bridge(T0 + 3, "a")
    a.destroy(T0 + 20, "BLIND_TRANSFER")
    b.create(T0 + 20)
    b.answer(T0 + 25)
    c.bridge(T0 + 25, "b")
    b.destroy(T0 + 60)
    c.destroy(T0 + 60)
    return s


def attended_transfer() -> Script:
    s = Script()
    c = s.leg(
        "c",
        party=Party.TRUNK,
        originator=True,
        caller_number="+447700900123",
        dialed_number="+441202555100",
    )
    a1 = s.leg("a1", party=Party.AGENT, ext="101")
    a2 = s.leg(
        "a2",
        party=Party.AGENT,
        originator=True,
        ext="101",
        caller_number="101",
        dialed_number="102",
        group="I2",
    )
    b = s.leg("b", party=Party.AGENT, ext="102", group="I2")
    c.create(T0)
    a1.create(T0 + 1)
    a1.answer(T0 + 3)
    c.answer(T0 + 3)
    c.bridge(T0 + 3, "a1")
    a1.hold(T0 + 10)
    a2.create(T0 + 11)
    b.create(T0 + 11)
    b.answer(T0 + 14)
    a2.answer(T0 + 14)
    a2.bridge(T0 + 14, "b")
    a1.destroy(T0 + 20, "ATTENDED_TRANSFER")
    a2.destroy(T0 + 20, "ATTENDED_TRANSFER")
    c.bridge(T0 + 20, "b")
    c.destroy(T0 + 50)
    b.destroy(T0 + 50)
    return s


def click_to_dial() -> Script:
    s = Script()
    q = s.leg(
        "q-quickcall", party=Party.AGENT, ext="103", caller_number="01632960999", origin_tag="req-1"
    )
    t = s.leg("t", party=Party.TRUNK, callee_number="01632960999")
    q.create(T0)
    q.answer(T0 + 1)  # auto-answer: the agent picked up their own call, nothing more
    t.create(T0 + 2)
    t.answer(T0 + 8)
    q.bridge(T0 + 8, "t")
    t.destroy(T0 + 30)
    q.destroy(T0 + 30)
    return s


def click_to_dial_same_second() -> Script:
    """A replayed burst: every event of the click-to-dial in one whole second."""
    s = Script()
    q = s.leg(
        "q-quickcall", party=Party.AGENT, ext="103", caller_number="01632960999", origin_tag="req-2"
    )
    t = s.leg("a-trunk", party=Party.TRUNK, callee_number="01632960999")
    q.create(T0)
    q.answer(T0)
    t.create(T0)
    t.answer(T0)
    q.bridge(T0, "a-trunk")
    t.destroy(T0 + 30)
    q.destroy(T0 + 30)
    return s


def channel_move() -> Script:
    s = inbound_answered()
    events = s.events
    a = s.leg("a", party=Party.AGENT, ext="101", node="fs2")
    s.events = events[:5]
    a.destroy(T0 + 10, "NORMAL_CLEARING", moving=True, node="fs1")
    s.events.extend(events[5:])
    return s


def recorded() -> Script:
    s = inbound_answered()
    s.events = s.events[:5]
    c = s.leg("c", party=Party.TRUNK, originator=True)
    a = s.leg("a", party=Party.AGENT, ext="101")
    c.destroy(T0 + 30, recordings=(rec("call-rec-1.mp3"),))
    a.destroy(T0 + 30)
    return s


def ungrouped() -> Script:
    """Legs with no group key: grouped through bridge key / other leg (fallbacks)."""
    s = Script(group=None)
    c = s.leg(
        "c",
        party=Party.TRUNK,
        originator=True,
        caller_number="+447700900123",
        dialed_number="+441202555100",
        bridge_key="c",
    )
    a = s.leg("a", party=Party.AGENT, ext="101", other_leg_id="c")
    c.create(T0)
    a.create(T0 + 1)
    a.answer(T0 + 2)
    c.destroy(T0 + 9)
    a.destroy(T0 + 9)
    return s


Check = Callable[[list[Call]], None]


def one(calls: list[Call]) -> Call:
    assert len(calls) == 1, calls
    return calls[0]


CASES: dict[str, tuple[Callable[[], Script], list[str], dict[str, object]]] = {
    "inbound answered": (
        inbound_answered,
        ["created", "ringing", "answered", "ended"],
        dict(
            direction=Direction.INBOUND,
            missed=False,
            answered_at=T0 + 4,
            ended_at=T0 + 30,
            talk_seconds=26.0,
            end_reason=EndReason.COMPLETED,
            from_number="+447700900123",
            to_number="+441202555100",
            answered_by=agent("101"),
            agents=(agent("101"),),
        ),
    ),
    "inbound missed": (
        inbound_missed,
        ["created", "ringing", "ended"],
        dict(
            direction=Direction.INBOUND,
            missed=True,
            answered_at=None,
            answered_by=None,
            end_reason=EndReason.NO_ANSWER,
            rung=(agent("101"),),
            agents=(),
        ),
    ),
    "voicemail is missed": (
        voicemail,
        ["created", "ringing", "ended"],
        dict(missed=True, answered_at=None, end_reason=EndReason.VOICEMAIL, talk_seconds=0.0),
    ),
    "outbound answered": (
        outbound,
        ["created", "ringing", "answered", "ended"],
        dict(
            direction=Direction.OUTBOUND,
            missed=False,
            answered_at=T0 + 6,
            answered_by=agent("102"),
            from_number="102",
            to_number="01632960123",
            talk_seconds=14.0,
            end_reason=EndReason.COMPLETED,
        ),
    ),
    "early media is not an answer": (
        lambda: outbound(early_only=True),
        ["created", "ringing", "ended"],
        dict(
            direction=Direction.OUTBOUND,
            answered_at=None,
            missed=False,
            end_reason=EndReason.NO_ANSWER,
        ),
    ),
    "outbound busy": (
        lambda: outbound(busy=True),
        ["created", "ringing", "ended"],
        dict(end_reason=EndReason.BUSY, missed=False, answered_at=None),
    ),
    "internal answered": (
        internal,
        ["created", "ringing", "answered", "ended"],
        dict(
            direction=Direction.INTERNAL,
            from_number="101",
            to_number="104",
            agents=(agent("101"), agent("104")),
            answered_by=agent("104"),
            missed=False,
        ),
    ),
    "internal missed": (
        lambda: internal(answered=False),
        ["created", "ringing", "ended"],
        dict(
            direction=Direction.INTERNAL, missed=True, agents=(agent("101"),), rung=(agent("104"),)
        ),
    ),
    "ring group: losers do not end the call": (
        ring_group,
        ["created", "ringing", "answered", "ended"],
        dict(
            answered_by=agent("102"),
            agents=(agent("102"),),
            ended_at=T0 + 25,
            rung=(agent("101"), agent("102"), agent("103")),
            missed=False,
        ),
    ),
    "hold and resume": (
        hold,
        ["created", "ringing", "answered", "held", "resumed", "held", "resumed", "ended"],
        dict(hold_seconds=8.0, talk_seconds=18.0),
    ),
    "blind transfer": (
        blind_transfer,
        ["created", "ringing", "answered", "transferred", "ended"],
        dict(agents=(agent("101"), agent("102")), answered_by=agent("101"), talk_seconds=57.0),
    ),
    "click-to-dial counts as outbound, answered by the far end": (
        click_to_dial,
        ["created", "ringing", "answered", "ended"],
        dict(
            direction=Direction.OUTBOUND,
            answered_at=T0 + 8,
            answered_by=agent("103"),
            from_number="103",
            to_number="01632960999",
            origin_tag="req-1",
        ),
    ),
    "click-to-dial with every event in one second": (
        click_to_dial_same_second,
        ["created", "ringing", "answered", "ended"],
        dict(
            direction=Direction.OUTBOUND,
            answered_at=T0,
            answered_by=agent("103"),
            from_number="103",
            to_number="01632960999",
            origin_tag="req-2",
        ),
    ),
    "a DESTROY from the old media server does not end the call": (
        channel_move,
        ["created", "ringing", "answered", "ended"],
        dict(ended_at=T0 + 30, end_reason=EndReason.COMPLETED),
    ),
    "recordings": (
        recorded,
        ["created", "ringing", "answered", "ended"],
        dict(recordings=(rec("call-rec-1.mp3"),)),
    ),
    "grouping falls back to bridge key and other leg": (
        ungrouped,
        ["created", "ringing", "answered", "ended"],
        dict(call_id="c", answered_by=agent("101")),
    ),
}


@pytest.mark.parametrize("name", list(CASES))
def test_scenario(name: str) -> None:
    build, expected_events, expected = CASES[name]
    calls, names = run(build().events)
    call = one(calls)
    assert [n for _, n in names if n != "updated"] == expected_events
    assert call.state is CallState.ENDED
    for field, value in expected.items():
        assert getattr(call, field) == value, field


def test_ring_group_announces_each_agent_it_rings() -> None:
    changes = Normaliser().apply_many(ring_group().events)
    rung_growth = [
        [a.extension for a in c.call.rung] for c in changes if c.name in (E.RINGING, E.UPDATED)
    ][:3]
    assert rung_growth == [["101"], ["101", "102"], ["101", "102", "103"]]


def test_seq_increases_per_call_and_snapshots_follow_the_steps() -> None:
    changes = Normaliser().apply_many(inbound_answered().events)
    assert [c.call.seq for c in changes] == [1, 2, 3, 4]
    assert [c.call.state for c in changes] == [
        CallState.NEW,
        CallState.RINGING,
        CallState.ANSWERED,
        CallState.ENDED,
    ]


def test_blind_transfer_yields_one_handling_per_agent() -> None:
    calls, _ = run(blind_transfer().events)
    call = one(calls)
    assert [h.agent.extension for h in call.handlings] == ["101", "102"]
    first, second = call.handlings
    assert (first.started_at, first.ended_at, first.transferred_to) == (
        T0 + 3,
        T0 + 20,
        agent("102"),
    )
    assert (second.started_at, second.ended_at) == (T0 + 25, T0 + 60)
    (transfer,) = call.transfers
    assert (transfer.kind, transfer.from_agent, transfer.to_agent) == (
        "blind",
        agent("101"),
        agent("102"),
    )


def test_attended_transfer_merges_the_consultation_into_the_call() -> None:
    calls, _ = run(attended_transfer().events)
    by_id = {c.call_id: c for c in calls}
    main, consult = by_id["I1"], by_id["I2"]
    assert main.agents == (agent("101"), agent("102"))
    assert [(t.kind, t.from_agent, t.to_agent) for t in main.transfers] == [
        ("attended", agent("101"), agent("102"))
    ]
    assert main.ended_at == T0 + 50 and main.end_reason is EndReason.COMPLETED
    assert consult.end_reason is EndReason.TRANSFERRED
    assert consult.ended_at == T0 + 20
    assert consult.direction is Direction.INTERNAL and not consult.missed


@pytest.mark.parametrize(
    ("digits", "direction"), [(5, Direction.OUTBOUND), (6, Direction.INTERNAL)]
)
def test_internal_number_length_is_configurable(digits: int, direction: Direction) -> None:
    s = Script()
    a = s.leg("a", party=Party.AGENT, originator=True, ext="101", dialed_number="123456")
    a.create(T0)
    a.destroy(T0 + 5)
    calls, _ = run(s.events, digits=digits)
    assert one(calls).direction is direction


def test_direction_ignores_switch_relative_call_direction() -> None:
    # A carrier leg that the switch originated (Kazoo call_direction "outbound") is still
    # the far end of an agent's outbound call: direction comes from who is on each leg.
    calls, _ = run(outbound().events)
    assert one(calls).direction is Direction.OUTBOUND
    calls, _ = run(inbound_answered().events)
    assert one(calls).direction is Direction.INBOUND


def test_duplicates_change_nothing() -> None:
    events = inbound_answered().events
    doubled = [e for e in events for _ in range(2)]
    calls, names = run(doubled)
    reference, ref_names = run(events)
    assert names == ref_names
    assert calls == reference


def test_events_that_bring_no_new_fact_change_nothing() -> None:
    # Re-sent under new message ids, a later ringing of the same phone, a hang-up of a
    # channel moving to another media server: nothing to publish, live or after the end.
    events = inbound_answered().events
    norm = Normaliser()
    norm.apply_many(events[:5])
    live = norm.active_calls()
    resent = [replace(e, event_id=f"again-{e.event_id}") for e in events[:5]]
    later = replace(events[1], kind=K.RINGING, at=T0 + 2, event_id="ring-2")
    moving = replace(events[1], kind=K.DESTROYED, at=T0 + 3, event_id="move", moving=True)
    assert norm.apply_many([*resent, later, moving]) == []
    assert norm.active_calls() == live
    norm.apply_many(events[5:])
    ended = norm.calls()
    assert norm.apply_many([replace(e, event_id=f"late-{e.event_id}") for e in events]) == []
    assert norm.calls() == ended


def test_an_event_with_nothing_new_but_its_grouping_key_still_groups() -> None:
    # The callee's leg first arrives without the interaction id; the same event re-sent
    # with it (no new fact) must still put the leg in the caller's call.
    c = ChannelEvent(K.CREATED, "acc1", "c", T0, group_key="I1", originator=True,
                     party=Party.TRUNK, caller_number="+447700900123",
                     dialed_number="+441202555100")  # fmt: skip
    a = ChannelEvent(K.CREATED, "acc1", "a", T0 + 1, party=Party.AGENT, agent=agent("101"))
    norm = Normaliser()
    norm.apply_many([c, a])
    assert len(norm.active_calls()) == 2
    changes = norm.apply(replace(a, group_key="I1", event_id="again"))
    (call,) = norm.active_calls()
    assert call.call_id == "I1" and call.rung == (agent("101"),)
    assert changes and changes[0].replaces == ("a",)


def test_late_answer_after_end_does_not_reopen_the_call() -> None:
    events = inbound_answered().events
    answer = [e for e in events if e.kind is K.ANSWERED and e.leg_id == "a"]
    rest = [e for e in events if e not in answer]
    norm = Normaliser()
    norm.apply_many(rest)
    late = norm.apply_many(answer)
    assert [c.name for c in late] == [E.UPDATED]
    assert late[0].call.state is CallState.ENDED
    assert late[0].call.answered_by == agent("101")


def test_reconcile_closes_vanished_legs_and_picks_up_new_ones() -> None:
    norm = Normaliser()
    events = inbound_answered().events
    norm.apply_many(events[:5])  # answered, live
    live = [
        ChannelEvent(
            kind=K.SNAPSHOT,
            tenant_id="acc1",
            leg_id="n1",
            at=T0 + 50,
            group_key="I9",
            originator=True,
            party=Party.TRUNK,
            caller_number="+447700900999",
            dialed_number="+441202555100",
        ),
        ChannelEvent(
            kind=K.SNAPSHOT,
            tenant_id="acc1",
            leg_id="n2",
            at=T0 + 50,
            group_key="I9",
            party=Party.AGENT,
            agent=agent("105"),
            answered=True,
        ),
    ]
    changes = norm.reconcile("acc1", live, at=T0 + 60)
    ended = [c.call for c in changes if c.name is E.ENDED]
    assert [c.call_id for c in ended] == ["I1"]
    assert all(leg.hangup_cause == RESYNC_CAUSE for leg in ended[0].legs)
    (picked,) = norm.active_calls()
    assert picked.call_id == "I9" and picked.state is CallState.ANSWERED
    assert picked.answered_by == agent("105")


def test_unknown_leg_kinds_from_other_tenants_do_not_mix() -> None:
    s1 = inbound_answered()
    other = [
        ChannelEvent(
            kind=e.kind,
            tenant_id="acc2",
            leg_id=e.leg_id,
            at=e.at,
            group_key=e.group_key,
            originator=e.originator,
            party=e.party,
            agent=e.agent,
            other_leg_id=e.other_leg_id,
            event_id=e.event_id,
        )
        for e in s1.events
    ]
    norm = Normaliser()
    norm.apply_many(s1.events + other)
    assert sorted(c.tenant_id for c in norm.calls()) == ["acc1", "acc2"]


def numbered(i: int) -> list[ChannelEvent]:
    """The events of ``inbound_answered`` as call ``I{i}`` with legs ``c{i}`` and ``a{i}``."""
    return [
        ChannelEvent(
            kind=e.kind,
            tenant_id=e.tenant_id,
            leg_id=f"{e.leg_id}{i}",
            at=e.at,
            group_key=f"I{i}",
            originator=e.originator,
            party=e.party,
            agent=e.agent,
            event_id=e.event_id,
        )
        for e in inbound_answered().events
    ]


def test_eviction_keeps_memory_bounded_and_drops_late_events() -> None:
    norm = Normaliser(keep_ended=2)
    for i in range(5):
        norm.apply_many(numbered(i))
    assert len(norm.calls()) == 2
    late = ChannelEvent(kind=K.ANSWERED, tenant_id="acc1", leg_id="a0", at=T0 + 99)
    assert norm.apply(late) == []


def test_late_changes_to_ended_calls_do_not_grow_the_ended_list() -> None:
    norm = Normaliser(keep_ended=100)
    norm.apply_many(numbered(0))
    for n in range(300):  # a new recording each time: each one amends the ended call
        late = ChannelEvent(K.DESTROYED, "acc1", "a0", T0 + 30, recordings=(rec(f"r{n}"),))
        assert [c.name for c in norm.apply(late)] == [E.UPDATED]
    assert len(norm._ended) <= 2 * 1 + 64 + 1
    assert len(one(norm.calls()).recordings) == 300


def test_only_the_newest_forgotten_legs_are_remembered() -> None:
    # 9 calls evicted, 18 legs forgotten; a limit of 8 keeps at least the newest 4.
    norm = Normaliser(keep_ended=1, tombstones=8)
    for i in range(10):
        norm.apply_many(numbered(i))
    recent = ChannelEvent(kind=K.ANSWERED, tenant_id="acc1", leg_id="a8", at=T0 + 99)
    assert norm.apply(recent) == []
    old = ChannelEvent(kind=K.ANSWERED, tenant_id="acc1", leg_id="a0", at=T0 + 99)
    assert [c.name for c in norm.apply(old)] == [E.CREATED]


def test_an_otherwise_invisible_event_that_joins_two_calls_is_published() -> None:
    """The caller's leg is first seen without the interaction id, so it starts a call of
    its own; its hang-up (a leg that never answered ending while another lives: an event
    that alone changes nothing) is the first to carry the id, and joins the two calls."""
    s = Script()
    c = s.leg("c", party=Party.TRUNK, originator=True, caller_number="+447700900123", group=None)
    a = s.leg("a", party=Party.AGENT, ext="101")
    c.create(T0)
    a.create(T0 + 1)
    events = list(s.events)
    norm = Normaliser()
    norm.apply_many(events)
    assert len(norm.active_calls()) == 2
    hangup = ChannelEvent(
        kind=K.DESTROYED,
        tenant_id=events[0].tenant_id,
        leg_id="c",
        at=T0 + 9,
        group_key="I1",
        originator=True,
        party=Party.TRUNK,
        hangup_cause="ORIGINATOR_CANCEL",
    )
    changes = norm.apply(hangup)
    assert changes, "the merge must be published"
    (call,) = norm.active_calls()
    assert call.state is CallState.RINGING
    assert {leg.leg_id for leg in call.legs} == {"a", "c"}
    assert changes[0].replaces
