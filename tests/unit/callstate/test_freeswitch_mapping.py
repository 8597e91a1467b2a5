"""FreeSWITCH ESL → ChannelEvent: every genuine capture tells its scenario's story.

The facts asserted per scenario are read off ``tests/fixtures/esl/<scenario>.txt``; the
times are the capture's own ``Event-Date-Timestamp`` values (µs) of the events it names.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Iterable
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ctibridge.callstate.events import AgentRef, ChannelEvent, LegEventKind, Party
from ctibridge.callstate.freeswitch import EVENT_NAMES, FreeswitchMapper
from ctibridge.errors import FieldError
from ctibridge.protocols.esl import EslEvent, EslProtocol

K = LegEventKind
FIXTURES = Path(__file__).parents[2] / "fixtures" / "esl"
TENANT = "fs-1"
SCENARIOS = sorted(p.stem for p in FIXTURES.glob("*.esl"))


def esl_events(name: str) -> list[EslEvent]:
    proto = EslProtocol()
    proto.receive_data((FIXTURES / f"{name}.esl").read_bytes())
    proto.receive_eof()
    return [m.event() for m in proto.events_received() if m.is_event]


def run(name: str, *, json_format: bool = False) -> list[ChannelEvent]:
    mapper = FreeswitchMapper(TENANT)
    out = []
    for event in esl_events(name):
        if json_format:
            event = EslEvent.parse_json(event.serialize_json())
        out.extend(mapper.feed(event))
    assert (mapper.live_legs, mapper.live_conversations) == (0, 0)
    return out


def by_leg(events: Iterable[ChannelEvent]) -> dict[str, list[ChannelEvent]]:
    legs: dict[str, list[ChannelEvent]] = {}
    for e in events:
        legs.setdefault(e.leg_id[:8], []).append(e)
    return legs


def kinds(events: Iterable[ChannelEvent]) -> list[LegEventKind]:
    return [e.kind for e in events]


def first(events: Iterable[ChannelEvent], kind: LegEventKind) -> ChannelEvent:
    return next(e for e in events if e.kind is kind)


def agent(ext: str) -> AgentRef:
    return AgentRef(device_id=f"{ext}@127.0.0.1", extension=ext)


def us(value: int) -> float:
    return value / 1_000_000


def iso(at: float) -> str:
    return dt.datetime.fromtimestamp(math.floor(at), dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# -- every capture ----------------------------------------------------------------------------


@pytest.mark.parametrize("name", SCENARIOS)
def test_common_invariants(name: str) -> None:
    events = run(name)
    legs = by_leg(events)
    for evs in legs.values():
        assert {e.group_key for e in evs} == {evs[0].group_key}
        assert {e.party for e in evs} == {evs[0].party}
        assert {e.agent for e in evs} == {evs[0].agent}
        assert {e.originator for e in evs} == {evs[0].originator}
        assert evs[0].kind is K.CREATED and evs[-1].kind is K.DESTROYED
        for kind in (K.CREATED, K.RINGING, K.EARLY, K.ANSWERED, K.DESTROYED):
            assert kinds(evs).count(kind) <= 1
    for e in events:
        assert e.tenant_id == TENANT and e.pbx == "freeswitch" and e.node == "vm"
        assert e.event_id and e.event_id.startswith("6401b1e9-7178-4a62-9518-18b32f4d62b1:")
        assert (e.party is Party.AGENT) == (e.agent is not None)
        # The phones register contact users like 1001-0x562ba5c12600: never an identity.
        if e.agent is not None:
            assert e.agent.extension in {"1001", "1002", "1003"}
            assert "0x" not in (e.agent.device_id or "")
    assert len({e.group_key for e in events}) == 1
    assert sum(evs[0].originator for evs in legs.values()) == 1


@pytest.mark.parametrize("name", SCENARIOS)
def test_frames_named_outside_event_names_map_to_nothing(name: str) -> None:
    """A connector may peek at the name and skip the frame without decoding it."""
    proto, mapper = EslProtocol(), FreeswitchMapper(TENANT)
    proto.receive_data((FIXTURES / f"{name}.esl").read_bytes())
    frames = [f for f in proto.events_received() if f.is_event]
    assert [f.event_name for f in frames] == [f.event().name for f in frames]
    skipped = [f.event() for f in frames if f.event_name not in EVENT_NAMES]
    assert skipped and all(mapper.feed(e) == [] for e in skipped)
    assert "CHANNEL_CREATE" in EVENT_NAMES and "HEARTBEAT" not in EVENT_NAMES


@pytest.mark.parametrize("name", SCENARIOS)
def test_json_events_map_like_plain_ones(name: str) -> None:
    assert run(name, json_format=True) == run(name)


@pytest.mark.parametrize("name", SCENARIOS)
def test_expected_call_files_agree_with_the_events(name: str) -> None:
    """The hand-written expected calls and the mapped events tell the same times and parties."""
    [call] = json.loads((FIXTURES / f"{name}.expected.json").read_text())
    events = run(name)
    legs = by_leg(events)
    [origin] = [evs for evs in legs.values() if evs[0].originator]
    assert call["started_at"] == iso(min(e.at for e in events))
    assert call["ended_at"] == iso(max(e.at for e in events if e.kind is K.DESTROYED))
    agent_exts = {e.agent.extension for e in events if e.agent is not None}
    assert set(call["agents"]) <= agent_exts
    recordings = [r.ref for e in events for r in e.recordings]
    assert call["recordings"] == recordings
    if call["direction"] == "inbound":
        assert origin[0].party is Party.TRUNK
        assert (call["from"], call["to"]) == (origin[0].caller_number, origin[0].dialed_number)
    else:
        assert origin[0].agent is not None and call["from"] == origin[0].agent.extension
    callee = Party.TRUNK if call["direction"] == "outbound" else Party.AGENT
    answers = [
        e.at
        for e in events
        if e.kind is K.ANSWERED and e.party is callee and e.leg_id != origin[0].leg_id
    ]
    assert call["answered_at"] == (iso(answers[0]) if answers else None)
    if call["direction"] == "outbound":
        [trunk] = [evs for evs in legs.values() if evs[0].party is Party.TRUNK]
        assert call["to"] == trunk[0].dialed_number
    if call["direction"] == "internal":
        assert call["to"] == origin[0].dialed_number


# -- scenario by scenario ---------------------------------------------------------------------


def test_inbound_answered() -> None:
    legs = by_leg(run("inbound_answered"))
    carrier, phone = legs["c915ea6b"], legs["5b1da01d"]
    assert kinds(carrier) == [K.CREATED, K.EARLY, K.ANSWERED, K.BRIDGED, K.DESTROYED]
    assert kinds(phone) == [K.CREATED, K.RINGING, K.ANSWERED, K.BRIDGED, K.DESTROYED]
    c, p = carrier[0], phone[0]
    assert (c.party, c.originator, c.caller_number, c.caller_name, c.dialed_number) == (
        Party.TRUNK,
        True,
        "15551234567",
        "Jane Customer",
        "5550100",
    )
    assert (p.party, p.originator, p.agent) == (Party.AGENT, False, agent("1001"))
    assert (p.dialed_number, p.callee_number, p.caller_number) == ("1001", "1001", "15551234567")
    assert first(phone, K.ANSWERED).at == us(1795268638020860)
    assert first(carrier, K.BRIDGED).other_leg_id == phone[0].leg_id
    assert first(phone, K.BRIDGED).other_leg_id == carrier[0].leg_id
    assert {e.group_key for e in carrier + phone} == {carrier[0].leg_id}
    assert [carrier[-1].hangup_cause, phone[-1].hangup_cause] == ["NORMAL_CLEARING"] * 2
    # DESTROYED comes from CHANNEL_HANGUP_COMPLETE; the later CHANNEL_DESTROY adds nothing.
    assert carrier[-1].at == phone[-1].at == us(1795268643060873)


def test_inbound_missed() -> None:
    legs = by_leg(run("inbound_missed"))
    carrier, phone = legs["6f21971e"], legs["a9c169d9"]
    assert kinds(phone) == [K.CREATED, K.RINGING, K.DESTROYED]
    assert kinds(carrier) == [K.CREATED, K.EARLY, K.DESTROYED]
    assert [carrier[-1].hangup_cause, phone[-1].hangup_cause] == ["ORIGINATOR_CANCEL"] * 2
    assert phone[0].agent == agent("1001")


def test_ring_group() -> None:
    legs = by_leg(run("ring_group"))
    carrier = legs.pop("da928ede")
    assert carrier[0].party is Party.TRUNK and carrier[0].agent is None  # dialed_user=1003 on it
    assert carrier[0].dialed_number == "5550200" and carrier[0].caller_number == "15557654321"
    exts = {evs[0].agent.extension: evs for evs in legs.values() if evs[0].agent}
    assert sorted(exts) == ["1001", "1002", "1003"]
    for loser in ("1001", "1003"):
        assert kinds(exts[loser]) == [K.CREATED, K.RINGING, K.DESTROYED]
        assert exts[loser][-1].hangup_cause == "LOSE_RACE"
    bob = exts["1002"]
    assert kinds(bob) == [K.CREATED, K.RINGING, K.ANSWERED, K.BRIDGED, K.DESTROYED]
    assert first(bob, K.ANSWERED).at == us(1795268696300924)
    assert first(carrier, K.BRIDGED).other_leg_id == bob[0].leg_id
    assert bob[-1].hangup_cause == "NORMAL_CLEARING"


def test_outbound() -> None:
    legs = by_leg(run("outbound"))
    phone, trunk = legs["099bfd9b"], legs["e197b2be"]
    assert phone[0].originator and phone[0].agent == agent("1001")
    assert phone[0].dialed_number == "915559876543" and phone[0].caller_number == "1001"
    assert kinds(phone) == [K.CREATED, K.EARLY, K.ANSWERED, K.BRIDGED, K.DESTROYED]
    assert trunk[0].party is Party.TRUNK and not trunk[0].originator
    assert (trunk[0].dialed_number, trunk[0].callee_number) == ("15559876543", "15559876543")
    assert kinds(trunk) == [K.CREATED, K.RINGING, K.ANSWERED, K.BRIDGED, K.DESTROYED]
    assert first(trunk, K.ANSWERED).at == us(1795268711080918)
    assert trunk[-1].hangup_cause == phone[-1].hangup_cause == "NORMAL_CLEARING"


def test_outbound_busy() -> None:
    legs = by_leg(run("outbound_busy"))
    phone, trunk = legs["8c0e9c75"], legs["b8bb0e8b"]
    assert kinds(trunk) == [K.CREATED, K.RINGING, K.DESTROYED]
    assert kinds(phone) == [K.CREATED, K.DESTROYED]
    assert trunk[-1].hangup_cause == phone[-1].hangup_cause == "USER_BUSY"
    assert trunk[0].dialed_number == "15553334444"


def test_internal() -> None:
    legs = by_leg(run("internal"))
    alice, bob = legs["10e8cbd1"], legs["4499186b"]
    assert alice[0].originator and alice[0].agent == agent("1001")
    assert alice[0].dialed_number == "1002"
    # variable_dialed_user on Alice's leg later says 1002 (whom she called): not her identity.
    assert {e.agent for e in alice} == {agent("1001")}
    assert not bob[0].originator and bob[0].agent == agent("1002")
    assert first(bob, K.ANSWERED).at == us(1795268735020856)
    assert first(alice, K.BRIDGED).other_leg_id == bob[0].leg_id
    assert bob[-1].group_key == alice[0].leg_id, "the B-leg keeps its first call uuid"


def test_recorded() -> None:
    legs = by_leg(run("recorded"))
    carrier, phone = legs["f57ea40a"], legs["8cf4686e"]
    [rec] = carrier[-1].recordings
    assert rec.ref == (
        "/var/lib/freeswitch/recordings/"
        "20261121-134646_15551234567_f57ea40a-adca-4211-b67e-1c9a9b7fdb3a.wav"
    )
    assert rec.started_at == us(1795268806260893)
    assert rec.duration_seconds == 8.06
    assert phone[-1].recordings == ()
    assert carrier[0].dialed_number == "5550400"
    assert first(phone, K.ANSWERED).at == us(1795268808320860)


def test_click_to_dial() -> None:
    events = run("click_to_dial")
    legs = by_leg(events)
    phone, trunk = legs["910c08e9"], legs["f1321ce2"]
    assert {e.origin_tag for e in events} == {"c2d-0001"}
    assert phone[0].originator and phone[0].agent == agent("1001")
    # The agent's phone rings first and is shown the number it will call.
    assert (phone[0].caller_number, phone[0].caller_name) == ("15559876543", "Click to dial")
    assert kinds(phone) == [K.CREATED, K.RINGING, K.ANSWERED, K.BRIDGED, K.DESTROYED]
    assert first(phone, K.ANSWERED).at == us(1795268822100900)
    assert trunk[0].party is Party.TRUNK and trunk[0].dialed_number == "15559876543"
    assert first(trunk, K.ANSWERED).at == us(1795268825140922)
    assert first(phone, K.BRIDGED).other_leg_id == trunk[0].leg_id


# -- synthetic events -------------------------------------------------------------------------

T0 = 1_800_000_000_000_000
A = "aaaaaaaa-0000-0000-0000-000000000001"
B = "bbbbbbbb-0000-0000-0000-000000000002"


def ev(name: str, at: int | None = T0, **headers: str) -> EslEvent:
    pairs = [("Event-Name", name), ("Core-UUID", "core"), ("Event-Sequence", "1")]
    if at is not None:
        pairs.append(("Event-Date-Timestamp", str(at)))
    pairs.extend(
        (k.replace("_", "-") if not k.startswith("variable") else k, v) for k, v in headers.items()
    )
    return EslEvent(tuple(pairs))


CALLER = {
    "Unique_ID": A,
    "Channel_Call_UUID": A,
    "Channel_Name": "sofia/external/15551234567@192.0.2.9",
    "Call_Direction": "inbound",
    "Caller_Caller_ID_Number": "15551234567",
    "Caller_Destination_Number": "5550100",
}
AGENT = {
    "Unique_ID": B,
    "Channel_Call_UUID": A,
    "Other_Leg_Unique_ID": A,
    "Channel_Name": "sofia/internal/1001-0x1@192.0.2.10",
    "Call_Direction": "outbound",
    "variable_dialed_user": "1001",
    "variable_dialed_domain": "pbx.example",
}


def feed(mapper: FreeswitchMapper, *events: EslEvent) -> list[ChannelEvent]:
    return [c for e in events for c in mapper.feed(e)]


def test_hold_and_unhold() -> None:
    m = FreeswitchMapper(TENANT)
    out = feed(
        m,
        ev("CHANNEL_CREATE", T0, **AGENT),
        ev("CHANNEL_HOLD", T0 + 1_000_000, **AGENT),
        ev("CHANNEL_UNHOLD", T0 + 4_000_000, **AGENT),
    )
    assert [(e.kind, e.at) for e in out] == [
        (K.CREATED, 1_800_000_000.0),
        (K.HELD, 1_800_000_001.0),
        (K.UNHELD, 1_800_000_004.0),
    ]
    assert out[0].agent == AgentRef(device_id="1001@pbx.example", extension="1001")


def test_voicemail_marks_the_callers_answer_as_the_pbx() -> None:
    m = FreeswitchMapper(TENANT)
    out = feed(
        m,
        ev("CHANNEL_CREATE", T0, **CALLER),
        ev("CHANNEL_EXECUTE", T0 + 1, Application="bridge", **CALLER),
        ev("CHANNEL_EXECUTE", T0 + 2, Application="voicemail", **CALLER),
        ev("CHANNEL_ANSWER", T0 + 3, **CALLER),
        ev("CHANNEL_EXECUTE", T0 + 4, Application="voicemail", **CALLER),
        ev("CHANNEL_EXECUTE", T0 + 5, Application="conference", **CALLER),
    )
    assert [(e.kind, e.application) for e in out] == [
        (K.CREATED, None),
        (K.ANSWERED, "voicemail"),
        (K.ANSWERED, "conference"),
    ]


def test_record_session_without_record_start_events() -> None:
    m = FreeswitchMapper(TENANT)
    out = feed(
        m,
        ev("CHANNEL_CREATE", T0, **CALLER),
        ev(
            "CHANNEL_EXECUTE",
            T0,
            Application="record_session",
            Application_Data="/r/x.wav",
            **CALLER,
        ),
        ev("CHANNEL_EXECUTE", T0, Application="record_session", Application_Data=" ", **CALLER),
        ev("RECORD_START", T0, **CALLER),
        ev("RECORD_STOP", T0 + 2_000_000, Record_File_Path="/r/x.wav", **CALLER),
        ev("CHANNEL_DESTROY", T0 + 5_000_000, Hangup_Cause="NORMAL_CLEARING", **CALLER),
        ev("CHANNEL_DESTROY", T0 + 5_000_000, Hangup_Cause="NORMAL_CLEARING", **CALLER),
    )
    assert kinds(out) == [K.CREATED, K.DESTROYED]
    [rec] = out[-1].recordings
    assert (rec.ref, rec.duration_seconds) == ("/r/x.wav", 2.0)


def test_a_recording_whose_start_was_missed_is_kept() -> None:
    m = FreeswitchMapper(TENANT)
    out = feed(
        m,
        ev("RECORD_STOP", T0, Record_File_Path="/r/s.wav", variable_record_ms="4500", **CALLER),
        ev("RECORD_STOP", T0, Record_File_Path="/r/t.wav", **CALLER),
        ev("CHANNEL_HANGUP_COMPLETE", T0 + 1, **CALLER),
    )
    assert [(r.ref, r.started_at, r.duration_seconds) for r in out[-1].recordings] == [
        ("/r/s.wav", None, 4.5),
        ("/r/t.wav", None, None),
    ]


def test_an_open_recording_runs_until_the_leg_ends() -> None:
    m = FreeswitchMapper(TENANT)
    out = feed(
        m,
        ev("RECORD_START", T0, Record_File_Path="/r/y.wav", **CALLER),
        ev("CHANNEL_HANGUP_COMPLETE", T0 + 3_000_000, **CALLER),
    )
    [rec] = out[-1].recordings
    assert (rec.started_at, rec.duration_seconds, out[-1].hangup_cause) == (
        1_800_000_000.0,
        3.0,
        None,
    )


def test_loopback_legs_and_background_events_are_skipped() -> None:
    m = FreeswitchMapper(TENANT)
    loop = {**CALLER, "Channel_Name": "loopback/1001-a"}
    skipped = [
        ev("HEARTBEAT", None),
        ev("RE_SCHEDULE", None),
        ev("PRESENCE_IN", None),
        ev("CODEC", None),
        ev("API", None),
        ev("CUSTOM", None, Event_Subclass="sofia::register"),
        ev("CHANNEL_STATE", None, **CALLER),
        ev("CHANNEL_EXECUTE", None, Application="set", **CALLER),
        ev("CHANNEL_CREATE", T0, **loop),
        ev("CHANNEL_ANSWER", T0, **loop),
    ]
    assert feed(m, *skipped) == []
    assert m.live_legs == 0


def test_late_events_for_an_ended_leg_are_dropped() -> None:
    m = FreeswitchMapper(TENANT)
    feed(m, ev("CHANNEL_CREATE", T0, **CALLER), ev("CHANNEL_HANGUP_COMPLETE", T0, **CALLER))
    late = [
        ev("CHANNEL_ANSWER", T0 + 1, **CALLER),
        ev("RECORD_START", T0 + 1, Record_File_Path="/r/z.wav", **CALLER),
        ev("CHANNEL_EXECUTE", T0 + 1, Application="voicemail", **CALLER),
        ev("CHANNEL_HOLD", T0 + 1, **CALLER),
        ev("CHANNEL_DESTROY", T0 + 1, **CALLER),
    ]
    assert feed(m, *late) == []
    assert m.live_legs == 0


def test_progress_on_a_leg_that_came_in_is_not_ringing() -> None:
    m = FreeswitchMapper(TENANT)
    out = feed(
        m,
        ev("CHANNEL_PROGRESS", T0, **CALLER),
        ev("CHANNEL_PROGRESS", T0, **AGENT),
        ev("CHANNEL_ANSWER", T0 + 1, **AGENT),
        ev("CHANNEL_PROGRESS", T0 + 2, **AGENT),
    )
    assert [(e.leg_id, e.kind) for e in out] == [(B, K.RINGING), (B, K.ANSWERED)]


def test_bridges_merge_conversations_and_keep_the_first_key() -> None:
    m = FreeswitchMapper(TENANT)
    c = "cccccccc-0000-0000-0000-000000000003"
    consult = {**AGENT, "Unique_ID": c, "Channel_Call_UUID": c, "Call_Direction": "inbound"}
    del consult["Other_Leg_Unique_ID"]
    feed(m, ev("CHANNEL_CREATE", T0, **CALLER), ev("CHANNEL_CREATE", T0 + 5, **consult))
    out = feed(
        m,
        ev("CHANNEL_BRIDGE", T0 + 9, Bridge_A_Unique_ID=A, Bridge_B_Unique_ID=c, **CALLER),
        ev("CHANNEL_BRIDGE", T0 + 9, Bridge_A_Unique_ID=A, Bridge_B_Unique_ID=c, **CALLER),
        ev("CHANNEL_UNBRIDGE", T0 + 9, Bridge_A_Unique_ID=A, Bridge_B_Unique_ID=c, **CALLER),
        ev("CHANNEL_BRIDGE", T0 + 10, Bridge_A_Unique_ID=A, Bridge_B_Unique_ID=c, **CALLER),
        ev("CHANNEL_BRIDGE", T0 + 10, Bridge_A_Unique_ID=A, Bridge_B_Unique_ID="gone", **CALLER),
    )
    assert [(e.leg_id, e.other_leg_id, e.group_key) for e in out] == [
        (A, c, A),
        (c, A, A),
        (A, c, A),
        (c, A, A),
    ]


def test_time_and_id_are_required() -> None:
    m = FreeswitchMapper(TENANT)
    with pytest.raises(FieldError, match="Event-Date-Timestamp"):
        m.feed(ev("CHANNEL_CREATE", None, **CALLER))
    with pytest.raises(FieldError, match="Event-Date-Timestamp"):
        m.feed(EslEvent((("Event-Name", "CHANNEL_ANSWER"), ("Event-Date-Timestamp", "-5"))))
    with pytest.raises(FieldError, match="Unique-ID"):
        m.feed(ev("CHANNEL_CREATE", T0, Channel_Name="sofia/internal/1001@h"))
    assert m.live_legs == 0


def test_party_rules() -> None:
    def identify(**headers: str) -> tuple[Party, AgentRef | None]:
        [e] = FreeswitchMapper(TENANT).feed(ev("CHANNEL_CREATE", T0, Unique_ID=A, **headers))
        return e.party, e.agent

    gateway = {"Channel_Name": "sofia/internal/x", "variable_sip_gateway_name": "carrier"}
    assert identify(**gateway) == (Party.TRUNK, None)
    phone_in = {
        "Channel_Name": "sofia/internal/1001@h",
        "Call_Direction": "inbound",
        "variable_presence_id": "1001@pbx",
        "variable_dialed_user": "1002",
    }
    assert identify(**phone_in) == (Party.AGENT, AgentRef(None, "1001@pbx", "1001"))
    by_user = {"Channel_Name": "sofia/internal/a@h", "variable_user_name": "alice"}
    assert identify(**by_user) == (Party.AGENT, AgentRef(None, "alice", None))
    by_number = {"Channel_Name": "verto.rtc/x", "Caller_Caller_ID_Number": "2001"}
    assert identify(**by_number) == (Party.AGENT, AgentRef(None, "2001", "2001"))
    long_number = {"Channel_Name": "freetdm/1/1", "Caller_Caller_ID_Number": "15551234567"}
    assert identify(**long_number) == (Party.TRUNK, None)
    unknown_phone = {
        "Channel_Name": "sofia/internal/1001-0x562ba5c12600@h",
        "Call_Direction": "outbound",
        "Caller_Callee_ID_Number": "1001-0x562ba5c12600",
    }
    assert identify(**unknown_phone) == (Party.AGENT, None)


def test_an_unnamed_agent_leg_is_named_when_a_later_event_says_who() -> None:
    m = FreeswitchMapper(TENANT)
    bare = {k: v for k, v in AGENT.items() if not k.startswith("variable")}
    [created] = m.feed(ev("CHANNEL_CREATE", T0, **bare))
    assert (created.party, created.agent) == (Party.AGENT, None)
    [answered] = m.feed(ev("CHANNEL_ANSWER", T0 + 1, **AGENT))
    assert answered.agent == AgentRef(None, "1001@pbx.example", "1001")
    assert answered.dialed_number == "1001"


def test_custom_profiles_and_origin_variable() -> None:
    m = FreeswitchMapper(
        TENANT, agent_profiles=["phones"], trunk_profiles=["pstn"], origin_vars=["x_req"]
    )
    [trunk] = m.feed(ev("CHANNEL_CREATE", T0, **{**CALLER, "Channel_Name": "sofia/pstn/1555@h"}))
    assert trunk.party is Party.TRUNK
    phone = {**AGENT, "Channel_Name": "sofia/phones/1001@h", "variable_x_req": "r-1"}
    [created] = m.feed(ev("CHANNEL_CREATE", T0, **phone))
    assert (created.party, created.origin_tag) == (Party.AGENT, "r-1")


# -- resync -----------------------------------------------------------------------------------


def test_snapshot_from_show_channels_json() -> None:
    m = FreeswitchMapper(TENANT)
    m.feed(ev("CHANNEL_CREATE", T0, **AGENT))  # forgotten: the listing is the truth now
    listing = {
        "row_count": 4,
        "rows": [
            {
                "uuid": A,
                "direction": "inbound",
                "name": "sofia/external/15551234567@192.0.2.9",
                "cid_num": "15551234567",
                "dest": "5550100",
                "callstate": "ACTIVE",
                "call_uuid": A,
                "hostname": "fs1",
            },
            {
                "uuid": B,
                "direction": "outbound",
                "name": "sofia/internal/1001-0x1@192.0.2.10",
                "presence_id": "1001@pbx",
                "callee_num": "1001-0x1",
                "callstate": "HELD",
                "call_uuid": A,
            },
            {
                "uuid": "v1",
                "direction": "inbound",
                "name": "sofia/external/1555@h",
                "callstate": "ACTIVE",
                "application": "voicemail",
                "call_uuid": "",
            },
            {"name": "no uuid"},
            "junk",
        ],
    }
    snap = m.snapshot(listing, 1_800_000_060.0)
    assert [(e.kind, e.leg_id, e.answered, e.held, e.other_leg_id, e.group_key) for e in snap] == [
        (K.SNAPSHOT, A, True, False, B, A),
        (K.SNAPSHOT, B, True, True, A, A),
        (K.SNAPSHOT, "v1", True, False, None, "v1"),
    ]
    assert [e.originator for e in snap] == [True, False, True]
    assert snap[1].agent == AgentRef(None, "1001@pbx", "1001")
    assert snap[0].node == "fs1" and snap[2].application == "voicemail"
    [gone] = m.feed(ev("CHANNEL_HANGUP_COMPLETE", T0, Hangup_Cause="NORMAL_CLEARING", **AGENT))
    assert gone.group_key == A
    assert m.snapshot({"row_count": 0}, 1.0) == []
    with pytest.raises(FieldError):
        m.snapshot({"rows": "nope"}, 1.0)


def test_recordings_of_listed_legs_survive_a_resync() -> None:
    """The listing does not name recordings; a leg's go out with its hang-up."""
    m = FreeswitchMapper(TENANT)
    feed(m, ev("RECORD_START", T0, Record_File_Path="/r/y.wav", **CALLER))
    row = {"uuid": A, "direction": "inbound", "name": CALLER["Channel_Name"], "call_uuid": A}
    m.snapshot({"rows": [{**row, "callstate": "ACTIVE"}]}, 1_800_000_002.0)
    [gone] = m.feed(ev("CHANNEL_HANGUP_COMPLETE", T0 + 3_000_000, **CALLER))
    assert [(r.ref, r.started_at) for r in gone.recordings] == [("/r/y.wav", 1_800_000_000.0)]


