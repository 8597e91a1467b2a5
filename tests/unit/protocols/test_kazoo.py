"""Blackhole frames in, KazooEvent/KazooReply out; commands encoded one binding each."""

from __future__ import annotations

import json
from typing import Any

import pytest

from ctibridge.errors import FieldError
from ctibridge.protocols import kazoo
from ctibridge.protocols.kazoo import KazooEvent, KazooReply

# The 4.x sample of reference §1.3 (values ours).
MODERN = {
    "action": "event",
    "name": "CHANNEL_ANSWER",
    "subscribed_key": "call.CHANNEL_ANSWER.*",
    "subscription_key": "call.acc1.CHANNEL_ANSWER.*",
    "routing_key": "call.CHANNEL_ANSWER.abc123",
    "data": {
        "event_name": "CHANNEL_ANSWER",
        "event_category": "call_event",
        "call_id": "abc123",
        "call_direction": "inbound",
        "caller_id_number": "356",
        "timestamp": 63610891957,
        "custom_channel_vars": {"account_id": "acc1", "owner_id": "user1"},
    },
}

# The old 3.x shape of the blackhole README: capitalised AMQP names under "args".
LEGACY = {
    "name": "CHANNEL_CREATE",
    "args": {
        "Call-ID": "at6dmu4ffk97vnlp6qfq",
        "Call-Direction": "inbound",
        "Caller-ID-Number": "user_wpxnx7am9w",
        "Custom-Channel-Vars": {
            "Account-ID": "4b8c6fec4b2597882c0390202d195419",
            "Owner-ID": "699ed7e3d583e2577ac017c575f87262",
            "Authorizing-Type": "device",
        },
        "Custom-SIP-Headers": {"X-AUTH-IP": "192.168.25.203"},
        "Media-Recordings": [{"Media-Name": "r1.mp3"}],
        "Timestamp": 63610891956,
    },
}


def frame(message: Any) -> str:
    return json.dumps(message)


# -- encoders -----------------------------------------------------------------------------------


def test_subscribe_carries_exactly_one_binding() -> None:
    message = json.loads(kazoo.subscribe("tok", "acc1", "call.CHANNEL_CREATE.*", "r-1"))
    assert message == {
        "action": "subscribe",
        "auth_token": "tok",
        "request_id": "r-1",
        "data": {"account_id": "acc1", "binding": "call.CHANNEL_CREATE.*"},
    }


def test_unsubscribe_has_the_subscribe_shape() -> None:
    message = json.loads(kazoo.unsubscribe("tok", "acc1", "call.*.*", "r-2"))
    assert message["action"] == "unsubscribe"
    assert message["data"] == {"account_id": "acc1", "binding": "call.*.*"}


@pytest.mark.parametrize(
    ("account", "binding"),
    [("acc1", ""), ("acc1", "call.A.*,call.B.*"), ("acc1", "call.A.* call.B.*"), ("", "call.*.*")],
)
def test_subscribe_refuses_several_or_no_bindings(account: str, binding: str) -> None:
    with pytest.raises(ValueError):
        kazoo.subscribe("tok", account, binding, "r")


def test_ping_with_and_without_token() -> None:
    assert json.loads(kazoo.ping("r-3")) == {"action": "ping", "request_id": "r-3"}
    with_token = json.loads(kazoo.ping("r-4", auth_token="tok"))
    assert with_token["auth_token"] == "tok"


# -- events -------------------------------------------------------------------------------------


def test_parse_modern_event() -> None:
    event = kazoo.parse(frame(MODERN))
    assert isinstance(event, KazooEvent)
    assert (event.name, event.account_id, event.routing_key, event.call_id) == (
        "CHANNEL_ANSWER",
        "acc1",
        "call.CHANNEL_ANSWER.abc123",
        "abc123",
    )
    assert event.data["custom_channel_vars"]["owner_id"] == "user1"


def test_parse_legacy_event_normalises_keys_recursively() -> None:
    event = kazoo.parse(frame(LEGACY).encode())
    assert isinstance(event, KazooEvent)
    assert event.name == "CHANNEL_CREATE"
    assert event.routing_key is None
    assert event.account_id == "4b8c6fec4b2597882c0390202d195419"
    assert event.call_id == "at6dmu4ffk97vnlp6qfq"
    assert event.data["custom_channel_vars"] == {
        "account_id": "4b8c6fec4b2597882c0390202d195419",
        "owner_id": "699ed7e3d583e2577ac017c575f87262",
        "authorizing_type": "device",
    }
    assert event.data["custom_sip_headers"] == {"x_auth_ip": "192.168.25.203"}
    assert event.data["media_recordings"] == [{"media_name": "r1.mp3"}]


@pytest.mark.parametrize(
    ("data", "subscription_key", "expected"),
    [
        ({"account_id": "top"}, None, "top"),
        ({"custom_channel_vars": {"account_id": "ccv"}, "account_id": "top"}, None, "ccv"),
        ({}, "call.acc9.CHANNEL_CREATE.*", "acc9"),
        ({}, "call.*.CHANNEL_CREATE.*", None),
        ({}, "call", None),
        ({}, None, None),
    ],
)
def test_event_account_id_sources(
    data: dict[str, Any], subscription_key: str | None, expected: str | None
) -> None:
    message = {"action": "event", "name": "CHANNEL_CREATE", "data": {"call_id": "c1", **data}}
    if subscription_key:
        message["subscription_key"] = subscription_key
    event = kazoo.parse(frame(message))
    assert isinstance(event, KazooEvent)
    assert event.account_id == expected


def test_event_name_falls_back_on_event_name_and_is_upper_cased() -> None:
    message = {"action": "event", "data": {"call_id": "c1", "event_name": "channel_hold"}}
    event = kazoo.parse(frame(message))
    assert isinstance(event, KazooEvent) and event.name == "CHANNEL_HOLD"


