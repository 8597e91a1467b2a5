"""AmiConnector against the fake Asterisk manager interface, over real TCP on 127.0.0.1."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

from ctibridge.callstate.asterisk import AsteriskMapper
from ctibridge.callstate.events import ChannelEvent, LegEventKind
from ctibridge.callstate.model import CallChanged, CallEventName
from ctibridge.callstate.normaliser import Normaliser
from ctibridge.config import load
from ctibridge.connectors.ami import EVENT_MASK, FILTERS, AmiConnector
from ctibridge.errors import ConfigError, PbxAuthError
from ctibridge.protocols.ami import AmiProtocol
from ctibridge.services.runtime import build_services
from tests.fakes.fake_ami import FakeAmi, capture_events, core_show_channel
from tests.integration.cancelling import assert_ends_whenever_cancelled
from tests.integration.slow_sink import SlowSink, assert_held_back

K = LegEventKind
FIXTURES = Path(__file__).parents[1] / "fixtures" / "ami"
CAPTURES = sorted(FIXTURES.glob("*.ami"))
T0 = 1_795_267_000.0
SENTINEL = "sentinel.1"


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
async def ami() -> AsyncIterator[FakeAmi]:
    async with FakeAmi() as server:
        yield server


@contextlib.asynccontextmanager
async def running(connector: AmiConnector) -> AsyncIterator[asyncio.Task[None]]:
    task = asyncio.create_task(connector.run())
    try:
        yield task
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


@contextlib.asynccontextmanager
async def connected(
    ami: FakeAmi, sink: RecordingSink | None = None, **overrides: Any
) -> AsyncIterator[tuple[AmiConnector, RecordingSink]]:
    sink = sink or RecordingSink()
    connector = AmiConnector(ami.settings(**overrides), sink=sink)
    async with running(connector):
        await until(lambda: connector.status()["connected"], "connection")
        yield connector, sink


def newchannel(uniqueid: str, channel: str, at: float, **fields: str) -> dict[str, str]:
    return {
        "Event": "Newchannel",
        "Privilege": "call,all",
        "Timestamp": f"{at:.6f}",
        "Channel": channel,
        "ChannelState": "4",
        "ChannelStateDesc": "Ring",
        "CallerIDNum": "15551234567",
        "CallerIDName": "Jane Customer",
        "ConnectedLineNum": "<unknown>",
        "ConnectedLineName": "<unknown>",
        "Language": "en",
        "AccountCode": "",
        "Context": "from-carrier",
        "Exten": "5550100",
        "Priority": "1",
        "Uniqueid": uniqueid,
        "Linkedid": uniqueid,
        **fields,
    }


def hangup(uniqueid: str, channel: str, at: float) -> dict[str, str]:
    event = newchannel(uniqueid, channel, at, Event="Hangup", Cause="16")
    return {**event, "Cause-txt": "Normal Clearing"}


def direct(capture: Path) -> list[ChannelEvent]:
    """The channel events of a capture fed straight to a mapper (no socket, no filter)."""
    proto = AmiProtocol()
    proto.receive_data(capture.read_bytes())
    proto.receive_eof()
    mapper = AsteriskMapper("asterisk")
    return [e for message in proto.events_received() for e in mapper.feed(message)]


# -- login, filters, resync ---------------------------------------------------------------------


async def test_md5_login_filters_and_resync_are_what_is_sent(ami: FakeAmi) -> None:
    async with connected(ami) as (connector, sink):
        status = connector.status()
    assert ami.actions() == ["Challenge", "Login", "Filter", "Filter", "CoreShowChannels"]
    challenge, login, *filters, _listing = ami.requests()
    assert challenge["AuthType"] == "MD5"
    assert login["AuthType"] == "MD5" and login["Username"] == ami.username
    assert "Secret" not in login and ami.secret not in str(ami.requests())
    assert len(login["Key"]) == 32
    assert login["Events"] == EVENT_MASK == "call,dialplan"
    assert [(f["Operation"], f["Filter"]) for f in filters] == [("Add", f) for f in FILTERS]
    assert len({r["ActionID"] for r in ami.requests()}) == 5
    assert sink.resyncs == [("asterisk", [], sink.resyncs[0][2])]
    assert status["connected"] and status["filtered"] and status["ami_version"] == "11.0.0"
    assert status["pbx"] == "asterisk" and status["reconnects"] == 0


async def test_plain_login(ami: FakeAmi) -> None:
    async with connected(ami, auth="plain") as (connector, _sink):
        assert connector.status()["connected"]
    login = ami.requests()[0]
    assert ami.actions()[:2] == ["Login", "Filter"]
    assert login["Secret"] == ami.secret and "Key" not in login
    assert login["Events"] == "call,dialplan"


@pytest.mark.parametrize("auth", ["md5", "plain"])
async def test_wrong_secret_is_fatal(ami: FakeAmi, auth: str) -> None:
    connector = AmiConnector(ami.settings(secret="wrong", auth=auth), sink=RecordingSink())
    with pytest.raises(PbxAuthError, match="login refused"):
        await asyncio.wait_for(connector.run(), 5)
    assert connector.status()["last_error"].startswith("PbxAuthError")
    assert ami.connections == 1  # no second attempt with refused credentials


async def test_refused_listing_permission_is_fatal(ami: FakeAmi) -> None:
    ami.set_response("CoreShowChannels", {"Response": "Error", "Message": "Permission denied"})
    connector = AmiConnector(ami.settings(), sink=RecordingSink())
    with pytest.raises(PbxAuthError, match="CoreShowChannels"):
        await asyncio.wait_for(connector.run(), 5)


# -- captures -----------------------------------------------------------------------------------


@pytest.mark.parametrize("capture", CAPTURES, ids=[c.stem for c in CAPTURES])
async def test_capture_through_the_connector_gives_the_mappers_events(
    ami: FakeAmi, capture: Path
) -> None:
    expected = direct(capture)
    async with connected(ami) as (connector, sink):
        sent = await ami.replay(capture)
        await ami.push_event(newchannel(SENTINEL, "PJSIP/carrier-ffffffff", T0))
        await until(lambda: SENTINEL in {e.leg_id for e in sink.received}, "the sentinel")
        status = connector.status()
    assert sink.received[:-1] == expected
    assert status["events_skipped"] == 0
    assert sent < len(capture_events(capture))  # the mask and filters keep the rest out
    assert status["events_received"] == sent + 2  # FullyBooted and the sentinel


async def test_filters_keep_all_but_the_events_we_read_on_the_server(ami: FakeAmi) -> None:
    total = sent = 0
    async with connected(ami):
        for capture in CAPTURES:
            total += len(capture_events(capture))
            sent += await ami.replay(capture)
    assert sent < total / 4, (sent, total)


async def test_only_our_variables_cross_the_wire_whatever_their_case(ami: FakeAmi) -> None:
    channel = "PJSIP/carrier-00000001"
    base = newchannel("1.1", channel, T0)
    varset = {**base, "Event": "VarSet", "Privilege": "dialplan,all"}
    async with connected(ami) as (connector, sink):
        await ami.push_event(base)
        await until(lambda: sink.legs() == [("1.1", K.CREATED)], "the new channel")
        before = connector.status()["events_received"]
        sent = [
            await ami.push_event({**varset, "Variable": "DIALSTATUS", "Value": "ANSWER"}),
            await ami.push_event(
                [*varset.items(), ("Variable", "X"), ("ChanVariable", "CTIBRIDGE_REQ=no")]
            ),
            await ami.push_event({**varset, "Variable": "__ctibridge_req", "Value": "req-9"}),
        ]
        await ami.push_event(hangup("1.1", channel, T0 + 5))
        await until(lambda: sink.legs()[-1:] == [("1.1", K.DESTROYED)], "the hang-up")
        received = connector.status()["events_received"] - before
    assert sent == [0, 0, 1]
    assert received == 2  # the third VarSet and the Hangup
    assert sink.received[-1].origin_tag == "req-9"


async def test_refused_filters_are_logged_and_the_events_still_right(
    ami: FakeAmi, caplog: pytest.LogCaptureFixture
) -> None:
    ami.set_response("Filter", {"Response": "Error", "Message": "Permission denied"})
    capture = FIXTURES / "recorded.ami"
    async with connected(ami) as (connector, sink):
        assert not connector.status()["filtered"]
        await ami.replay(capture)
        await ami.push_event(newchannel(SENTINEL, "PJSIP/carrier-ffffffff", T0))
        await until(lambda: SENTINEL in {e.leg_id for e in sink.received}, "the sentinel")
    assert sink.received[:-1] == direct(capture)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("refused the event filters" in w and "Permission denied" in w for w in warnings)


# -- resync -------------------------------------------------------------------------------------


async def test_events_during_the_resync_are_handed_on_after_it_in_order(ami: FakeAmi) -> None:
    listed = core_show_channel("1.1", "PJSIP/carrier-00000001", state="Ring", exten="5550100")
    ami.set_channels(
        [listed],
        during_listing=[
            newchannel("2.1", "PJSIP/carrier-00000002", T0 + 1),
            hangup("1.1", "PJSIP/carrier-00000001", T0 + 2),
        ],
    )
    async with connected(ami) as (_connector, sink):
        await until(lambda: len(sink.received) == 2, "the held-back events")
    (kind, live), *rest = sink.log
    assert kind == "resync" and [(e.leg_id, e.kind) for e in live] == [("1.1", K.SNAPSHOT)]
    assert [k for k, _ in rest] == ["events"] * len(rest)
    assert sink.legs() == [("2.1", K.CREATED), ("1.1", K.DESTROYED)]


async def test_a_cut_mid_call_then_resync_ends_that_call_and_picks_up_a_new_one(
    ami: FakeAmi, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="ctibridge.connectors")
    events = capture_events(FIXTURES / "inbound_answered.ami")
    answered = next(i for i, m in enumerate(events) if b"Event: BridgeEnter" in m)
    sink = NormalisingSink()
    async with connected(ami, sink) as (connector, _):
        await ami.push(b"".join(events[: answered + 2]))
        await until(lambda: any(c.name is CallEventName.ANSWERED for c in sink.changes), "answer")
        first = sink.changes[0].call.call_id

        ami.set_channels([core_show_channel("9.1", "PJSIP/carrier-00000009", state="Ring")])
        await ami.drop()  # the call ends while we are away; a new one starts
        await until(lambda: len(sink.resyncs) == 2, "the second resync")
        await until(lambda: connector.status()["connected"], "reconnection")
        await ami.push_event(hangup("9.1", "PJSIP/carrier-00000009", T0 + 60))
        await until(lambda: sink.legs()[-1] == ("9.1", K.DESTROYED), "the new call's end")
        assert connector.status()["reconnects"] == 1
    ended = [c.call.call_id for c in sink.changes if c.name is CallEventName.ENDED]
    created = [c.call.call_id for c in sink.changes if c.name is CallEventName.CREATED]
    assert ended[0] == first
    assert len(created) == 2 and created[1] != first and ended[1] == created[1]
    assert [e.leg_id for e in sink.resyncs[1][1]] == ["9.1"]
    infos = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO]
    assert any("reconnecting in" in m for m in infos)
    assert any("resync asterisk: 1 channel(s), 1 live leg(s)" in m for m in infos)


# -- broken streams -----------------------------------------------------------------------------

BROKEN = {
    "garbage": b"this is not an AMI message\r\n\r\n",
    "giant_header": b"Event: Newchannel\r\nChannel: " + b"x" * 20_000 + b"\r\n\r\n",
    "truncated": b"Event: Newchannel\r\nPrivilege: call,all\r\nChann",
}


@pytest.mark.parametrize("name", sorted(BROKEN))
async def test_a_broken_stream_is_logged_and_reconnected(
    ami: FakeAmi, name: str, caplog: pytest.LogCaptureFixture
) -> None:
    async with connected(ami) as (connector, sink):
        await ami.push(BROKEN[name])
        if name == "truncated":
            await ami.drop()
        await until(lambda: len(sink.resyncs) == 2, "resync after the reconnect")
        await until(lambda: connector.status()["connected"], "reconnection")
        await ami.push_event(newchannel("1.1", "PJSIP/carrier-00000001", T0))
        await until(lambda: sink.legs() == [("1.1", K.CREATED)], "an event on the new session")
        status = connector.status()
    assert ami.connections == 2 and status["reconnects"] == 1
    assert status["last_error"].startswith("FrameError")
    warnings = [
        r.getMessage()
        for r in caplog.records
        if r.levelno == logging.WARNING and r.name == "ctibridge.connectors.ami"
    ]
    assert len(warnings) == 1 and "broken AMI stream" in warnings[0]


async def test_something_else_than_asterisk_is_an_error_and_retried(
    ami: FakeAmi, caplog: pytest.LogCaptureFixture
) -> None:
    ami.set_banner(b"SSH-2.0-OpenSSH_9.6")
    connector = AmiConnector(ami.settings(), sink=RecordingSink())
    async with running(connector) as task:
        await until(lambda: ami.connections >= 3, "retries")
        assert not task.done() and not connector.status()["connected"]
        ami.set_banner(b"Asterisk Call Manager/9.0.0")
        await until(lambda: connector.status()["connected"], "connection to a real one")
        assert connector.status()["ami_version"] == "9.0.0"
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert any("not an Asterisk manager" in e and "SSH-2.0" in e for e in errors)
    assert ami.actions()[0] == "Challenge"  # nothing was sent to the impostor


async def test_a_bad_event_is_skipped_with_one_warning(
    ami: FakeAmi, caplog: pytest.LogCaptureFixture
) -> None:
    async with connected(ami) as (connector, sink):
        bad = newchannel("1.1", "PJSIP/carrier-00000001", T0, Timestamp="soon")
        await ami.push_event(bad)
        await ami.push_event(newchannel("2.1", "PJSIP/carrier-00000002", T0))
        await until(lambda: sink.legs() == [("2.1", K.CREATED)], "the good event")
        status = connector.status()
    assert status["events_skipped"] == 1 and status["reconnects"] == 0
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "skipped Newchannel" in warnings[0] and "uniqueid=1.1" in warnings[0]
    assert "Timestamp" in warnings[0]


# -- keep-alive and availability ----------------------------------------------------------------


async def test_pings_keep_the_session_and_silence_ends_it(ami: FakeAmi) -> None:
    async with connected(ami, ping_interval=0.02, request_timeout=0.3) as (connector, sink):
        await until(lambda: ami.actions().count("Ping") >= 3, "pings")
        assert connector.status()["reconnects"] == 0
        ami.set_response("Ping", None)
        await until(lambda: len(sink.resyncs) == 2, "a new session after an unanswered ping")
        assert "no reply" in connector.status()["last_error"]


async def test_pbx_down_is_retried_until_it_is_back(ami: FakeAmi) -> None:
    ami.available = False
    connector = AmiConnector(ami.settings(), sink=RecordingSink())
    async with running(connector):
        await until(lambda: ami.connections >= 3, "retries")
        assert not connector.status()["connected"]
        assert "closed by the server" in connector.status()["last_error"]
        ami.available = True
        await until(lambda: connector.status()["connected"], "connection")


async def test_nothing_listening_is_retried(ami: FakeAmi) -> None:
    settings = ami.settings(port=1)  # nothing listens on port 1 of 127.0.0.1
    connector = AmiConnector(settings, sink=RecordingSink())
    async with running(connector) as task:
        await until(lambda: connector.status()["reconnects"] >= 2, "retries")
        assert not task.done()
        assert "cannot connect" in connector.status()["last_error"]


# -- the composition root -----------------------------------------------------------------------


async def test_runtime_builds_the_connector_and_calls_come_out(
    ami: FakeAmi, tmp_path: Path
) -> None:
    settings = load(
        None,
        {},
        {
            "data_dir": str(tmp_path),
            "asterisk": {
                "enabled": True,
                "port": ami.port,
                "username": ami.username,
                "secret": ami.secret,
                "tenant_id": "pbx-7",
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
        await ami.replay(FIXTURES / "inbound_answered.ami")
        await until(lambda: any(c.name is CallEventName.ENDED for c in changes), "a call to end")
    finally:
        await services.stop()
    assert status["pbx"] == "asterisk"
    [ended] = [c.call for c in changes if c.name is CallEventName.ENDED]
    assert ended.tenant_id == "pbx-7" and ended.answered_at is not None


def test_settings_come_from_the_environment_and_are_checked() -> None:
    env = {
        "CTIBRIDGE_ASTERISK_ENABLED": "yes",
        "CTIBRIDGE_ASTERISK_HOST": "pbx.example.net",
        "CTIBRIDGE_ASTERISK_USERNAME": "cti",
        "CTIBRIDGE_ASTERISK_SECRET": "s",
        "CTIBRIDGE_ASTERISK_AUTH": "plain",
        "CTIBRIDGE_ASTERISK_TRUNK_PATTERN": "^PJSIP/carrier",
    }
    ami = load(None, env).asterisk
    assert (ami.enabled, ami.host, ami.port, ami.auth) == (True, "pbx.example.net", 5038, "plain")
    assert ami.trunk_pattern == "^PJSIP/carrier" and ami.tenant_id == "asterisk"
    assert load(None, {}).asterisk.auth == "md5"
    for bad, message in [
        ({"CTIBRIDGE_ASTERISK_AUTH": "sha1"}, "asterisk.auth"),
        ({"CTIBRIDGE_ASTERISK_SECRET": ""}, "asterisk.username and asterisk.secret"),
        ({"CTIBRIDGE_ASTERISK_AGENT_PATTERN": "PJSIP/(unclosed"}, "asterisk.agent_pattern"),
    ]:
        with pytest.raises(ConfigError, match=re.escape(message)):
            load(None, {**env, **bad})


# -- backpressure -------------------------------------------------------------------------------

BOUND = 20
"""The event queue's size in these tests (far fewer than the events sent)."""


