"""Recordings end to end: the demo Kazoo holds the recordings of a ``recorded_inbound`` call,
the real connector brings the call in, ctibridge fetches, stores and serves them over HTTP."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import random
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio

from ctibridge.demo.scenarios.inbound import recorded_inbound
from ctibridge.demo.scenarios.script import ScenarioContext, greg_from_unix
from ctibridge.launcher import DemoSystem, running_demo
from ctibridge.recordings.base import RecordingRow, RecordingState, recording_id_for
from ctibridge.services.recordings import RecordingsService
from ctibridge.storage import SqlStorage
from tests.integration.conftest import PG_URL, _pg, fast_settings, until

pytestmark = pytest.mark.asyncio(loop_scope="module")


async def until_async(check: Callable[[], Awaitable[Any]], what: str, within: float = 10.0) -> Any:
    """Bounded poll of an async check."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not (value := await check()):
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)
    return value


@contextlib.asynccontextmanager
async def _system(tmp_path: Path, backend: str = "sqlite") -> AsyncIterator[DemoSystem]:
    settings = fast_settings(tmp_path, recordings={"retry_initial": 0.05, "retry_max": 0.2})
    storage, schema = None, None
    if backend == "postgres":
        schema = f"it_{secrets.token_hex(6)}"
        await _pg(f'CREATE SCHEMA "{schema}"')
        storage = SqlStorage(PG_URL, connect_args={"server_settings": {"search_path": schema}})
    try:
        async with running_demo(settings, traffic=False, storage=storage) as demo:
            await until(
                lambda: demo.services.status()["connectors"][0].get("connected"),
                what="the Kazoo connector to connect",
            )
            yield demo
    finally:
        if schema is not None:
            await _pg(f'DROP SCHEMA "{schema}" CASCADE')


@dataclass
class Recorded:
    """A recorded call played into the system: its recordings by PBX ref."""

    system: DemoSystem
    audio: dict[str, bytes]
    kazoo_ids: dict[str, str]

    @property
    def service(self) -> RecordingsService:
        service = self.system.services.recordings
        assert service is not None
        return service

    @property
    def account(self) -> str:
        return self.system.account.account_id

    def our_id(self, ref: str) -> str:
        return recording_id_for(self.account, ref)

    async def rows(self) -> list[RecordingRow | None]:
        return [await self.service.index.get(self.our_id(ref)) for ref in self.audio]

    async def all_stored(self) -> bool:
        rows = await self.rows()
        return all(r is not None and r.state is RecordingState.STORED for r in rows)


async def _play_recorded_call(system: DemoSystem, seed: int = 7) -> Recorded:
    ctx = ScenarioContext(
        account=system.account.account_id,
        realm=system.account.realm,
        start_greg=greg_from_unix(1_790_000_000),
        rng=random.Random(seed),
    )
    steps = recorded_inbound(
        ctx, agent=system.account.agent("101"), caller=system.account.callers[0]
    )
    refs = [
        ref
        for step in steps
        if step.data["event_name"] == "CHANNEL_DESTROY"
        for ref in step.data.get("media_recordings", [])
    ]
    assert len(refs) == 2
    audio = {ref: secrets.token_bytes(200_000 + i) for i, ref in enumerate(refs)}
    kazoo_ids = {ref: f"202609-{secrets.token_hex(8)}" for ref in refs}
    for ref, data in audio.items():
        system.kazoo.add_recording(system.account.account_id, kazoo_ids[ref], data, name=ref)
    for step in steps:
        await system.publish(step.data)
    return Recorded(system, audio, kazoo_ids)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def recorded(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Recorded]:
    """One system with one recorded call, shared by the download tests (they only read)."""
    async with _system(tmp_path_factory.mktemp("recorded")) as system:
        played = await _play_recorded_call(system)
        await until_async(played.all_stored, "the recordings to be stored")
        yield played


