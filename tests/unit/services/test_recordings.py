"""Recordings: the store, the fetchers, the rows and the fetch worker, the access rule and
the Range parsing. SQLite (and PostgreSQL) for the rows; no network: the Kazoo fetcher talks
to the demo Kazoo server in-process, the HTTP file fetcher to an httpx MockTransport."""

from __future__ import annotations

import asyncio
import hashlib
import os
import secrets
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from ctibridge.callstate.events import Recording
from ctibridge.callstate.model import Call, CallChanged, CallEventName, CallState, Direction
from ctibridge.config import KazooSettings, RecordingsSettings, load
from ctibridge.demo.kazoo.server import KazooServer
from ctibridge.errors import (
    ConfigError,
    Forbidden,
    NoSuchCall,
    PbxAuthError,
    PbxUnavailable,
    StorageError,
)
from ctibridge.recordings.base import (
    Download,
    RecordingMissing,
    RecordingRejected,
    RecordingRow,
    RecordingState,
    content_type_for,
    recording_id_for,
)
from ctibridge.recordings.files import FileFetcher
from ctibridge.recordings.index import RecordingIndex
from ctibridge.recordings.kazoo import KazooFetcher
from ctibridge.recordings.local import LocalStore
from ctibridge.services.agents import Principal
from ctibridge.services.recordings import (
    RecordingsService,
    build_recordings,
    card_recordings,
    recording_url,
)
from ctibridge.storage import SqlStorage
from ctibridge.storage.base import Agent, StoredCall
from ctibridge.types import AgentId, CallId, TenantId
from ctibridge.web.routes.recordings import ByteRange, RangeNotSatisfiable, parse_range
from tests.unit.storage.conftest import PG_URL, _pg

TENANT = TenantId("acc1")
AUDIO = secrets.token_bytes(150_000)  # a few store chunks


# -- helpers ------------------------------------------------------------------------------------


class Clock:
    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@dataclass
class FakeFetcher:
    """Serves ``files[ref]``; ``failures`` raise first, one per open."""

    files: dict[str, bytes] = field(default_factory=dict)
    failures: list[Exception] = field(default_factory=list)
    opened: list[str] = field(default_factory=list)
    content_type: str = "audio/mpeg"
    declared: int | None = None
    closed: bool = False

    @asynccontextmanager
    async def open(self, row: RecordingRow) -> AsyncIterator[Download]:
        self.opened.append(row.ref)
        if self.failures:
            raise self.failures.pop(0)
        data = self.files[row.ref]
        yield Download(self.content_type, _chunked(data), self.declared)

    async def close(self) -> None:
        self.closed = True


async def _chunked(data: bytes, size: int = 40_000) -> AsyncIterator[bytes]:
    for i in range(0, len(data), size):
        yield data[i : i + size]


@dataclass
class Calls:
    """CallLookup over a dict."""

    calls: dict[str, StoredCall] = field(default_factory=dict)

    async def get(self, tenant_id: TenantId, call_id: CallId) -> StoredCall:
        stored = self.calls.get(call_id)
        if stored is None or stored.call.tenant_id != tenant_id:
            raise NoSuchCall(f"no call {call_id}")
        return stored


def _call(call_id: str = "c1", refs: Sequence[str] = ("r1.mp3",), pbx: str = "kazoo") -> Call:
    return Call(
        call_id,
        TENANT,
        CallState.ENDED,
        Direction.INBOUND,
        pbx=pbx,
        recordings=tuple(Recording(ref) for ref in refs),
    )


@asynccontextmanager
async def _storage(backend: str, tmp_path: Path) -> AsyncIterator[SqlStorage]:
    if backend == "sqlite":
        store = SqlStorage(f"sqlite+aiosqlite:///{tmp_path / 'db' / 'ctibridge.db'}")
        schema = None
    else:
        schema = f"t_{secrets.token_hex(8)}"
        await _pg(f'CREATE SCHEMA "{schema}"')
        store = SqlStorage(PG_URL, connect_args={"server_settings": {"search_path": schema}})
    await store.start()
    try:
        yield store
    finally:
        await store.close()
        if schema is not None:
            await _pg(f'DROP SCHEMA "{schema}" CASCADE')