def carrier_legs(count: int) -> list[tuple[str, dict[str, str]]]:
    """``count`` new inbound carrier channels: (Uniqueid, Newchannel event)."""
    return [
        (f"1795267000.{n}", newchannel(f"1795267000.{n}", f"PJSIP/carrier-{n:08x}", T0 + n))
        for n in range(count)
    ]


@contextlib.asynccontextmanager
async def held_back(
    ami: FakeAmi, count: int, **overrides: Any
) -> AsyncIterator[tuple[AmiConnector, SlowSink, list[str]]]:
    """A connector whose sink stalls until ``count`` events have filled its queue; the
    sink goes on (slowly) when the block ends."""
    sink = SlowSink()
    connector = AmiConnector(ami.settings(queue_size=BOUND, **overrides), sink=sink)
    sink.probe = lambda: connector.status()["events_queued"]
    legs = carrier_legs(count)
    async with running(connector):
        await until(lambda: connector.status()["connected"], "connection")
        sink.gate.clear()
        for _, event in legs:
            await ami.push_event(event)
        await until(lambda: connector.status()["events_queued"] == BOUND, "a full queue")
        try:
            yield connector, sink, [uniqueid for uniqueid, _ in legs]
        finally:
            sink.gate.set()


async def test_a_slow_sink_holds_the_socket_back_and_loses_nothing(ami: FakeAmi) -> None:
    async with held_back(ami, 15 * BOUND) as (connector, sink, legs):
        sink.gate.set()
        await until(lambda: len(sink.received) == len(legs), "every event")
        status = connector.status()
    assert_held_back(sink, legs, status, BOUND)


