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
        fh = await asyncio.to_thread(self.path_of(key).open, "rb")
        try:
            await asyncio.to_thread(fh.seek, start)
            left = length
            while left > 0:
                chunk = await asyncio.to_thread(fh.read, min(CHUNK, left))
                if not chunk:
                    return
                left -= len(chunk)
                yield chunk
        finally:
            await asyncio.to_thread(fh.close)

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


def _sync_close(fh: BinaryIO) -> None:
    fh.flush()
    os.fsync(fh.fileno())
    fh.close()


def _discard(fh: BinaryIO | None, temp: Path) -> None:
    if fh is not None:
        fh.close()
    temp.unlink(missing_ok=True)
