"""Recordings kept in an S3-compatible bucket, end to end: the demo Kazoo holds a recorded
call's recordings, the real connector brings the call in, the recordings service fetches them
into the bucket (moto's S3 over a real socket: tests/fakes/fake_s3.py), and the HTTP route
serves them from there, with ranges and the same access rule as the local store."""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from ctibridge.launcher import DemoSystem, running_demo
from ctibridge.recordings.base import RecordingState
from ctibridge.recordings.s3 import S3Store
from tests.fakes.fake_s3 import FakeS3, fake_s3_fixture  # noqa: F401  (the fake_s3 fixture)
from tests.integration.conftest import fast_settings, until
from tests.integration.test_recordings import (
    _auth,
    _play_recorded_call,
    assert_download_access,
    until_async,
)

PREFIX = "recordings/site-a"


@contextlib.asynccontextmanager
async def _system(tmp_path: Path, fake_s3: FakeS3, bucket: str) -> AsyncIterator[DemoSystem]:
    section = {**fake_s3.section(bucket), "s3_prefix": PREFIX}
    settings = fast_settings(
        tmp_path, recordings={**section, "retry_initial": 0.05, "retry_max": 0.2}
    )
    async with running_demo(settings, traffic=False) as demo:
        await until(
            lambda: demo.services.status()["connectors"][0].get("connected"),
            what="the Kazoo connector to connect",
        )
        yield demo


@pytest.fixture
async def system(tmp_path: Path, fake_s3: FakeS3) -> AsyncIterator[DemoSystem]:
    async with _system(tmp_path, fake_s3, fake_s3.create_bucket()) as demo:
        yield demo


def _bucket(system: DemoSystem) -> str:
    return system.services.settings.recordings.s3_bucket


async def test_recordings_are_stored_in_the_bucket_and_served_with_ranges(
    system: DemoSystem, fake_s3: FakeS3
) -> None:
    assert isinstance(system.services.recordings and system.services.recordings.store, S3Store)
    played = await _play_recorded_call(system)
    await until_async(played.all_stored, "the recordings to be stored in the bucket")
    rows = [r for r in await played.rows() if r is not None]
    objects = fake_s3.objects(_bucket(system))
    assert objects == {f"{PREFIX}/{r.stored_path}": played.audio[r.ref] for r in rows}
    assert not (Path(system.services.settings.data_dir) / "recordings").exists()

    ref, data = next(iter(played.audio.items()))
    url = f"/api/recordings/{played.our_id(ref)}"
    size = len(data)
    fake_s3.clear_requests()
    async with httpx.AsyncClient(
        base_url=system.http.url, headers=_auth(system.tokens["101"])
    ) as http:
        whole = await http.get(url)
        assert whole.status_code == 200 and whole.content == data
        assert whole.headers["content-type"] == "audio/mpeg"
        assert whole.headers["accept-ranges"] == "bytes"
        assert whole.headers["etag"] == f'"{hashlib.sha256(data).hexdigest()}"'
        for header, start, end in (
            ("bytes=0-0", 0, 0),
            ("bytes=1000-70999", 1000, 70_999),
            ("bytes=150000-", 150_000, size - 1),
            ("bytes=-777", size - 777, size - 1),
        ):
            reply = await http.get(url, headers={"range": header})
            assert reply.status_code == 206, header
            assert reply.content == data[start : end + 1], header
            assert reply.headers["content-range"] == f"bytes {start}-{end}/{size}"
            assert reply.headers["content-length"] == str(end - start + 1)
        refused = await http.get(url, headers={"range": f"bytes={size}-"})
        assert refused.status_code == 416
        assert refused.headers["content-range"] == f"bytes */{size}"
        head = await http.head(url, headers={"range": "bytes=10-19"})
        assert head.status_code == 206 and head.headers["content-length"] == "10"
    # Each ranged answer came from a ranged read of the bucket, not from a whole object.
    gets = [r.range for r in fake_s3.requests() if r.method == "GET"]
    assert gets == [
        f"bytes=0-{size - 1}",
        "bytes=0-0",
        "bytes=1000-70999",
        f"bytes=150000-{size - 1}",
        f"bytes={size - 777}-{size - 1}",
    ]


