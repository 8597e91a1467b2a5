"""EslConnector against the fake FreeSWITCH event socket, over real TCP on 127.0.0.1."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

from ctibridge.callstate.events import ChannelEvent, LegEventKind, Party
from ctibridge.callstate.freeswitch import EVENT_NAMES, FreeswitchMapper
from ctibridge.callstate.model import CallChanged, CallEventName
from ctibridge.callstate.normaliser import Normaliser
from ctibridge.config import load
from ctibridge.connectors.esl import SUBSCRIPTION, EslConnector
from ctibridge.errors import ConfigError, PbxAuthError
from ctibridge.protocols.esl import EslProtocol
from ctibridge.services.runtime import build_services
from tests.fakes.fake_esl import FakeEsl, capture_events, event_frame, frame
from tests.integration.cancelling import assert_ends_whenever_cancelled
from tests.integration.slow_sink import SlowSink, assert_held_back

K = LegEventKind
FIXTURES = Path(__file__).parents[1] / "fixtures" / "esl"
CAPTURES = sorted(FIXTURES.glob("*.esl"))
T0_US = 1_795_268_000_000_000
SENTINEL = "eeeeeeee-0000-0000-0000-00000000000e"


class RecordingSink:
    """Keeps what the connector hands on, in one ordered log."""

    def __init__(self) -> None:
        self.received: list[ChannelEvent] = []
        self.resyncs: list[tuple[str, list[ChannelEvent], float]] = []
        self.log: list[tuple[str, list[ChannelEvent]]] = []

    async def events(self, events: Sequence[ChannelEvent]) -> None:
        self.received.extend(events)
        self.log.append(("events", list(events)))

    async def resync(self, tenant_id: str, live: Sequence[ChannelEvent], at: float) -> None:
        self.resyncs.append((tenant_id, list(live), at))
        self.log.append(("resync", list(live)))

    def legs(self) -> list[tuple[str, LegEventKind]]:
        return [(e.leg_id, e.kind) for e in self.received]


class NormalisingSink(RecordingSink):
    """Folds what it gets into calls, as the calls service does."""

    def __init__(self) -> None:
        super().__init__()
        self.normaliser = Normaliser()
        self.changes: list[CallChanged] = []

    async def events(self, events: Sequence[ChannelEvent]) -> None:
        await super().events(events)
        for event in events:
            self.changes.extend(self.normaliser.apply(event))

    async def resync(self, tenant_id: str, live: Sequence[ChannelEvent], at: float) -> None:
        await super().resync(tenant_id, live, at)
        self.changes.extend(self.normaliser.reconcile(tenant_id, live, at))


async def until(predicate: Callable[[], object], what: str, within: float = 5.0) -> None:
    """Bounded poll."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.005)


@pytest.fixture
async def fs() -> AsyncIterator[FakeEsl]:
    async with FakeEsl() as server:
        yield server


@contextlib.asynccontextmanager
async def running(connector: EslConnector) -> AsyncIterator[asyncio.Task[None]]:
    task = asyncio.create_task(connector.run())
    try:
        yield task
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


@contextlib.asynccontextmanager
async def connected(
    fs: FakeEsl, sink: RecordingSink | None = None, **overrides: Any
) -> AsyncIterator[tuple[EslConnector, RecordingSink]]:
    sink = sink or RecordingSink()
    connector = EslConnector(fs.settings(**overrides), sink=sink)
    async with running(connector):
        await until(lambda: connector.status()["connected"], "connection")
        yield connector, sink


def channel_event(name: str, uuid: str, at_us: int, **fields: str) -> dict[str, str]:
    """A plain channel event of an inbound carrier leg (override any header)."""
    headers = {
        "Event-Name": name,
        "Core-UUID": "6401b1e9-7178-4a62-9518-18b32f4d62b1",
        "FreeSWITCH-Switchname": "fs1",
        "Event-Date-Timestamp": str(at_us),
        "Event-Sequence": str(at_us % 100_000),
        "Channel-Name": "sofia/external/15551234567@192.0.2.9:5060",
        "Unique-ID": uuid,
        "Call-Direction": "inbound",
        "Channel-Call-UUID": uuid,
        "Caller-Caller-ID-Number": "15551234567",
        "Caller-Caller-ID-Name": "Jane Customer",
        "Caller-Destination-Number": "5550100",
    }
    headers.update({k.replace("_", "-"): v for k, v in fields.items()})
    return headers


