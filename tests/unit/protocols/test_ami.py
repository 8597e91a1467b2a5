"""AMI framing: genuine captures in any split, round-trips, limits, broken streams, actions."""

from __future__ import annotations

import random
from collections import Counter
from pathlib import Path

import pytest

from ctibridge.errors import ConfigError, FieldError, FrameError
from ctibridge.protocols.ami import AmiMessage, AmiProtocol, md5_key
from ctibridge.protocols.streams import StreamReader, chomp, limit_from_env

FIXTURES = Path(__file__).parents[2] / "fixtures" / "ami"
CAPTURES = sorted(FIXTURES.glob("*.ami"))
BANNER = b"Asterisk Call Manager/11.0.0\r\n"
PING = b"Response: Success\r\nActionID: p-1\r\nPing: Pong\r\nTimestamp: 1795267463.5\r\n\r\n"


def parse(chunks: list[bytes], **limits: int) -> list[AmiMessage]:
    proto = AmiProtocol(**limits)
    for chunk in chunks:
        proto.receive_data(chunk)
    proto.receive_eof()
    return proto.events_received()


def random_chunks(data: bytes, seed: int) -> list[bytes]:
    rng = random.Random(seed)
    cuts = sorted(rng.sample(range(1, len(data)), k=min(len(data) - 1, 300)))
    return [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)], strict=True)]


def test_there_are_ten_captures() -> None:
    assert [p.stem for p in CAPTURES] == [
        "blind_transfer",
        "click_to_dial",
        "inbound_answered",
        "inbound_missed",
        "internal",
        "outbound",
        "outbound_busy",
        "recorded",
        "registration",
        "ring_group",
    ]


@pytest.mark.parametrize("path", CAPTURES, ids=lambda p: p.stem)
def test_capture_parses_the_same_in_any_split(path: Path) -> None:
    data = path.read_bytes()
    whole = parse([data])
    assert parse(random_chunks(data, seed=len(data))) == whole
    assert parse([data[i : i + 1] for i in range(len(data))]) == whole


@pytest.mark.parametrize("path", CAPTURES, ids=lambda p: p.stem)
def test_capture_round_trips_byte_for_byte(path: Path) -> None:
    data = path.read_bytes()
    proto = AmiProtocol()
    proto.receive_data(data)
    messages = proto.events_received()
    assert proto.banner == "Asterisk Call Manager/11.0.0"
    assert proto.version == "11.0.0"
    assert BANNER + b"".join(bytes(m) for m in messages) == data
    assert [AmiMessage.parse(chomp(m.serialize()).split(b"\r\n")[:-1]) for m in messages] == (
        messages
    )


@pytest.mark.parametrize("path", CAPTURES, ids=lambda p: p.stem)
def test_capture_has_the_message_count_its_description_gives(path: Path) -> None:
    text = path.with_suffix(".txt").read_text()
    line = next(x for x in text.splitlines() if x.startswith("AMI messages:"))
    total, events = (int(n) for n in line.replace("(", " ").split() if n.isdigit())
    messages = parse([path.read_bytes()])
    assert len(messages) == total
    assert sum(m.is_event for m in messages) == events
    assert messages[0].is_response and messages[0].get("Message") == "Authentication accepted"
    assert messages[-1].name == "Goodbye"


def test_event_counts_of_inbound_answered_match_its_description() -> None:
    counts = Counter(m.name for m in parse([(FIXTURES / "inbound_answered.ami").read_bytes()]))
    assert counts["VarSet"] == 48
    assert counts["Newchannel"] == 2
    assert counts["Hangup"] == 2
    assert counts["BridgeEnter"] == 2
    assert counts["RTCPReceived"] == 2


def test_bare_lf_line_endings_are_tolerated() -> None:
    data = (FIXTURES / "internal.ami").read_bytes()
    assert parse([data.replace(b"\r\n", b"\n")]) == parse([data])


def test_message_accessors() -> None:
    proto = AmiProtocol()
    proto.receive_data(
        BANNER + b"Event: Newchannel\r\nPrivilege: call,all\r\nChanVariable: A=1\r\n"
        b"chanvariable: B=x=y\r\nChanVariable: junk\r\nUniqueid: 1.0\r\nAccountCode: \r\n"
        b"Raw:no-space\r\n\r\n"
    )
    [msg] = proto.events_received()
    assert msg.name == "Newchannel"
    assert msg.is_event and not msg.is_response
    assert msg.action_id is None
    assert msg.get("uniqueid") == "1.0" == msg.channel_id
    assert msg.get("AccountCode") == ""
    assert msg.get("Raw") == "no-space"
    assert msg.get("Missing", "d") == "d"
    assert msg.get_all("ChanVariable") == ["A=1", "B=x=y", "junk"]
    assert msg.variables() == {"A": "1", "B": "x=y"}


def test_response_and_action_names() -> None:
    [msg] = parse([BANNER + PING])
    assert msg.is_response and not msg.is_event
    assert msg.name == "Success"
    assert msg.action_id == "p-1"
    action = AmiMessage.build({"Action": "Ping"})
    assert action.name == "Ping" and not action.is_response


