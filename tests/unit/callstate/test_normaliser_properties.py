"""Property tests: any order or duplication of a scenario's events never moves a call
backwards, never crashes, and ends in the same record."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from ctibridge.callstate.events import ChannelEvent
from ctibridge.callstate.model import Call, CallState
from ctibridge.callstate.normaliser import Normaliser
from tests.unit.callstate.test_normaliser import CASES, attended_transfer

SCENARIOS = {name: build().events for name, (build, _, _) in CASES.items()}
SCENARIOS["attended transfer"] = attended_transfer().events

_RANK = {
    CallState.NEW: 0,
    CallState.RINGING: 1,
    CallState.ANSWERED: 2,
    CallState.HELD: 2,
    CallState.ENDED: 3,
}


def final(events: list[ChannelEvent]) -> dict[str, Call]:
    norm = Normaliser()
    norm.apply_many(events)
    return {c.call_id: c.replace(seq=0) for c in norm.calls()}


@st.composite
def shuffled(draw: st.DrawFn) -> tuple[str, list[ChannelEvent]]:
    name = draw(st.sampled_from(sorted(SCENARIOS)))
    events = SCENARIOS[name]
    extra = draw(st.lists(st.sampled_from(events), max_size=len(events)))
    order = draw(st.permutations(events + extra))
    return name, list(order)


@settings(max_examples=400, deadline=None)
@given(shuffled())
def test_any_order_and_duplication_ends_in_the_same_record(
    case: tuple[str, list[ChannelEvent]],
) -> None:
    name, events = case
    norm = Normaliser()
    last: dict[str, CallState] = {}
    last_seq: dict[str, int] = {}
    for event in events:
        for change in norm.apply(event):
            call = change.call
            for old in change.replaces:
                last.pop(old, None)
            before = last.get(call.call_id, CallState.NEW)
            assert _RANK[call.state] >= _RANK[before], (name, change.name, before, call.state)
            assert call.seq > last_seq.get(call.call_id, 0)
            last[call.call_id] = call.state
            last_seq[call.call_id] = call.seq
    got = {c.call_id: c.replace(seq=0) for c in norm.calls()}
    assert got == final(SCENARIOS[name]), name
    assert all(c.state is CallState.ENDED for c in got.values())
