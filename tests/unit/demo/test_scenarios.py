"""The demo scenarios: per-leg event order, ids, timing, wire forms and the fixture files."""

from __future__ import annotations

import importlib.util
import json
import random
import re
import sys
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any

import phonenumbers
import pytest

from ctibridge.demo.directory import DEMO, dialled_form
from ctibridge.demo.scenarios.registry import SCENARIOS
from ctibridge.demo.scenarios.script import (
    GREG_OFFSET,
    ScenarioContext,
    Step,
    greg_from_unix,
    total_seconds,
)
from ctibridge.demo.scenarios.wire import blackhole_message, legacy_message, routing_key_encode

ROOT = Path(__file__).resolve().parents[3]
FIXTURES = ROOT / "tests" / "fixtures" / "kazoo"
A = DEMO.agents
C = DEMO.callers
START = greg_from_unix(datetime(2026, 11, 21, 12, 0, tzinfo=UTC).timestamp())

PARAMS: dict[str, dict[str, Any]] = {
    "inbound_answered": {"agent": A[0], "caller": C[0]},
    "inbound_missed": {"agent": A[1], "caller": C[1]},
    "inbound_voicemail": {"agent": A[2], "caller": C[2]},
    "inbound_hold": {"agent": A[3], "caller": C[3]},
    "inbound_blind_transfer": {"agents": (A[0], A[4]), "caller": C[4]},
    "inbound_attended_transfer": {"agents": (A[1], A[5]), "caller": C[5]},
    "ring_group": {"agents": DEMO.group_agents(), "caller": C[6], "answered_by": 2},
    "outbound_answered": {"agent": A[4], "number": C[7].number},
    "outbound_busy": {"agent": A[5], "number": C[38].number},
    "internal_answered": {"caller": A[0], "callee": A[3]},
    "internal_missed": {"caller": A[2], "callee": A[1]},
    "click_to_dial": {"agent": A[5], "number": C[20].number, "request_id": "req-1"},
    "recorded_inbound": {"agent": A[4], "caller": C[8]},
    "duplicate_destroy_after_move": {"agent": A[0], "caller": C[9]},
}


def _ctx(seed: int = 1, **overrides: Any) -> ScenarioContext:
    return ScenarioContext(DEMO.account_id, DEMO.realm, START, random.Random(seed), **overrides)


def _run(name: str, seed: int = 1, **overrides: Any) -> list[dict[str, Any]]:
    return [step.data for step in SCENARIOS[name](_ctx(seed, **overrides), **PARAMS[name])]