def test_blank_lines_between_messages_are_skipped() -> None:
    assert parse([BANNER + b"\r\n\r\n" + PING + b"\r\n" + PING]) == parse([BANNER + PING + PING])


def test_legacy_follows_output_is_kept_and_round_trips() -> None:
    follows = (
        b"Response: Follows\r\nPrivilege: Command\r\nActionID: c-1\r\n"
        b"Channel   Location\n\nPJSIP/1001-0001  s@internal:1\n--END COMMAND--\r\n\r\n"
    )
    proto = AmiProtocol()
    proto.receive_data(BANNER + follows + PING)
    follow, ping = proto.events_received()
    assert follow.name == "Follows" and follow.action_id == "c-1"
    assert follow.output == "Channel   Location\n\nPJSIP/1001-0001  s@internal:1\n"
    assert bytes(follow) == follows
    assert ping.name == "Success"
    assert parse([BANNER + follows]) == parse([BANNER[:5], BANNER[5:] + follows[:40], follows[40:]])


def test_follows_with_output_on_the_end_line_and_plain_follows() -> None:
    tail = b"Response: Follows\r\nPrivilege: Command\r\nNo such command--END COMMAND--\r\n\r\n"
    plain = b"Response: Follows\r\nActionID: 7\r\nMessage: ok\r\n\r\n"
    first, second = parse([BANNER + tail + plain])
    assert first.output == "No such command"
    assert second.output is None and second.get("Message") == "ok"


def test_follows_output_over_the_body_limit_is_a_frame_error() -> None:
    data = BANNER + b"Response: Follows\r\n" + b"x" * 60 + b"\r\n" * 40
    with pytest.raises(FrameError, match="output"):
        parse([data], max_body=100)


def test_follows_must_end_after_end_command() -> None:
    data = BANNER + b"Response: Follows\r\nout\r\n--END COMMAND--\r\nStray: 1\r\n\r\n"
    with pytest.raises(FrameError, match="END COMMAND"):
        parse([data])


@pytest.mark.parametrize(
    "banner",
    [b"SSH-2.0-OpenSSH_9.6\r\n", b"Asterisk Call Manager\r\n", b"\r\n", b"Response: Success\r\n"],
)
def test_a_wrong_banner_is_a_frame_error(banner: bytes) -> None:
    proto = AmiProtocol()
    with pytest.raises(FrameError, match="banner"):
        proto.receive_data(banner)


def test_a_line_without_a_colon_breaks_the_connection_for_good() -> None:
    proto = AmiProtocol()
    proto.receive_data(BANNER + PING)
    with pytest.raises(FrameError, match="without a key"):
        proto.receive_data(b"Event: Hangup\r\ngarbage here\r\n\r\n")
    assert proto.events_received() == parse([BANNER + PING])
    assert proto.failed is not None
    with pytest.raises(FrameError):
        proto.receive_data(PING)
    with pytest.raises(FrameError):
        proto.receive_eof()


@pytest.mark.parametrize("line", [b": no key\r\n", b"   : blank key\r\n"])
def test_an_empty_key_is_a_frame_error(line: bytes) -> None:
    with pytest.raises(FrameError):
        parse([BANNER + line + b"\r\n"])


def test_a_giant_line_is_a_frame_error_even_before_its_end_arrives() -> None:
    proto = AmiProtocol(max_line=64)
    proto.receive_data(BANNER)
    with pytest.raises(FrameError, match="longer than 64"):
        proto.receive_data(b"Event: " + b"x" * 100)
    proto = AmiProtocol(max_line=64)
    with pytest.raises(FrameError, match="longer than 64"):
        proto.receive_data(BANNER + b"Event: " + b"x" * 60 + b"\r\n\r\n")


def test_a_line_at_the_limit_is_fine() -> None:
    line = b"Event: " + b"x" * (64 - 9) + b"\r\n"
    assert len(line) == 64
    [msg] = parse([BANNER + line + b"\r\n"], max_line=64)
    assert msg.name == "x" * 55


def test_too_many_headers_is_a_frame_error() -> None:
    message = b"Event: X\r\n" + b"K: v\r\n" * 10 + b"\r\n"
    assert len(parse([BANNER + message], max_headers=11)) == 1
    with pytest.raises(FrameError, match="header lines"):
        parse([BANNER + message], max_headers=10)


def test_a_cut_message_is_a_frame_error_at_eof() -> None:
    proto = AmiProtocol()
    proto.receive_data(BANNER + PING + PING[:20])
    with pytest.raises(FrameError, match="middle of a message"):
        proto.receive_eof()
    assert len(proto.events_received()) == 1


def test_a_cut_banner_is_a_frame_error_at_eof() -> None:
    proto = AmiProtocol()
    proto.receive_data(BANNER[:10])
    with pytest.raises(FrameError):
        proto.receive_eof()


def test_a_message_without_its_blank_line_is_cut() -> None:
    proto = AmiProtocol()
    proto.receive_data(BANNER + PING[:-2])
    with pytest.raises(FrameError):
        proto.receive_eof()


