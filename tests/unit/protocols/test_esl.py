"""ESL framing: genuine captures in any split, round-trips, event bodies, limits, commands."""

from __future__ import annotations

import json
import random
from collections import Counter
from pathlib import Path

import pytest

from ctibridge.errors import FieldError, FrameError
from ctibridge.protocols.esl import EslEvent, EslMessage, EslProtocol, url_encode

FIXTURES = Path(__file__).parents[2] / "fixtures" / "esl"
CAPTURES = sorted(FIXTURES.glob("*.esl"))
AUTH = b"Content-Type: auth/request\n\n"
PLAIN = (
    b"Event-Name: HEARTBEAT\nCore-UUID: c1\nEvent-Info: System%20Ready\n"
    b"Event-Date-Timestamp: 1795268820080906\n\n"
)


def frame(body: bytes, content_type: bytes = b"text/event-plain") -> bytes:
    return b"Content-Length: %d\nContent-Type: %s\n\n" % (len(body), content_type) + body


def parse(chunks: list[bytes], **limits: int) -> list[EslMessage]:
    proto = EslProtocol(**limits)
    for chunk in chunks:
        proto.receive_data(chunk)
    proto.receive_eof()
    return proto.events_received()


def random_chunks(data: bytes, seed: int) -> list[bytes]:
    rng = random.Random(seed)
    cuts = sorted(rng.sample(range(1, len(data)), k=min(len(data) - 1, 500)))
    return [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)], strict=True)]


def grouped(event: EslEvent) -> tuple[dict[str, list[str]], str]:
    """Headers by name (JSON keeps the values of a repeated header together)."""
    out: dict[str, list[str]] = {}
    for key, value in event.headers:
        out.setdefault(key, []).append(value)
    return out, event.body


def test_there_are_eight_captures() -> None:
    assert len(CAPTURES) == 8


@pytest.mark.parametrize("path", CAPTURES, ids=lambda p: p.stem)
def test_capture_parses_the_same_in_any_split(path: Path) -> None:
    data = path.read_bytes()
    whole = parse([data])
    assert parse(random_chunks(data, seed=len(data))) == whole
    assert parse([data[i : i + 7] for i in range(0, len(data), 7)]) == whole


def test_a_capture_fed_byte_by_byte() -> None:
    data = (FIXTURES / "outbound_busy.esl").read_bytes()
    assert parse([data[i : i + 1] for i in range(len(data))]) == parse([data])


@pytest.mark.parametrize("path", CAPTURES, ids=lambda p: p.stem)
def test_capture_round_trips_byte_for_byte(path: Path) -> None:
    data = path.read_bytes()
    frames = parse([data])
    assert b"".join(bytes(f) for f in frames) == data
    for f in frames:
        if f.is_event:
            event = f.event()
            assert bytes(event) == f.body
            assert grouped(EslEvent.parse_json(event.serialize_json())) == grouped(event)


@pytest.mark.parametrize("path", CAPTURES, ids=lambda p: p.stem)
def test_capture_has_the_frame_count_its_description_gives(path: Path) -> None:
    text = path.with_suffix(".txt").read_text()
    line = next(x for x in text.splitlines() if x.startswith("ESL frames:"))
    total, events = (int(n) for n in line.replace("(", " ").split()[:5] if n.isdigit())
    frames = parse([path.read_bytes()])
    assert len(frames) == total
    assert sum(f.is_event for f in frames) == events
    assert frames[0].content_type == "auth/request"
    assert frames[1].reply_text == "+OK accepted" and frames[1].ok
    assert frames[-1].content_type == "text/disconnect-notice"
    assert frames[-1].text.startswith("Disconnected, goodbye.")
    assert frames[-2].reply_text == "+OK bye"


