"""Fuzzing the AMI and ESL framers with hypothesis.

- Random bytes never raise anything but FrameError, and never hang (hypothesis' deadline).
- Random splits of the genuine captures give the same messages as one piece.
- Event bodies that do not decode are FieldErrors, never anything else.
- Generated messages survive serialize → parse.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ctibridge.errors import FieldError, FrameError
from ctibridge.protocols.ami import AmiMessage, AmiProtocol
from ctibridge.protocols.esl import EslEvent, EslMessage, EslProtocol

FIXTURES = Path(__file__).parents[1] / "fixtures"
AMI = {p.stem: p.read_bytes() for p in sorted((FIXTURES / "ami").glob("*.ami"))}
ESL = {p.stem: p.read_bytes() for p in sorted((FIXTURES / "esl").glob("*.esl"))}
BANNER = b"Asterisk Call Manager/11.0.0\r\n"

# Bytes that matter to the framers, over-represented so the fuzzer reaches deep states.
_TOKENS = [
    b"\r\n",
    b"\n",
    b":",
    b": ",
    b"\r\n\r\n",
    b"\n\n",
    b"Content-Length: ",
    b"Content-Length: 5\n\n",
    b"Content-Type: text/event-plain\n",
    b"Response: Follows\r\n",
    b"--END COMMAND--",
    b"Event: Hangup\r\n",
    b"99999999999999",
    b"\x00",
    b"\xff",
    b"[" * 3000,
    b'{"Event-Name": ',
]
chunks = st.lists(st.one_of(st.binary(max_size=40), st.sampled_from(_TOKENS)), max_size=40)
small = settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])


def feed_all(proto: AmiProtocol | EslProtocol, parts: list[bytes], eof: bool) -> None:
    try:
        for part in parts:
            proto.receive_data(part)
        if eof:
            proto.receive_eof()
    except FrameError:
        assert proto.failed is not None
        return


def cut(data: bytes, points: list[int]) -> list[bytes]:
    marks = sorted({p % (len(data) + 1) for p in points})
    return [data[a:b] for a, b in zip([0, *marks], [*marks, len(data)], strict=True)]


@small
@given(parts=chunks, eof=st.booleans(), banner=st.booleans())
def test_ami_random_bytes_only_ever_raise_frame_error(
    parts: list[bytes], eof: bool, banner: bool
) -> None:
    proto = AmiProtocol(max_line=256, max_headers=16, max_body=512)
    feed_all(proto, [BANNER, *parts] if banner else parts, eof)
    for message in proto.events_received():
        assert isinstance(message, AmiMessage)


@small
@given(parts=chunks, eof=st.booleans())
def test_esl_random_bytes_only_ever_raise_frame_error(parts: list[bytes], eof: bool) -> None:
    proto = EslProtocol(max_line=256, max_headers=16, max_body=512)
    feed_all(proto, parts, eof)
    for message in proto.events_received():
        assert isinstance(message, EslMessage)
        if message.is_event:
            with contextlib.suppress(FieldError):
                message.event()


@small
@given(data=st.one_of(st.binary(max_size=2000), chunks.map(b"".join)))
def test_event_bodies_only_ever_raise_field_error(data: bytes) -> None:
    for parse in (EslEvent.parse_plain, EslEvent.parse_json):
        try:
            event = parse(data)
        except FieldError:
            continue
        assert EslEvent.parse_json(event.serialize_json()).name == event.name


@settings(max_examples=25, deadline=None)
@given(name=st.sampled_from(sorted(AMI)), points=st.lists(st.integers(min_value=0), max_size=60))
def test_ami_captures_in_random_splits_give_the_same_messages(name: str, points: list[int]) -> None:
    assert parse_ami(cut(AMI[name], points)) == parse_ami([AMI[name]])


@settings(max_examples=25, deadline=None)
@given(name=st.sampled_from(sorted(ESL)), points=st.lists(st.integers(min_value=0), max_size=60))
def test_esl_captures_in_random_splits_give_the_same_messages(name: str, points: list[int]) -> None:
    assert parse_esl(cut(ESL[name], points)) == parse_esl([ESL[name]])


def parse_ami(parts: list[bytes]) -> list[AmiMessage]:
    proto = AmiProtocol()
    for part in parts:
        proto.receive_data(part)
    proto.receive_eof()
    return proto.events_received()


def parse_esl(parts: list[bytes]) -> list[EslMessage]:
    proto = EslProtocol()
    for part in parts:
        proto.receive_data(part)
    proto.receive_eof()
    return proto.events_received()


_key = st.text(
    alphabet=st.characters(min_codepoint=33, max_codepoint=126, exclude_characters=":"),
    min_size=1,
    max_size=12,
)
_value = st.text(
    alphabet=st.characters(exclude_categories=("Cs",), exclude_characters="\r\n"), max_size=30
).filter(lambda v: not v.startswith(" "))


@small
@given(headers=st.lists(st.tuples(_key, _value), min_size=1, max_size=10))
def test_generated_ami_messages_round_trip(headers: list[tuple[str, str]]) -> None:
    if headers[0] == ("Response", "Follows"):
        headers = headers[1:] or [("Event", "x")]
    message = AmiMessage.build(headers)
    [back] = parse_ami([BANNER, bytes(message)])
    assert back == message


@small
@given(
    headers=st.lists(st.tuples(_key, _value), max_size=10),
    body=st.text(alphabet=st.characters(exclude_categories=("Cs",)), max_size=40),
)
def test_generated_plain_events_round_trip(headers: list[tuple[str, str]], body: str) -> None:
    headers = [(k, v) for k, v in headers if k.lower() != "content-length"]
    event = EslEvent((("Event-Name", "CUSTOM"), *headers), body)
    back = EslEvent.parse_plain(event.serialize_plain())
    extra = (("Content-Length", str(len(body.encode()))),) if body else ()
    assert back == EslEvent((*event.headers, *extra), body)
    [frame] = parse_esl([bytes(EslMessage((("Content-Type", "text/event-plain"),), bytes(back)))])
    assert frame.event() == back