@pytest.fixture
async def storage(tmp_path: Path) -> AsyncIterator[SqlStorage]:
    async with _storage("sqlite", tmp_path) as store:
        yield store


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def any_storage(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[SqlStorage]:
    """The recordings table's queries on both databases."""
    async with _storage(request.param, tmp_path) as store:
        yield store


@dataclass
class Rig:
    service: RecordingsService
    fetcher: FakeFetcher
    calls: Calls
    clock: Clock
    store: LocalStore


def _rig(storage: SqlStorage, tmp_path: Path, **settings: Any) -> Rig:
    fetcher, calls, clock = FakeFetcher(), Calls(), Clock()
    store = LocalStore(tmp_path / "recordings")
    service = RecordingsService(
        index=RecordingIndex(storage),
        store=store,
        fetchers={"kazoo": fetcher},
        calls=calls,
        settings=RecordingsSettings(**{"retry_initial": 2.0, "retry_max": 60.0, **settings}),
        clock=clock,
    )
    return Rig(service, fetcher, calls, clock, store)


@pytest.fixture
def rig(storage: SqlStorage, tmp_path: Path) -> Rig:
    return _rig(storage, tmp_path)


def _files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file()]


async def until(check: Callable[[], Any], within: float = 5.0) -> Any:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not (value := check()):
        assert loop.time() < deadline, "timed out"
        await asyncio.sleep(0.01)
    return value


# -- ids, types, URLs ---------------------------------------------------------------------------


def test_recording_ids_are_stable_per_tenant_and_ref() -> None:
    first = recording_id_for("acc1", "call_recording_x.mp3")
    assert first == recording_id_for("acc1", "call_recording_x.mp3")
    assert len(first) == 32 and int(first, 16) >= 0
    assert first != recording_id_for("acc2", "call_recording_x.mp3")
    assert recording_url("acc1", "call_recording_x.mp3") == f"/api/recordings/{first}"


def test_content_types_from_the_header_else_the_extension() -> None:
    assert content_type_for("a.mp3") == "audio/mpeg"
    assert content_type_for("/x/b.WAV") == "audio/wav"
    assert content_type_for("b.wav", "audio/x-wav; charset=binary") == "audio/wav"
    assert content_type_for("b.mp3", "audio/mp3") == "audio/mpeg"
    assert content_type_for("b.wav", "text/html") == "audio/wav"
    assert content_type_for("noext") == "application/octet-stream"


def test_card_recordings_link_to_us_only_where_we_fetch(rig: Rig) -> None:
    call = _call(refs=("r1.mp3", "r2.mp3"))
    assert card_recordings(call) == [
        {"ref": "r1.mp3", "url": recording_url(TENANT, "r1.mp3")},
        {"ref": "r2.mp3", "url": recording_url(TENANT, "r2.mp3")},
    ]
    pending = [{**link, "state": "pending"} for link in card_recordings(call)]
    assert rig.service.card_extra(StoredCall(call)) == {"recordings": pending}
    assert rig.service.card_extra(StoredCall(_call(pbx="asterisk"))) == {}
    assert rig.service.card_extra(StoredCall(_call(refs=()))) == {}


async def test_card_links_say_whether_the_recording_can_be_played(
    any_storage: SqlStorage, tmp_path: Path
) -> None:
    rig = _rig(any_storage, tmp_path)
    rig.fetcher.files["r2.mp3"] = AUDIO
    rig.fetcher.failures = [RecordingRejected("too big")]  # the first fetched: r1
    call = _call(refs=("r1.mp3", "r2.mp3", "r3.mp3"))
    await rig.service.queue(call, call.recordings[:2])  # r3 never queued
    await rig.service.run_once()  # r1 fails for good, r2 is stored

    def states(card: dict[str, Any]) -> dict[str, str]:
        return {link["ref"]: link["state"] for link in card["recordings"]}

    pushed = rig.service.card_extra(StoredCall(call))  # from memory
    assert states(pushed) == {"r1.mp3": "failed", "r2.mp3": "stored", "r3.mp3": "pending"}
    fresh = _rig(any_storage, tmp_path)  # another process: from the database
    for ended_ago, rowless in ((10.0, "pending"), (3600.0, "failed")):
        card = {"tenant_id": TENANT, "ended_at": fresh.clock.now - ended_ago}
        card |= fresh.service.card_extra(StoredCall(call))
        assert states(card) == dict.fromkeys(("r1.mp3", "r2.mp3", "r3.mp3"), "pending")
        await fresh.service.add_states([card, {"tenant_id": TENANT, "recordings": []}])
        assert states(card) == {"r1.mp3": "failed", "r2.mp3": "stored", "r3.mp3": rowless}