def test_event_counts_of_recorded_match_its_description() -> None:
    frames = parse([(FIXTURES / "recorded.esl").read_bytes()])
    counts = Counter(f.event().name for f in frames if f.is_event)
    assert counts["CHANNEL_STATE"] == 14
    assert counts["RECORD_START"] == 1
    assert counts["RECORD_STOP"] == 1
    assert counts["HEARTBEAT"] == 1
    assert counts["CHANNEL_HANGUP_COMPLETE"] == 2


def test_event_headers_are_url_decoded() -> None:
    frames = parse([(FIXTURES / "inbound_answered.esl").read_bytes()])
    create = next(f.event() for f in frames if f.is_event and f.event().name == "CHANNEL_CREATE")
    assert create.channel_id == "c915ea6b-5773-4aeb-9f87-77536195317a"
    assert create.get("Channel-Name") == "sofia/external/15551234567@127.0.0.1:5095"
    assert create.get("Event-Date-GMT") == "Sat, 21 Nov 2026 13:43:54 GMT"
    assert create.get("caller-caller-id-name") == "Jane Customer"
    assert create.subclass is None
    assert create.body == ""


def test_background_job_reply_and_nested_body() -> None:
    frames = parse([(FIXTURES / "click_to_dial.esl").read_bytes()])
    reply = frames[3]
    assert reply.content_type == "command/reply"
    assert reply.job_uuid == "8dd7d19b-4b74-4ffb-a7e8-35927d1a8fb9"
    assert reply.ok
    job = next(f.event() for f in frames if f.is_event and f.event().name == "BACKGROUND_JOB")
    assert job.get("Job-UUID") == reply.job_uuid
    assert job.get("Job-Command") == "originate"
    assert job.body == "+OK 910c08e9-91a8-4b63-9ce0-f36081df1dab\n"
    assert job.get_all("Content-Length") == ["41"]


def test_event_name_is_peeked_without_decoding() -> None:
    assert EslMessage(((("Content-Type", "text/event-plain"),)), PLAIN).event_name == "HEARTBEAT"
    odd = b"Event-Name: CUSTOM%3A%3Ax"
    assert EslMessage((("Content-Type", "text/event-plain"),), odd).event_name == "CUSTOM::x"
    second = b"Event-Subclass: sofia%3A%3Aregister\nEvent-Name: CUSTOM\n\n"
    assert EslMessage((("Content-Type", "text/event-plain"),), second).event_name == "CUSTOM"
    late = b"Core-UUID: c1\n" * 50 + b"Event-Name: HEARTBEAT\n\n"
    assert EslMessage((("Content-Type", "text/event-plain"),), late).event_name is None
    assert EslMessage((("Content-Type", "text/event-json"),), b"{}").event_name is None
    assert EslMessage((("Content-Type", "text/event-plain"),), b"Event-Name: \n").event_name is None


def test_custom_event_subclass() -> None:
    frames = parse([(FIXTURES / "internal.esl").read_bytes()])
    custom = [f.event() for f in frames if f.is_event and f.event().name == "CUSTOM"]
    assert [e.subclass for e in custom] == ["sofia::pre_register", "sofia::register_attempt"]


def test_api_response_rude_rejection_and_error_reply() -> None:
    data = (
        frame(b"+OK\n", b"api/response")
        + frame(b"-ERR no such channel\n", b"api/response")
        + b"Content-Type: command/reply\nReply-Text: -ERR invalid\n\n"
        + frame(b"Access Denied, go away.\n", b"text/rude-rejection")
    )
    ok, err, reply, rude = parse([data])
    assert ok.ok and ok.text == "+OK\n"
    assert not err.ok
    assert not reply.ok and reply.reply_text == "-ERR invalid"
    assert rude.content_type == "text/rude-rejection" and not rude.is_event
    assert rude.text == "Access Denied, go away.\n"
    with pytest.raises(FieldError, match="carries no event"):
        rude.event()