def test_clean_eof_between_messages_and_nothing_after_it() -> None:
    proto = AmiProtocol()
    proto.receive_data(BANNER + PING)
    proto.receive_eof()
    assert len(proto.events_received()) == 1
    assert proto.failed is None
    with pytest.raises(FrameError, match="after the end"):
        proto.receive_data(PING)


def test_invalid_utf8_is_replaced_not_fatal() -> None:
    [msg] = parse([BANNER + b"Event: Newchannel\r\nCallerIDName: Jos\xe9\r\n\r\n"])
    assert msg.get("CallerIDName") == "Jos\ufffd"


# -- actions ----------------------------------------------------------------------------------


def test_send_action_queues_bytes_and_numbers_action_ids() -> None:
    proto = AmiProtocol(action_prefix="cti")
    first = proto.send_action("Ping")
    second = proto.send_action(
        "Originate",
        [("Channel", "PJSIP/1001"), ("Variable", "A=1"), ("Variable", "CTIBRIDGE_REQ=r1")],
    )
    mine = proto.send_action("Status", {"Channel": "PJSIP/1001-1"}, action_id="mine")
    assert (first, second, mine) == ("cti-1", "cti-2", "mine")
    assert proto.data_to_send() == [
        b"Action: Ping\r\nActionID: cti-1\r\n\r\n",
        b"Action: Originate\r\nActionID: cti-2\r\nChannel: PJSIP/1001\r\n"
        b"Variable: A=1\r\nVariable: CTIBRIDGE_REQ=r1\r\n\r\n",
        b"Action: Status\r\nActionID: mine\r\nChannel: PJSIP/1001-1\r\n\r\n",
    ]
    assert proto.data_to_send() == []
    assert proto.events_received() == []


@pytest.mark.parametrize(
    "headers",
    [
        {"Exten": "123\r\nAction: Hangup"},
        {"Exten": "123\nx"},
        {"Bad:Key": "1"},
        {"": "1"},
    ],
)
def test_header_injection_is_refused(headers: dict[str, str]) -> None:
    proto = AmiProtocol()
    with pytest.raises(FieldError):
        proto.send_action("Originate", headers)
    assert proto.data_to_send() == []


def test_plain_login_ping_and_logoff() -> None:
    proto = AmiProtocol()
    proto.login("amiapp", "s3cret", events="call,agent")
    proto.ping()
    proto.logoff()
    assert proto.data_to_send() == [
        b"Action: Login\r\nActionID: ctibridge-1\r\nUsername: amiapp\r\nSecret: s3cret\r\n"
        b"Events: call,agent\r\n\r\n",
        b"Action: Ping\r\nActionID: ctibridge-2\r\n\r\n",
        b"Action: Logoff\r\nActionID: ctibridge-3\r\n\r\n",
    ]


def test_md5_challenge_login() -> None:
    assert md5_key("1234567890", "mysecret") == "1586bde220dc4c3469015a2b66a06409"
    proto = AmiProtocol()
    proto.challenge()
    proto.login_md5("amiapp", "mysecret", "1234567890")
    assert proto.data_to_send() == [
        b"Action: Challenge\r\nActionID: ctibridge-1\r\nAuthType: MD5\r\n\r\n",
        b"Action: Login\r\nActionID: ctibridge-2\r\nAuthType: MD5\r\nUsername: amiapp\r\n"
        b"Key: 1586bde220dc4c3469015a2b66a06409\r\nEvents: on\r\n\r\n",
    ]


# -- the stream reader and its limits ---------------------------------------------------------


def test_stream_reader_read_exact_waits_for_bytes_and_fails_on_eof() -> None:
    reader = StreamReader()
    gen = reader.read_exact(4)
    next(gen)
    reader.feed_data(b"ab")
    next(gen)
    reader.feed_data(b"cdef")
    with pytest.raises(StopIteration) as stop:
        next(gen)
    assert stop.value.value == b"abcd"
    assert bytes(reader.buffer) == b"ef"
    gen = reader.read_exact(5)
    next(gen)
    reader.feed_eof()
    with pytest.raises(EOFError):
        next(gen)


def test_chomp() -> None:
    assert chomp(b"a\r\n") == b"a"
    assert chomp(b"a\n") == b"a"
    assert chomp(b"a") == b"a"
    assert chomp(b"a\r") == b"a\r"


def test_limits_come_from_the_environment() -> None:
    assert limit_from_env("MAX_LINE_BYTES", 8192, {}) == 8192
    assert limit_from_env("MAX_LINE_BYTES", 8192, {"CTIBRIDGE_MAX_LINE_BYTES": " 100 "}) == 100
    assert limit_from_env("MAX_LINE_BYTES", 8192, {"CTIBRIDGE_MAX_LINE_BYTES": ""}) == 8192
    for bad in ("0", "-5", "1e3", "lots", "١٢"):
        with pytest.raises(ConfigError, match="CTIBRIDGE_MAX_HEADERS"):
            limit_from_env("MAX_HEADERS", 10, {"CTIBRIDGE_MAX_HEADERS": bad})
