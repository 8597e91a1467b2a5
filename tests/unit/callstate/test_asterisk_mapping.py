"""Asterisk AMI → ChannelEvent: every genuine capture tells its scenario's story.

The facts asserted per scenario are read off ``tests/fixtures/ami/<scenario>.txt``; the
times are the capture's own ``Timestamp`` values of the events the digest names.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ctibridge.callstate.asterisk import EVENT_NAMES, AsteriskMapper, cause_name
from ctibridge.callstate.events import AgentRef, ChannelEvent, LegEventKind, Party
from ctibridge.errors import FieldError
from ctibridge.protocols.ami import AmiMessage, AmiProtocol

K = LegEventKind
FIXTURES = Path(__file__).parents[2] / "fixtures" / "ami"
TENANT = "pbx-1"


def messages(name: str) -> list[AmiMessage]:
    proto = AmiProtocol()
    proto.receive_data((FIXTURES / f"{name}.ami").read_bytes())
    proto.receive_eof()
    return proto.events_received()


def run(name: str, mapper: AsteriskMapper | None = None) -> list[ChannelEvent]:
    mapper = mapper or AsteriskMapper(TENANT)
    out = [e for msg in messages(name) for e in mapper.feed(msg)]
    assert mapper.live_legs == 0, "every leg ended, so nothing should be left"
    assert mapper.live_conversations == 0
    return out


def by_leg(events: Iterable[ChannelEvent]) -> dict[str, list[ChannelEvent]]:
    legs: dict[str, list[ChannelEvent]] = {}
    for e in events:
        legs.setdefault(e.leg_id, []).append(e)
    return legs


def kinds(events: Iterable[ChannelEvent]) -> list[LegEventKind]:
    return [e.kind for e in events]


def first(events: Iterable[ChannelEvent], kind: LegEventKind) -> ChannelEvent:
    return next(e for e in events if e.kind is kind)


def agent(ext: str) -> AgentRef:
    return AgentRef(device_id=f"PJSIP/{ext}", extension=ext)


# -- every capture ----------------------------------------------------------------------------


SCENARIOS = sorted(p.stem for p in FIXTURES.glob("*.ami"))


@pytest.mark.parametrize("name", SCENARIOS)
def test_common_invariants(name: str) -> None:
    events = run(name)
    for leg_id, evs in by_leg(events).items():
        assert {e.group_key for e in evs} == {evs[0].group_key}, leg_id
        assert {e.party for e in evs} == {evs[0].party}
        assert {e.originator for e in evs[1:]} <= {evs[-1].originator}
        assert kinds(evs).count(K.DESTROYED) == 1 and evs[-1].kind is K.DESTROYED
        assert kinds(evs).count(K.CREATED) == 1 and evs[0].kind is K.CREATED
        assert kinds(evs).count(K.ANSWERED) <= 1
        assert kinds(evs).count(K.RINGING) <= 1
    for e in events:
        assert e.tenant_id == TENANT and e.pbx == "asterisk"
        assert (e.party is Party.AGENT) == (e.agent is not None)
        assert not e.leg_id.startswith("Local")
    ats = [e.at for e in events]
    assert ats == sorted(ats)
    assert len({e.group_key for e in events}) <= 1, "each capture holds one conversation"


@pytest.mark.parametrize("name", SCENARIOS)
def test_expected_call_files_agree_with_the_events(name: str) -> None:
    """The hand-written expected calls and the mapped events tell the same times and parties."""
    expected = json.loads((FIXTURES / f"{name}.expected.json").read_text())
    events = run(name)
    if not events:
        assert expected == []
        return
    [call] = expected
    legs = by_leg(events)
    origin = next(evs for evs in legs.values() if evs[0].originator)
    assert call["started_at"] == iso(min(e.at for e in events))
    assert call["ended_at"] == iso(max(e.at for e in events if e.kind is K.DESTROYED))
    agent_exts = {e.agent.extension for e in events if e.agent is not None}
    assert set(call["agents"]) <= agent_exts
    assert call["answered_by"] is None or call["answered_by"] in agent_exts
    recordings = [r.ref for e in events for r in e.recordings]
    assert call["recordings"] == recordings
    if call["direction"] == "inbound":
        assert origin[0].party is Party.TRUNK
        assert (call["from"], call["to"]) == (origin[0].caller_number, origin[0].dialed_number)
    else:
        assert origin[0].agent is not None and call["from"] == origin[0].agent.extension
    if call["direction"] == "internal":
        assert call["to"] == origin[0].dialed_number
    callee = Party.TRUNK if call["direction"] == "outbound" else Party.AGENT
    answers = [
        e.at
        for e in events
        if e.kind is K.ANSWERED and e.party is callee and e.leg_id != origin[0].leg_id
    ]
    if call["direction"] == "outbound":
        [trunk] = [evs for evs in legs.values() if evs[0].party is Party.TRUNK]
        assert call["to"] == next(e.dialed_number for e in trunk if e.dialed_number)
    assert call["answered_at"] == (iso(answers[0]) if answers else None)


def iso(at: float) -> str:
    import datetime as dt

    return dt.datetime.fromtimestamp(math.floor(at), dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# -- scenario by scenario ---------------------------------------------------------------------


def test_inbound_answered() -> None:
    legs = by_leg(run("inbound_answered"))
    assert list(legs) == ["1795267463.0", "1795267463.1"]
    carrier, phone = legs["1795267463.0"], legs["1795267463.1"]
    assert kinds(carrier) == [K.CREATED, K.ANSWERED, K.BRIDGED, K.DESTROYED]
    assert kinds(phone) == [K.CREATED, K.RINGING, K.ANSWERED, K.BRIDGED, K.DESTROYED]
    c = carrier[-1]
    assert (c.party, c.originator, c.agent) == (Party.TRUNK, True, None)
    assert (c.caller_number, c.caller_name, c.dialed_number) == (
        "15551234567",
        "Jane Customer",
        "5550100",
    )
    p = phone[-1]
    assert (p.party, p.originator, p.agent) == (Party.AGENT, False, agent("1001"))
    assert p.caller_number == "15551234567" and p.callee_number == "1001"
    assert first(phone, K.RINGING).at == 1795267463.569654
    assert first(phone, K.RINGING).other_leg_id == "1795267463.0"
    assert first(phone, K.ANSWERED).at == 1795267466.622326
    assert first(phone, K.BRIDGED).other_leg_id == "1795267463.0"
    assert first(carrier, K.BRIDGED).other_leg_id == "1795267463.1"
    assert [e.hangup_cause for e in (carrier[-1], phone[-1])] == ["NORMAL_CLEARING"] * 2
    assert (carrier[-1].at, phone[-1].at) == (1795267471.639042, 1795267471.63968)
    assert c.group_key == "1795267463.0"


def test_inbound_missed() -> None:
    legs = by_leg(run("inbound_missed"))
    carrier, phone = legs["1795267477.2"], legs["1795267477.3"]
    assert kinds(phone) == [K.CREATED, K.RINGING, K.DESTROYED]
    assert kinds(carrier) == [K.CREATED, K.DESTROYED]
    assert phone[-1].agent == agent("1001")
    # The calling UA sent its CANCEL without a Reason header: Asterisk says 127.
    assert [carrier[-1].hangup_cause, phone[-1].hangup_cause] == ["INTERWORKING"] * 2
    assert phone[-1].at - first(phone, K.RINGING).at == pytest.approx(8.04, abs=0.01)


def test_ring_group() -> None:
    legs = by_leg(run("ring_group"))
    carrier = legs.pop("1795267520.6")
    assert carrier[0].caller_number == "15557654321" and carrier[0].dialed_number == "5550200"
    assert {evs[0].agent.extension for evs in legs.values() if evs[0].agent} == {
        "1001",
        "1002",
        "1003",
    }
    b1, b2, b3 = legs["1795267520.7"], legs["1795267520.8"], legs["1795267520.9"]
    for loser in (b1, b3):
        assert kinds(loser) == [K.CREATED, K.RINGING, K.DESTROYED]
        assert loser[-1].hangup_cause == "ANSWERED_ELSEWHERE"
    assert kinds(b2) == [K.CREATED, K.RINGING, K.ANSWERED, K.BRIDGED, K.DESTROYED]
    assert b2[0].agent == agent("1002")
    assert first(b2, K.ANSWERED).at == 1795267524.314536
    assert first(carrier, K.BRIDGED).other_leg_id == "1795267520.8"
    assert b2[-1].hangup_cause == "NORMAL_CLEARING"


def test_outbound() -> None:
    legs = by_leg(run("outbound"))
    phone, trunk = legs["1795267534.10"], legs["1795267534.11"]
    assert phone[0].originator and phone[0].agent == agent("1001")
    assert phone[0].dialed_number == "915559876543"
    assert not trunk[0].originator and trunk[0].party is Party.TRUNK and trunk[0].agent is None
    assert first(trunk, K.ANSWERED).dialed_number == "15559876543"
    assert first(trunk, K.ANSWERED).callee_number == "15559876543"
    assert first(trunk, K.ANSWERED).at == 1795267538.860335
    assert kinds(trunk) == [K.CREATED, K.RINGING, K.ANSWERED, K.BRIDGED, K.DESTROYED]
    assert kinds(phone) == [K.CREATED, K.ANSWERED, K.BRIDGED, K.DESTROYED]
    assert phone[-1].hangup_cause == trunk[-1].hangup_cause == "NORMAL_CLEARING"


def test_outbound_busy() -> None:
    legs = by_leg(run("outbound_busy"))
    phone, trunk = legs["1795267550.12"], legs["1795267550.13"]
    assert kinds(trunk) == [K.CREATED, K.RINGING, K.DESTROYED]
    assert kinds(phone) == [K.CREATED, K.DESTROYED]
    assert trunk[-1].hangup_cause == phone[-1].hangup_cause == "USER_BUSY"
    assert trunk[-1].dialed_number == "15553334444"
    assert phone[0].originator and phone[0].dialed_number == "15553334444"


def test_internal() -> None:
    legs = by_leg(run("internal"))
    alice, bob = legs["1795267573.16"], legs["1795267573.17"]
    assert alice[0].originator and alice[0].agent == agent("1001")
    assert alice[0].dialed_number == "1002" and alice[0].caller_number == "1001"
    assert not bob[0].originator and bob[0].agent == agent("1002")
    assert first(bob, K.ANSWERED).at == 1795267576.459935
    assert first(bob, K.BRIDGED).other_leg_id == "1795267573.16"
    assert bob[-1].hangup_cause == "NORMAL_CLEARING"


def test_blind_transfer() -> None:
    legs = by_leg(run("blind_transfer"))
    carrier = legs["1795267604.20"]
    alice, bob = legs["1795267604.21"], legs["1795267609.22"]
    assert kinds(alice) == [
        K.CREATED,
        K.RINGING,
        K.ANSWERED,
        K.BRIDGED,
        K.UNHELD,
        K.DESTROYED,
    ]
    assert alice[-1].hangup_cause == "BLIND_TRANSFER"
    assert alice[-1].at == 1795267609.634208
    assert first(alice, K.ANSWERED).at == 1795267606.623144
    assert kinds(bob) == [K.CREATED, K.RINGING, K.ANSWERED, K.BRIDGED, K.DESTROYED]
    assert bob[0].agent == agent("1002")
    assert first(bob, K.ANSWERED).at == 1795267612.650988
    bridged = [e.other_leg_id for e in carrier if e.kind is K.BRIDGED]
    assert bridged == ["1795267604.21", "1795267609.22"]
    assert {e.group_key for e in carrier + alice + bob} == {"1795267604.20"}
    assert carrier[-1].hangup_cause == "NORMAL_CLEARING"


def test_recorded() -> None:
    legs = by_leg(run("recorded"))
    carrier, phone = legs["1795267686.35"], legs["1795267686.36"]
    [rec] = carrier[-1].recordings
    assert rec.ref == ("/var/spool/asterisk/monitor/20261121-132806-15551234567-1795267686.35.wav")
    assert rec.started_at == 1795267686.413218
    assert rec.duration_seconds == pytest.approx(1795267694.477094 - 1795267686.413218)
    assert phone[-1].recordings == ()
    assert carrier[0].dialed_number == "5550400"
    assert first(phone, K.ANSWERED).at == 1795267688.465507


def test_click_to_dial() -> None:
    events = run("click_to_dial")
    legs = by_leg(events)
    phone, trunk = legs["1795267699.37"], legs["1795267701.38"]
    assert phone[0].originator and phone[0].agent == agent("1001")
    assert kinds(phone) == [K.CREATED, K.RINGING, K.ANSWERED, K.BRIDGED, K.DESTROYED]
    # The CTI_REQUEST variable arrives right after Newchannel: every later event carries it.
    assert [e.origin_tag for e in events] == [None] + ["c2d-0001"] * (len(events) - 1)
    assert first(phone, K.ANSWERED).at == 1795267702.000669
    assert first(trunk, K.ANSWERED).at == 1795267705.015445
    assert trunk[0].party is Party.TRUNK and first(trunk, K.RINGING).dialed_number == (
        "15559876543"
    )
    assert first(trunk, K.RINGING).other_leg_id == "1795267699.37"
    # No Originate CallerID here: the phone's leg names its far end once it is connected.
    assert [e.caller_number for e in phone] == [None, None, None, "15559876543", "15559876543"]
    assert {e.callee_number for e in phone} == {"1001"}


def test_registration_yields_nothing() -> None:
    assert run("registration") == []


def test_the_stream_can_be_fed_from_the_protocol_in_pieces() -> None:
    data = (FIXTURES / "ring_group.ami").read_bytes()
    proto, mapper = AmiProtocol(), AsteriskMapper(TENANT)
    out: list[ChannelEvent] = []
    for i in range(0, len(data), 333):
        proto.receive_data(data[i : i + 333])
        out.extend(e for m in proto.events_received() for e in mapper.feed(m))
    assert out == run("ring_group")


# -- synthetic sequences ----------------------------------------------------------------------

T0 = 1_800_000_000.0


def msg(event: str, at: float | None = T0, **headers: str) -> AmiMessage:
    pairs = [("Event", event)]
    if at is not None:
        pairs.append(("Timestamp", f"{at:.6f}"))
    pairs.extend((k.replace("__", "-"), v) for k, v in headers.items())
    return AmiMessage(tuple(pairs))


def chan(channel: str, uid: str, linked: str, prefix: str = "", **extra: str) -> dict[str, str]:
    base = {
        "Channel": channel,
        "ChannelStateDesc": "Ring" if uid == linked else "Down",
        "CallerIDNum": "<unknown>",
        "CallerIDName": "<unknown>",
        "ConnectedLineNum": "<unknown>",
        "ConnectedLineName": "<unknown>",
        "Context": "internal",
        "Exten": "s",
        "Uniqueid": uid,
        "Linkedid": linked,
    }
    base.update(extra)
    return {prefix + k: v for k, v in base.items()}


def feed(mapper: AsteriskMapper, *items: AmiMessage) -> list[ChannelEvent]:
    return [e for m in items for e in mapper.feed(m)]


CARRIER = chan(
    "PJSIP/carrier-00000001", "100.1", "100.1", CallerIDNum="15551234567", Exten="5550100"
)
ALICE = chan("PJSIP/1001-00000002", "100.2", "100.1", CallerIDNum="1001")
BOB = chan("PJSIP/1002-00000003", "100.3", "100.1", CallerIDNum="1002")


def test_voicemail_answer_is_the_pbx_answering_the_caller() -> None:
    m = AsteriskMapper(TENANT)
    out = feed(
        m,
        msg("Newchannel", T0, **CARRIER),
        msg("Newchannel", T0, **ALICE),
        msg("DialBegin", T0, **CARRIER, **{"Dest" + k: v for k, v in ALICE.items()}),
        msg("Hangup", T0 + 15, Cause="19", **ALICE),
        msg("Newexten", T0 + 15, Application="VoiceMail", AppData="1001@default", **CARRIER),
        msg("Newstate", T0 + 15.1, **{**CARRIER, "ChannelStateDesc": "Up"}),
        msg("Hangup", T0 + 30, Cause="16", **CARRIER),
    )
    answered = [e for e in out if e.kind is K.ANSWERED]
    assert [(e.leg_id, e.application, e.party, e.at) for e in answered] == [
        ("100.1", "voicemail", Party.TRUNK, T0 + 15.1)
    ]
    assert [e.hangup_cause for e in out if e.kind is K.DESTROYED] == [
        "NO_ANSWER",
        "NORMAL_CLEARING",
    ]


def test_voicemail_after_an_answer_announces_it_again() -> None:
    m = AsteriskMapper(TENANT)
    up = {**CARRIER, "ChannelStateDesc": "Up"}
    out = feed(
        m,
        msg("Newchannel", T0, **CARRIER),
        msg("Newstate", T0 + 1, **up),
        msg("Newexten", T0 + 2, Application="Playback", **up),
        msg("Newexten", T0 + 3, Application="voicemail", **up),
        msg("Newexten", T0 + 3, Application="VoiceMail", **up),
    )
    assert [(e.kind, e.application, e.at) for e in out] == [
        (K.CREATED, None, T0),
        (K.ANSWERED, None, T0 + 1),
        (K.ANSWERED, "voicemail", T0 + 3),
    ]


def test_hold_and_unhold() -> None:
    m = AsteriskMapper(TENANT)
    out = feed(
        m,
        msg("Newchannel", T0, **ALICE),
        msg("Hold", T0 + 1, MusicClass="default", **ALICE),
        msg("Unhold", T0 + 5, **ALICE),
    )
    assert [(e.kind, e.at) for e in out] == [(K.CREATED, T0), (K.HELD, T0 + 1), (K.UNHELD, T0 + 5)]


def test_attended_transfer_merges_conversations_and_keeps_the_first_key() -> None:
    m = AsteriskMapper(TENANT)
    consult = chan("PJSIP/1001-00000004", "200.4", "200.4", CallerIDNum="1001", Exten="1002")
    bob = chan("PJSIP/1002-00000005", "200.5", "200.4", CallerIDNum="1002")
    out = feed(
        m,
        msg("Newchannel", T0, **CARRIER),
        msg("Newchannel", T0, **ALICE),
        msg("Newchannel", T0 + 5, **consult),
        msg("Newchannel", T0 + 5, **bob),
    )
    assert [e.group_key for e in out] == ["100.1", "100.1", "200.4", "200.4"]
    assert [e.originator for e in out] == [True, False, True, False]
    out = feed(
        m,
        msg(
            "AttendedTransfer",
            T0 + 9,
            Result="Success",
            OrigTransfererUniqueid="100.2",
            SecondTransfererUniqueid="200.4",
        ),
        msg("BridgeEnter", T0 + 9, BridgeUniqueid="b1", **CARRIER),
        msg("BridgeEnter", T0 + 9, BridgeUniqueid="b1", **{**bob, "Linkedid": "100.1"}),
        msg("Hangup", T0 + 9, Cause="16", **ALICE),
        msg("Hangup", T0 + 9, Cause="16", **{**consult, "Linkedid": "100.1"}),
        msg("Hangup", T0 + 20, Cause="16", **CARRIER),
        msg("Hangup", T0 + 20, Cause="16", **bob),
    )
    assert {e.group_key for e in out} == {"100.1"}
    causes = {e.leg_id: e.hangup_cause for e in out if e.kind is K.DESTROYED}
    assert causes == {
        "100.2": "ATTENDED_TRANSFER",
        "200.4": "ATTENDED_TRANSFER",
        "100.1": "NORMAL_CLEARING",
        "200.5": "NORMAL_CLEARING",
    }
    assert [(e.leg_id, e.other_leg_id) for e in out if e.kind is K.BRIDGED] == [
        ("100.1", "200.5"),
        ("200.5", "100.1"),
    ]
    assert m.live_legs == 0


def test_a_merged_conversation_takes_the_tag_of_the_younger_one() -> None:
    m = AsteriskMapper(TENANT)
    other = chan("PJSIP/1003-00000009", "300.9", "300.9", CallerIDNum="1003")
    feed(
        m,
        msg("Newchannel", T0, **CARRIER),
        msg("Newchannel", T0 + 1, **other),
        msg("VarSet", T0 + 1, Variable="CTIBRIDGE_REQ", Value="r-7", **other),
    )
    [held] = feed(m, msg("Hold", T0 + 2, **{**CARRIER, "Linkedid": "300.9"}))
    assert (held.group_key, held.origin_tag) == ("100.1", "r-7")


def test_a_linkedid_change_merges_groups() -> None:
    m = AsteriskMapper(TENANT)
    other = chan("PJSIP/1003-00000009", "300.9", "300.9", CallerIDNum="1003")
    feed(m, msg("Newchannel", T0, **CARRIER), msg("Newchannel", T0 + 1, **other))
    [held] = feed(m, msg("Hold", T0 + 2, **{**other, "Linkedid": "100.1"}))
    assert held.group_key == "100.1"
    [again] = feed(m, msg("Unhold", T0 + 3, **other))
    assert again.group_key == "100.1"


def test_local_channels_are_folded_away_and_seen_through() -> None:
    m = AsteriskMapper(TENANT)
    l1 = chan("Local/1001@users-00000001;1", "100.5", "100.1")
    l2 = chan("Local/1001@users-00000001;2", "100.6", "100.1")
    out = feed(
        m,
        msg("Newchannel", T0, **CARRIER),
        msg("Newchannel", T0, **l1),
        msg("Newchannel", T0, **l2),
        msg("DialBegin", T0, **CARRIER, **{"Dest" + k: v for k, v in l1.items()}),
        msg("Newchannel", T0, **ALICE),
        msg(
            "DialBegin",
            T0,
            DialString="PJSIP/1001",
            **l2,
            **{"Dest" + k: v for k, v in ALICE.items()},
        ),
        msg("Newstate", T0 + 1, **{**l1, "ChannelStateDesc": "Ringing"}),
        msg("Newstate", T0 + 2, **{**ALICE, "ChannelStateDesc": "Up"}),
        msg("BridgeEnter", T0 + 2, BridgeUniqueid="inner", **l2),
        msg("BridgeEnter", T0 + 2, BridgeUniqueid="inner", **ALICE),
        msg("BridgeEnter", T0 + 2, BridgeUniqueid="outer", **l1),
        msg("BridgeEnter", T0 + 2, BridgeUniqueid="outer", **CARRIER),
        msg("BridgeEnter", T0 + 3, BridgeUniqueid="outer", SwapUniqueid="100.5", **ALICE),
        msg("Hold", T0 + 4, **l1),
        msg("Hangup", T0 + 5, Cause="16", **l2),
        msg("Hangup", T0 + 5, Cause="16", **l1),
        msg("Hangup", T0 + 9, Cause="16", **ALICE),
        msg("Hangup", T0 + 9, Cause="16", **CARRIER),
    )
    assert {e.leg_id for e in out} == {"100.1", "100.2"}
    assert [(e.leg_id, e.kind, e.other_leg_id) for e in out if e.kind is K.BRIDGED] == [
        ("100.1", K.BRIDGED, "100.2"),
        ("100.2", K.BRIDGED, "100.1"),
    ]
    ringing = first(out, K.RINGING)
    assert (ringing.leg_id, ringing.other_leg_id, ringing.dialed_number) == ("100.2", None, "1001")
    assert m.live_legs == 0


def test_the_first_dial_caller_originates_when_the_first_channel_is_plumbing() -> None:
    m = AsteriskMapper(TENANT)
    l1 = chan("Local/s@click-00000002;1", "400.1", "400.1")
    l2 = chan("Local/s@click-00000002;2", "400.2", "400.1")
    phone = chan("PJSIP/1001-0000000a", "400.3", "400.1", CallerIDNum="1001")
    trunk = chan("PJSIP/carrier-0000000b", "400.4", "400.1")
    out = feed(
        m,
        msg("Newchannel", T0, **l1),
        msg("Newchannel", T0, **l2),
        msg("Newchannel", T0, **phone),
        msg("DialBegin", T0, **l1, **{"Dest" + k: v for k, v in phone.items()}),
        msg("Newchannel", T0 + 1, **trunk),
        msg("DialBegin", T0 + 1, **phone, **{"Dest" + k: v for k, v in trunk.items()}),
        msg("DialBegin", T0 + 1, **trunk, **{"Dest" + k: v for k, v in phone.items()}),
    )
    assert [(e.leg_id, e.kind, e.originator) for e in out] == [
        ("400.3", K.CREATED, False),
        ("400.3", K.RINGING, False),
        ("400.4", K.CREATED, False),
        ("400.4", K.RINGING, False),
    ]
    [created] = feed(m, msg("Hold", T0 + 2, **phone))
    assert created.originator


def test_pickup_merges_and_names_the_picked_leg() -> None:
    m = AsteriskMapper(TENANT)
    carol = chan("PJSIP/1003-00000007", "500.7", "500.7", CallerIDNum="1003", Exten="*8")
    feed(m, msg("Newchannel", T0, **CARRIER), msg("Newchannel", T0, **ALICE))
    feed(m, msg("Newchannel", T0 + 2, **carol))
    feed(m, msg("Pickup", T0 + 3, **carol, **{"Target" + k: v for k, v in ALICE.items()}))
    [gone] = feed(m, msg("Hangup", T0 + 3, Cause="16", **ALICE))
    assert gone.hangup_cause == "PICKED_OFF"
    [held] = feed(m, msg("Hold", T0 + 4, **carol))
    assert held.group_key == "100.1"


def test_failed_transfers_change_nothing() -> None:
    m = AsteriskMapper(TENANT)
    feed(m, msg("Newchannel", T0, **ALICE))
    feed(m, msg("BlindTransfer", T0 + 1, Result="Fail", TransfererUniqueid="100.2"))
    [gone] = feed(m, msg("Hangup", T0 + 2, Cause="16", **ALICE))
    assert gone.hangup_cause == "NORMAL_CLEARING"


def test_recording_variable_and_mixmonitor_stop() -> None:
    m = AsteriskMapper(TENANT)
    out = feed(
        m,
        msg("Newchannel", T0, **CARRIER),
        msg("VarSet", T0 + 1, Variable="MIXMONITOR_FILENAME", Value="/r/a.wav", **CARRIER),
        msg("VarSet", T0 + 1, Variable="MIXMONITOR_FILENAME", Value="/r/a.wav", **CARRIER),
        msg("MixMonitorStart", T0 + 1, **CARRIER),
        msg("MixMonitorStop", T0 + 4, **CARRIER),
        msg("VarSet", T0 + 5, Variable="MIXMONITOR_FILENAME", Value="  ", **CARRIER),
        msg("Hangup", T0 + 9, Cause="16", **CARRIER),
    )
    [rec] = out[-1].recordings
    assert (rec.ref, rec.started_at, rec.duration_seconds) == ("/r/a.wav", T0 + 1, 3.0)


def test_channel_variables_carry_our_tags() -> None:
    m = AsteriskMapper(TENANT)
    with_vars = AmiMessage(
        (
            *msg("Newchannel", T0, **ALICE).headers,
            ("ChanVariable", "CTIBRIDGE_REQ=req-9"),
            ("ChanVariable", "MIXMONITOR_FILENAME="),
        )
    )
    [created] = m.feed(with_vars)
    assert created.origin_tag == "req-9"
    other = AmiMessage((*msg("Hold", T0, **ALICE).headers, ("ChanVariable", "OTHER=1")))
    assert m.feed(other)[0].origin_tag == "req-9"
    inherited = msg("VarSet", T0, Variable="__CTIBRIDGE_REQ", Value="other", **ALICE)
    assert m.feed(inherited) == []
    [held] = m.feed(msg("Hold", T0 + 1, **ALICE))
    assert held.origin_tag == "req-9", "the first tag of a conversation stays"


def test_party_rules_and_patterns() -> None:
    def party(channel: str, **kwargs: object) -> tuple[Party, AgentRef | None]:
        m = AsteriskMapper(TENANT, **kwargs)  # type: ignore[arg-type]
        [e] = m.feed(msg("Newchannel", T0, **chan(channel, "1.1", "1.1")))
        return e.party, e.agent

    assert party("SIP/1001-0000000a") == (Party.AGENT, AgentRef(None, "SIP/1001", "1001"))
    assert party("IAX2/22-3290") == (Party.AGENT, AgentRef(None, "IAX2/22", "22"))
    assert party("PJSIP/123456-00000001") == (Party.TRUNK, None)
    assert party("PJSIP/123456-00000001", internal_digits=6)[0] is Party.AGENT
    assert party("PJSIP/my-trunk-00000001") == (Party.TRUNK, None)
    assert party("DAHDI/1-1") == (Party.TRUNK, None)
    assert party("PJSIP/alice-00000001") == (Party.TRUNK, None)
    assert party("PJSIP/alice-00000001", agent_pattern=r"PJSIP/(?P<ext>[a-z]+)") == (
        Party.AGENT,
        AgentRef(None, "PJSIP/alice", "alice"),
    )
    assert party("PJSIP/alice-00000001", agent_pattern=r"PJSIP/[a-z]+") == (
        Party.AGENT,
        AgentRef(None, "PJSIP/alice", "alice"),
    )
    assert party("PJSIP/1001-00000001", trunk_pattern=r"^PJSIP/10") == (Party.TRUNK, None)


def test_plumbing_channels_make_no_events() -> None:
    m = AsteriskMapper(TENANT)
    for channel in ("Local/100@x-0001;1", "Announcer/ARI_MOH-0001", "Snoop/1.1-0001"):
        uid = channel[:5]
        assert (
            feed(
                m,
                msg("Newchannel", T0, **chan(channel, uid, uid)),
                msg("Newstate", T0, **chan(channel, uid, uid, ChannelStateDesc="Up")),
                msg("Hold", T0, **chan(channel, uid, uid)),
                msg("Hangup", T0, Cause="16", **chan(channel, uid, uid)),
            )
            == []
        )
    assert m.live_legs == 0


def test_event_names_list_what_the_mapper_reads() -> None:
    assert {"Newchannel", "Hangup", "DialBegin", "BridgeEnter", "VarSet"} <= EVENT_NAMES
    assert not {"RTCPSent", "DeviceStateChange", "Cdr", "DialEnd"} & EVENT_NAMES


def test_events_we_do_not_use_are_skipped_before_anything_is_read() -> None:
    m = AsteriskMapper(TENANT)
    skipped = [
        msg("RTCPReceived", None),
        msg("VarSet", None, Variable="BRIDGEPEER", Value="x"),
        msg("Newexten", None, Application="Dial"),
        msg("DeviceStateChange", None, Device="PJSIP/1001", State="INUSE"),
        msg("SuccessfulAuth", None),
        AmiMessage((("Response", "Success"), ("Message", "Originate successfully queued"))),
    ]
    assert feed(m, *skipped) == []
    assert m.live_legs == 0


def test_late_events_for_an_ended_leg_are_dropped() -> None:
    m = AsteriskMapper(TENANT)
    feed(m, msg("Newchannel", T0, **CARRIER), msg("Newchannel", T0, **ALICE))
    feed(m, msg("Hangup", T0 + 1, Cause="16", **ALICE))
    dest = {"Dest" + k: v for k, v in ALICE.items()}
    late = [
        msg("Hangup", T0 + 1, Cause="16", **ALICE),
        msg("Hold", T0 + 2, **ALICE),
        msg("Newstate", T0 + 2, **{**ALICE, "ChannelStateDesc": "Up"}),
        msg("BridgeEnter", T0 + 2, BridgeUniqueid="b", **ALICE),
        msg("BridgeLeave", T0 + 2, BridgeUniqueid="b", **ALICE),
        msg("DialBegin", T0 + 2, **CARRIER, **dest),
        msg("VarSet", T0 + 2, Variable="MIXMONITOR_FILENAME", Value="/r/x.wav", **ALICE),
        msg("MixMonitorStop", T0 + 2, **ALICE),
        msg("Newexten", T0 + 2, Application="VoiceMail", **ALICE),
        msg("Pickup", T0 + 2, **CARRIER, **{"Target" + k: v for k, v in ALICE.items()}),
        msg("BlindTransfer", T0 + 2, Result="Success", TransfererUniqueid="100.2"),
    ]
    assert feed(m, *late) == []
    assert m.live_legs == 1
    [gone] = feed(m, msg("Hangup", T0 + 3, Cause="16", **CARRIER))
    assert gone.hangup_cause == "NORMAL_CLEARING" and gone.recordings == ()
    assert (m.live_legs, m.live_conversations) == (0, 0)


def test_memory_of_ended_legs_is_bounded() -> None:
    m = AsteriskMapper(TENANT)
    for i in range(5000):
        leg = chan(f"PJSIP/1001-{i:08x}", f"9.{i}", f"9.{i}")
        feed(m, msg("Newchannel", T0, **leg), msg("Hangup", T0, Cause="16", **leg))
    assert (m.live_legs, m.live_conversations) == (0, 0)
    assert feed(m, msg("Hangup", T0, Cause="16", **chan("PJSIP/1001-1", "9.4999", "9.4999"))) == []
    [again] = feed(m, msg("Hangup", T0, Cause="16", **chan("PJSIP/1001-0", "9.0", "9.0")))
    assert again.kind is K.DESTROYED, "only the last few thousand ended legs are remembered"


def test_repeated_and_uninteresting_states_say_nothing() -> None:
    m = AsteriskMapper(TENANT)
    up = {**ALICE, "ChannelStateDesc": "Up"}
    out = feed(
        m,
        msg("Newchannel", T0, **{k: v for k, v in ALICE.items() if k != "ConnectedLineNum"}),
        msg("Newstate", T0, **{**ALICE, "ChannelStateDesc": "Busy"}),
        msg("Newstate", T0 + 1, **up),
        msg("Newstate", T0 + 2, **up),
        msg("Newstate", T0 + 2, **{**ALICE, "ChannelStateDesc": "Ringing"}),
        msg("BridgeEnter", T0 + 3, BridgeUniqueid="b", **up),
        msg("BridgeEnter", T0 + 3, BridgeUniqueid="b", **up),
        msg("NewConnectedLine", T0 + 3, **{**up, "ConnectedLineNum": "15550001"}),
    )
    assert kinds(out) == [K.CREATED, K.ANSWERED]
    [held] = m.feed(msg("Hold", T0 + 4, **up))
    assert held.caller_number == "15550001"


def test_bridges_that_do_not_resolve_to_one_real_peer_make_no_bridged_events() -> None:
    m = AsteriskMapper(TENANT)
    l1 = chan("Local/a@x-00000001;1", "100.5", "100.1")
    l2 = chan("Local/a@x-00000001;2", "100.6", "100.1")
    lone = chan("Local/b@x-00000002;1", "100.7", "100.1")
    out = feed(
        m,
        msg("BridgeEnter", T0, BridgeUniqueid="three", **CARRIER),
        msg("BridgeEnter", T0, BridgeUniqueid="three", **ALICE),
        msg("BridgeEnter", T0, BridgeUniqueid="three", **BOB),
    )
    assert kinds(out) == [K.BRIDGED, K.BRIDGED]  # two of them, before the third came in
    out = feed(m, msg("BridgeLeave", T0 + 1, BridgeUniqueid="three", **CARRIER))
    assert [(e.leg_id, e.other_leg_id) for e in out] == [("100.2", "100.3"), ("100.3", "100.2")]
    m = AsteriskMapper(TENANT)
    loop = feed(
        m,
        msg("BridgeEnter", T0, BridgeUniqueid="x", **CARRIER),
        msg("BridgeEnter", T0, BridgeUniqueid="x", **l1),
        msg("BridgeEnter", T0, BridgeUniqueid="y", **l2),
        msg("BridgeEnter", T0, BridgeUniqueid="z", **lone),
        msg("BridgeEnter", T0, BridgeUniqueid="z", **ALICE),
    )
    assert loop == [], "l2 is alone in its bridge; lone has no other half"
    m = AsteriskMapper(TENANT)
    pairs = [
        chan(f"Local/h{i}@x-0000000{i};{half}", f"7.{i}{half}", "7.0")
        for i in range(5)
        for half in (1, 2)
    ]
    items = [msg("BridgeEnter", T0, BridgeUniqueid="b0", **CARRIER)]
    for i in range(5):
        items.append(msg("BridgeEnter", T0, BridgeUniqueid=f"b{i}", **pairs[2 * i]))
        items.append(msg("BridgeEnter", T0, BridgeUniqueid=f"b{i + 1}", **pairs[2 * i + 1]))
    items.append(msg("BridgeEnter", T0, BridgeUniqueid="b5", **ALICE))
    assert feed(m, *items) == [], "too many Local hops to follow"


def test_a_leg_first_seen_mid_call_is_picked_up() -> None:
    m = AsteriskMapper(TENANT)
    [gone] = m.feed(msg("Hangup", T0, Cause="17", **ALICE))
    assert (gone.kind, gone.agent, gone.hangup_cause) == (K.DESTROYED, agent("1001"), "USER_BUSY")


def test_time_comes_from_the_timestamp_else_the_receive_time() -> None:
    m = AsteriskMapper(TENANT)
    [e] = m.feed(msg("Newchannel", None, **ALICE), received_at=T0 + 7)
    assert e.at == T0 + 7
    [e] = m.feed(msg("Hold", T0 + 8, **ALICE), received_at=1.0)
    assert e.at == T0 + 8


@pytest.mark.parametrize(
    ("item", "match"),
    [
        (msg("Newchannel", None, **ALICE), "timestampevents"),
        (AmiMessage((("Event", "Hold"), ("Timestamp", "soon"), *ALICE.items())), "Timestamp"),
        (AmiMessage((("Event", "Hold"), ("Timestamp", "nan"), *ALICE.items())), "Timestamp"),
        (AmiMessage((("Event", "Hold"), ("Timestamp", "-1"), *ALICE.items())), "Timestamp"),
        (msg("Newchannel", T0, Channel="PJSIP/1001-1"), "Uniqueid"),
        (msg("Hangup", T0, Uniqueid="1.1"), "Channel"),
        (msg("DialBegin", T0, **ALICE), "Dest"),
        (msg("BridgeEnter", T0, **ALICE), "BridgeUniqueid"),
        (msg("Pickup", T0, **ALICE), "Target"),
    ],
)
def test_unusable_events_are_field_errors_and_change_nothing(item: AmiMessage, match: str) -> None:
    m = AsteriskMapper(TENANT)
    with pytest.raises(FieldError, match=match):
        m.feed(item)
    assert m.live_legs == 0


def test_cause_names() -> None:
    assert [cause_name(c) for c in ("16", "17", "19", "21", "26", "127", " 34 ")] == [
        "NORMAL_CLEARING",
        "USER_BUSY",
        "NO_ANSWER",
        "CALL_REJECTED",
        "ANSWERED_ELSEWHERE",
        "INTERWORKING",
        "NORMAL_CIRCUIT_CONGESTION",
    ]
    assert cause_name("200") == "CAUSE_200"
    assert [cause_name(c) for c in (None, "", "abc", "-1", "١٦", "9" * 5000)] == [None] * 6


# -- resync -----------------------------------------------------------------------------------


def show(**fields: str) -> AmiMessage:
    return AmiMessage((("Event", "CoreShowChannel"), ("ActionID", "r-1"), *fields.items()))


def test_snapshot_from_core_show_channels() -> None:
    m = AsteriskMapper(TENANT)
    m.feed(msg("Newchannel", T0, **BOB))  # forgotten: the listing is the truth now
    listing = [
        AmiMessage((("Response", "Success"), ("EventList", "start"))),
        show(**{**CARRIER, "ChannelStateDesc": "Up"}, BridgeId="b1", Application="AppDial"),
        show(**{**ALICE, "ChannelStateDesc": "Up"}, BridgeId="b1"),
        show(
            **chan("PJSIP/carrier-000000aa", "600.1", "600.1", CallerIDNum="1555"),
            Application="VoiceMail",
        ),
        show(Channel="PJSIP/1004-0000000c"),
        AmiMessage((("Event", "CoreShowChannelsComplete"), ("ListItems", "4"))),
    ]
    snap = m.snapshot(listing, T0 + 60)
    assert [(e.kind, e.leg_id, e.answered, e.other_leg_id, e.group_key) for e in snap] == [
        (K.SNAPSHOT, "100.1", True, "100.2", "100.1"),
        (K.SNAPSHOT, "100.2", True, "100.1", "100.1"),
        (K.SNAPSHOT, "600.1", False, None, "600.1"),
    ]
    assert [e.originator for e in snap] == [True, False, True]
    assert snap[1].agent == agent("1001")
    assert snap[2].application == "voicemail"
    assert all(e.at == T0 + 60 and not e.held for e in snap)
    assert m.live_legs == 3
    [gone] = m.feed(msg("Hangup", T0 + 61, Cause="16", **ALICE))
    assert gone.kind is K.DESTROYED and gone.group_key == "100.1"
    assert m.feed(msg("Hangup", T0 + 61, Cause="16", **BOB))[0].kind is K.DESTROYED


def test_recordings_of_listed_legs_survive_a_resync() -> None:
    """The listing does not name recordings; a leg's go out with its hang-up."""
    m = AsteriskMapper(TENANT)
    feed(
        m,
        msg("Newchannel", T0, **CARRIER),
        msg("VarSet", T0 + 1, Variable="MIXMONITOR_FILENAME", Value="/r/a.wav", **CARRIER),
        msg("Newchannel", T0, **BOB),
        msg("VarSet", T0 + 1, Variable="MIXMONITOR_FILENAME", Value="/r/b.wav", **BOB),
    )
    m.snapshot([show(**{**CARRIER, "ChannelStateDesc": "Up"})], T0 + 30)  # Bob's leg is gone
    assert m.live_legs == 1
    [gone] = m.feed(msg("Hangup", T0 + 40, Cause="16", **CARRIER))
    assert [(r.ref, r.started_at) for r in gone.recordings] == [("/r/a.wav", T0 + 1)]
    [bob] = m.feed(msg("Hangup", T0 + 40, Cause="16", **BOB))
    assert bob.recordings == ()