def test_json_events() -> None:
    body = json.dumps(
        {
            "Event-Name": "BACKGROUND_JOB",
            "Job-UUID": "j1",
            "Event-Sequence": 12,
            "variable_list": ["a", "b", "c"],
            "Nothing": None,
            "_body": "+OK done\n",
        }
    ).encode()
    [msg] = parse([frame(body, b"text/event-json")])
    assert msg.is_event
    event = msg.event()
    assert event.name == "BACKGROUND_JOB"
    assert event.get("Event-Sequence") == "12"
    assert event.get_all("variable_list") == ["a", "b", "c"]
    assert event.get("Nothing") == ""
    assert event.body == "+OK done\n"
    assert EslEvent.parse_json(event.serialize_json()) == event
    assert EslEvent.parse_plain(event.serialize_plain()) == EslEvent(
        (*event.headers, ("Content-Length", "9")), event.body
    )


@pytest.mark.parametrize("body", [b"not json", b"[1, 2]", b'{"a": ', b"[" * 100_000])
def test_bad_json_event_is_a_field_error(body: bytes) -> None:
    [msg] = parse([frame(body, b"text/event-json")])
    with pytest.raises(FieldError):
        msg.event()


def test_bad_plain_event_bodies_are_field_errors_not_frame_errors() -> None:
    no_colon = frame(b"Event-Name: X\nno colon here\n\n")
    short = frame(b"Event-Name: BACKGROUND_JOB\nContent-Length: 99\n\n+OK\n")
    bad_length = frame(b"Event-Name: BACKGROUND_JOB\nContent-Length: lots\n\n+OK\n")
    frames = parse([no_colon + short + bad_length])
    assert len(frames) == 3
    for f in frames:
        with pytest.raises(FieldError):
            f.event()


def test_plain_event_round_trip_with_odd_values() -> None:
    event = EslEvent(
        (("Event-Name", "CUSTOM"), ("Text", "50% off: a+b=c & ü\nnext"), ("Empty", "")),
        "body",
    )
    assert EslEvent.parse_plain(event.serialize_plain()) == EslEvent(
        (*event.headers, ("Content-Length", "4")), "body"
    )


def test_url_encode_matches_freeswitch() -> None:
    assert (
        url_encode("Sat, 21 Nov 2026 13:47:00 GMT") == "Sat,%2021%20Nov%202026%2013%3A47%3A00%20GMT"
    )
    assert url_encode("{a=1,b='x y'}user/1001@h") == "%7Ba%3D1,b%3D'x%20y'%7Duser/1001%40h"
    assert url_encode("fd00::2") == "fd00%3A%3A2"
    assert url_encode("é") == "%C3%A9"


def test_crlf_header_blocks_are_tolerated() -> None:
    [msg] = parse([b"Content-Type: command/reply\r\nReply-Text: +OK accepted\r\n\r\n"])
    assert msg.reply_text == "+OK accepted"


def test_frame_serialize_recomputes_content_length() -> None:
    assert bytes(EslMessage((("Content-Type", "api/response"),), b"+OK\n")) == (
        b"Content-Length: 4\nContent-Type: api/response\n\n+OK\n"
    )
    assert bytes(EslMessage((("Content-Length", "1"), ("Content-Type", "x")), b"ab")) == (
        b"Content-Length: 2\nContent-Type: x\n\nab"
    )


# -- broken streams ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "header",
    [b"Content-Length: abc", b"Content-Length: -5", b"Content-Length: 1e3", b"Content-Length: "],
)
def test_non_numeric_content_length_is_a_frame_error(header: bytes) -> None:
    proto = EslProtocol()
    with pytest.raises(FrameError, match="not a number"):
        proto.receive_data(header + b"\nContent-Type: api/response\n\n")
    with pytest.raises(FrameError):
        proto.receive_data(AUTH)


def test_oversized_content_length_is_a_frame_error_before_reading_it() -> None:
    proto = EslProtocol(max_body=1000)
    with pytest.raises(FrameError, match="over 1000"):
        proto.receive_data(b"Content-Length: 1001\nContent-Type: api/response\n\n")
    assert len(parse([frame(b"x" * 1000, b"api/response")], max_body=1000)[0].body) == 1000
    with pytest.raises(FrameError, match="not a number"):
        parse([b"Content-Length: 99999999999999999999\n\n"])


