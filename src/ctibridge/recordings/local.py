"""``LocalStore``: recordings as files under one directory (by default ``<data_dir>/recordings``).

Writes go to a temporary file beside the target, are flushed to disk, then renamed over it,
so a reader never sees half a recording and a crash leaves no partial file under a real key.
File I/O runs in worker threads; reads come back in chunks of :data:`CHUNK` bytes.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import secrets
from collections.abc import AsyncIterable, AsyncIterator
from pathlib import Path
from typing import BinaryIO

from ctibridge.errors import StorageError
from ctibridge.recordings.base import RecordingStore, StoredObject, key_parts

__all__ = ["CHUNK", "LocalStore"]

logger = logging.getLogger(__name__)

CHUNK = 64 * 1024


class LocalStore(RecordingStore):
    def __init__(self, directory: str | Path) -> None:
        self.root = Path(directory).resolve()

    def __repr__(self) -> str:
        return f"LocalStore({str(self.root)!r})"

    def path_of(self, key: str) -> Path:
        """The file of ``key``. Keys are ``/``-separated plain names: no ``..``, no root."""
        return self.root.joinpath(*key_parts(key))

    async def put(self, key: str, chunks: AsyncIterable[bytes]) -> StoredObject:
        path = self.path_of(key)
        temp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.part")
        try:
            await asyncio.to_thread(path.parent.mkdir, parents=True, exist_ok=True)
            fh = await asyncio.to_thread(temp.open, "wb")
        except OSError as exc:
            raise StorageError(f"recordings: cannot write {path}: {exc}") from exc
        try:
            stored = await _write(fh, chunks, key)
        except BaseException:
            await asyncio.to_thread(_discard, fh, temp)
            raise
        try:
            await asyncio.to_thread(os.replace, temp, path)
        except OSError as exc:
            await asyncio.to_thread(_discard, None, temp)
            raise StorageError(f"recordings: cannot write {path}: {exc}") from exc
        return stored

    async def size(self, key: str) -> int | None:
        try:
            return (await asyncio.to_thread(self.path_of(key).stat)).st_size
        except FileNotFoundError:
            return None

    async def read(self, key: str, start: int, length: int) -> AsyncIterator[bytes]:
        """Each chunk is read by a worker thread that opens the file, seeks, reads and closes
        it: nothing stays open between chunks, so a download the client abandons (or a
        server shutting down mid-response) leaves no open file behind, even if the
        response never closes this generator."""
        path = self.path_of(key)
        offset, end = start, start + length
        while offset < end:
            chunk = await asyncio.to_thread(_read_at, path, offset, min(CHUNK, end - offset))
            if not chunk:
                return
            offset += len(chunk)
            yield chunk

    async def delete(self, key: str) -> None:
        path = self.path_of(key)
        await asyncio.to_thread(path.unlink, missing_ok=True)

    async def close(self) -> None:
        """Nothing to release: files are opened per operation."""


async def _write(fh: BinaryIO, chunks: AsyncIterable[bytes], key: str) -> StoredObject:
    digest = hashlib.sha256()
    size = 0
    try:
        async for chunk in chunks:
            digest.update(chunk)
            size += len(chunk)
            await asyncio.to_thread(fh.write, chunk)
        await asyncio.to_thread(_sync_close, fh)
    except OSError as exc:
        raise StorageError(f"recordings: writing {key} failed: {exc}") from exc
    return StoredObject(key, size, digest.hexdigest())


def _read_at(path: Path, offset: int, size: int) -> bytes:
    with path.open("rb") as fh:
        fh.seek(offset)
        return fh.read(size)


def _sync_close(fh: BinaryIO) -> None:
    fh.flush()
    os.fsync(fh.fileno())
    fh.close()


def _discard(fh: BinaryIO | None, temp: Path) -> None:
    if fh is not None:
        fh.close()
    temp.unlink(missing_ok=True)
