"""A restart folds the saved events of the calls in progress back into the call state
(``Storage.open_call_events`` then ``CallsService.restore``), storing and publishing nothing."""

from __future__ import annotations

import logging

import pytest

from ctibridge.bus.memory import MemoryBus
from ctibridge.callstate.events import LegEventKind, Party
from ctibridge.callstate.model import CallChanged, CallEventName, CallState
from ctibridge.services.calls import CallsService
from ctibridge.services.directory import AgentDirectory
from ctibridge.services.writer import CallWriter
from ctibridge.storage import SqlStorage
from tests.unit.storage.builders import T1, make_event


def _service(storage: SqlStorage, bus: MemoryBus) -> tuple[CallsService, CallWriter]:
    writer = CallWriter(storage, flush_interval=0.001)
    calls = CallsService(storage=storage, bus=bus, directory=AgentDirectory(), writer=writer)
    return calls, writer


_LIVE = [
    make_event("a1", 100.0, group_key="g-live", originator=True, caller_number="+15550001"),
    make_event("a2", 101.0, group_key="g-live", party=Party.AGENT),
    make_event("a2", 105.0, kind=LegEventKind.ANSWERED, group_key="g-live"),
]
_DONE = [
    make_event("b1", 102.0, group_key="g-done", originator=True),
    make_event("b1", 103.0, kind=LegEventKind.DESTROYED, group_key="g-done"),
]


async def _first_run(storage: SqlStorage) -> CallsService:
    """Calls come in, one ends; the run stops (its writes flushed)."""
    calls, writer = _service(storage, MemoryBus())
    writer.start()
    await calls.events([*_LIVE[:2], *_DONE, _LIVE[2]])
    await writer.stop()
    return calls


async def test_restore_rebuilds_the_calls_in_progress_without_publishing(
    storage: SqlStorage,
) -> None:
    before = await _first_run(storage)
    [live] = before.active(T1)
    assert live.call.state is CallState.ANSWERED

    events = await storage.open_call_events(0.0)
    assert [(e.leg_id, e.kind) for e in events] == [(e.leg_id, e.kind) for e in _LIVE]

    bus = MemoryBus()
    published = bus.subscribe("*")
    calls, writer = _service(storage, bus)
    seen: list[CallChanged] = []
    calls.listen(lambda change, stored: seen.append(change))
    assert calls.restore(events) == 1
    assert calls.active(T1) == before.active(T1)
    assert calls.tenants() == [T1]
    assert (published.pending(), writer.pending, seen) == (0, 0, [])

    # The first resync ends the call the phone system no longer lists: published, queued.
    await calls.resync(T1, [], at=200.0)
    assert calls.active(T1) == []
    assert [(c.name, c.call.call_id) for c in seen] == [(CallEventName.ENDED, live.call_id)]
    assert writer.pending == 1
    assert published.pending() == 1


async def test_calls_in_progress_older_than_the_window_are_left_and_logged(
    storage: SqlStorage, caplog: pytest.LogCaptureFixture
) -> None:
    before = await _first_run(storage)
    [live] = before.active(T1)
    with caplog.at_level(logging.WARNING, logger="ctibridge.storage.sql"):
        assert await storage.open_call_events(2e10) == []
    assert [r.levelno for r in caplog.records] == [logging.WARNING]
    assert live.call.call_id in caplog.records[0].getMessage()