def row(uuid: str, **fields: str) -> dict[str, str]:
    """One row of ``show channels as json`` for an inbound carrier leg."""
    return {
        "uuid": uuid,
        "direction": "inbound",
        "name": "sofia/external/15551234567@192.0.2.9:5060",
        "cid_num": "15551234567",
        "cid_name": "Jane Customer",
        "dest": "5550100",
        "callstate": "RINGING",
        "call_uuid": uuid,
        "hostname": "fs1",
        **fields,
    }


def direct(capture: Path) -> list[ChannelEvent]:
    """The channel events of a capture fed straight to a mapper (every event frame)."""
    proto = EslProtocol()
    proto.receive_data(capture.read_bytes())
    proto.receive_eof()
    mapper = FreeswitchMapper("freeswitch")
    frames = [f for f in proto.events_received() if f.is_event]
    return [e for f in frames for e in mapper.feed(f.event())]


# -- login, subscription, resync ----------------------------------------------------------------


async def test_auth_subscription_and_resync_are_what_is_sent(fs: FakeEsl) -> None:
    async with connected(fs) as (connector, sink):
        status = connector.status()
    assert fs.requests() == [
        f"auth {fs.password}",
        "event plain " + " ".join(sorted(EVENT_NAMES)),
        "api show channels as json",
    ]
    assert set(SUBSCRIPTION) == EVENT_NAMES and "HEARTBEAT" not in SUBSCRIPTION
    assert sink.resyncs == [("freeswitch", [], sink.resyncs[0][2])]
    assert status["connected"] and status["pbx"] == "freeswitch" and status["reconnects"] == 0


async def test_wrong_password_is_fatal(fs: FakeEsl) -> None:
    connector = EslConnector(fs.settings(password="wrong"), sink=RecordingSink())
    with pytest.raises(PbxAuthError, match="password refused: -ERR invalid"):
        await asyncio.wait_for(connector.run(), 5)
    assert connector.status()["last_error"].startswith("PbxAuthError")
    assert fs.connections == 1


async def test_an_acl_rejection_is_fatal(fs: FakeEsl) -> None:
    fs.set_greeting(frame("text/rude-rejection", b"Access Denied, go away.\n"))
    connector = EslConnector(fs.settings(), sink=RecordingSink())
    with pytest.raises(PbxAuthError, match="Access Denied"):
        await asyncio.wait_for(connector.run(), 5)
    assert fs.requests() == []


# -- captures -----------------------------------------------------------------------------------


@pytest.mark.parametrize("capture", CAPTURES, ids=[c.stem for c in CAPTURES])
async def test_capture_through_the_connector_gives_the_mappers_events(
    fs: FakeEsl, capture: Path
) -> None:
    expected = direct(capture)
    async with connected(fs) as (connector, sink):
        sent = await fs.replay(capture)
        await fs.push_event(channel_event("CHANNEL_CREATE", SENTINEL, T0_US))
        await until(lambda: SENTINEL in {e.leg_id for e in sink.received}, "the sentinel")
        status = connector.status()
    assert sink.received[:-1] == expected and expected
    assert status["events_skipped"] == 0
    assert sent < len(capture_events(capture))  # the subscription keeps the rest out
    assert status["events_received"] == sent + 1


async def test_unsubscribed_frames_are_dropped_before_decoding(fs: FakeEsl) -> None:
    async with connected(fs) as (connector, sink):
        heartbeat = event_frame({"Event-Name": "HEARTBEAT", "Event-Info": "System Ready"})
        undecodable = frame("text/event-plain", b"Event-Name: CHANNEL_STATE\nbroken line\n\n")
        log = frame("log/data", b"some log line\n", Log_Level="7")
        await fs.push(heartbeat + undecodable + log)
        await fs.push_event(channel_event("CHANNEL_CREATE", SENTINEL, T0_US))
        await until(lambda: sink.legs() == [(SENTINEL, K.CREATED)], "the sentinel")
        status = connector.status()
    assert status["events_received"] == 3 and status["events_skipped"] == 0