def _auth(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


@pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
async def test_a_recorded_kazoo_call_is_fetched_stored_and_downloadable(
    tmp_path: Path, backend: str
) -> None:
    async with _system(tmp_path, backend) as system:
        played = await _play_recorded_call(system)
        await until_async(played.all_stored, "the recordings to be stored")
        rows = [r for r in await played.rows() if r is not None]
        (call_id,) = {r.call_id for r in rows}
        token = system.tokens["101"]
        async with httpx.AsyncClient(base_url=system.http.url, headers=_auth(token)) as http:
            card = (await http.get(f"/api/calls/{call_id}")).json()
            links = {r["ref"]: r["url"] for r in card["recordings"]}
            assert links == {ref: f"/api/recordings/{played.our_id(ref)}" for ref in played.audio}
            for row in rows:
                data = played.audio[row.ref]
                assert (row.size, row.sha256) == (len(data), hashlib.sha256(data).hexdigest())
                assert row.content_type == "audio/mpeg" and row.tenant_id == played.account
                stored = (
                    Path(system.services.settings.data_dir) / "recordings" / (row.stored_path or "")
                )
                assert stored.read_bytes() == data
                reply = await http.get(f"/api/recordings/{row.recording_id}")
                assert reply.status_code == 200 and reply.content == data
                assert reply.headers["content-type"] == "audio/mpeg"
                assert reply.headers["accept-ranges"] == "bytes"
                assert reply.headers["content-length"] == str(len(data))
    binary = [r for r in system.kazoo.requests() if "/recordings/" in r.path]
    assert sorted(r.path.rsplit("/", 1)[1] for r in binary) == sorted(played.kazoo_ids.values())


async def test_ranges(recorded: Recorded) -> None:
    ref, data = next(iter(recorded.audio.items()))
    size = len(data)
    url = f"/api/recordings/{recorded.our_id(ref)}"
    token = recorded.system.tokens["101"]
    async with httpx.AsyncClient(base_url=recorded.system.http.url, headers=_auth(token)) as http:
        for header, start, end in (
            ("bytes=0-0", 0, 0),
            ("bytes=1000-70999", 1000, 70_999),
            ("bytes=150000-", 150_000, size - 1),
            ("bytes=-777", size - 777, size - 1),
            ("bytes=199990-999999", 199_990, size - 1),
        ):
            reply = await http.get(url, headers={"range": header})
            assert reply.status_code == 206, header
            assert reply.content == data[start : end + 1], header
            assert reply.headers["content-range"] == f"bytes {start}-{end}/{size}"
            assert reply.headers["content-length"] == str(end - start + 1)
            assert reply.headers["content-type"] == "audio/mpeg"

        whole = await http.get(url)
        assert whole.status_code == 200 and whole.content == data
        assert "content-range" not in whole.headers

        for header in (f"bytes={size}-", f"bytes={size + 5}-{size + 10}", "bytes=-0"):
            refused = await http.get(url, headers={"range": header})
            assert refused.status_code == 416, header
            assert refused.headers["content-range"] == f"bytes */{size}"

        etag = whole.headers["etag"]
        same = await http.get(url, headers={"range": "bytes=0-9", "if-range": etag})
        assert same.status_code == 206 and same.content == data[:10]
        changed = await http.get(url, headers={"range": "bytes=0-9", "if-range": '"other"'})
        assert changed.status_code == 200 and changed.content == data

        head = await http.head(url, headers={"range": "bytes=10-19"})
        assert head.status_code == 206 and head.headers["content-length"] == "10"


async def test_who_may_download(recorded: Recorded) -> None:
    ref = next(iter(recorded.audio))
    await assert_download_access(recorded.system, recorded.our_id(ref), recorded.audio[ref])


async def assert_download_access(system: DemoSystem, recording_id: str, audio: bytes) -> None:
    """Agent 101 handled the call: it and the admin download it (header or ``?token=``);
    agent 102 is refused, nobody signed in is not let in, an unknown id is 404."""
    url = f"/api/recordings/{recording_id}"
    async with httpx.AsyncClient(base_url=system.http.url) as http:
        mine = await http.get(url, headers=_auth(system.tokens["101"]))
        assert mine.status_code == 200 and mine.content == audio
        other = await http.get(url, headers=_auth(system.tokens["102"]))
        assert other.status_code == 403 and other.json()["error_id"] == "forbidden"
        admin = await http.get(url, headers=_auth(system.services.admin_token))
        assert admin.status_code == 200 and admin.content == audio
        by_query = await http.get(url, params={"token": system.tokens["101"]})  # <audio src>
        assert by_query.status_code == 200
        unknown = await http.get(
            "/api/recordings/" + "0" * 32, headers=_auth(system.services.admin_token)
        )
        assert unknown.status_code == 404 and unknown.json()["error_id"] == "no-such-recording"
        assert (await http.get(url)).status_code == 401


async def test_the_state_of_a_recording_for_those_who_may_hear_it(recorded: Recorded) -> None:
    system = recorded.system
    ref = next(iter(recorded.audio))
    url = f"/api/recordings/{recorded.our_id(ref)}/state"
    async with httpx.AsyncClient(base_url=system.http.url) as http:
        mine = await http.get(url, headers=_auth(system.tokens["101"]))
        assert mine.json() == {"recording_id": recorded.our_id(ref), "state": "stored"}
        assert (await http.get(url, headers=_auth(system.tokens["102"]))).status_code == 403
        unknown = await http.get(
            f"/api/recordings/{'0' * 32}/state", headers=_auth(system.services.admin_token)
        )
        assert unknown.status_code == 404
        assert (await http.get(url)).status_code == 401


async def test_kazoo_down_while_fetching_is_retried_and_fetched_once(tmp_path: Path) -> None:
    async with _system(tmp_path) as system:
        system.kazoo.set_available(False)  # crossbar answers 503; the websocket stays up
        played = await _play_recorded_call(system)

        async def retried() -> bool:
            rows = await played.rows()
            return all(r is not None and r.attempts >= 2 for r in rows)

        await until_async(retried, "failed attempts while Kazoo is down")
        for row in await played.rows():
            assert row is not None and row.state is RecordingState.PENDING
            assert "503" in (row.last_error or "")
        system.kazoo.set_available(True)
        await until_async(played.all_stored, "the recordings to be stored after the outage")
        for row in await played.rows():
            assert (
                row is not None and row.sha256 == hashlib.sha256(played.audio[row.ref]).hexdigest()
            )
        binary = [r for r in system.kazoo.requests() if "/recordings/" in r.path]
        assert sorted(r.path.rsplit("/", 1)[1] for r in binary) == sorted(played.kazoo_ids.values())
        files = [
            p
            for p in (Path(system.services.settings.data_dir) / "recordings").rglob("*")
            if p.is_file()
        ]
        assert len(files) == 2


async def test_a_call_that_ends_while_the_websocket_is_down_gets_its_recordings(
    tmp_path: Path,
) -> None:
    async with _system(tmp_path) as system:
        account = system.account.account_id
        ctx = ScenarioContext(
            account=account,
            realm=system.account.realm,
            start_greg=greg_from_unix(1_790_000_000),
            rng=random.Random(11),
        )
        steps = recorded_inbound(
            ctx, agent=system.account.agent("101"), caller=system.account.callers[0]
        )
        ends = [s.data for s in steps if s.data["event_name"] == "CHANNEL_DESTROY"]
        for step in steps:
            if step.data["event_name"] != "CHANNEL_DESTROY":
                await system.publish(step.data)
        legs = {data["call_id"] for data in ends}
        calls = system.services.calls

        def live_call() -> str | None:
            found = [s.call.call_id for s in calls.active(account)]
            return found[0] if found else None

        call_id = await until(live_call, what="the call to be up")

        # The socket drops mid-call; the call ends while we are away. Kazoo records both
        # legs; their DESTROYs (naming the recordings) reach nobody.
        system.kazoo.set_available(False)
        await system.kazoo.drop_websockets()
        connector = system.services.connectors[0]
        await until(lambda: not connector.status()["connected"], what="the disconnection")
        audio: dict[str, bytes] = {}
        for data in ends:
            (ref,) = data["media_recordings"]
            audio[ref] = secrets.token_bytes(50_000)
            system.kazoo.add_recording(
                account, f"rec-{data['call_id']}", audio[ref], name=ref, call_id=data["call_id"]
            )
            await system.publish(data)
        system.kazoo.set_available(True)

        service = system.services.recordings
        assert service is not None

        async def all_stored() -> bool:
            rows = [await service.index.get(recording_id_for(account, ref)) for ref in audio]
            return all(r is not None and r.state is RecordingState.STORED for r in rows)

        await until_async(all_stored, "the recordings of the call that ended while away")
        token = system.tokens["101"]
        async with httpx.AsyncClient(base_url=system.http.url, headers=_auth(token)) as http:
            card = (await http.get(f"/api/calls/{call_id}")).json()
            assert card["state"] == "ended"
            links = {r["ref"]: r["url"] for r in card["recordings"]}
            assert links == {
                ref: f"/api/recordings/{recording_id_for(account, ref)}" for ref in audio
            }
            for ref, url in links.items():
                reply = await http.get(url)
                assert reply.status_code == 200 and reply.content == audio[ref]
        stored = await calls.get(account, call_id)
        assert {leg.leg_id: leg.hangup_cause for leg in stored.call.legs} == dict.fromkeys(
            legs, "GONE_DURING_RESYNC"
        )
        assert {r.call_id for r in await service.for_call(account, call_id)} == {call_id}
    asked = [r for r in system.kazoo.requests() if r.path.endswith("/recordings")]
    assert {r.query.get("filter_call_id") for r in asked} >= legs
