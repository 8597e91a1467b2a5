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

from ctibridge.config import load
from ctibridge.demo.scenarios import ScenarioContext, greg_from_unix, recorded_inbound
from ctibridge.launcher import DemoSystem, running_demo
from ctibridge.recordings.base import RecordingRow, RecordingState, recording_id_for
from ctibridge.services.recordings import RecordingsService
from ctibridge.storage import SqlStorage
from tests.integration.conftest import PG_URL, _pg, until

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
    settings = load(
        None,
        {},
        {
            "data_dir": str(tmp_path / "data"),
            "web": {"port": 0},
            "kazoo": {"reconnect_initial": 0.05, "reconnect_max": 0.2},
            "storage": {"flush_interval": 0.005},
            "recordings": {"retry_initial": 0.05, "retry_max": 0.2},
        },
    )
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
    system = recorded.system
    ref = next(iter(recorded.audio))
    url = f"/api/recordings/{recorded.our_id(ref)}"
    async with httpx.AsyncClient(base_url=system.http.url) as http:
        assert (await http.get(url, headers=_auth(system.tokens["101"]))).status_code == 200
        other = await http.get(url, headers=_auth(system.tokens["102"]))
        assert other.status_code == 403 and other.json()["error_id"] == "forbidden"
        admin = await http.get(url, headers=_auth(system.services.admin_token))
        assert admin.status_code == 200 and admin.content == recorded.audio[ref]
        by_query = await http.get(url, params={"token": system.tokens["101"]})  # <audio src>
        assert by_query.status_code == 200
        unknown = await http.get(
            "/api/recordings/" + "0" * 32, headers=_auth(system.services.admin_token)
        )
        assert unknown.status_code == 404 and unknown.json()["error_id"] == "no-such-recording"
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