async def test_who_may_download_from_the_bucket(system: DemoSystem, fake_s3: FakeS3) -> None:
    played = await _play_recorded_call(system)
    await until_async(played.all_stored, "the recordings to be stored in the bucket")
    ref = next(iter(played.audio))
    await assert_download_access(system, played.our_id(ref), played.audio[ref])


async def test_s3_down_at_upload_time_is_retried_and_stored_once(
    system: DemoSystem, fake_s3: FakeS3
) -> None:
    fake_s3.set_available(False)
    played = await _play_recorded_call(system)

    async def retried() -> bool:
        rows = await played.rows()
        return all(r is not None and r.attempts >= 2 for r in rows)

    await until_async(retried, "failed uploads while S3 is down")
    for row in await played.rows():
        assert row is not None and row.state is RecordingState.PENDING
        assert "s3: PutObject" in (row.last_error or "")
    fake_s3.set_available(True)
    await until_async(played.all_stored, "the recordings to be stored after the outage")
    rows = [r for r in await played.rows() if r is not None]
    for row in rows:
        assert row.sha256 == hashlib.sha256(played.audio[row.ref]).hexdigest()
    objects = fake_s3.objects(_bucket(system))
    assert objects == {f"{PREFIX}/{r.stored_path}": played.audio[r.ref] for r in rows}
    puts = [r.path for r in fake_s3.requests() if r.method == "PUT"]
    assert sorted(puts) == sorted(f"/{_bucket(system)}/{name}" for name in objects)  # once each
    async with httpx.AsyncClient(
        base_url=system.http.url, headers=_auth(system.tokens["101"])
    ) as http:
        reply = await http.get(f"/api/recordings/{rows[0].recording_id}")
        assert reply.status_code == 200 and reply.content == played.audio[rows[0].ref]


async def test_s3_failing_at_upload_time_is_retried(system: DemoSystem, fake_s3: FakeS3) -> None:
    fake_s3.fail_with(503, "SlowDown")
    played = await _play_recorded_call(system)

    async def retried() -> bool:
        rows = await played.rows()
        return all(r is not None and r.attempts >= 2 for r in rows)

    await until_async(retried, "failed uploads while S3 answers 503")
    for row in await played.rows():
        assert row is not None and "503 SlowDown" in (row.last_error or "")
    fake_s3.fail_with(None)
    await until_async(played.all_stored, "the recordings to be stored after the errors")
    assert len(fake_s3.objects(_bucket(system))) == 2


async def test_s3_down_while_serving_is_a_503_then_works_again(
    system: DemoSystem, fake_s3: FakeS3
) -> None:
    played = await _play_recorded_call(system)
    await until_async(played.all_stored, "the recordings to be stored in the bucket")
    ref = next(iter(played.audio))
    url = f"/api/recordings/{played.our_id(ref)}"
    async with httpx.AsyncClient(
        base_url=system.http.url, headers=_auth(system.tokens["101"])
    ) as http:
        fake_s3.set_available(False)
        down = await http.get(url, headers={"range": "bytes=0-99"})
        assert down.status_code == 503 and down.json()["error_id"] == "storage-error"
        fake_s3.set_available(True)
        back = await http.get(url, headers={"range": "bytes=0-99"})
        assert back.status_code == 206 and back.content == played.audio[ref][:100]
        # An object removed from the bucket behind our back is a 404, not a broken answer.
        rows = [r for r in await played.rows() if r is not None and r.ref == ref]
        fake_s3.delete_object(_bucket(system), f"{PREFIX}/{rows[0].stored_path}")
        gone = await http.get(url)
        assert gone.status_code == 404 and gone.json()["error_id"] == "no-such-recording"
