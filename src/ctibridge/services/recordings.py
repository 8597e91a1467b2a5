"""Call recordings: fetched from the phone system when a call ends, stored, served to the
people who may hear them.

When a call ends with recordings, one row per recording goes into the ``recordings`` table
(state ``pending``); a worker fetches each from the PBX (:mod:`ctibridge.recordings`),
writes it to the store (a local directory or an S3-compatible bucket) and marks it
``stored`` with its size, type and sha256. A fetch or a write to the store that fails is
retried with backoff (jittered, doubling, capped) until ``max_attempts``, then the
row is ``failed``; on start every pending row is tried again at once. Nothing is lost when
the PBX or ctibridge is down: the rows are in the database.

Recording ids are derived from (tenant, PBX ref), so a call card can link to
``/api/recordings/{id}`` (:func:`recording_url`) before the fetch is done; each link says
its ``state`` (``pending``, ``stored``, ``failed``), so a browser offers to play only what
is stored (:mod:`ctibridge.services.recording_states`).

Legs that ended while we were away from the phone system (closed by a resync) named no
recordings: :mod:`ctibridge.services.recordings_away` asks the PBX for them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterable, AsyncIterator, Callable, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import PurePosixPath
from typing import Any, Protocol

from sqlalchemy.ext.asyncio import AsyncEngine

from ctibridge.callstate.events import Recording
from ctibridge.callstate.model import Call, CallChanged, CallEventName, CallState
from ctibridge.config import RecordingsSettings, Settings
from ctibridge.errors import CtiError, Forbidden, NoSuchCall, PbxUnavailable
from ctibridge.recordings.base import (
    RecordingFetcher,
    RecordingMissing,
    RecordingRejected,
    RecordingRow,
    RecordingState,
    RecordingStore,
    StoredObject,
    recording_id_for,
)
from ctibridge.recordings.files import FileFetcher
from ctibridge.recordings.index import HasEngine, RecordingIndex
from ctibridge.recordings.kazoo import KazooFetcher
from ctibridge.recordings.stores import make_store
from ctibridge.services.agents import Principal
from ctibridge.services.outbox import next_delay
from ctibridge.services.recording_states import RecordingStates
from ctibridge.services.recordings_away import FIND_DELAYS, AwayRecordings, ChannelEventSink
from ctibridge.storage.base import StoredCall
from ctibridge.tasks import stop
from ctibridge.types import CallId, TenantId

__all__ = [
    "API_PATH",
    "CallLookup",
    "RecordingsService",
    "build_recordings",
    "card_recordings",
    "recording_url",
]

logger = logging.getLogger(__name__)

API_PATH = "/api/recordings"
_QUEUE_ON = (CallEventName.ENDED, CallEventName.UPDATED)
_EXTENSIONS = {"audio/mpeg": ".mp3", "audio/wav": ".wav", "audio/ogg": ".ogg"}


def recording_url(tenant_id: str, ref: str) -> str:
    """Our URL of a PBX recording (absolute path; agents' browsers resolve it against us)."""
    return f"{API_PATH}/{recording_id_for(tenant_id, ref)}"


def card_recordings(call: Call) -> list[dict[str, Any]]:
    """``recordings`` of a call card: each PBX ref with our URL for it."""
    return [{"ref": r.ref, "url": recording_url(call.tenant_id, r.ref)} for r in call.recordings]


class CallLookup(Protocol):
    async def get(self, tenant_id: TenantId, call_id: CallId) -> StoredCall: ...


class RecordingsService:
    def __init__(
        self,
        *,
        index: RecordingIndex,
        store: RecordingStore,
        fetchers: Mapping[str, RecordingFetcher],
        calls: CallLookup,
        amend: ChannelEventSink | None = None,
        settings: RecordingsSettings | None = None,
        batch: int = 10,
        poll_interval: float = 30.0,
        clock: Callable[[], float] = time.time,
        find_delays: Sequence[float] = FIND_DELAYS,
    ) -> None:
        """``amend``: where recordings found for legs that ended while we were away are
        attached to their call (the calls service)."""
        self.index = index
        self.store = store
        self._fetchers = dict(fetchers)
        self._calls = calls
        self._settings = settings or RecordingsSettings()
        self._batch = batch
        self._poll = poll_interval
        self._clock = clock
        self._unsaved: list[RecordingRow] = []
        self._wake = asyncio.Event()
        self._worker: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[list[RecordingRow]]] = set()
        self.states = RecordingStates(index, clock=clock)
        self._away = AwayRecordings(
            fetchers=self._fetchers, sink=amend, queue=self.queue, delays=find_delays
        )

    # -- from ended calls to pending rows ------------------------------------------------------

    def on_call_changed(self, change: CallChanged, stored: StoredCall) -> None:
        """CallsService listener: an ended call's recordings are queued (in a task); so are
        ones a late DESTROY adds to it (an update after the end). When the call ended while
        we were away, its legs' recordings are looked for."""
        call = change.call
        if call.state is CallState.ENDED and call.recordings and change.name in _QUEUE_ON:
            task = asyncio.create_task(self.call_ended(change.call))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        if change.name is CallEventName.ENDED:
            self._away.call_ended(call)

    async def call_ended(self, call: Call) -> list[RecordingRow]:
        """Add a pending row per recording of ``call`` (kept in memory while the database is
        down) and wake the worker."""
        return await self.queue(call, call.recordings)

    async def queue(self, call: Call, recordings: Sequence[Recording]) -> list[RecordingRow]:
        """Add a pending row per recording (of ``call``) and wake the worker."""
        if call.pbx not in self._fetchers:
            logger.warning(
                "recordings of call %s not fetched: no fetcher for %s configured",
                call.call_id,
                call.pbx,
            )
            return []
        now = self._clock()
        rows = [
            RecordingRow(
                recording_id=recording_id_for(call.tenant_id, r.ref),
                tenant_id=TenantId(call.tenant_id),
                call_id=CallId(call.call_id),
                pbx=call.pbx,
                ref=r.ref,
                source_url=r.url,
                next_attempt_at=now,
                created_at=now,
            )
            for r in {r.ref: r for r in recordings}.values()  # one row per ref
        ]
        for row in rows:
            self.states.queued(row.recording_id)
        try:
            await self.index.add(rows)
        except CtiError as exc:
            logger.warning("recordings of call %s kept for later: %s", call.call_id, exc.message)
            self._unsaved.extend(rows)
        self.kick()
        return rows

    def card_extra(self, stored: StoredCall) -> dict[str, Any]:
        """Call-card decorator: the card's recordings link to us (when we fetch them), each
        with its state as far as this process knows (``pending`` when it does not)."""
        call = stored.call
        if not call.recordings or call.pbx not in self._fetchers:
            return {}
        return {"recordings": self.states.label(call.tenant_id, card_recordings(call))}

    async def add_states(self, cards: Sequence[dict[str, Any]]) -> None:
        """The REST API's cards: their recordings' states from the database."""
        await self.states.add_to(cards)

    # -- the worker ------------------------------------------------------------------------------

    def start(self) -> None:
        self._worker = asyncio.create_task(self._run(), name="recordings")

    async def stop(self) -> None:
        await self._away.stop()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        await stop(self._worker)
        self._worker = None
        for fetcher in self._fetchers.values():
            await fetcher.close()
        await self.store.close()

    def kick(self) -> None:
        """Fetch what is due now."""
        self._wake.set()

    async def _run(self) -> None:
        with contextlib.suppress(CtiError):
            await self.index.make_due(self._clock())  # retry pending rows at once on start
        while True:
            try:
                while await self.run_once() >= self._batch:
                    pass
            except CtiError as exc:
                logger.warning("recordings: fetch round failed: %s", exc.message)
            idle = await self._idle_time()  # before creating the wait, so nothing leaks
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(idle):
                    await self._wake.wait()
            self._wake.clear()

    async def _idle_time(self) -> float:
        try:
            due = await self.index.next_due()
        except CtiError:
            return self._poll
        if due is None:
            return self._poll
        return min(self._poll, max(0.0, due - self._clock()))

    async def run_once(self) -> int:
        """One round: save rows kept while the database was down, then try each due row
        once. Returns how many rows were tried."""
        if self._unsaved:
            await self.index.add(self._unsaved)
            self._unsaved.clear()
        rows = await self.index.due(self._clock(), self._batch)
        for row in rows:
            await self.fetch(row)
        return len(rows)

    async def fetch(self, row: RecordingRow) -> RecordingRow:
        """One attempt at ``row``; the row as saved after it."""
        try:
            done = await self._download(row)
        except RecordingRejected as exc:
            done = self._failed(row, exc.message)
        except Exception as exc:  # any failure is retried, up to max_attempts
            if not isinstance(exc, CtiError):
                logger.error("recordings: fetching %s broke", row.recording_id, exc_info=exc)
            done = self._retry(row, getattr(exc, "message", None) or repr(exc))
        await self.index.save(done)
        self.states.remember(done.recording_id, done.state)
        return done

    async def _download(self, row: RecordingRow) -> RecordingRow:
        fetcher = self._fetchers.get(row.pbx)
        if fetcher is None:
            raise PbxUnavailable(f"no fetcher for {row.pbx} configured")
        limit = self._settings.max_bytes
        async with fetcher.open(row) as download:
            if download.length is not None and download.length > limit:
                raise RecordingRejected(f"recording of {download.length} bytes: over {limit}")
            key = _store_key(row, download.content_type)
            obj = await self.store.put(key, _limited(download.chunks, limit))
        await self._check_not_empty(obj)
        logger.info(
            "recording %s of call %s stored: %d bytes, %s",
            row.recording_id, row.call_id, obj.size, download.content_type,
        )  # fmt: skip
        return replace(
            row,
            state=RecordingState.STORED,
            content_type=download.content_type,
            size=obj.size,
            sha256=obj.sha256,
            stored_path=obj.key,
            attempts=row.attempts + 1,
            last_error=None,
            stored_at=self._clock(),
        )

    async def _check_not_empty(self, obj: StoredObject) -> None:
        if obj.size == 0:
            await self.store.delete(obj.key)
            raise PbxUnavailable("the phone system sent an empty recording")

    def _retry(self, row: RecordingRow, error: str) -> RecordingRow:
        attempts = row.attempts + 1
        if attempts >= self._settings.max_attempts:
            return self._failed(row, f"gave up after {attempts} attempts: {error}")
        wait = next_delay(attempts, base=self._settings.retry_initial, cap=self._settings.retry_max)
        logger.info(
            "recording %s: attempt %d failed, next in %.1f s: %s",
            row.recording_id, attempts, wait, error,
        )  # fmt: skip
        return replace(
            row, attempts=attempts, last_error=error, next_attempt_at=self._clock() + wait
        )

    def _failed(self, row: RecordingRow, error: str) -> RecordingRow:
        logger.warning("recording %s (%s) failed for good: %s", row.recording_id, row.ref, error)
        attempts = row.attempts + 1
        return replace(row, state=RecordingState.FAILED, attempts=attempts, last_error=error)

    # -- reading ---------------------------------------------------------------------------------

    async def get(self, recording_id: str) -> RecordingRow:
        row = await self.index.get(recording_id)
        if row is None:
            raise RecordingMissing(f"no recording {recording_id}", details={"id": recording_id})
        return row

    async def for_call(self, tenant_id: TenantId, call_id: CallId) -> list[RecordingRow]:
        return await self.index.for_call(tenant_id, call_id)

    async def visible(self, recording_id: str, principal: Principal) -> RecordingRow:
        """The recording's row (stored or not), if ``principal`` may hear it: admins of its
        tenant, agents who handled or were rung for its call. RecordingMissing (404) or
        Forbidden (403)."""
        row = await self.get(recording_id)
        if not principal.can_see_tenant(row.tenant_id):
            raise Forbidden("not your tenant's recording")
        if not principal.is_admin and not await self._took_part(principal, row):
            raise Forbidden("not a call you handled or were rung for")
        return row

    async def readable(self, recording_id: str, principal: Principal) -> RecordingRow:
        """The stored recording, if ``principal`` may hear it (as :meth:`visible`)."""
        row = await self.visible(recording_id, principal)
        if row.state is not RecordingState.STORED:
            raise RecordingMissing(
                f"recording {recording_id} is not stored",
                details={"id": recording_id, "state": row.state.value},
            )
        return row

    async def _took_part(self, principal: Principal, row: RecordingRow) -> bool:
        try:
            stored = await self._calls.get(row.tenant_id, row.call_id)
        except NoSuchCall:
            return False
        return principal.agent_id in stored.handled_by + stored.rung

    async def size(self, row: RecordingRow) -> int:
        """The stored file's size; RecordingMissing when the file is gone."""
        size = await self.store.size(row.stored_path or "") if row.stored_path else None
        if size is None:
            logger.error("recording %s: stored file %s is gone", row.recording_id, row.stored_path)
            raise RecordingMissing(f"recording {row.recording_id} is gone from the store")
        return size

    def read(self, row: RecordingRow, start: int, length: int) -> AsyncIterator[bytes]:
        assert row.stored_path is not None
        return self.store.read(row.stored_path, start, length)