# -- Range ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, None),
        ("bytes=0-9", ByteRange(0, 9)),
        ("bytes=10-", ByteRange(10, 99)),
        ("bytes=-10", ByteRange(90, 99)),
        ("bytes=-500", ByteRange(0, 99)),
        ("bytes=90-500", ByteRange(90, 99)),
        ("BYTES = 5 - 5", ByteRange(5, 5)),
        ("bytes=9-3", None),
        ("bytes=0-1,5-6", None),
        ("items=0-1", None),
        ("bytes=-", None),
        ("bytes=abc", None),
    ],
)
def test_parse_range(header: str | None, expected: ByteRange | None) -> None:
    assert parse_range(header, 100) == expected


@pytest.mark.parametrize("header", ["bytes=100-", "bytes=100-200", "bytes=-0"])
def test_parse_range_past_the_end_is_not_satisfiable(header: str) -> None:
    with pytest.raises(RangeNotSatisfiable):
        parse_range(header, 100)


# -- the local store ----------------------------------------------------------------------------


async def test_local_store_writes_atomically_and_reads_ranges(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    obj = await store.put("acc1/2027/01/abc.mp3", _chunked(AUDIO))
    assert (obj.size, obj.sha256) == (len(AUDIO), hashlib.sha256(AUDIO).hexdigest())
    assert (tmp_path / "acc1/2027/01/abc.mp3").read_bytes() == AUDIO
    assert await store.size("acc1/2027/01/abc.mp3") == len(AUDIO)
    got = b"".join([c async for c in store.read("acc1/2027/01/abc.mp3", 70_000, 70_001)])
    assert got == AUDIO[70_000:140_001]
    tail = b"".join([c async for c in store.read("acc1/2027/01/abc.mp3", 149_990, 100)])
    assert tail == AUDIO[149_990:]
    await store.delete("acc1/2027/01/abc.mp3")
    assert await store.size("acc1/2027/01/abc.mp3") is None


async def test_a_download_abandoned_midway_leaves_no_file_open(tmp_path: Path) -> None:
    """A client that goes away mid-download leaves the response's generator unfinished
    (nobody closes it); no file of the store may stay open meanwhile."""
    store = LocalStore(tmp_path)
    await store.put("acc1/2027/01/abc.mp3", _chunked(AUDIO))
    path = str(tmp_path / "acc1/2027/01/abc.mp3")

    def open_here() -> int:
        fds = Path("/proc/self/fd")
        return sum(1 for fd in fds.iterdir() if _target(fd) == path)

    chunks = store.read("acc1/2027/01/abc.mp3", 0, len(AUDIO))
    first = await anext(chunks)
    assert first == AUDIO[: len(first)] and len(first) < len(AUDIO)  # more chunks to come
    assert open_here() == 0


def _target(fd: Path) -> str | None:
    try:
        return os.readlink(fd)
    except OSError:
        return None


async def test_local_store_leaves_nothing_when_the_source_fails(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)

    async def broken() -> AsyncIterator[bytes]:
        yield b"half a recording"
        raise PbxUnavailable("connection lost")

    with pytest.raises(PbxUnavailable):
        await store.put("t/k.mp3", broken())
    assert _files(tmp_path) == []


@pytest.mark.parametrize("key", ["../x.mp3", "/etc/passwd", "a//b", "a/./b", ".hidden", ""])
async def test_local_store_refuses_keys_that_leave_its_directory(tmp_path: Path, key: str) -> None:
    with pytest.raises(RecordingRejected):
        await LocalStore(tmp_path).put(key, _chunked(b"x"))


# -- fetching: rows and the worker ---------------------------------------------------------------


async def test_an_ended_call_is_fetched_stored_and_indexed(
    any_storage: SqlStorage, tmp_path: Path
) -> None:
    rig = _rig(any_storage, tmp_path)
    rig.fetcher.files["r1.mp3"] = AUDIO
    (row,) = await rig.service.call_ended(_call())
    assert row.state is RecordingState.PENDING
    assert await rig.service.run_once() == 1
    stored = await rig.service.get(row.recording_id)
    assert stored.state is RecordingState.STORED
    assert (stored.size, stored.sha256) == (len(AUDIO), hashlib.sha256(AUDIO).hexdigest())
    assert stored.content_type == "audio/mpeg" and stored.attempts == 1
    assert stored.stored_path == f"acc1/2027/01/{row.recording_id}.mp3"
    assert (tmp_path / "recordings" / stored.stored_path).read_bytes() == AUDIO
    assert stored.stored_at == rig.clock.now and stored.last_error is None
    assert await rig.service.run_once() == 0
    assert rig.fetcher.opened == ["r1.mp3"]
    assert await rig.service.for_call(TENANT, CallId("c1")) == [stored]
    assert await rig.service.index.counts() == {"stored": 1}


async def test_a_recording_reported_again_keeps_its_state_and_follows_the_merge(
    any_storage: SqlStorage, tmp_path: Path
) -> None:
    rig = _rig(any_storage, tmp_path)
    rig.fetcher.files["r1.mp3"] = AUDIO
    (row,) = await rig.service.call_ended(_call("consult"))
    await rig.service.run_once()
    await rig.service.call_ended(_call("main"))  # the consultation call merged into "main"
    again = await rig.service.get(row.recording_id)
    assert again.state is RecordingState.STORED and again.call_id == "main"
    assert await rig.service.run_once() == 0
    assert rig.fetcher.opened == ["r1.mp3"]


async def test_a_merge_during_a_fetch_is_not_undone_by_the_fetch(rig: Rig) -> None:
    rig.fetcher.files["r1.mp3"] = AUDIO
    (row,) = await rig.service.call_ended(_call("consult"))
    (due,) = await rig.service.index.due(rig.clock.now, 10)
    await rig.service.call_ended(_call("main"))  # merged while the fetch below runs
    done = await rig.service.fetch(due)
    assert done.call_id == "consult"  # what the worker knew...
    saved = await rig.service.get(row.recording_id)
    assert saved.state is RecordingState.STORED and saved.call_id == "main"  # ...not saved


async def test_pbx_down_is_retried_with_backoff_and_fetched_once(rig: Rig) -> None:
    rig.fetcher.files["r1.mp3"] = AUDIO
    rig.fetcher.failures = [PbxUnavailable("kazoo: answered 503"), PbxUnavailable("down")]
    (row,) = await rig.service.call_ended(_call())
    await rig.service.run_once()
    first = await rig.service.get(row.recording_id)
    assert (first.state, first.attempts, first.last_error) == (
        RecordingState.PENDING, 1, "kazoo: answered 503",
    )  # fmt: skip
    assert 1.5 <= first.next_attempt_at - rig.clock.now <= 2.5  # 2 s ±25 %
    assert await rig.service.run_once() == 0  # not due yet
    rig.clock.now = first.next_attempt_at
    await rig.service.run_once()
    second = await rig.service.get(row.recording_id)
    assert second.attempts == 2 and 3.0 <= second.next_attempt_at - rig.clock.now <= 5.0
    rig.clock.now = second.next_attempt_at
    await rig.service.run_once()
    assert (await rig.service.get(row.recording_id)).state is RecordingState.STORED
    assert rig.fetcher.opened == ["r1.mp3"] * 3
    assert len(_files(rig.store.root)) == 1


async def test_after_max_attempts_the_recording_failed(storage: SqlStorage, tmp_path: Path) -> None:
    rig = _rig(storage, tmp_path, max_attempts=2)
    rig.fetcher.failures = [PbxUnavailable("down"), PbxUnavailable("still down")]
    (row,) = await rig.service.call_ended(_call())
    await rig.service.run_once()
    rig.clock.now += 100
    await rig.service.run_once()
    failed = await rig.service.get(row.recording_id)
    assert failed.state is RecordingState.FAILED and failed.attempts == 2
    assert failed.last_error == "gave up after 2 attempts: still down"
    rig.clock.now += 10_000
    assert await rig.service.run_once() == 0


async def test_a_recording_over_the_size_limit_fails_for_good(
    storage: SqlStorage, tmp_path: Path
) -> None:
    rig = _rig(storage, tmp_path, max_bytes=100_000)
    rig.fetcher.files["r1.mp3"] = AUDIO
    (row,) = await rig.service.call_ended(_call())
    await rig.service.run_once()
    failed = await rig.service.get(row.recording_id)
    assert failed.state is RecordingState.FAILED and "max_bytes" in (failed.last_error or "")
    assert _files(rig.store.root) == []

    rig.fetcher.files["r2.mp3"] = b"small, but declared huge"
    rig.fetcher.declared = 10**9  # a declared size over the limit is refused before reading
    (other,) = await rig.service.call_ended(_call("c2", ("r2.mp3",)))
    await rig.service.run_once()
    assert (await rig.service.get(other.recording_id)).state is RecordingState.FAILED


async def test_an_empty_download_is_retried(rig: Rig) -> None:
    rig.fetcher.files["r1.mp3"] = b""
    (row,) = await rig.service.call_ended(_call())
    await rig.service.run_once()
    again = await rig.service.get(row.recording_id)
    assert again.state is RecordingState.PENDING and "empty" in (again.last_error or "")
    assert _files(rig.store.root) == []


async def test_a_bug_in_a_fetcher_is_retried_not_fatal(rig: Rig) -> None:
    rig.fetcher.failures = [KeyError("boom")]
    (row,) = await rig.service.call_ended(_call())
    await rig.service.run_once()
    row = await rig.service.get(row.recording_id)
    assert row.state is RecordingState.PENDING and "KeyError" in (row.last_error or "")


async def test_one_row_per_ref(any_storage: SqlStorage, tmp_path: Path) -> None:
    rig = _rig(any_storage, tmp_path)
    twice = Call(
        "c1", TENANT, CallState.ENDED, Direction.INBOUND,
        recordings=(Recording("r1.mp3", started_at=1.0), Recording("r1.mp3", started_at=2.0)),
    )  # fmt: skip
    assert len(await rig.service.call_ended(twice)) == 1
    assert await rig.service.index.counts() == {"pending": 1}


async def test_calls_of_a_pbx_without_fetcher_are_not_queued(rig: Rig) -> None:
    assert await rig.service.call_ended(_call(pbx="freeswitch")) == []
    assert await rig.service.index.counts() == {}


async def test_rows_are_kept_in_memory_while_the_database_is_down(rig: Rig) -> None:
    rig.fetcher.files["r1.mp3"] = AUDIO
    index = rig.service.index
    real_add = index.add
    calls = 0

    async def flaky_add(rows: Sequence[RecordingRow]) -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise StorageError("storage: adding recordings failed")
        await real_add(rows)

    index.add = flaky_add  # type: ignore[method-assign]
    (row,) = await rig.service.call_ended(_call())
    assert await index.get(row.recording_id) is None
    await rig.service.run_once()
    assert (await rig.service.get(row.recording_id)).state is RecordingState.STORED


async def test_the_listener_queues_ended_calls_and_the_worker_fetches(rig: Rig) -> None:
    rig.fetcher.files.update({"r1.mp3": AUDIO, "r2.mp3": AUDIO[:1000]})
    live = Call("c1", TENANT, CallState.ANSWERED, Direction.INBOUND, recordings=(Recording("x"),))
    rig.service.start()
    try:
        call = _call()
        for name, changed in (
            (CallEventName.UPDATED, live),  # not ended: nothing to fetch yet
            (CallEventName.ANSWERED, call),
            (CallEventName.ENDED, call),
            (CallEventName.UPDATED, _call(refs=("r1.mp3", "r2.mp3"))),  # a late DESTROY
        ):
            rig.service.on_call_changed(CallChanged(name, changed), StoredCall(changed))
        counts: dict[str, int] = {}

        async def poll() -> None:
            nonlocal counts
            while counts.get("stored") != 2:
                counts = await rig.service.index.counts()
                await asyncio.sleep(0.01)

        await asyncio.wait_for(poll(), 5)
        assert counts == {"stored": 2}
    finally:
        await rig.service.stop()
    assert sorted(rig.fetcher.opened) == ["r1.mp3", "r2.mp3"] and rig.fetcher.closed


async def test_pending_rows_are_retried_at_once_on_start(
    any_storage: SqlStorage, tmp_path: Path
) -> None:
    storage = any_storage
    before = _rig(storage, tmp_path)
    before.fetcher.failures = [PbxUnavailable("down")]
    (row,) = await before.service.call_ended(_call())
    await before.service.run_once()
    waiting = await before.service.get(row.recording_id)
    assert waiting.next_attempt_at > before.clock.now

    after = _rig(storage, tmp_path)  # a restart, at the same moment
    after.fetcher.files["r1.mp3"] = AUDIO
    after.service.start()
    try:
        for _ in range(500):
            if (await after.service.get(row.recording_id)).state is RecordingState.STORED:
                break
            await asyncio.sleep(0.01)
        assert (await after.service.get(row.recording_id)).state is RecordingState.STORED
    finally:
        await after.service.stop()


# -- who may hear it ------------------------------------------------------------------------------


def _principal(role: str, tenant: str, agent_id: str | None = None) -> Principal:
    agent = Agent(AgentId(agent_id), TenantId(tenant), agent_id) if agent_id else None
    return Principal(role, TenantId(tenant), agent)


async def test_access_is_for_the_calls_agents_and_the_tenants_admins(rig: Rig) -> None:
    rig.fetcher.files["r1.mp3"] = AUDIO
    call = _call()
    rig.calls.calls["c1"] = StoredCall(
        call, handled_by=(AgentId("alice"),), rung=(AgentId("alice"), AgentId("bob"))
    )
    (row,) = await rig.service.call_ended(call)
    rid = row.recording_id
    with pytest.raises(RecordingMissing) as pending:
        await rig.service.readable(rid, _principal("agent", TENANT, "alice"))
    assert pending.value.details["state"] == "pending" and pending.value.status_code == 404
    await rig.service.run_once()
    for who in (
        _principal("agent", TENANT, "alice"),
        _principal("agent", TENANT, "bob"),
        _principal("admin", TENANT),
        _principal("admin", "*"),
    ):
        assert (await rig.service.readable(rid, who)).state is RecordingState.STORED
    for who in (
        _principal("agent", TENANT, "carol"),
        _principal("agent", "acc2", "alice"),
        _principal("admin", "acc2"),
    ):
        with pytest.raises(Forbidden):
            await rig.service.readable(rid, who)
    with pytest.raises(RecordingMissing):
        await rig.service.readable("0" * 32, _principal("admin", "*"))
    del rig.calls.calls["c1"]  # the call is gone: only admins may still hear it
    with pytest.raises(Forbidden):
        await rig.service.readable(rid, _principal("agent", TENANT, "alice"))
    assert await rig.service.readable(rid, _principal("admin", TENANT))


async def test_a_stored_file_that_vanished_is_a_404(rig: Rig) -> None:
    rig.fetcher.files["r1.mp3"] = AUDIO
    (row,) = await rig.service.call_ended(_call())
    await rig.service.run_once()
    stored = await rig.service.get(row.recording_id)
    assert await rig.service.size(stored) == len(AUDIO)
    os.remove(rig.store.path_of(stored.stored_path or ""))
    with pytest.raises(RecordingMissing):
        await rig.service.size(stored)


# -- Asterisk / FreeSWITCH files -------------------------------------------------------------------


def _row(ref: str, pbx: str = "asterisk") -> RecordingRow:
    return RecordingRow(recording_id_for(TENANT, ref), TENANT, CallId("c1"), pbx, ref)


async def _fetch(fetcher: FileFetcher | KazooFetcher, row: RecordingRow) -> tuple[str, bytes]:
    async with fetcher.open(row) as download:
        return download.content_type, b"".join([c async for c in download.chunks])


async def test_files_from_a_mounted_directory(tmp_path: Path) -> None:
    mount = tmp_path / "monitor"
    (mount / "2027").mkdir(parents=True)
    (mount / "2027" / "a.wav").write_bytes(AUDIO)
    (tmp_path / "secret.wav").write_bytes(b"not yours")
    (mount / "link.wav").symlink_to(tmp_path / "secret.wav")
    fetcher = FileFetcher("asterisk", pbx_dir="/var/spool/asterisk/monitor", path=str(mount))
    assert await _fetch(fetcher, _row("/var/spool/asterisk/monitor/2027/a.wav")) == (
        "audio/wav",
        AUDIO,
    )
    assert await _fetch(fetcher, _row("2027/a.wav")) == ("audio/wav", AUDIO)
    with pytest.raises(PbxUnavailable):
        await _fetch(fetcher, _row("/var/spool/asterisk/monitor/later.wav"))
    for ref in ("/etc/passwd", "../secret.wav", "/var/spool/asterisk/monitor/../x", "link.wav"):
        with pytest.raises(RecordingRejected):
            await _fetch(fetcher, _row(ref))


async def test_files_over_http_from_a_remote_pbx() -> None:
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        name = request.url.path.rsplit("/", 1)[-1]
        status = {"gone.wav": 404, "locked.wav": 403, "bad.wav": 400, "broken.wav": 502}
        if name in status:
            return httpx.Response(status[name])
        return httpx.Response(200, content=AUDIO, headers={"content-type": "audio/x-wav"})

    http = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    fetcher = FileFetcher(
        "freeswitch",
        pbx_dir="/var/lib/freeswitch/recordings",
        url="http://pbx.example/recordings/",
        http=http,
    )
    ref = "/var/lib/freeswitch/recordings/20271121-1346 call.wav"
    assert await _fetch(fetcher, _row(ref, "freeswitch")) == ("audio/wav", AUDIO)
    assert seen == ["http://pbx.example/recordings/20271121-1346%20call.wav"]
    for name, error in (
        ("gone.wav", PbxUnavailable),
        ("broken.wav", PbxUnavailable),
        ("locked.wav", PbxAuthError),
        ("bad.wav", RecordingRejected),
    ):
        with pytest.raises(error):
            await _fetch(fetcher, _row(name, "freeswitch"))
    await fetcher.close()
    await http.aclose()


async def test_file_fetcher_transport_errors_are_retryable() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as http:
        fetcher = FileFetcher("asterisk", pbx_dir="/x", url="http://pbx.example", http=http)
        with pytest.raises(PbxUnavailable):
            await _fetch(fetcher, _row("a.wav"))


# -- Kazoo ----------------------------------------------------------------------------------------


@pytest.fixture
async def kazoo() -> AsyncIterator[tuple[KazooServer, KazooFetcher]]:
    server = KazooServer()
    server.add_account("acc1", "key1")
    server.add_recording(
        "acc1", "202701-rec1", AUDIO, name="call_recording_leg1.mp3", call_id="leg1"
    )
    server.add_recording("acc1", "202701-rec2", b"RIFF....WAVE", content_type="audio/wav")
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=server.app))
    settings = KazooSettings(api_url="http://kazoo.test:8000", api_key="key1")
    fetcher = KazooFetcher(settings, http=http)
    yield server, fetcher
    await fetcher.close()
    await http.aclose()


