"""The S3 store against an S3-compatible server over a real socket (moto, tests/fakes/fake_s3.py):
single and multipart writes, ranged reads, a store that is down or failing, and the settings."""

from __future__ import annotations

import hashlib
import secrets
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import pytest

from ctibridge.config import RecordingsSettings, load
from ctibridge.errors import ConfigError, PbxUnavailable, StorageError
from ctibridge.recordings.base import RecordingMissing, RecordingRejected
from ctibridge.recordings.local import LocalStore
from ctibridge.recordings.s3 import MIN_PART_SIZE, S3Store
from ctibridge.recordings.stores import make_store
from tests.fakes.fake_s3 import FakeS3, fake_s3_fixture  # noqa: F401  (the fake_s3 fixture)

KEY = "acc1/2026/11/0123456789abcdef0123456789abcdef.mp3"
AUDIO = secrets.token_bytes(300_000)


async def _chunked(data: bytes, size: int = 64 * 1024) -> AsyncIterator[bytes]:
    for i in range(0, len(data), size):
        yield data[i : i + size]


async def _read(store: S3Store, key: str, start: int, length: int) -> bytes:
    return b"".join([chunk async for chunk in store.read(key, start, length)])


@pytest.fixture
async def bucket(fake_s3: FakeS3) -> str:
    return fake_s3.create_bucket()


@pytest.fixture
async def store(fake_s3: FakeS3, bucket: str) -> AsyncIterator[S3Store]:
    s3 = S3Store(fake_s3.settings(bucket, s3_prefix="/ctibridge/recordings/"))
    try:
        yield s3
    finally:
        await s3.close()


async def test_a_recording_is_one_object_under_the_prefix(
    fake_s3: FakeS3, bucket: str, store: S3Store
) -> None:
    stored = await store.put(KEY, _chunked(AUDIO))
    assert (stored.key, stored.size) == (KEY, len(AUDIO))
    assert stored.sha256 == hashlib.sha256(AUDIO).hexdigest()
    name = f"ctibridge/recordings/{KEY}"
    assert fake_s3.objects(bucket) == {name: AUDIO}
    assert fake_s3.content_type(bucket, name) == "audio/mpeg"
    assert [r.method for r in fake_s3.requests()] == ["PUT"]  # one PutObject, path-style
    assert fake_s3.requests()[0].path == f"/{bucket}/{name}"
    assert await store.size(KEY) == len(AUDIO)
    assert await store.size("acc1/2026/11/other.mp3") is None


async def test_ranged_reads_ask_s3_for_the_range_only(fake_s3: FakeS3, store: S3Store) -> None:
    await store.put(KEY, _chunked(AUDIO))
    fake_s3.clear_requests()
    assert await _read(store, KEY, 1000, 70_000) == AUDIO[1000:71_000]
    assert await _read(store, KEY, 0, len(AUDIO)) == AUDIO
    assert await _read(store, KEY, len(AUDIO) - 1, 1) == AUDIO[-1:]
    assert await _read(store, KEY, 5, 0) == b""
    last = len(AUDIO) - 1
    ranges = [r.range for r in fake_s3.requests()]
    assert ranges == ["bytes=1000-70999", f"bytes=0-{last}", f"bytes={last}-{last}"]
    with pytest.raises(RecordingMissing):
        await _read(store, "acc1/2026/11/other.mp3", 0, 10)


async def test_a_large_recording_goes_up_in_parts(fake_s3: FakeS3, bucket: str) -> None:
    data = secrets.token_bytes(2 * MIN_PART_SIZE + 12_345)
    store = S3Store(fake_s3.settings(bucket), part_size=MIN_PART_SIZE)
    try:
        stored = await store.put(KEY, _chunked(data, 1_000_000))
        assert stored.size == len(data) and stored.sha256 == hashlib.sha256(data).hexdigest()
        assert fake_s3.objects(bucket) == {KEY: data}
        assert fake_s3.uploads(bucket) == []
        calls = [(r.method, sorted(parse_qs(r.query, True))) for r in fake_s3.requests()]
        part = ("PUT", ["partNumber", "uploadId"])
        assert calls == [("POST", ["uploads"]), part, part, part, ("POST", ["uploadId"])]
        assert await _read(store, KEY, MIN_PART_SIZE - 10, 20) == data[MIN_PART_SIZE - 10 :][:20]
    finally:
        await store.close()


async def test_a_source_failing_midway_leaves_nothing(fake_s3: FakeS3, bucket: str) -> None:
    store = S3Store(fake_s3.settings(bucket), part_size=MIN_PART_SIZE)

    async def broken() -> AsyncIterator[bytes]:
        yield secrets.token_bytes(MIN_PART_SIZE + 1)  # one part sent
        raise PbxUnavailable("the PBX went away")

    try:
        with pytest.raises(PbxUnavailable):
            await store.put(KEY, broken())
        assert fake_s3.objects(bucket) == {}
        assert fake_s3.uploads(bucket) == []  # the multipart upload was aborted
        assert [r.method for r in fake_s3.requests()][-1] == "DELETE"
    finally:
        await store.close()


async def test_an_unreachable_store_is_a_storage_error(fake_s3: FakeS3, store: S3Store) -> None:
    await store.put(KEY, _chunked(AUDIO))
    fake_s3.set_available(False)
    with pytest.raises(StorageError, match="s3: PutObject"):
        await store.put("acc1/2026/11/b.mp3", _chunked(AUDIO))
    with pytest.raises(StorageError, match="HeadObject"):
        await store.size(KEY)
    with pytest.raises(StorageError, match="GetObject"):
        await _read(store, KEY, 0, 10)
    fake_s3.set_available(True)  # same port, same objects
    assert await _read(store, KEY, 0, 10) == AUDIO[:10]


