"""``FileFetcher``: recordings an Asterisk (MixMonitor) or FreeSWITCH (``record_session``)
system wrote as files.

The ref is the file's path as the PBX sees it, under ``pbx_dir`` (Asterisk
``/var/spool/asterisk/monitor``, FreeSWITCH ``/var/lib/freeswitch/recordings``); a relative
ref is relative to it. The same relative path is read from ``path`` (that directory mounted
here) or fetched from ``url`` (a web server on the PBX serving it). A file that is not there
yet is retried; a path outside the directory is refused.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path, PurePosixPath
from typing import BinaryIO
from urllib.parse import quote

import httpx

from ctibridge.errors import PbxUnavailable
from ctibridge.recordings._http import check_status, declared_length, get_stream
from ctibridge.recordings.base import (
    Download,
    RecordingFetcher,
    RecordingRejected,
    RecordingRow,
    content_type_for,
)
from ctibridge.recordings.local import CHUNK

__all__ = ["FileFetcher"]


class FileFetcher(RecordingFetcher):
    def __init__(
        self,
        pbx: str,
        *,
        pbx_dir: str,
        path: str = "",
        url: str = "",
        http: httpx.AsyncClient | None = None,
        timeout: float = 30.0,
    ) -> None:
        if bool(path) == bool(url):
            raise ValueError("FileFetcher needs exactly one of path and url")
        self.pbx = pbx
        self._pbx_dir = PurePosixPath(pbx_dir)
        self._root = Path(path).resolve() if path else None
        self._url = url.rstrip("/")
        self._http = http
        self._own_http = http is None and bool(url)
        self._timeout = timeout

    def __repr__(self) -> str:
        return f"FileFetcher({self.pbx!r}, from={str(self._root or self._url)!r})"

    def relative(self, ref: str) -> PurePosixPath:
        """The ref's path below the PBX's recordings directory."""
        path = PurePosixPath(ref)
        if path.is_absolute():
            if not path.is_relative_to(self._pbx_dir):
                raise RecordingRejected(
                    f"{self.pbx}: recording {ref} is outside {self._pbx_dir}",
                    details={"hint": f"set recordings.{self.pbx}_dir"},
                )
            path = path.relative_to(self._pbx_dir)
        if not path.parts or ".." in path.parts:
            raise RecordingRejected(f"{self.pbx}: unusable recording path {ref!r}")
        return path

    @asynccontextmanager
    async def open(self, row: RecordingRow) -> AsyncIterator[Download]:
        relative = self.relative(row.ref)
        opener = self._open_local if self._root is not None else self._open_remote
        async with opener(relative) as download:
            yield download

    async def close(self) -> None:
        if self._own_http and self._http is not None:
            await self._http.aclose()
            self._http = None

    # -- local files --------------------------------------------------------------------------

    def _local_file(self, relative: PurePosixPath) -> Path:
        assert self._root is not None
        path = self._root.joinpath(*relative.parts).resolve()
        if not path.is_relative_to(self._root):
            raise RecordingRejected(f"{self.pbx}: {relative} leads outside {self._root}")
        return path

    @asynccontextmanager
    async def _open_local(self, relative: PurePosixPath) -> AsyncIterator[Download]:
        path = self._local_file(relative)
        try:
            fh = await asyncio.to_thread(path.open, "rb")
            size = (await asyncio.to_thread(path.stat)).st_size
        except FileNotFoundError as exc:
            raise PbxUnavailable(f"{self.pbx}: {path} is not there (yet)") from exc
        except OSError as exc:
            raise PbxUnavailable(f"{self.pbx}: cannot read {path}: {exc}") from exc
        try:
            yield Download(content_type_for(path.name), _chunks(fh), size)
        finally:
            await asyncio.to_thread(fh.close)

    # -- over HTTP ----------------------------------------------------------------------------

    def _client(self) -> httpx.AsyncClient:
        if self._http is None:
            self._http = httpx.AsyncClient(timeout=self._timeout)
        return self._http

    @asynccontextmanager
    async def _open_remote(self, relative: PurePosixPath) -> AsyncIterator[Download]:
        url = f"{self._url}/{quote(str(relative))}"
        what = f"{self.pbx}: GET {url}"
        async with get_stream(
            self._client(), url, headers={}, timeout=self._timeout, what=what
        ) as reply:
            check_status(reply, what)
            kind = content_type_for(relative.name, reply.headers.get("content-type"))
            yield Download(kind, reply.aiter_bytes(CHUNK), declared_length(reply))


async def _chunks(fh: BinaryIO) -> AsyncIterator[bytes]:
    while chunk := await asyncio.to_thread(fh.read, CHUNK):
        yield chunk