async def test_a_bad_event_is_skipped_with_one_warning(
    fs: FakeEsl, caplog: pytest.LogCaptureFixture
) -> None:
    async with connected(fs) as (connector, sink):
        late = channel_event("CHANNEL_CREATE", "bad-1", T0_US, Event_Date_Timestamp="soon")
        await fs.push_event(late)
        broken = frame("text/event-plain", b"Event-Name: CHANNEL_ANSWER\nno colon here\n\n")
        await fs.push(broken)
        await fs.push_event(channel_event("CHANNEL_CREATE", SENTINEL, T0_US))
        await until(lambda: sink.legs() == [(SENTINEL, K.CREATED)], "the good event")
        status = connector.status()
    assert status["events_skipped"] == 2 and status["reconnects"] == 0
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 2
    assert "skipped CHANNEL_CREATE" in warnings[0] and "unique_id=bad-1" in warnings[0]
    assert "Event-Date-Timestamp" in warnings[0]
    assert "skipped CHANNEL_ANSWER" in warnings[1] and "without a key" in warnings[1]


# -- resync -------------------------------------------------------------------------------------


async def test_events_during_the_resync_are_handed_on_after_it_in_order(fs: FakeEsl) -> None:
    fs.set_channels(
        [row("live-1")],
        during_listing=[
            channel_event("CHANNEL_CREATE", "new-2", T0_US + 1),
            channel_event("CHANNEL_HANGUP_COMPLETE", "live-1", T0_US + 2),
        ],
    )
    async with connected(fs) as (_connector, sink):
        await until(lambda: len(sink.received) == 2, "the held-back events")
    (kind, live), *rest = sink.log
    assert kind == "resync"
    assert [(e.leg_id, e.kind, e.party) for e in live] == [("live-1", K.SNAPSHOT, Party.TRUNK)]
    assert [k for k, _ in rest] == ["events"] * len(rest)
    assert sink.legs() == [("new-2", K.CREATED), ("live-1", K.DESTROYED)]


async def test_a_cut_mid_call_then_resync_ends_that_call_and_picks_up_a_new_one(
    fs: FakeEsl, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="ctibridge.connectors")
    frames = capture_events(FIXTURES / "inbound_answered.esl")
    bridged = next(i for i, f in enumerate(frames) if b"Event-Name: CHANNEL_BRIDGE\n" in f)
    sink = NormalisingSink()
    async with connected(fs, sink) as (connector, _):
        await fs.push(b"".join(frames[: bridged + 1]))
        await until(lambda: any(c.name is CallEventName.ANSWERED for c in sink.changes), "answer")
        first = sink.changes[0].call.call_id

        fs.set_channels([row("call-2")])
        await fs.drop()  # call-1 ends while we are away; call-2 starts ringing
        await until(lambda: len(sink.resyncs) == 2, "the second resync")
        await until(lambda: connector.status()["connected"], "reconnection")
        await fs.push_event(channel_event("CHANNEL_HANGUP_COMPLETE", "call-2", T0_US + 9**9))
        await until(lambda: sink.legs()[-1] == ("call-2", K.DESTROYED), "the new call's end")
        assert connector.status()["reconnects"] == 1
    ended = [c.call.call_id for c in sink.changes if c.name is CallEventName.ENDED]
    created = [c.call.call_id for c in sink.changes if c.name is CallEventName.CREATED]
    assert ended[0] == first
    assert len(created) == 2 and created[1] != first and ended[1] == created[1]
    assert [e.leg_id for e in sink.resyncs[1][1]] == ["call-2"]
    infos = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO]
    assert any("reconnecting in" in m for m in infos)
    assert any("resync freeswitch: 1 live leg(s)" in m for m in infos)


async def test_a_failed_listing_is_retried(fs: FakeEsl) -> None:
    fs.set_response("api show channels", frame("api/response", b"-ERR no database\n"))
    connector = EslConnector(fs.settings(), sink=RecordingSink())
    async with running(connector) as task:
        await until(lambda: fs.connections >= 3, "retries")
        assert not task.done() and "show channels failed" in connector.status()["last_error"]
        fs.reset()
        await until(lambda: connector.status()["connected"], "connection")