async def test_a_connection_closed_behind_a_full_queue_ends_the_session_after_its_events(
    ami: FakeAmi,
) -> None:
    async with held_back(ami, 5 * BOUND) as (connector, sink, legs):
        await ami.drop()  # the server hangs up while the reader waits for room
        sink.gate.set()
        await until(lambda: len(sink.resyncs) == 2, "a new session")
        await until(lambda: connector.status()["connected"], "reconnection")
        status = connector.status()
    assert sink.leg_ids() == legs  # all that was sent, then the end of the session
    assert status["reconnects"] == 1
    assert "closed by the server" in status["last_error"]


async def test_pings_unanswered_behind_a_full_queue_do_not_end_the_session(
    ami: FakeAmi,
) -> None:
    timings = {"ping_interval": 0.02, "request_timeout": 0.1}
    async with held_back(ami, 3 * BOUND, **timings) as (connector, sink, legs):
        held_at = ami.actions().count("Ping")
        await until(lambda: ami.actions().count("Ping") >= held_at + 3, "pings while held")
        sink.gate.set()
        await until(lambda: len(sink.received) == len(legs), "every event")
        status = connector.status()
    assert sink.leg_ids() == legs
    assert status["connected"] and status["reconnects"] == 0 and len(sink.resyncs) == 1


async def test_cancelled_at_any_moment_the_connector_ends(ami: FakeAmi) -> None:
    async def churn() -> None:
        for _, event in carrier_legs(3):
            await ami.push_event(event)
        await ami.drop()

    settings = ami.settings(ping_interval=0.003)
    await assert_ends_whenever_cancelled(
        lambda: AmiConnector(settings, sink=RecordingSink()).run(), churn
    )