def _kazoo_row(ref: str) -> RecordingRow:
    return _row(ref, "kazoo")


async def test_kazoo_recordings_by_media_name_and_by_id(
    kazoo: tuple[KazooServer, KazooFetcher],
) -> None:
    server, fetcher = kazoo
    assert await _fetch(fetcher, _kazoo_row("call_recording_leg1.mp3")) == ("audio/mpeg", AUDIO)
    assert await _fetch(fetcher, _kazoo_row("202701-rec2")) == ("audio/wav", b"RIFF....WAVE")
    paths = [(r.method, r.path, r.query) for r in server.requests()]
    assert paths[0] == ("PUT", "/v2/api_auth", {})
    assert ("GET", "/v2/accounts/acc1/recordings", {"filter_name": "call_recording_leg1.mp3"}) in (
        paths
    )
    assert [p for p in paths if p[0] == "PUT"] == [paths[0]]  # one login for both
    binary = [r for r in server.requests() if r.path.endswith("/recordings/202701-rec1")]
    assert len(binary) == 1 and binary[0].auth_token


async def test_kazoo_logs_in_again_when_the_token_expired(
    kazoo: tuple[KazooServer, KazooFetcher],
) -> None:
    server, fetcher = kazoo
    await _fetch(fetcher, _kazoo_row("call_recording_leg1.mp3"))
    server.expire_tokens()
    assert await _fetch(fetcher, _kazoo_row("call_recording_leg1.mp3")) == ("audio/mpeg", AUDIO)
    assert len([r for r in server.requests() if r.path == "/v2/api_auth"]) == 2