def test_header_line_without_colon_is_a_frame_error() -> None:
    proto = EslProtocol()
    proto.receive_data(AUTH)
    with pytest.raises(FrameError, match="without a key"):
        proto.receive_data(b"Content-Type command/reply\n\n")
    assert [m.content_type for m in proto.events_received()] == ["auth/request"]
    assert proto.failed is not None


def test_giant_header_line_and_too_many_headers() -> None:
    proto = EslProtocol(max_line=100)
    with pytest.raises(FrameError, match="longer than 100"):
        proto.receive_data(b"Content-Type: " + b"x" * 200)
    with pytest.raises(FrameError, match="header lines"):
        parse([b"A: 1\n" * 5 + b"\n"], max_headers=4)


def test_a_cut_body_is_a_frame_error_at_eof() -> None:
    data = frame(PLAIN)
    proto = EslProtocol()
    proto.receive_data(AUTH + data[:-10])
    assert [m.content_type for m in proto.events_received()] == ["auth/request"]
    with pytest.raises(FrameError, match="middle of a message"):
        proto.receive_eof()


def test_blank_lines_between_frames_are_skipped() -> None:
    assert parse([b"\n\n" + AUTH + b"\n" + AUTH]) == parse([AUTH + AUTH])


def test_clean_eof_and_data_after_it() -> None:
    proto = EslProtocol()
    proto.receive_data(AUTH)
    proto.receive_eof()
    assert len(proto.events_received()) == 1
    with pytest.raises(FrameError):
        proto.receive_data(AUTH)


# -- commands ---------------------------------------------------------------------------------


def test_commands_are_queued_as_bytes() -> None:
    proto = EslProtocol()
    proto.auth("ClueCon")
    proto.subscribe(["CHANNEL_CREATE", "CHANNEL_ANSWER", "CUSTOM", "sofia::transferor"])
    proto.subscribe(fmt="json")
    proto.filter("Event-Name", "CHANNEL_ANSWER")
    proto.filter_delete("Event-Name", "CHANNEL_ANSWER")
    proto.filter_delete("Unique-ID")
    proto.api("show", "channels as json")
    proto.api("status")
    job = proto.bgapi("originate", "{ctibridge_req=r1}user/1001 915559876543 XML default", "j-1")
    proto.exit()
    assert job == "j-1"
    assert proto.data_to_send() == [
        b"auth ClueCon\n\n",
        b"event plain CHANNEL_CREATE CHANNEL_ANSWER CUSTOM sofia::transferor\n\n",
        b"event json ALL\n\n",
        b"filter Event-Name CHANNEL_ANSWER\n\n",
        b"filter delete Event-Name CHANNEL_ANSWER\n\n",
        b"filter delete Unique-ID\n\n",
        b"api show channels as json\n\n",
        b"api status\n\n",
        b"bgapi originate {ctibridge_req=r1}user/1001 915559876543 XML default\nJob-UUID: j-1\n\n",
        b"exit\n\n",
    ]
    assert proto.data_to_send() == []


def test_bgapi_makes_a_job_uuid_when_none_is_given() -> None:
    proto = EslProtocol()
    first, second = proto.bgapi("status"), proto.bgapi("status")
    assert first != second and len(first) == 36
    assert proto.data_to_send()[0] == f"bgapi status\nJob-UUID: {first}\n\n".encode()


@pytest.mark.parametrize("password", ["x\n\napi hupall", "x\r", ""])
def test_command_injection_is_refused(password: str) -> None:
    proto = EslProtocol()
    with pytest.raises(FieldError):
        proto.auth(password) if password else proto.send_command("   ")
    assert proto.data_to_send() == []


def test_unknown_event_format_is_refused() -> None:
    with pytest.raises(FieldError, match="format"):
        EslProtocol().subscribe(fmt="xml")
