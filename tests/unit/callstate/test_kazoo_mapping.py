"""Kazoo events and channel listings → ChannelEvent, from the documented samples."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from ctibridge.callstate.events import AgentRef, ChannelEvent, LegEventKind, Party, Recording
from ctibridge.callstate.kazoo import map_channel, map_event, unix_time
from ctibridge.errors import FieldError
from ctibridge.protocols import kazoo
from ctibridge.protocols.kazoo import GREGORIAN_OFFSET, KazooEvent

# -- the three 3.x events of the blackhole README (one *97 call), trimmed ----------------------

_README_CCV = {
    "Account-ID": "4b8c6fec4b2597882c0390202d195419",
    "Authorizing-ID": "d509114b66efabf32dfd78dc464b46dd",
    "Authorizing-Type": "device",
    "Owner-ID": "699ed7e3d583e2577ac017c575f87262",
    "Global-Resource": "false",
    "Username": "user_wpxnx7am9w",
}
_README_COMMON = {
    "Call-Direction": "inbound",
    "Call-ID": "at6dmu4ffk97vnlp6qfq",
    "Event-Category": "call_event",
    "From": "356@wefwefwefwef.2600hz.com",
    "Media-Server": "wef.2600hz.com",
    "Presence-ID": "356@wefwefwefwef.2600hz.com",
    "Request": "*97@wefwefwefwef.2600hz.com",
    "To": "*97@wefwefwefwef.2600hz.com",
}
README_CREATE = {
    "name": "CHANNEL_CREATE",
    "args": {
        **_README_COMMON,
        "Caller-ID-Name": "user_wpxnx7am9w",
        "Caller-ID-Number": "user_wpxnx7am9w",
        "Custom-Channel-Vars": _README_CCV,
        "Disposition": "DELAYED NEGOTIATION",
        "Event-Name": "CHANNEL_CREATE",
        "Msg-ID": "1443672756993309",
        "Timestamp": 63610891956,
    },
}
README_ANSWER = {
    "name": "CHANNEL_ANSWER",
    "args": {
        **_README_COMMON,
        "Caller-ID-Name": "web phone",
        "Caller-ID-Number": "356",
        "Custom-Channel-Vars": {**_README_CCV, "Bridge-ID": "at6dmu4ffk97vnlp6qfq"},
        "Disposition": "EARLY MEDIA",
        "Event-Name": "CHANNEL_ANSWER",
        "Msg-ID": "1443672757935421",
        "Timestamp": 63610891957,
    },
}
README_DESTROY = {
    "name": "CHANNEL_DESTROY",
    "args": {
        **_README_COMMON,
        "Billing-Seconds": "31",
        "Caller-ID-Number": "356",
        "Custom-Channel-Vars": {**_README_CCV, "Bridge-ID": "at6dmu4ffk97vnlp6qfq"},
        "Disposition": "ANSWER",
        "Event-Name": "CHANNEL_DESTROY",
        "Hangup-Cause": "NORMAL_CLEARING",
        "Msg-ID": "1443672788333353",
        "Timestamp": 63610891988,
    },
}

# -- the 4.x sample of reference §1.3 ------------------------------------------------------------

MODERN_DATA: dict[str, Any] = {
    "event_name": "CHANNEL_ANSWER",
    "event_category": "call_event",
    "call_id": "abc123",
    "msg_id": "m-1",
    "call_direction": "inbound",
    "caller_id_name": "web phone",
    "caller_id_number": "356",
    "callee_id_number": "*97",
    "request": "*97@acc1.example.net",
    "to": "*97@acc1.example.net",
    "from": "356@acc1.example.net",
    "presence_id": "356@acc1.example.net",
    "disposition": "EARLY MEDIA",
    "timestamp": 63610891957,
    "media_server": "fs1.example.net",
    "custom_channel_vars": {
        "account_id": "acc1",
        "owner_id": "user1",
        "authorizing_id": "dev1",
        "authorizing_type": "device",
        "bridge_id": "abc123",
        "application_name": "callflow",
        "call_interaction_id": "63610891950-5f3a2b1c",
        "username": "user_x",
        "realm": "acc1.example.net",
    },
}
T = 63610891957 - GREGORIAN_OFFSET


def parsed(message: dict[str, Any]) -> KazooEvent:
    event = kazoo.parse(json.dumps(message))
    assert isinstance(event, KazooEvent)
    return event


def modern(
    name: str = "CHANNEL_ANSWER", *, account: str | None = None, **changes: Any
) -> KazooEvent:
    """The 4.x sample with top-level changes; ``ccv`` merges into the channel vars."""
    data = copy.deepcopy(MODERN_DATA)
    data["custom_channel_vars"].update(changes.pop("ccv", {}))
    data.update(changes)
    data = {key: value for key, value in data.items() if value is not None}
    return KazooEvent(name, account, f"call.{name}.abc123", data)


def mapped(event: KazooEvent, **kwargs: Any) -> ChannelEvent:
    result = map_event(event, **kwargs)
    assert result is not None
    return result


# -- documented samples -------------------------------------------------------------------------


def test_readme_create() -> None:
    event = mapped(parsed(README_CREATE))
    assert event == ChannelEvent(
        kind=LegEventKind.CREATED,
        tenant_id="4b8c6fec4b2597882c0390202d195419",
        leg_id="at6dmu4ffk97vnlp6qfq",
        at=63610891956 - GREGORIAN_OFFSET,
        node="wef.2600hz.com",
        event_id="1443672756993309",
        originator=True,
        party=Party.AGENT,
        agent=AgentRef(
            user_id="699ed7e3d583e2577ac017c575f87262",
            device_id="d509114b66efabf32dfd78dc464b46dd",
            extension="356",
        ),
        caller_number="user_wpxnx7am9w",
        caller_name="user_wpxnx7am9w",
        dialed_number="*97",
    )


def test_readme_answer_with_early_media_disposition_is_early() -> None:
    event = mapped(parsed(README_ANSWER))
    assert event.kind is LegEventKind.EARLY
    assert event.bridge_key == "at6dmu4ffk97vnlp6qfq"
    assert (event.caller_number, event.caller_name) == ("356", "web phone")


def test_readme_destroy() -> None:
    event = mapped(parsed(README_DESTROY))
    assert event.kind is LegEventKind.DESTROYED
    assert event.hangup_cause == "NORMAL_CLEARING"
    assert event.at == 63610891988 - GREGORIAN_OFFSET
    assert event.recordings == () and not event.moving


def test_modern_sample() -> None:
    event = mapped(modern())
    assert event.kind is LegEventKind.EARLY
    assert (event.tenant_id, event.leg_id, event.at) == ("acc1", "abc123", T)
    assert (event.group_key, event.bridge_key) == ("63610891950-5f3a2b1c", "abc123")
    assert (event.node, event.event_id) == ("fs1.example.net", "m-1")
    assert event.agent == AgentRef("user1", "dev1", "356")
    assert (event.callee_number, event.dialed_number) == ("*97", "*97")
    assert event.hangup_cause is None and event.pbx == "kazoo"


def test_legacy_and_modern_shapes_map_alike() -> None:
    legacy = {"name": "CHANNEL_ANSWER", "args": _capitalised(MODERN_DATA)}
    assert mapped(parsed(legacy)) == mapped(modern())


def _capitalised(value: Any) -> Any:
    if isinstance(value, dict):
        return {
            "-".join(w.title() for w in k.split("_")): _capitalised(v) for k, v in value.items()
        }
    return value


# -- kinds --------------------------------------------------------------------------------------

KIND_CASES = [
    ("CHANNEL_CREATE", {}, LegEventKind.CREATED),
    ("CHANNEL_ANSWER", {"disposition": None}, LegEventKind.ANSWERED),
    ("CHANNEL_ANSWER", {"disposition": "early media"}, LegEventKind.EARLY),
    ("CHANNEL_ANSWER", {"disposition": None, "channel_answer_state": "early"}, LegEventKind.EARLY),
    ("CHANNEL_ANSWER", {"channel_answer_state": "answered"}, LegEventKind.ANSWERED),
    ("CHANNEL_ANSWER", {"disposition": "ANSWER"}, LegEventKind.ANSWERED),
    ("CHANNEL_BRIDGE", {}, LegEventKind.BRIDGED),
    ("CHANNEL_HOLD", {}, LegEventKind.HELD),
    ("CHANNEL_UNHOLD", {}, LegEventKind.UNHELD),
    ("CHANNEL_DESTROY", {"hangup_cause": "user_busy"}, LegEventKind.DESTROYED),
]


@pytest.mark.parametrize(("name", "changes", "kind"), KIND_CASES)
def test_event_kinds(name: str, changes: dict[str, Any], kind: LegEventKind) -> None:
    assert mapped(modern(name, **changes)).kind is kind


def test_destroy_fields() -> None:
    recordings = [
        "call-1.mp3",
        {"media_name": "call-2.mp3", "url": "http://rec/2"},
        {"id": "rec-3"},
        {"url": "http://rec/4"},
        "",
    ]
    event = mapped(
        modern(
            "CHANNEL_DESTROY",
            hangup_cause="originator_cancel",
            channel_moving="true",
            media_recordings=recordings,
        )
    )
    assert event.hangup_cause == "ORIGINATOR_CANCEL"
    assert event.moving is True
    assert event.recordings == (
        Recording("call-1.mp3"),
        Recording("call-2.mp3", url="http://rec/2"),
        Recording("rec-3"),
        Recording("http://rec/4", url="http://rec/4"),
    )
    single = mapped(modern("CHANNEL_DESTROY", media_recordings="only.mp3"))
    assert single.recordings == (Recording("only.mp3"),)


def test_destroy_fields_only_on_destroy() -> None:
    event = mapped(
        modern("CHANNEL_BRIDGE", hangup_cause="x", channel_moving=True, media_recordings=["r"])
    )
    assert (event.hangup_cause, event.moving, event.recordings) == (None, False, ())


# -- legs we ignore -----------------------------------------------------------------------------

IGNORED = [
    ("loopback channel", modern("CHANNEL_CREATE", channel_name="loopback/ring-group-a")),
    ("loopback flag", modern("CHANNEL_CREATE", channel_is_loopback=True)),
    ("loopback string flag", modern("CHANNEL_DESTROY", channel_is_loopback="true")),
    ("unused event", modern("PARK_PARKED")),
    ("unknown event", modern("CHANNEL_EXECUTE")),
    ("no account", modern("CHANNEL_CREATE", ccv={"account_id": None})),
]


@pytest.mark.parametrize("event", [case[1] for case in IGNORED], ids=[c[0] for c in IGNORED])
def test_ignored_events(event: KazooEvent) -> None:
    assert map_event(event) is None


def test_account_fallbacks() -> None:
    no_account = {"account_id": None}
    top = mapped(modern("CHANNEL_CREATE", account_id="top", ccv=no_account))
    assert top.tenant_id == "top"
    routed = mapped(modern("CHANNEL_CREATE", account="from-subscription", ccv=no_account))
    assert routed.tenant_id == "from-subscription"


def test_sofia_channel_is_not_loopback() -> None:
    event = mapped(modern("CHANNEL_CREATE", channel_name="sofia/sipinterface_1/201@x"))
    assert event.kind is LegEventKind.CREATED


# -- who is on the leg --------------------------------------------------------------------------

NO_IDS = {"owner_id": None, "authorizing_id": None, "authorizing_type": None}
PARTY_CASES = [
    ("device A-leg", "inbound", {}, Party.AGENT),
    ("user quickcall leg", "outbound", {"authorizing_type": "user"}, Party.AGENT),
    ("mobile through a resource", "outbound", {"authorizing_type": "mobile", "resource_id": "r"},
     Party.AGENT),
    ("carrier A-leg", "inbound", {**NO_IDS, "resource_type": "offnet-origination"}, Party.TRUNK),
    ("bare A-leg", "inbound", NO_IDS, Party.TRUNK),
    ("resource-authorised A-leg", "inbound", {**NO_IDS, "authorizing_type": "resource",
     "authorizing_id": "carrier1"}, Party.TRUNK),
    ("device B-leg sent to a carrier", "outbound", {"resource_id": "carrier1"}, Party.TRUNK),
    ("offnet-termination B-leg", "outbound", {**NO_IDS, "resource_type": "offnet-termination"},
     Party.TRUNK),
    ("global resource B-leg", "outbound", {**NO_IDS, "global_resource": "true"}, Party.TRUNK),
    ("global_resource false", "outbound", {"global_resource": "false"}, Party.AGENT),
    ("owner only", "outbound", {**NO_IDS, "owner_id": "user9"}, Party.AGENT),
    ("owner through a resource", "outbound", {**NO_IDS, "owner_id": "u", "resource_id": "r"},
     Party.TRUNK),
    ("onnet resource type", "outbound", {**NO_IDS, "owner_id": "u",
     "resource_type": "onnet-termination"}, Party.AGENT),
    ("B-leg with nothing", "outbound", NO_IDS, Party.UNKNOWN),
    ("fax A-leg", "inbound", {**NO_IDS, "authorizing_type": "outbound_fax",
     "authorizing_id": "fax1"}, Party.UNKNOWN),
]  # fmt: skip


@pytest.mark.parametrize(
    ("direction", "ccv", "party"),
    [case[1:] for case in PARTY_CASES],
    ids=[case[0] for case in PARTY_CASES],
)
def test_party(direction: str, ccv: dict[str, Any], party: Party) -> None:
    event = mapped(modern("CHANNEL_CREATE", call_direction=direction, ccv=ccv))
    assert event.party is party
    assert event.originator is (direction == "inbound")
    assert (event.agent is not None) is (party is Party.AGENT)


def test_agent_ids_from_top_level_fields() -> None:
    event = mapped(modern("CHANNEL_CREATE", ccv=NO_IDS, owner_id="u7", authorizing_id="d7",
                          authorizing_type="device"))  # fmt: skip
    assert event.agent == AgentRef("u7", "d7", "356")


EXTENSION_CASES = [
    ("presence digits", {"presence_id": "201@realm"}, 5, "201"),
    ("presence digits, any length", {"presence_id": "2012345@realm"}, 5, "2012345"),
    ("caller number", {"presence_id": "user_x@realm", "caller_id_number": "202"}, 5, "202"),
    ("callee number on B-leg", {"presence_id": None, "call_direction": "outbound",
     "callee_id_number": "203"}, 5, "203"),
    ("caller too long", {"presence_id": None, "caller_id_number": "123456"}, 5, None),
    ("caller long enough", {"presence_id": None, "caller_id_number": "123456"}, 6, "123456"),
    ("e164 caller", {"presence_id": None, "caller_id_number": "+441202"}, 15, None),
    ("unicode digits", {"presence_id": "²01@r", "caller_id_number": "١٢"}, 5, None),
    ("numeric json number", {"presence_id": None, "caller_id_number": 204}, 5, "204"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("changes", "digits", "extension"),
    [case[1:] for case in EXTENSION_CASES],
    ids=[case[0] for case in EXTENSION_CASES],
)
def test_agent_extension(changes: dict[str, Any], digits: int, extension: str | None) -> None:
    event = mapped(modern("CHANNEL_CREATE", **changes), internal_digits=digits)
    assert event.agent is not None
    assert event.agent.extension == extension


# -- numbers, links, tags -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "dialed"),
    [
        ({"request": "sip:300@realm"}, "300"),
        ({"request": None, "caller_destination_number": "200"}, "200"),
        ({"request": "@realm", "caller_destination_number": "201"}, "201"),
        ({"request": None}, None),
    ],
)
def test_dialed_number(changes: dict[str, Any], dialed: str | None) -> None:
    assert mapped(modern("CHANNEL_CREATE", **changes)).dialed_number == dialed


@pytest.mark.parametrize(
    ("name", "changes", "other"),
    [
        ("CHANNEL_CREATE", {"other_leg_call_id": "peer"}, "peer"),
        ("CHANNEL_BRIDGE", {"bridge_a_unique_id": "abc123", "bridge_b_unique_id": "b"}, "b"),
        ("CHANNEL_BRIDGE", {"bridge_a_unique_id": "a", "bridge_b_unique_id": "abc123"}, "a"),
        ("CHANNEL_BRIDGE", {"other_leg_call_id": "o", "bridge_b_unique_id": "b"}, "o"),
        ("CHANNEL_BRIDGE", {"bridge_a_unique_id": "abc123"}, None),
        ("CHANNEL_ANSWER", {"bridge_b_unique_id": "b"}, None),
    ],
)
def test_other_leg(name: str, changes: dict[str, Any], other: str | None) -> None:
    assert mapped(modern(name, **changes)).other_leg_id == other


def test_origin_tag_from_our_quickcall_variable() -> None:
    event = mapped(modern("CHANNEL_CREATE", custom_application_vars={"ctibridge_req": "r-1"}))
    assert event.origin_tag == "r-1"
    assert mapped(modern("CHANNEL_CREATE", custom_application_vars={})).origin_tag is None


# -- bad fields ---------------------------------------------------------------------------------

BAD_FIELDS = [
    ("word timestamp", {"timestamp": "soon"}, "non-numeric timestamp"),
    ("missing timestamp", {"timestamp": None}, "unusable timestamp"),
    ("bool timestamp", {"timestamp": True}, "unusable timestamp"),
    ("list timestamp", {"timestamp": [1]}, "non-numeric timestamp"),
    ("unix timestamp", {"timestamp": 1_700_000_000}, "not Gregorian"),
    ("nan timestamp", {"timestamp": "nan"}, "not Gregorian"),
    ("dict number", {"caller_id_number": {"n": 1}}, "caller_id_number is a dict"),
    ("bool number", {"callee_id_number": True}, "callee_id_number is a bool"),
    ("list channel vars", {"custom_channel_vars": ["acc1"]}, "custom_channel_vars is a list"),
    ("list app vars", {"custom_application_vars": "x"}, "custom_application_vars is a str"),
]


@pytest.mark.parametrize(
    ("changes", "message"), [c[1:] for c in BAD_FIELDS], ids=[c[0] for c in BAD_FIELDS]
)
def test_bad_fields(changes: dict[str, Any], message: str) -> None:
    event = modern("CHANNEL_CREATE")
    event.data.update(changes)
    with pytest.raises(FieldError, match=message):
        map_event(event)


@pytest.mark.parametrize(
    ("recordings", "message"),
    [(5, "media_recordings is a int"), ([{"name": "x"}], "unusable"), ([3], "unusable")],
)
def test_bad_recordings(recordings: Any, message: str) -> None:
    with pytest.raises(FieldError, match=message):
        map_event(modern("CHANNEL_DESTROY", media_recordings=recordings))


def test_unix_time_accepts_numeric_strings() -> None:
    assert unix_time("63724349409") == 63724349409 - GREGORIAN_OFFSET
    assert unix_time(63610891957.5) == T + 0.5


# -- channel listings ---------------------------------------------------------------------------

# The entry of the crossbar channels.md sample (values ours where it has none).
LISTED: dict[str, Any] = {
    "answered": True,
    "authorizing_id": "63fbb9ac78e11f3ccb387928a423798a",
    "authorizing_type": "device",
    "destination": "user_zu0bf7",
    "direction": "outbound",
    "other_leg": "d220c187-e18edc42-bab2459d@10.26.0.91",
    "owner_id": "72855158432d790dfb22d03ff64c033e",
    "presence_id": "user_zu0bf7@account.realm.com",
    "timestamp": 63573977746,
    "username": "user_zu0bf7",
    "uuid": "dab25c76-7479-4ed2-ba92-6b725d68e351",
}


def test_map_channel_sample() -> None:
    event = map_channel(LISTED, "acc1", 1_700_000_000.0)
    assert event == ChannelEvent(
        kind=LegEventKind.SNAPSHOT,
        tenant_id="acc1",
        leg_id="dab25c76-7479-4ed2-ba92-6b725d68e351",
        at=1_700_000_000.0,
        other_leg_id="d220c187-e18edc42-bab2459d@10.26.0.91",
        party=Party.AGENT,
        agent=AgentRef("72855158432d790dfb22d03ff64c033e", "63fbb9ac78e11f3ccb387928a423798a"),
        dialed_number="user_zu0bf7",
        answered=True,
    )


def test_map_channel_full_entry() -> None:
    channel = {
        **LISTED,
        "direction": "inbound",
        "answered": "false",
        "is_onhold": True,
        "node": "freeswitch@fs1",
        "bridge_id": "b1",
        "interaction_id": "63573977700-abcd",
        "request": "+441202528735@realm",
        "caller_id_number": "201",
        "presence_id": None,
        "custom_application_vars": {"ctibridge_req": "r-2"},
    }
    event = map_channel(channel, "acc1", 5.0, internal_digits=3)
    assert event is not None
    assert (event.answered, event.held, event.originator) == (False, True, True)
    assert (event.node, event.bridge_key, event.group_key) == ("freeswitch@fs1", "b1",
                                                               "63573977700-abcd")  # fmt: skip
    assert (event.dialed_number, event.origin_tag) == ("+441202528735", "r-2")
    assert event.agent is not None and event.agent.extension == "201"


def test_map_channel_group_key_from_channel_vars() -> None:
    channel = {**LISTED, "custom_channel_vars": {"call_interaction_id": "i-1", "bridge_id": "b"}}
    event = map_channel(channel, "acc1", 0.0)
    assert event is not None and (event.group_key, event.bridge_key) == ("i-1", "b")


def test_map_channel_carrier_leg() -> None:
    channel = {"uuid": "c1", "direction": "inbound", "resource_id": "carrier1"}
    event = map_channel(channel, "acc1", 0.0)
    assert event is not None and event.party is Party.TRUNK and event.agent is None


def test_map_channel_skips_loopback_and_rejects_bad_entries() -> None:
    assert map_channel({**LISTED, "is_loopback": True}, "acc1", 0.0) is None
    with pytest.raises(FieldError, match="no uuid"):
        map_channel({**LISTED, "uuid": ""}, "acc1", 0.0)
    with pytest.raises(FieldError, match="not an object"):
        map_channel(["uuid"], "acc1", 0.0)  # type: ignore[arg-type]