# -- property: any well-formed sequence, then every hang-up, leaves nothing behind ------------

_UUIDS = [A, B, "cccccccc-0000-0000-0000-000000000003", "dddddddd-0000-0000-0000-000000000004"]
_NAMES = ["sofia/external/1555@h", "sofia/internal/1001@h", "loopback/x-a", "sofia/internal/1002@h"]


@st.composite
def esl_step(draw: st.DrawFn) -> EslEvent:
    uid, other = draw(st.sampled_from(_UUIDS)), draw(st.sampled_from(_UUIDS))
    fields = {
        "Unique_ID": uid,
        "Channel_Name": draw(st.sampled_from(_NAMES)),
        "Channel_Call_UUID": draw(st.sampled_from([uid, A, other])),
        "Call_Direction": draw(st.sampled_from(["inbound", "outbound"])),
        "variable_presence_id": "1001@h",
    }
    if draw(st.booleans()):
        fields["Other_Leg_Unique_ID"] = other
    name = draw(
        st.sampled_from(
            [
                "CHANNEL_CREATE",
                "CHANNEL_PROGRESS",
                "CHANNEL_PROGRESS_MEDIA",
                "CHANNEL_ANSWER",
                "CHANNEL_BRIDGE",
                "CHANNEL_UNBRIDGE",
                "CHANNEL_HOLD",
                "CHANNEL_UNHOLD",
                "CHANNEL_HANGUP_COMPLETE",
                "CHANNEL_DESTROY",
                "RECORD_START",
                "RECORD_STOP",
                "CHANNEL_EXECUTE",
            ]
        )
    )
    at = T0 + draw(st.integers(min_value=0, max_value=10**8))
    return ev(
        name,
        at,
        Bridge_A_Unique_ID=uid,
        Bridge_B_Unique_ID=other,
        Record_File_Path="/r/a.wav",
        Application=draw(st.sampled_from(["voicemail", "record_session", "bridge"])),
        Application_Data="/r/b.wav",
        variable_ctibridge_req="req",
        **fields,
    )


@settings(max_examples=150, deadline=None)
@given(steps=st.lists(esl_step(), max_size=40))
def test_any_sequence_then_every_hangup_leaves_nothing_behind(steps: list[EslEvent]) -> None:
    m = FreeswitchMapper(TENANT)
    events = feed(m, *steps)
    for uid in _UUIDS:
        events += m.feed(ev("CHANNEL_DESTROY", T0 + 10**9, Unique_ID=uid))
    assert (m.live_legs, m.live_conversations) == (0, 0)
    for leg_id, evs in by_leg(events).items():
        assert kinds(evs).count(K.DESTROYED) <= 1, leg_id
        assert all(e.other_leg_id != e.leg_id for e in evs)
