"""``S3Store``: recordings as objects in an S3-compatible bucket (AWS S3, MinIO, Ceph RGW,
Wasabi...), through aiobotocore (the ``s3`` extra: ``pip install 'ctibridge[s3]'``).

Object names are ``<prefix>/<key>``; the key (``<tenant>/<yyyy>/<mm>/<id>.<ext>``) is what the
``recordings`` table keeps, so moving the bucket's prefix only needs the setting changed.

Writes stream: a recording of up to ``part_size`` bytes is one ``PutObject``, a larger one a
multipart upload of ``part_size`` parts (at most one part in memory), completed only once
every part is in and aborted on any error. S3 has no partial objects, so a reader never sees
half a recording and a failed upload leaves nothing under the key (an abort that cannot reach
the store leaves an incomplete upload, invisible to readers; a bucket lifecycle rule
``AbortIncompleteMultipartUpload`` clears those). Reads are ranged ``GetObject`` requests,
streamed in :data:`~ctibridge.recordings.local.CHUNK` pieces.

Serving: ``GET /api/recordings/{id}`` streams ranged reads from the bucket through ctibridge;
it does not redirect the browser to a presigned URL. Because:

- the authorisation (the call's agents and the tenant's admins) is checked on every request,
  a seek included; a presigned URL would be a bearer link anyone could replay until it expires;
- the bucket need not be reachable from agents' browsers (a MinIO or Ceph on a private
  network is the usual case) nor answer CORS;
- the answers stay the same whatever the store: our ``ETag`` (the sha256), ``If-Range``, 416
  and the JSON errors, and the softphone's ``<audio>`` keeps one origin.

The cost is the recording's bytes passing through ctibridge, which a browser's player asks
for in ranges as it plays: small next to the audio a phone system carries anyway.

Errors: any failure of the store (unreachable, 5xx, refused credentials, no such bucket)
raises :class:`~ctibridge.errors.StorageError`, which the recordings worker retries like a
failed fetch (nothing is lost: the row stays ``pending``); a missing object is ``None`` from
:meth:`S3Store.size` and :class:`~ctibridge.recordings.base.RecordingMissing` from a read.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from collections.abc import AsyncIterable, AsyncIterator, Iterator
from typing import TYPE_CHECKING

import aiohttp
from aiobotocore.config import AioConfig
from aiobotocore.session import get_session
from botocore.exceptions import BotoCoreError, ClientError

from ctibridge.config import RecordingsSettings
from ctibridge.errors import StorageError
from ctibridge.recordings.base import (
    RecordingMissing,
    RecordingStore,
    StoredObject,
    content_type_for,
    key_parts,
)
from ctibridge.recordings.local import CHUNK

if TYPE_CHECKING:
    from types_aiobotocore_s3 import S3Client
    from types_aiobotocore_s3.type_defs import CompletedPartTypeDef

__all__ = ["PART_SIZE", "S3Store"]

logger = logging.getLogger(__name__)

PART_SIZE = 8 * 1024 * 1024
"""Bytes per part of a multipart upload (S3's minimum is 5 MiB, except for the last part)."""
MIN_PART_SIZE = 5 * 1024 * 1024
_MISSING = {"404", "NoSuchKey", "NotFound"}
_TRANSPORT_ERRORS = (BotoCoreError, aiohttp.ClientError, OSError, TimeoutError)


class S3Store(RecordingStore):
    def __init__(self, settings: RecordingsSettings, *, part_size: int = PART_SIZE) -> None:
        if not settings.s3_bucket:
            raise ValueError("S3Store needs recordings.s3_bucket")
        if part_size < MIN_PART_SIZE:
            raise ValueError(f"part_size must be at least {MIN_PART_SIZE} bytes")
        self.bucket = settings.s3_bucket
        self.prefix = settings.s3_prefix.strip("/")
        self._settings = settings
        self._part_size = part_size
        self._exits = contextlib.AsyncExitStack()
        self._s3: S3Client | None = None
        self._lock = asyncio.Lock()
        self._closed = False

    def __repr__(self) -> str:
        where = self._settings.s3_endpoint_url or "aws"
        return f"S3Store({where!r}, bucket={self.bucket!r}, prefix={self.prefix!r})"

    def name_of(self, key: str) -> str:
        """The object name of ``key`` in the bucket (``RecordingRejected`` for a bad key)."""
        name = "/".join(key_parts(key))
        return f"{self.prefix}/{name}" if self.prefix else name

    # -- the client --------------------------------------------------------------------------

    def _config(self) -> AioConfig:
        rec = self._settings
        return AioConfig(
            s3={"addressing_style": "path" if rec.s3_path_style else "auto"},
            retries={"mode": "standard", "max_attempts": rec.s3_max_attempts},
            connect_timeout=rec.request_timeout,
            read_timeout=rec.request_timeout,
            # Checksums only where S3 requires them: many S3-compatible stores refuse the
            # trailing checksums (aws-chunked bodies) newer botocore sends by default.
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        )

    async def _client(self) -> S3Client:
        async with self._lock:
            if self._closed:
                raise StorageError("recordings: the S3 store is closed")
            if self._s3 is None:
                self._s3 = await self._exits.enter_async_context(self._create_client())
            return self._s3

    def _create_client(self) -> contextlib.AbstractAsyncContextManager[S3Client]:
        rec = self._settings
        # Empty credentials are None: botocore's chain (environment, shared files, roles).
        return get_session().create_client(
            "s3",
            region_name=rec.s3_region or None,
            endpoint_url=rec.s3_endpoint_url or None,
            aws_access_key_id=rec.s3_access_key_id or None,
            aws_secret_access_key=rec.s3_secret_access_key or None,
            config=self._config(),
        )

    async def close(self) -> None:
        async with self._lock:
            self._closed = True
            self._s3 = None
            await self._exits.aclose()

    # -- RecordingStore ----------------------------------------------------------------------

    async def put(self, key: str, chunks: AsyncIterable[bytes]) -> StoredObject:
        name = self.name_of(key)
        s3 = await self._client()
        upload = _Upload(s3, self.bucket, name, content_type_for(key))
        digest = hashlib.sha256()
        size = 0
        buffer = bytearray()
        try:
            async for chunk in chunks:
                digest.update(chunk)
                size += len(chunk)
                buffer += chunk
                while len(buffer) >= self._part_size:
                    await upload.send_part(bytes(buffer[: self._part_size]))
                    del buffer[: self._part_size]
            await upload.finish(bytes(buffer))
        except BaseException:
            await upload.abort()
            raise
        return StoredObject(key, size, digest.hexdigest())

    async def size(self, key: str) -> int | None:
        name = self.name_of(key)
        s3 = await self._client()
        try:
            with _s3_errors(f"HeadObject {self.bucket}/{name}"):
                head = await s3.head_object(Bucket=self.bucket, Key=name)
        except _Missing:
            return None
        return head["ContentLength"]

    async def read(self, key: str, start: int, length: int) -> AsyncIterator[bytes]:
        if length <= 0:
            return
        name = self.name_of(key)
        s3 = await self._client()
        what = f"GetObject {self.bucket}/{name}"
        try:
            with _s3_errors(what):
                reply = await s3.get_object(
                    Bucket=self.bucket, Key=name, Range=f"bytes={start}-{start + length - 1}"
                )
        except _Missing as exc:
            raise RecordingMissing(f"recording {key} is not in the bucket") from exc
        async with reply["Body"] as body:
            left = length
            while left > 0:
                with _s3_errors(what):
                    chunk = await body.read(min(CHUNK, left))
                if not chunk:
                    return
                left -= len(chunk)
                yield chunk

    async def delete(self, key: str) -> None:
        name = self.name_of(key)
        s3 = await self._client()
        with _s3_errors(f"DeleteObject {self.bucket}/{name}"):
            await s3.delete_object(Bucket=self.bucket, Key=name)


class _Upload:
    """One object being written: a single ``PutObject`` unless a full part comes first, then
    a multipart upload."""

    def __init__(self, s3: S3Client, bucket: str, name: str, content_type: str) -> None:
        self._s3 = s3
        self._bucket = bucket
        self._name = name
        self._content_type = content_type
        self._upload_id: str | None = None
        self._parts: list[CompletedPartTypeDef] = []

    @property
    def _where(self) -> str:
        return f"{self._bucket}/{self._name}"

    async def send_part(self, data: bytes) -> None:
        if self._upload_id is None:
            with _s3_errors(f"CreateMultipartUpload {self._where}"):
                started = await self._s3.create_multipart_upload(
                    Bucket=self._bucket, Key=self._name, ContentType=self._content_type
                )
            self._upload_id = started["UploadId"]
        number = len(self._parts) + 1
        with _s3_errors(f"UploadPart {number} of {self._where}"):
            sent = await self._s3.upload_part(
                Bucket=self._bucket,
                Key=self._name,
                UploadId=self._upload_id,
                PartNumber=number,
                Body=data,
            )
        self._parts.append({"ETag": sent["ETag"], "PartNumber": number})

    async def finish(self, rest: bytes) -> None:
        """Write ``rest`` and make the object appear."""
        if self._upload_id is None:
            with _s3_errors(f"PutObject {self._where}"):
                await self._s3.put_object(
                    Bucket=self._bucket, Key=self._name, Body=rest, ContentType=self._content_type
                )
            return
        if rest:
            await self.send_part(rest)
        with _s3_errors(f"CompleteMultipartUpload {self._where}"):
            await self._s3.complete_multipart_upload(
                Bucket=self._bucket,
                Key=self._name,
                UploadId=self._upload_id,
                MultipartUpload={"Parts": self._parts},
            )
        self._upload_id = None

    async def abort(self) -> None:
        """Drop the parts sent so far (best effort: the store may be what failed)."""
        if self._upload_id is None:
            return
        upload_id, self._upload_id = self._upload_id, None
        try:
            with _s3_errors(f"AbortMultipartUpload {self._where}"):
                await self._s3.abort_multipart_upload(
                    Bucket=self._bucket, Key=self._name, UploadId=upload_id
                )
        except StorageError as exc:
            logger.warning(
                "recordings: incomplete upload %s of %s left in the bucket: %s",
                upload_id, self._where, exc.message,
            )  # fmt: skip


class _Missing(StorageError):
    """No such object (a 404): callers turn it into None or RecordingMissing."""


@contextlib.contextmanager
def _s3_errors(what: str) -> Iterator[None]:
    """Any failure of the store as a StorageError (retried); a 404 as _Missing."""
    try:
        yield
    except ClientError as exc:
        error = exc.response.get("Error", {})
        code = str(error.get("Code", ""))
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        if code in _MISSING:
            raise _Missing(f"s3: {what}: no such object") from exc
        message = f"s3: {what} failed: {status} {code} {error.get('Message', '')}".rstrip()
        raise StorageError(message, details={"code": code, "status": status}) from exc
    except _TRANSPORT_ERRORS as exc:
        raise StorageError(f"s3: {what} failed: {exc}") from exc
