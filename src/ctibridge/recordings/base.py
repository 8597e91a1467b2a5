"""Call recordings: the row we keep per recording, and what stores and fetchers provide.

A *fetcher* gets a recording's bytes from the phone system (Kazoo crossbar, files an
Asterisk or FreeSWITCH box wrote); a *store* keeps them (a local directory, or an
S3-compatible bucket). Both stream: a recording is never held in memory whole.

Errors: a fetch that may work later raises :class:`~ctibridge.errors.PbxUnavailable` (the PBX
is down, or has not finished writing the file); one that never will raises
:class:`RecordingRejected` (too large, a path outside the recordings directory).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import AsyncIterable, AsyncIterator
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from enum import StrEnum
from pathlib import PurePosixPath
from typing import Protocol

from ctibridge.errors import ConnectorError, NotFound
from ctibridge.types import CallId, TenantId

__all__ = [
    "Download",
    "RecordingFetcher",
    "RecordingMissing",
    "RecordingRejected",
    "RecordingRow",
    "RecordingState",
    "RecordingStore",
    "StoredObject",
    "content_type_for",
    "key_parts",
    "recording_id_for",
]

_CONTENT_TYPES = {
    ".mp3": "audio/mpeg",
    ".wav": "audio/wav",
    ".ogg": "audio/ogg",
    ".opus": "audio/ogg",
    ".flac": "audio/flac",
    ".gsm": "audio/x-gsm",
}
_ALIASES = {"audio/mp3": "audio/mpeg", "audio/x-wav": "audio/wav", "audio/wave": "audio/wav"}
OCTET_STREAM = "application/octet-stream"
_KEY_PART = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


class RecordingRejected(ConnectorError):
    """The recording can never be fetched as asked (too large, a path outside the root)."""

    error_id = "recording-rejected"


class RecordingMissing(NotFound):
    """No such recording, or it is not stored (yet)."""

    error_id = "no-such-recording"


class RecordingState(StrEnum):
    PENDING = "pending"
    """Not fetched yet; the worker tries again at ``next_attempt_at``."""
    STORED = "stored"
    FAILED = "failed"
    """Given up (too many attempts, or refused for good)."""


def recording_id_for(tenant_id: str, ref: str) -> str:
    """Our id of a PBX recording: the same ref in the same tenant is the same recording,
    whichever call (or merged call) reports it."""
    return hashlib.sha256(f"{tenant_id}\0{ref}".encode()).hexdigest()[:32]


def content_type_for(name: str, declared: str | None = None) -> str:
    """``declared`` (a response header) when it is audio, else by the file extension."""
    if declared:
        kind = declared.split(";", 1)[0].strip().lower()
        kind = _ALIASES.get(kind, kind)
        if kind.startswith("audio/"):
            return kind
    return _CONTENT_TYPES.get(PurePosixPath(name).suffix.lower(), OCTET_STREAM)


@dataclass(frozen=True, slots=True)
class RecordingRow:
    """One recording we know of, fetched or not."""

    recording_id: str
    tenant_id: TenantId
    call_id: CallId
    pbx: str
    ref: str
    """PBX reference: Kazoo media name or id, a file path on the PBX."""
    state: RecordingState = RecordingState.PENDING
    source_url: str | None = None
    """A URL the phone system gave with the recording, if any."""
    content_type: str | None = None
    size: int | None = None
    sha256: str | None = None
    stored_path: str | None = None
    """The key in the store."""
    attempts: int = 0
    next_attempt_at: float = 0.0
    last_error: str | None = None
    created_at: float = 0.0
    stored_at: float | None = None


def key_parts(key: str) -> list[str]:
    """The parts of a store key: ``/``-separated plain names (no ``..``, no root, nothing
    empty). RecordingRejected for any other key."""
    parts = key.split("/")
    if not all(_KEY_PART.match(part) for part in parts):
        raise RecordingRejected(f"recordings: unusable store key {key!r}")
    return parts


@dataclass(frozen=True, slots=True)
class StoredObject:
    key: str
    size: int
    sha256: str


class RecordingStore(Protocol):
    """Where recording bytes are kept, by key (``<tenant>/<yyyy>/<mm>/<id>.<ext>``).

    Store failures (a disk or an object store that fails or is unreachable) raise
    :class:`~ctibridge.errors.StorageError`: the worker retries the fetch later."""

    async def put(self, key: str, chunks: AsyncIterable[bytes]) -> StoredObject:
        """Write all of ``chunks`` under ``key``, atomically: on any error nothing is left
        (an existing object with that key is replaced only on success)."""

    async def size(self, key: str) -> int | None:
        """The object's size, None when there is none."""

    def read(self, key: str, start: int, length: int) -> AsyncIterator[bytes]:
        """``length`` bytes from offset ``start``, in chunks."""

    async def delete(self, key: str) -> None: ...

    async def close(self) -> None:
        """Release connections; the store is not used again."""


@dataclass(frozen=True, slots=True)
class Download:
    """An open download from the phone system."""

    content_type: str
    chunks: AsyncIterable[bytes]
    length: int | None = None
    """Declared size, when the PBX says it."""


class RecordingFetcher(Protocol):
    """Gets recordings of one kind of phone system."""

    def open(self, row: RecordingRow) -> AbstractAsyncContextManager[Download]:
        """The recording's bytes. PbxUnavailable: try later; RecordingRejected: never."""

    async def close(self) -> None: ...
