"""Recordings of legs that ended while we were away: asked for, attached as a late DESTROY,
or (where the PBX cannot say) logged. The Kazoo listing runs against the demo Kazoo server
in-process; the rest uses a scripted finder."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from ctibridge.callstate.events import ChannelEvent, LegEventKind, Recording
from ctibridge.callstate.model import Call, CallState, Direction, Leg
from ctibridge.callstate.normaliser import RESYNC_CAUSE
from ctibridge.config import KazooSettings
from ctibridge.demo.kazoo.server import KazooServer
from ctibridge.errors import PbxUnavailable
from ctibridge.recordings.files import FileFetcher
from ctibridge.recordings.kazoo import KazooFetcher
from ctibridge.services.recordings_away import AwayRecordings

TENANT = "acc1"
ENDED_AT = 1_790_000_100.0


def _call(*legs: tuple[str, str], pbx: str = "kazoo", refs: Sequence[str] = ()) -> Call:
    """An ended call whose legs ended with the given causes."""
    return Call(
        "call-1",
        TENANT,
        CallState.ENDED,
        Direction.INBOUND,
        pbx=pbx,
        started_at=ENDED_AT - 100,
        ended_at=ENDED_AT,
        recordings=tuple(Recording(ref) for ref in refs),
        legs=tuple(
            Leg(leg_id, "agent", None, False, ENDED_AT - 100, None, ENDED_AT, cause)
            for leg_id, cause in legs
        ),
    )


@dataclass
class Finder:
    """A fetcher that lists recordings per leg: one scripted answer per question."""

    answers: dict[str, list[list[Recording] | Exception]]
    asked: list[str] = field(default_factory=list)

    async def recordings_of(self, tenant_id: str, call_id: str) -> list[Recording]:
        assert tenant_id == TENANT
        self.asked.append(call_id)
        script = self.answers.get(call_id) or [[]]
        answer = script.pop(0) if len(script) > 1 else script[0]
        if isinstance(answer, Exception):
            raise answer
        return answer


class EventSink:
    def __init__(self) -> None:
        self.received: list[ChannelEvent] = []

    async def events(self, events: Sequence[ChannelEvent]) -> None:
        self.received.extend(events)


@dataclass
class Rig:
    finder: Finder
    sink: EventSink
    sleeps: list[float] = field(default_factory=list)
    queued: list[tuple[Call, list[Recording]]] = field(default_factory=list)

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)

    async def queue(self, call: Call, recordings: Sequence[Recording]) -> None:
        self.queued.append((call, list(recordings)))

    def away(
        self, *, with_sink: bool = True, fetchers: dict[str, object] | None = None
    ) -> AwayRecordings:
        return AwayRecordings(
            fetchers={"kazoo": self.finder} if fetchers is None else fetchers,
            sink=self.sink if with_sink else None,
            queue=self.queue,
            delays=(0.0, 10.0, 60.0),
            sleep=self.sleep,
        )


def _rig(**answers: list[list[Recording] | Exception]) -> Rig:
    return Rig(Finder(dict(answers)), EventSink())


async def test_a_recording_listed_late_is_attached_as_a_late_destroy_of_its_leg() -> None:
    rec = Recording("call_recording_leg-a.mp3", started_at=ENDED_AT - 90)
    rig = _rig(**{"leg-a": [[], [rec]]})
    call = _call(("leg-a", RESYNC_CAUSE), ("leg-b", "NORMAL_CLEARING"))
    assert await rig.away().find(call) == [rec]
    assert rig.finder.asked == ["leg-a", "leg-a"]  # only the leg that ended while away
    assert rig.sleeps == [0.0, 10.0]  # found at the second look: no third
    [event] = rig.sink.received
    assert (event.kind, event.leg_id, event.tenant_id, event.pbx) == (
        LegEventKind.DESTROYED, "leg-a", TENANT, "kazoo",
    )  # fmt: skip
    assert (event.at, event.hangup_cause, event.recordings) == (ENDED_AT, RESYNC_CAUSE, (rec,))
    assert event.event_id == "ctibridge-found-recordings:call_recording_leg-a.mp3"


async def test_known_recordings_are_not_attached_again_and_unrecorded_legs_asked_thrice() -> None:
    known = Recording("call_recording_leg-a.mp3")
    rig = _rig(**{"leg-a": [[known]], "leg-b": [[]]})
    call = _call(("leg-a", RESYNC_CAUSE), ("leg-b", RESYNC_CAUSE), refs=[known.ref])
    assert await rig.away().find(call) == []
    assert rig.sink.received == []
    assert rig.finder.asked == ["leg-a", "leg-b", "leg-b", "leg-b"]
    assert rig.sleeps == [0.0, 10.0, 60.0]


async def test_a_failed_listing_is_asked_again(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    rec = Recording("r.mp3")
    rig = _rig(**{"leg-a": [PbxUnavailable("kazoo: 503"), [rec]]})
    assert await rig.away().find(_call(("leg-a", RESYNC_CAUSE))) == [rec]
    assert any("leg-a" in m and "503" in m for m in caplog.messages)


async def test_without_a_sink_the_recordings_are_queued_for_fetching() -> None:
    rec = Recording("r.mp3")
    rig = _rig(**{"leg-a": [[rec]]})
    call = _call(("leg-a", RESYNC_CAUSE))
    assert await rig.away(with_sink=False).find(call) == [rec]
    assert rig.queued == [(call, [rec])]


async def test_calls_that_ended_while_we_watched_are_not_looked_at() -> None:
    rig = _rig()
    away = rig.away()
    away.call_ended(_call(("leg-a", "NORMAL_CLEARING")))
    assert await away.find(_call(("leg-a", "NORMAL_CLEARING"))) == []
    await away.stop()
    assert rig.finder.asked == []


async def test_a_pbx_that_cannot_list_recordings_is_logged_at_info(
    caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    caplog.set_level(logging.INFO)
    files = FileFetcher("asterisk", pbx_dir="/var/spool/asterisk/monitor", path=str(tmp_path))
    rig = _rig()
    away = rig.away(fetchers={"asterisk": files})
    call = _call(("1795267000.7", RESYNC_CAUSE), pbx="asterisk")
    assert await away.find(call) == []
    [line] = [r for r in caplog.records if r.name == "ctibridge.services.recordings_away"]
    assert line.levelno == logging.INFO
    assert "call-1 ended while ctibridge was away from asterisk" in line.getMessage()
    assert "1795267000.7" in line.getMessage()
    assert rig.sink.received == [] and rig.queued == [] and rig.sleeps == []


# -- KazooFetcher.recordings_of -----------------------------------------------------------------


@pytest.fixture
async def kazoo() -> AsyncIterator[tuple[KazooServer, KazooFetcher]]:
    server = KazooServer()
    server.add_account(TENANT, "key1")
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=server.app))
    fetcher = KazooFetcher(
        KazooSettings(api_url="http://kazoo.test:8000", api_key="key1"), http=http
    )
    yield server, fetcher
    await fetcher.close()
    await http.aclose()


async def test_kazoo_lists_a_legs_recordings_by_call_id(
    kazoo: tuple[KazooServer, KazooFetcher],
) -> None:
    server, fetcher = kazoo
    server.add_recording(TENANT, "202701-a", b"a", name="call_recording_leg-a.mp3", call_id="leg-a")
    server.add_recording(TENANT, "202701-b", b"b", name="call_recording_leg-b.mp3", call_id="leg-b")
    server.add_recording(TENANT, "202701-c", b"c", call_id="leg-a", content_type="audio/wav")
    found = await fetcher.recordings_of(TENANT, "leg-a")
    assert [r.ref for r in found] == ["call_recording_leg-a.mp3", "202701-c.wav"]
    started = [r.started_at for r in found]
    assert all(s is not None and abs(s - time.time()) < 60 for s in started)  # from greg
    assert await fetcher.recordings_of(TENANT, "leg-z") == []
    [asked, *_] = [r for r in server.requests() if r.path.endswith("/recordings")]
    assert asked.query == {"filter_call_id": "leg-a"} and asked.auth_token


async def test_kazoo_listing_ignores_documents_of_other_legs(
    kazoo: tuple[KazooServer, KazooFetcher],
) -> None:
    server, _ = kazoo
    server.add_recording(TENANT, "202701-b", b"b", call_id="leg-b")
    server.add_recording(TENANT, "202701-x", b"x")  # no call id at all
    original = server.app

    async def ignoring_the_filter(scope, receive, send):  # type: ignore[no-untyped-def]
        if scope["type"] == "http":
            scope = {**scope, "query_string": b""}
        await original(scope, receive, send)

    transport = httpx.ASGITransport(app=ignoring_the_filter)
    async with httpx.AsyncClient(transport=transport) as http:
        settings = KazooSettings(api_url="http://kazoo.test:8000", api_key="key1")
        fetcher = KazooFetcher(settings, http=http)
        assert await fetcher.recordings_of(TENANT, "leg-a") == []