def test_normalize_keys_leaves_values_alone() -> None:
    assert kazoo.normalize_keys({"A-B": [{"C-D": "X-Y"}, "E-F"], "g": 1}) == {
        "a_b": [{"c_d": "X-Y"}, "E-F"],
        "g": 1,
    }


# -- replies ------------------------------------------------------------------------------------


def test_parse_success_reply() -> None:
    text = frame(
        {
            "action": "reply",
            "request_id": "r-1",
            "status": "success",
            "data": {"subscribed": ["call.CHANNEL_CREATE.*"]},
        }
    )
    reply = kazoo.parse(text)
    assert isinstance(reply, KazooReply)
    assert reply.ok and reply.request_id == "r-1"
    assert reply.subscribed == ("call.CHANNEL_CREATE.*",)
    assert reply.errors == ()


@pytest.mark.parametrize(
    ("data", "errors"),
    [
        ({"errors": ["unauthorized account id"]}, ("unauthorized account id",)),
        ({"errors": "event X not supported"}, ("event X not supported",)),
        ({"message": "rate limiting threshold hit"}, ("rate limiting threshold hit",)),
        ({}, ()),
    ],
)
def test_parse_error_reply(data: dict[str, Any], errors: tuple[str, ...]) -> None:
    reply = kazoo.parse(
        frame({"action": "reply", "request_id": 7, "status": "error", "data": data})
    )
    assert isinstance(reply, KazooReply)
    assert not reply.ok
    assert reply.request_id == "7"
    assert reply.errors == errors
    assert reply.subscribed == ()


def test_reply_with_odd_data_keeps_it() -> None:
    reply = kazoo.parse(frame({"action": "reply", "status": "success", "data": "pong"}))
    assert isinstance(reply, KazooReply)
    assert reply.request_id is None and reply.data == {"value": "pong"}


# -- bad frames ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"action":"event",', "not valid JSON"),
        (b"\xff\xfe", "not valid JSON"),
        ("[1, 2]", "not an object"),
        ('"event"', "not an object"),
        ('{"action":"nudge"}', "unknown message"),
        ("{}", "unknown message"),
        ('{"action":"reply","data":{}}', "without a status"),
        ('{"action":"event","name":"CHANNEL_CREATE","data":[1]}', "without a data object"),
        ('{"action":"event","name":"CHANNEL_CREATE"}', "without a data object"),
        ('{"action":"event","data":{"call_id":"c1"}}', "without a name"),
        ('{"action":"event","name":"","data":{"call_id":"c1"}}', "without a name"),
        ('{"action":"event","name":"CHANNEL_CREATE","data":{}}', "without call_id"),
        ('{"name":"CHANNEL_CREATE","args":{"Call-ID":""}}', "without call_id"),
        ('{"name":"CHANNEL_CREATE","args":{"Call-ID":42}}', "without call_id"),
    ],
)
def test_bad_frames_are_field_errors(text: str | bytes, message: str) -> None:
    with pytest.raises(FieldError, match=message):
        kazoo.parse(text)


def test_frame_size_limit() -> None:
    big = frame({**MODERN, "data": {**MODERN["data"], "pad": "x" * 2000}})  # type: ignore[dict-item]
    assert isinstance(kazoo.parse(big, max_bytes=len(big)), KazooEvent)
    with pytest.raises(FieldError, match="exceeds"):
        kazoo.parse(big, max_bytes=len(big) - 1)
    with pytest.raises(FieldError, match="exceeds"):
        kazoo.parse(big.encode(), max_bytes=1000)
    assert kazoo.MAX_FRAME_BYTES == 1_048_576


def test_field_error_details_name_the_call() -> None:
    with pytest.raises(FieldError) as caught:
        kazoo.parse('{"action":"event","data":{"call_id":"c9"}}')
    assert caught.value.details["call_id"] == "c9"


# -- crossbar replies ---------------------------------------------------------------------------


def test_parse_channels() -> None:
    body = {
        "data": [{"uuid": "u1", "answered": True, "Custom-Channel-Vars": {"Owner-ID": "o"}}],
        "status": "success",
        "auth_token": "t",
    }
    assert kazoo.parse_channels(body) == [
        {"uuid": "u1", "answered": True, "custom_channel_vars": {"owner_id": "o"}}
    ]
    assert kazoo.parse_channels({"data": []}) == []


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ([], "not a JSON object"),
        ({"status": "error", "data": []}, "status"),
        ({"data": {}}, "not a list"),
        ({"data": ["u1"]}, "entry 0 is not an object"),
        ({"data": [{"uuid": "u1"}, {"answered": True}]}, "entry 1 has no uuid"),
    ],
)
def test_parse_channels_rejects_bad_shapes(body: Any, message: str) -> None:
    with pytest.raises(FieldError, match=message):
        kazoo.parse_channels(body)


def test_parse_auth() -> None:
    body = {"auth_token": "tok", "data": {"account_id": "acc1", "owner_id": "u1"}}
    auth = kazoo.parse_auth(body)
    assert (auth.auth_token, auth.account_id, auth.owner_id) == ("tok", "acc1", "u1")
    assert "tok" not in repr(auth)
    assert kazoo.parse_auth({"auth_token": "t", "data": {"account_id": "a"}}).owner_id is None


@pytest.mark.parametrize(
    "body",
    [None, {"data": {"account_id": "a"}}, {"auth_token": "t"}, {"auth_token": "t", "data": {}}],
)
def test_parse_auth_rejects_bad_shapes(body: Any) -> None:
    with pytest.raises(FieldError):
        kazoo.parse_auth(body)