async def test_s3_errors_are_storage_errors_with_the_code(fake_s3: FakeS3, store: S3Store) -> None:
    fake_s3.fail_with(503, "SlowDown")
    with pytest.raises(StorageError) as caught:
        await store.put(KEY, _chunked(AUDIO))
    assert caught.value.details == {"code": "SlowDown", "status": 503}
    assert caught.value.status_code == 503
    fake_s3.fail_with(None)
    await store.put(KEY, _chunked(AUDIO))
    assert await store.size(KEY) == len(AUDIO)


async def test_a_missing_bucket_is_a_storage_error(fake_s3: FakeS3) -> None:
    store = S3Store(fake_s3.settings("no-such-bucket"))
    try:
        with pytest.raises(StorageError, match="NoSuchBucket"):
            await store.put(KEY, _chunked(AUDIO))
    finally:
        await store.close()


async def test_delete_and_bad_keys(fake_s3: FakeS3, bucket: str, store: S3Store) -> None:
    await store.put(KEY, _chunked(AUDIO))
    await store.delete(KEY)
    assert await store.size(KEY) is None
    assert fake_s3.objects(bucket) == {}
    for key in ("../x.mp3", "/abs.mp3", "a//b.mp3", "a/./b"):
        with pytest.raises(RecordingRejected):
            await store.put(key, _chunked(b"x"))


async def test_a_closed_store_is_not_used_again(store: S3Store) -> None:
    await store.close()
    with pytest.raises(StorageError, match="closed"):
        await store.size(KEY)


# -- settings and the factory -----------------------------------------------------------------


def test_make_store_picks_the_configured_store(tmp_path: Path) -> None:
    local = make_store(RecordingsSettings(), str(tmp_path))
    assert isinstance(local, LocalStore) and local.root == (tmp_path / "recordings").resolve()
    s3 = make_store(RecordingsSettings(store="s3", s3_bucket="calls"), str(tmp_path))
    assert isinstance(s3, S3Store) and s3.bucket == "calls" and s3.prefix == ""


def test_without_aiobotocore_the_s3_store_is_a_config_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delitem(sys.modules, "ctibridge.recordings.s3")
    monkeypatch.setitem(sys.modules, "aiobotocore", None)
    monkeypatch.setitem(sys.modules, "aiobotocore.session", None)
    with pytest.raises(ConfigError, match=r"pip install 'ctibridge\[s3\]'"):
        make_store(RecordingsSettings(store="s3", s3_bucket="calls"), str(tmp_path))


def test_s3_settings_from_the_environment() -> None:
    settings = load(
        None,
        {
            "CTIBRIDGE_RECORDINGS_STORE": "s3",
            "CTIBRIDGE_RECORDINGS_S3_BUCKET": "pbx-recordings",
            "CTIBRIDGE_RECORDINGS_S3_PREFIX": "site-a/",
            "CTIBRIDGE_RECORDINGS_S3_ENDPOINT_URL": "https://minio.example.net:9000",
            "CTIBRIDGE_RECORDINGS_S3_PATH_STYLE": "true",
            "CTIBRIDGE_RECORDINGS_S3_ACCESS_KEY_ID": "AKIA1",
            "CTIBRIDGE_RECORDINGS_S3_SECRET_ACCESS_KEY": "hush",
        },
    )
    rec = settings.recordings
    assert (rec.store, rec.s3_bucket, rec.s3_prefix) == ("s3", "pbx-recordings", "site-a/")
    assert rec.s3_path_style and rec.s3_endpoint_url == "https://minio.example.net:9000"
    assert "hush" not in repr(settings)


def test_s3_settings_from_a_file(tmp_path: Path) -> None:
    path = tmp_path / "ctibridge.toml"
    path.write_text('[recordings]\nstore = "s3"\ns3_bucket = "calls"\ns3_region = "eu-west-2"\n')
    rec = load(str(path), {}).recordings
    assert (rec.s3_bucket, rec.s3_region, rec.s3_path_style) == ("calls", "eu-west-2", False)


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ({"store": "s3"}, "s3_bucket is required"),
        ({"store": "S3 "}, "recordings.store must be one of local, s3"),
        ({"store": "s3", "s3_bucket": "calls/2026"}, "s3_prefix"),
        ({"store": "s3", "s3_bucket": "x"}, "not a bucket name"),
        ({"store": "s3", "s3_bucket": "calls", "s3_prefix": "a//b"}, "s3_prefix"),
        ({"store": "s3", "s3_bucket": "calls", "s3_prefix": "a/../b"}, "s3_prefix"),
        ({"store": "s3", "s3_bucket": "calls", "s3_endpoint_url": "minio:9000"}, "endpoint_url"),
        ({"store": "s3", "s3_bucket": "calls", "s3_access_key_id": "AKIA1"}, "go together"),
        ({"store": "s3", "s3_bucket": "calls", "s3_secret_access_key": "x"}, "go together"),
        ({"store": "s3", "s3_bucket": "calls", "s3_max_attempts": 0}, "s3_max_attempts"),
        ({"store": "s3", "s3_bucket": "calls", "s3_path_style": "maybe"}, "s3_path_style"),
        ({"s3_bucket": "calls"}, 'set recordings.store = "s3"'),
        ({"request_timeout": 0}, "request_timeout"),
    ],
)
def test_bad_s3_settings_are_clear_errors(section: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(".", r"\.")):
        load(None, {}, {"recordings": section})


def test_secrets_are_not_in_the_settings_repr(fake_s3: FakeS3) -> None:
    assert "fake-secret-key" not in repr(fake_s3.settings("calls"))