def test_snapshot_sees_through_local_pairs() -> None:
    m = AsteriskMapper(TENANT)
    l1 = chan("Local/1001@users-00000001;1", "100.5", "100.1")
    l2 = chan("Local/1001@users-00000001;2", "100.6", "100.1")
    snap = m.snapshot(
        [
            show(**CARRIER, BridgeId="outer"),
            show(**l1, BridgeId="outer"),
            show(**l2, BridgeId="inner"),
            show(**ALICE, BridgeId="inner"),
        ],
        T0,
    )
    assert [(e.leg_id, e.other_leg_id) for e in snap] == [("100.1", "100.2"), ("100.2", "100.1")]


# -- property: any well-formed sequence, then every hang-up, leaves nothing behind ------------

_CHANNELS = [
    ("PJSIP/carrier-00000001", "100.1"),
    ("PJSIP/1001-00000002", "100.2"),
    ("PJSIP/1002-00000003", "100.3"),
    ("Local/x@y-00000004;1", "100.4"),
    ("Local/x@y-00000004;2", "100.5"),
    ("PJSIP/1003-00000006", "100.6"),
]


@st.composite
def ami_step(draw: st.DrawFn) -> AmiMessage:
    channel, uid = draw(st.sampled_from(_CHANNELS))
    linked = draw(st.sampled_from(["100.1", "100.3", "100.6", uid]))
    snap = chan(channel, uid, linked, ChannelStateDesc=draw(st.sampled_from(["Ringing", "Up"])))
    other_channel, other_uid = draw(st.sampled_from(_CHANNELS))
    other = chan(other_channel, other_uid, draw(st.sampled_from(["100.1", other_uid])))
    at = T0 + draw(st.integers(min_value=0, max_value=100))
    bridge = draw(st.sampled_from(["b1", "b2", "b3"]))
    return draw(
        st.sampled_from(
            [
                msg("Newchannel", at, **snap),
                msg("Newstate", at, **snap),
                msg("DialBegin", at, **snap, **{"Dest" + k: v for k, v in other.items()}),
                msg("DialBegin", at, **{"Dest" + k: v for k, v in other.items()}),
                msg("BridgeEnter", at, BridgeUniqueid=bridge, **snap),
                msg("BridgeEnter", at, BridgeUniqueid=bridge, SwapUniqueid=other_uid, **snap),
                msg("BridgeLeave", at, BridgeUniqueid=bridge, **snap),
                msg("Hold", at, **snap),
                msg("Unhold", at, **snap),
                msg("Hangup", at, Cause="16", **snap),
                msg("VarSet", at, Variable="MIXMONITOR_FILENAME", Value="/r/a.wav", **snap),
                msg("VarSet", at, Variable="CTIBRIDGE_REQ", Value="req", **snap),
                msg("MixMonitorStop", at, **snap),
                msg("Newexten", at, Application="VoiceMail", **snap),
                msg("Pickup", at, **snap, **{"Target" + k: v for k, v in other.items()}),
                msg("BlindTransfer", at, Result="Success", TransfererUniqueid=uid),
                msg("AttendedTransfer", at, Result="Success", OrigTransfererUniqueid=uid),
            ]
        )
    )


@settings(max_examples=150, deadline=None)
@given(steps=st.lists(ami_step(), max_size=40))
def test_any_sequence_then_every_hangup_leaves_nothing_behind(steps: list[AmiMessage]) -> None:
    m = AsteriskMapper(TENANT)
    events = feed(m, *steps)
    for channel, uid in _CHANNELS:
        events += m.feed(msg("Hangup", T0 + 200, Cause="16", **chan(channel, uid, uid)))
    assert (m.live_legs, m.live_conversations) == (0, 0)
    for leg_id, evs in by_leg(events).items():
        assert kinds(evs).count(K.DESTROYED) <= 1, leg_id
        assert not any(e.leg_id.startswith("100.4") or e.leg_id == "100.5" for e in evs)
        bridged = [e for e in evs if e.kind is K.BRIDGED]
        assert all(e.other_leg_id not in (None, leg_id, "100.4", "100.5") for e in bridged)