async def test_kazoo_failures_map_to_retry_or_stop(
    kazoo: tuple[KazooServer, KazooFetcher],
) -> None:
    server, fetcher = kazoo
    with pytest.raises(PbxUnavailable):  # not uploaded yet
        await _fetch(fetcher, _kazoo_row("call_recording_later.mp3"))
    server.set_available(False)
    with pytest.raises(PbxUnavailable):
        await _fetch(fetcher, _kazoo_row("call_recording_leg1.mp3"))
    server.set_available(True)
    refused = KazooFetcher(
        KazooSettings(api_url="http://kazoo.test:8000", api_key="wrong"),
        http=httpx.AsyncClient(transport=httpx.ASGITransport(app=server.app)),
    )
    with pytest.raises(PbxAuthError):
        await _fetch(refused, _kazoo_row("call_recording_leg1.mp3"))


# -- settings and composition ----------------------------------------------------------------------


def test_settings_from_the_environment_and_their_checks(tmp_path: Path) -> None:
    settings = load(
        None,
        {
            "CTIBRIDGE_RECORDINGS_ASTERISK_PATH": str(tmp_path),
            "CTIBRIDGE_RECORDINGS_MAX_BYTES": "1000",
            "CTIBRIDGE_RECORDINGS_KAZOO_FETCH": "false",
        },
    )
    assert settings.recordings.asterisk_path == str(tmp_path)
    assert settings.recordings.max_bytes == 1000 and not settings.recordings.kazoo_fetch
    for bad in ({"store": "floppy"}, {"max_attempts": 0}, {"retry_initial": 0}):
        with pytest.raises(ConfigError):
            load(None, {}, {"recordings": bad})


async def test_build_recordings_picks_the_configured_fetchers(
    storage: SqlStorage, tmp_path: Path
) -> None:
    settings = load(
        None,
        {},
        {
            "data_dir": str(tmp_path),
            "kazoo": {"api_key": "k"},
            "recordings": {"freeswitch_url": "http://pbx.example/rec"},
        },
    )
    service = build_recordings(settings, storage=storage, calls=Calls())
    assert isinstance(service.store, LocalStore)
    assert service.store.root == (tmp_path / "recordings").resolve()
    calls = {pbx: _call(pbx=pbx) for pbx in ("kazoo", "asterisk", "freeswitch")}
    linked = {pbx: bool(service.card_extra(StoredCall(c))) for pbx, c in calls.items()}
    assert linked == {"kazoo": True, "asterisk": False, "freeswitch": True}
    await service.stop()