# -- broken streams -----------------------------------------------------------------------------

BROKEN = {
    "garbage": b"this is not ESL\n\n",
    "giant_header": b"Content-Type: text/event-plain\nX-Pad: " + b"x" * 20_000 + b"\n\n",
    "bad_length": b"Content-Type: text/event-plain\nContent-Length: lots\n\n",
    "truncated": b"Content-Length: 500\nContent-Type: text/event-plain\n\nEvent-Name: CHANNEL_",
}


@pytest.mark.parametrize("name", sorted(BROKEN))
async def test_a_broken_stream_is_logged_and_reconnected(
    fs: FakeEsl, name: str, caplog: pytest.LogCaptureFixture
) -> None:
    async with connected(fs) as (connector, sink):
        await fs.push(BROKEN[name])
        if name == "truncated":
            await fs.drop()
        await until(lambda: len(sink.resyncs) == 2, "resync after the reconnect")
        await until(lambda: connector.status()["connected"], "reconnection")
        await fs.push_event(channel_event("CHANNEL_CREATE", SENTINEL, T0_US))
        await until(lambda: sink.legs() == [(SENTINEL, K.CREATED)], "an event on the new session")
        status = connector.status()
    assert fs.connections == 2 and status["reconnects"] == 1
    assert status["last_error"].startswith("FrameError")
    warnings = [
        r.getMessage()
        for r in caplog.records
        if r.levelno == logging.WARNING and r.name == "ctibridge.connectors.esl"
    ]
    assert len(warnings) == 1 and "broken ESL stream" in warnings[0]


@pytest.mark.parametrize(
    ("greeting", "error"),
    [
        (b"Asterisk Call Manager/11.0.0\r\n", "no auth/request"),
        (b"HTTP/1.1 400 Bad Request\r\n\r\n", "header line without a key"),
        (b"Content-Type: text/html\n\n", "is not an event socket"),
    ],
    ids=["ami_banner", "http", "wrong_type"],
)
async def test_something_else_than_an_event_socket_is_retried(
    fs: FakeEsl, greeting: bytes, error: str
) -> None:
    fs.set_greeting(greeting)
    connector = EslConnector(fs.settings(request_timeout=0.2), sink=RecordingSink())
    async with running(connector) as task:
        await until(lambda: fs.connections >= 3, "retries")
        assert not task.done() and not connector.status()["connected"]
        assert error in connector.status()["last_error"]
        assert fs.requests() == []  # not even the password was sent to the impostor
        fs.set_greeting(frame("auth/request"))
        await until(lambda: connector.status()["connected"], "connection to a real one")


async def test_a_disconnect_notice_ends_the_session(fs: FakeEsl) -> None:
    async with connected(fs) as (connector, sink):
        await fs.push(frame("text/disconnect-notice", b"Disconnected, goodbye.\n"))
        await until(lambda: len(sink.resyncs) == 2, "a new session")
    assert "disconnected: Disconnected, goodbye." in connector.status()["last_error"]


# -- keep-alive and availability ----------------------------------------------------------------


async def test_pings_keep_the_session_and_silence_ends_it(fs: FakeEsl) -> None:
    async with connected(fs, ping_interval=0.02, request_timeout=0.3) as (connector, sink):
        await until(lambda: fs.requests().count("api status") >= 3, "pings")
        assert connector.status()["reconnects"] == 0
        fs.set_response("api status", None)
        await until(lambda: len(sink.resyncs) == 2, "a new session after an unanswered ping")
        assert "no reply" in connector.status()["last_error"]


async def test_pbx_down_is_retried_until_it_is_back(fs: FakeEsl) -> None:
    fs.available = False
    connector = EslConnector(fs.settings(), sink=RecordingSink())
    async with running(connector):
        await until(lambda: fs.connections >= 3, "retries")
        assert not connector.status()["connected"]
        assert "closed by the server" in connector.status()["last_error"]
        fs.available = True
        await until(lambda: connector.status()["connected"], "connection")