def _store_key(row: RecordingRow, content_type: str) -> str:
    when = datetime.fromtimestamp(row.created_at, UTC)
    suffix = _EXTENSIONS.get(content_type) or PurePosixPath(row.ref).suffix.lower()
    if not suffix[1:].isalnum():
        suffix = ".bin"
    tenant = "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in row.tenant_id) or "_"
    return f"{tenant}/{when:%Y}/{when:%m}/{row.recording_id}{suffix}"


async def _limited(chunks: AsyncIterable[bytes], limit: int) -> AsyncIterator[bytes]:
    total = 0
    async for chunk in chunks:
        total += len(chunk)
        if total > limit:
            raise RecordingRejected(f"recording larger than recordings.max_bytes ({limit})")
        yield chunk


# -- composition ------------------------------------------------------------------------------


def build_recordings(
    settings: Settings, *, storage: AsyncEngine | HasEngine, calls: CallLookup
) -> RecordingsService:
    """The service with the store and the fetchers the settings ask for; its table is in
    ``storage``'s database (a started ``SqlStorage``)."""
    return RecordingsService(
        index=RecordingIndex(storage),
        store=make_store(settings.recordings, settings.data_dir),
        fetchers=_fetchers(settings),
        calls=calls,
        amend=calls if isinstance(calls, ChannelEventSink) else None,
        settings=settings.recordings,
    )


def _fetchers(settings: Settings) -> dict[str, RecordingFetcher]:
    rec = settings.recordings
    fetchers: dict[str, RecordingFetcher] = {}
    if rec.kazoo_fetch and settings.kazoo.api_key:
        fetchers["kazoo"] = KazooFetcher(settings.kazoo)
    for pbx, pbx_dir, path, url in (
        ("asterisk", rec.asterisk_dir, rec.asterisk_path, rec.asterisk_url),
        ("freeswitch", rec.freeswitch_dir, rec.freeswitch_path, rec.freeswitch_url),
    ):
        if path or url:
            fetchers[pbx] = FileFetcher(
                pbx, pbx_dir=pbx_dir, path=path, url="" if path else url,
                timeout=rec.request_timeout,
            )  # fmt: skip
    return fetchers