def _legs(events: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    legs: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for event in events:
        legs[event["call_id"]].append(event)
    return legs


def _iid(event: dict[str, Any]) -> str | None:
    value = event["custom_channel_vars"].get("call_interaction_id")
    return None if value is None else str(value)


def _names(leg: list[dict[str, Any]]) -> list[str]:
    return [event["event_name"] for event in leg]


@pytest.fixture(scope="module")
def script() -> ModuleType:
    path = ROOT / "scripts" / "make_kazoo_fixtures.py"
    spec = importlib.util.spec_from_file_location("make_kazoo_fixtures", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while being built
    try:
        spec.loader.exec_module(module)
    finally:
        del sys.modules[spec.name]
    return module


# every scenario ------------------------------------------------------------------------


def test_every_scenario_has_parameters_here() -> None:
    assert set(PARAMS) == set(SCENARIOS)


@pytest.mark.parametrize("name", sorted(SCENARIOS))
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_each_leg_is_created_first_and_destroyed_last(name: str, seed: int) -> None:
    for call_id, leg in _legs(_run(name, seed)).items():
        names = _names(leg)
        assert names[0] == "CHANNEL_CREATE", call_id
        assert names.count("CHANNEL_CREATE") == 1, call_id
        final = [
            e for e in leg if e["event_name"] == "CHANNEL_DESTROY" and "channel_moving" not in e
        ]
        assert len(final) == 1, call_id
        assert leg[-1] is final[0], call_id


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_legs_share_one_interaction_id_except_the_consultation(name: str) -> None:
    legs = _legs(_run(name))
    per_leg = {}
    for call_id, leg in legs.items():
        ids = {_iid(e) for e in leg} - {None}
        assert len(ids) == 1, (call_id, ids)
        per_leg[call_id] = ids.pop()
    interactions = set(per_leg.values())
    if name != "inbound_attended_transfer":
        assert len(interactions) == 1
        return
    first_iid = _iid(_run(name)[0])
    consult = {leg_id for leg_id, iid in per_leg.items() if iid != first_iid}
    assert len(interactions) == 2
    assert len(consult) == 2  # the transferring agent's new A-leg and the target's leg


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_timestamps_never_go_backwards(name: str) -> None:
    steps = SCENARIOS[name](_ctx(), **PARAMS[name])
    events = [step.data for step in steps]
    stamps = [e["timestamp"] for e in events]
    assert stamps == sorted(stamps)
    assert stamps[0] == START
    msg_ids = [int(e["msg_id"]) for e in events]
    assert msg_ids == sorted(set(msg_ids))  # strictly increasing, so also unique
    assert all(step.delay >= 0 for step in steps)
    for event in events:  # msg_id is the unix microsecond of the event (as ecallmgr sends)
        assert int(event["msg_id"]) // 1_000_000 == event["timestamp"] - GREG_OFFSET
    assert total_seconds(steps) == pytest.approx(
        (msg_ids[-1] / 1e6) - (START - GREG_OFFSET), abs=1e-3
    )


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_interaction_id_is_greg_seconds_and_8_hex(name: str) -> None:
    for event in _run(name):
        iid = _iid(event)
        if iid is not None:
            stamp, key = iid.split("-")
            assert len(stamp) == 11 and re.fullmatch(r"[0-9a-f]{8}", key)
            assert START <= int(stamp) <= event["timestamp"]


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_the_same_seed_gives_the_same_events(name: str) -> None:
    assert _run(name, seed=5) == _run(name, seed=5)
    assert _run(name, seed=5) != _run(name, seed=6)


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_peers_and_directions_are_consistent(name: str) -> None:
    events = _run(name)
    legs = _legs(events)
    for call_id, leg in legs.items():
        assert {e["call_direction"] for e in leg} in ({"inbound"}, {"outbound"}), call_id
        for event in leg:
            other = event.get("other_leg_call_id")
            assert other is None or other in legs, call_id
            assert event["event_category"] == "call_event"
            assert event["custom_channel_vars"].get("account_id") in (DEMO.account_id, None)
        ccv = leg[-1]["custom_channel_vars"]
        is_carrier = "resource_type" in ccv
        assert is_carrier != ("authorizing_type" in ccv), call_id
        if ccv.get("resource_type") == "offnet-origination":
            assert leg[0]["call_direction"] == "inbound"
        if ccv.get("resource_type") == "offnet-termination":
            assert leg[0]["call_direction"] == "outbound"
    for event in events:
        if event["event_name"] == "CHANNEL_BRIDGE":
            assert event["bridge_a_unique_id"] == event["call_id"]
            assert event["other_leg_call_id"] == event["bridge_b_unique_id"]


# particular scenarios ----------------------------------------------------------------


def _causes(events: list[dict[str, Any]]) -> list[str]:
    return [e["hangup_cause"] for e in events if e["event_name"] == "CHANNEL_DESTROY"]


def test_inbound_answered_legs() -> None:
    events = _run("inbound_answered")
    carrier, device = _legs(events).values()
    assert carrier[0]["custom_channel_vars"]["resource_type"] == "offnet-origination"
    assert carrier[0]["caller_id_number"] == C[0].number
    assert carrier[0]["request"].split("@")[0] == A[0].did
    assert device[0]["call_direction"] == "outbound"
    assert device[0]["custom_channel_vars"]["owner_id"] == A[0].user_id
    assert device[0]["custom_channel_vars"]["authorizing_id"] == A[0].device_id
    assert device[0]["other_leg_call_id"] == carrier[0]["call_id"]
    assert _names(device) == ["CHANNEL_CREATE", "CHANNEL_ANSWER", "CHANNEL_DESTROY"]
    destroy = device[-1]
    assert destroy["billing_seconds"] == 75 and destroy["ringing_seconds"] == 6
    assert destroy["duration_seconds"] == 81 and destroy["hangup_code"] == "sip:200"


def test_inbound_missed_ends_originator_cancel_on_both_legs() -> None:
    events = _run("inbound_missed")
    assert "CHANNEL_ANSWER" not in _names(events)
    assert _causes(events) == ["ORIGINATOR_CANCEL", "ORIGINATOR_CANCEL"]


def test_carrier_create_before_routing_lacks_the_routed_vars() -> None:
    events = _run("inbound_missed", route_vars_on_create=False)
    create = events[0]["custom_channel_vars"]
    assert "account_id" not in create and "call_interaction_id" not in create
    assert events[-2]["custom_channel_vars"]["account_id"] == DEMO.account_id


def test_voicemail_answers_the_carrier_leg_after_the_device_gave_up() -> None:
    events = _run("inbound_voicemail")
    carrier, device = _legs(events).values()
    assert device[-1]["hangup_cause"] == "NO_ANSWER"
    assert _names(carrier) == ["CHANNEL_CREATE", "CHANNEL_ANSWER", "CHANNEL_DESTROY"]
    assert events.index(carrier[1]) > events.index(device[-1])
    assert "CHANNEL_BRIDGE" not in _names(events)


def test_hold_and_unhold_are_on_the_agents_leg() -> None:
    events = _run("inbound_hold")
    held = [e for e in events if e["event_name"] in ("CHANNEL_HOLD", "CHANNEL_UNHOLD")]
    assert [e["event_name"] for e in held] == ["CHANNEL_HOLD", "CHANNEL_UNHOLD"]
    assert {e["custom_channel_vars"]["owner_id"] for e in held} == {A[3].user_id}
    assert held[1]["timestamp"] - held[0]["timestamp"] == 20


def test_blind_transfer_rings_the_target_from_the_carrier_leg() -> None:
    events = _run("inbound_blind_transfer")
    carrier, first, second = _legs(events).values()
    assert first[-1]["hangup_cause"] == "BLIND_TRANSFER"
    assert second[0]["other_leg_call_id"] == carrier[0]["call_id"]
    assert second[0]["custom_channel_vars"]["owner_id"] == A[4].user_id
    assert events.index(second[0]) > events.index(first[-1])
    bridges = [e for e in events if e["event_name"] == "CHANNEL_BRIDGE"]
    assert [b["bridge_b_unique_id"] for b in bridges] == [first[0]["call_id"], second[0]["call_id"]]


def test_attended_transfer_bridges_the_caller_to_the_target() -> None:
    events = _run("inbound_attended_transfer")
    carrier, first, consult, target = _legs(events).values()
    assert consult[0]["call_direction"] == "inbound"
    assert consult[0]["callee_id_number"] == A[5].extension
    assert target[0]["other_leg_call_id"] == consult[0]["call_id"]
    assert first[-1]["hangup_cause"] == consult[-1]["hangup_cause"] == "ATTENDED_TRANSFER"
    merge = [e for e in events if e["event_name"] == "CHANNEL_BRIDGE"][-1]
    assert (merge["call_id"], merge["bridge_b_unique_id"]) == (
        carrier[0]["call_id"],
        target[0]["call_id"],
    )
    assert "CHANNEL_HOLD" in _names(first)
    assert target[-1]["caller_id_number"] == C[5].number  # the transferred caller now


def test_ring_group_losers_end_lose_race() -> None:
    events = _run("ring_group")
    legs = list(_legs(events).values())
    devices = legs[1:]
    assert [d[0]["callee_id_number"] for d in devices] == list(DEMO.ring_group.members)
    assert len({d[0]["timestamp"] for d in devices}) == 1
    causes = [d[-1]["hangup_cause"] for d in devices]
    assert causes == ["LOSE_RACE", "LOSE_RACE", "NORMAL_CLEARING"]
    assert "CHANNEL_ANSWER" in _names(devices[2])
    assert legs[0][0]["request"].startswith(DEMO.group_line.number + "@")


def test_outbound_has_early_media_before_the_answer() -> None:
    events = _run("outbound_answered")
    phone, carrier = _legs(events).values()
    assert phone[0]["call_direction"] == "inbound"
    assert phone[0]["request"] == f"{dialled_form(C[7].number)}@{DEMO.realm}"
    assert carrier[0]["custom_channel_vars"]["resource_type"] == "offnet-termination"
    assert carrier[0]["callee_id_number"] == C[7].number
    answers = [e["disposition"] for e in carrier if e["event_name"] == "CHANNEL_ANSWER"]
    assert answers == ["EARLY MEDIA", "ANSWER"]


def test_outbound_busy_ends_user_busy_before_any_answer() -> None:
    events = _run("outbound_busy")
    assert "CHANNEL_ANSWER" not in _names(events)
    assert _causes(events) == ["USER_BUSY", "USER_BUSY"]
    assert events[-2]["hangup_code"] == "sip:486"
    assert events[0]["request"].startswith("00" + C[38].number[1:])


def test_internal_call_has_two_device_legs() -> None:
    phone, device = _legs(_run("internal_answered")).values()
    assert phone[0]["custom_channel_vars"]["authorizing_type"] == "device"
    assert device[0]["custom_channel_vars"]["authorizing_type"] == "device"
    assert phone[0]["callee_id_number"] == A[3].extension
    assert _causes(_run("internal_missed")) == ["ORIGINATOR_CANCEL", "ORIGINATOR_CANCEL"]


def test_click_to_dial_is_a_quickcall_leg_then_the_carrier() -> None:
    events = _run("click_to_dial")
    agent_leg, carrier = _legs(events).values()
    first = agent_leg[0]
    assert re.fullmatch(r"[0-9a-f]{36}-quickcall", first["call_id"])
    assert first["call_direction"] == "outbound"
    assert first["caller_id_number"] == C[20].number
    assert first["callee_id_number"] == A[5].extension
    assert first["custom_application_vars"] == {"ctibridge_req": "req-1"}
    assert first["custom_channel_vars"]["authorizing_type"] == "user"
    assert _names(agent_leg)[:2] == ["CHANNEL_CREATE", "CHANNEL_ANSWER"]
    assert events.index(agent_leg[1]) < events.index(carrier[0])
    assert carrier[0]["other_leg_call_id"] == first["call_id"]
    assert carrier[0]["custom_application_vars"] == {"ctibridge_req": "req-1"}


def test_recordings_are_on_the_destroys() -> None:
    destroys = [e for e in _run("recorded_inbound") if e["event_name"] == "CHANNEL_DESTROY"]
    for destroy in destroys:
        assert destroy["media_recordings"] == [f"call_recording_{destroy['call_id']}.mp3"]
    plain = [e for e in _run("inbound_answered") if e["event_name"] == "CHANNEL_DESTROY"]
    assert all(e["media_recordings"] == [] for e in plain)


def test_moved_leg_is_destroyed_on_the_old_node_and_carries_on() -> None:
    events = _run("duplicate_destroy_after_move")
    _, device = _legs(events).values()
    moving = [e for e in device if e.get("channel_moving")]
    assert len(moving) == 1
    old, new = DEMO.media_servers
    assert moving[0]["media_server"] == old
    after = device[device.index(moving[0]) + 1 :]
    assert _names(after) == ["CHANNEL_HOLD", "CHANNEL_UNHOLD", "CHANNEL_DESTROY"]
    assert {e["media_server"] for e in after} == {new}


def test_scenario_rejects_events_written_out_of_order() -> None:
    with pytest.raises(ValueError, match="written after"):
        SCENARIOS["inbound_answered"](_ctx(), agent=A[0], caller=C[0], ring_seconds=-5)


# wire forms ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "encoded"),
    [
        ("routing.key", "routing%2Ekey"),
        ("*", "*"),
        ("#", "#"),
        ("a b", "a+b"),
        ("ab12@203.0.113.5", "ab12%40203%2E0%2E113%2E5"),
        ("0f-quickcall_x~", "0f-quickcall_x~"),
    ],
)
def test_routing_key_encoding(raw: str, encoded: str) -> None:
    assert routing_key_encode(raw) == encoded


def test_blackhole_message_envelope() -> None:
    data = _run("inbound_answered")[0]
    message = blackhole_message("acc1", data)
    assert message["action"] == "event"
    assert message["name"] == "CHANNEL_CREATE"
    assert message["subscribed_key"] == "call.CHANNEL_CREATE.*"
    assert message["subscription_key"] == "call.acc1.CHANNEL_CREATE.*"
    assert message["routing_key"] == "call.CHANNEL_CREATE." + routing_key_encode(data["call_id"])
    assert message["data"] is data


def test_legacy_message_capitalises_keys() -> None:
    events = _run("click_to_dial")
    legacy = legacy_message(events[-1])
    args = legacy["args"]
    assert legacy["name"] == "CHANNEL_DESTROY"
    assert args["Call-ID"] == events[-1]["call_id"]
    assert args["Other-Leg-Call-ID"] == events[-1]["other_leg_call_id"]
    assert args["Custom-Channel-Vars"]["Call-Interaction-ID"] == _iid(events[-1])
    assert args["Custom-Channel-Vars"]["Retain-CID"] == "true"
    assert args["Custom-Application-Vars"] == {"ctibridge_req": "req-1"}
    assert args["Duration-Seconds"] == str(events[-1]["duration_seconds"])
    assert "call_id" not in args


# directory -----------------------------------------------------------------------------


def test_directory_ids_and_numbers() -> None:
    hex32 = re.compile(r"[0-9a-f]{32}")
    ids = [DEMO.account_id, DEMO.ring_group.group_id, DEMO.carrier.resource_id]
    ids += [i for agent in DEMO.agents for i in (agent.user_id, agent.device_id)]
    assert all(hex32.fullmatch(i) for i in ids) and len(set(ids)) == len(ids)
    assert [a.extension for a in DEMO.agents] == ["101", "102", "103", "104", "105", "106"]
    assert len(DEMO.callers) >= 40
    numbers = [c.number for c in DEMO.callers] + [d.number for d in DEMO.dids]
    assert len(set(numbers)) == len(numbers)
    for number in numbers:
        assert phonenumbers.is_possible_number(phonenumbers.parse(number)), number
    assert DEMO.main_line.number == "+441202555100"
    assert DEMO.group_line.number == "+441202555200"
    assert set(DEMO.ring_group.members) <= {a.extension for a in DEMO.agents}
    assert dialled_form("+441632960018") == "01632960018"
    assert dialled_form("+12025550143") == "0012025550143"


def test_directory_documents() -> None:
    agent = DEMO.agent("104")
    user = agent.user_doc(DEMO.timezone)
    device = agent.device_doc(DEMO.realm)
    assert user["id"] == agent.user_id and user["username"] == "tom.hargreaves"
    assert user["timezone"] == "Europe/London"
    assert device["owner_id"] == agent.user_id
    assert device["sip"]["username"] == agent.sip_username
    with pytest.raises(KeyError):
        DEMO.agent("999")


# fixture files -------------------------------------------------------------------------


def test_fixture_files_on_disk_equal_what_the_script_produces(script: ModuleType) -> None:
    produced: dict[str, bytes] = script.render_all()
    on_disk = {path.name for path in FIXTURES.glob("*.jsonl")}
    assert on_disk == set(produced)
    for name, content in produced.items():
        assert (FIXTURES / name).read_bytes() == content, f"{name} is stale: rerun the script"
    assert script.render_all() == produced


def test_every_fixture_has_expectations(script: ModuleType) -> None:
    stems = {path.name.removesuffix(".jsonl") for path in FIXTURES.glob("*.jsonl")}
    expected = {
        path.name.removesuffix(".expected.json") for path in FIXTURES.glob("*.expected.json")
    }
    assert stems == expected
    assert {f.scenario for f in script.FIXTURES} == set(SCENARIOS)


def _fixture_events(stem: str) -> list[dict[str, Any]]:
    events = []
    for line in (FIXTURES / f"{stem}.jsonl").read_text().splitlines():
        message = json.loads(line)
        events.append(message["data"])
    return events


def _iso(greg: int) -> str:
    return datetime.fromtimestamp(greg - GREG_OFFSET, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


EXPECTED_KEYS = {
    "call_id", "direction", "from", "to", "agents", "answered_by", "missed", "started_at",
    "answered_at", "ended_at", "talk_seconds", "hold_seconds", "transfers", "recordings",
    "end_reason",
}  # fmt: skip


@pytest.mark.parametrize(
    "stem", sorted(p.name.removesuffix(".expected.json") for p in FIXTURES.glob("*.expected.json"))
)
def test_hand_written_expectations_agree_with_the_events(stem: str) -> None:
    """Cross-checks of the hand-derived numbers against the generated events."""
    calls = json.loads((FIXTURES / f"{stem}.expected.json").read_text())
    events = _fixture_events(stem.removesuffix("_legacy"))
    assert [c["ended_at"] for c in calls] == sorted(c["ended_at"] for c in calls)
    for call in calls:
        assert set(call) == EXPECTED_KEYS
        mine = [e for e in events if _iid(e) == call["call_id"]]
        legs = {e["call_id"] for e in mine}
        stamps = [e["timestamp"] for e in events if e["call_id"] in legs]
        assert call["started_at"] == _iso(min(stamps))
        if call["end_reason"] != "transferred":
            assert call["ended_at"] == _iso(max(stamps))
        answers = {_iso(e["timestamp"]) for e in mine if e.get("disposition") == "ANSWER"}
        if call["answered_at"] is not None:
            assert call["answered_at"] in answers
            seconds = _seconds(call["ended_at"]) - _seconds(call["answered_at"])
            assert call["talk_seconds"] == seconds - call["hold_seconds"]
        else:
            assert call["talk_seconds"] == 0 and call["answered_by"] is None
        recordings = [
            r for e in events if e["call_id"] in legs for r in e.get("media_recordings", [])
        ]
        assert call["recordings"] == recordings


def _seconds(iso: str) -> int:
    return int(datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp())


def test_legacy_fixture_is_the_same_call(script: ModuleType) -> None:
    modern = _fixture_events("inbound_answered")
    lines = (FIXTURES / "inbound_answered_legacy.jsonl").read_text().splitlines()
    legacy = [json.loads(line) for line in lines]
    assert [m["args"]["Call-ID"] for m in legacy] == [e["call_id"] for e in modern]
    assert [m["name"] for m in legacy] == [e["event_name"] for e in modern]


def test_step_is_frozen() -> None:
    step = Step(0.5, {"event_name": "CHANNEL_CREATE"})
    with pytest.raises(AttributeError):
        step.delay = 1.0  # type: ignore[misc]