# -- the composition root -----------------------------------------------------------------------


async def test_runtime_builds_the_connector_and_calls_come_out(fs: FakeEsl, tmp_path: Path) -> None:
    settings = load(
        None,
        {},
        {
            "data_dir": str(tmp_path),
            "freeswitch": {
                "enabled": True,
                "port": fs.port,
                "password": fs.password,
                "tenant_id": "fs-3",
            },
        },
    )
    services = await build_services(settings)
    changes: list[CallChanged] = []
    services.calls.listen(lambda change, _stored: changes.append(change))
    await services.start()
    try:
        [status] = services.status()["connectors"]  # type: ignore[misc]
        await until(lambda: services.status()["connectors"][0]["connected"], "connection")  # type: ignore[index]
        await fs.replay(FIXTURES / "inbound_answered.esl")
        await until(lambda: any(c.name is CallEventName.ENDED for c in changes), "a call to end")
    finally:
        await services.stop()
    assert status["pbx"] == "freeswitch"
    [ended] = [c.call for c in changes if c.name is CallEventName.ENDED]
    assert ended.tenant_id == "fs-3" and ended.answered_at is not None


def test_settings_come_from_the_environment_and_are_checked() -> None:
    env = {
        "CTIBRIDGE_FREESWITCH_ENABLED": "true",
        "CTIBRIDGE_FREESWITCH_PASSWORD": "pw",
        "CTIBRIDGE_FREESWITCH_AGENT_PROFILES": "internal, agents",
    }
    fs = load(None, env).freeswitch
    assert (fs.enabled, fs.port, fs.tenant_id) == (True, 8021, "freeswitch")
    assert fs.agent_profiles == ("internal", "agents") and fs.trunk_profiles == ("external",)
    with pytest.raises(ConfigError, match=r"freeswitch\.password"):
        load(None, {**env, "CTIBRIDGE_FREESWITCH_PASSWORD": ""})


# -- backpressure -------------------------------------------------------------------------------

BOUND = 20
"""The event queue's size in these tests (far fewer than the events sent)."""


async def test_a_slow_sink_holds_the_socket_back_and_loses_nothing(fs: FakeEsl) -> None:
    sink = SlowSink()
    connector = EslConnector(fs.settings(queue_size=BOUND), sink=sink)
    sink.probe = lambda: connector.status()["events_queued"]
    legs = [f"cccccccc-0000-0000-0000-{n:012}" for n in range(15 * BOUND)]
    async with running(connector):
        await until(lambda: connector.status()["connected"], "connection")
        sink.gate.clear()  # the sink stalls until the queue is full
        for n, uuid in enumerate(legs):
            await fs.push_event(channel_event("CHANNEL_CREATE", uuid, T0_US + n))
        await until(lambda: connector.status()["events_queued"] == BOUND, "a full queue")
        sink.gate.set()
        await until(lambda: len(sink.received) == len(legs), "every event")
        status = connector.status()
    assert_held_back(sink, legs, status, BOUND)


async def test_events_read_with_a_disconnect_notice_are_handed_on_first(fs: FakeEsl) -> None:
    async with connected(fs) as (connector, sink):
        first = channel_event("CHANNEL_CREATE", "call-a", T0_US)
        second = channel_event("CHANNEL_CREATE", "call-b", T0_US + 1)
        notice = frame("text/disconnect-notice", b"Disconnected, goodbye.\n")
        await fs.push(event_frame(first) + event_frame(second) + notice)
        await until(lambda: len(sink.resyncs) == 2, "a new session after the notice")
    assert sink.legs() == [("call-a", K.CREATED), ("call-b", K.CREATED)]
    assert "disconnected: Disconnected, goodbye." in connector.status()["last_error"]


async def test_cancelled_at_any_moment_the_connector_ends(fs: FakeEsl) -> None:
    async def churn() -> None:
        for n in range(3):
            await fs.push_event(channel_event("CHANNEL_CREATE", f"churn-{n}", T0_US + n))
        await fs.drop()

    settings = fs.settings(ping_interval=0.003)
    await assert_ends_whenever_cancelled(
        lambda: EslConnector(settings, sink=RecordingSink()).run(), churn
    )
