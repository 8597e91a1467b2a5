"""The FreeSWITCH connector: inbound Event Socket, subscription, resync, events to the sink.

One session: TCP → ``auth/request`` → ``auth <password>`` → ``event plain <names>`` with
exactly the mapper's ``EVENT_NAMES`` → ``api show channels as json`` → ``mapper.snapshot``
→ ``sink.resync`` → events, in order, in batches. Events that arrive before the resync is
handed on wait in the queue; frames of other events are dropped by their ``Event-Name``
before their body is decoded. The queue holds at most ``queue_size`` events: when the sink
falls that far behind, the reader stops reading the socket until there is room (TCP pushes
back on the switch), and nothing is dropped. ``api status`` every ``ping_interval`` keeps
the session honest. The switch answers commands in the order they were sent, so replies are
matched first-in first-out. A broken stream (FrameError), a disconnect notice, a silent or closed
socket: backoff, reconnect, resync. A refused password or an ACL rejection is fatal
(PbxAuthError).

Call control (``connectors/esl_control.py``) sends its commands on this same session
(``session()``: no second connection): ``api()`` and ``bgapi()`` await the command's reply,
``expect()`` the first later event carrying a given ``Job-UUID`` or ``Unique-ID`` (the
``BACKGROUND_JOB`` of a ``bgapi``, the originated channel's first event), and ``allow()``
subscribes to an event the mapper does not read, once per session, on first use.
"""

from __future__ import annotations

import asyncio
import collections
import json
import logging
import time
from collections.abc import Callable, Iterable
from typing import Any, Final

from ctibridge.callstate.events import ChannelEvent
from ctibridge.callstate.freeswitch import EVENT_NAMES, FreeswitchMapper
from ctibridge.config import FreeswitchSettings
from ctibridge.connectors.base import (
    EventQueue,
    EventSink,
    QueueStats,
    Reconnector,
    close_writer,
)
from ctibridge.errors import FieldError, FrameError, PbxAuthError, PbxUnavailable
from ctibridge.protocols.esl import EslEvent, EslMessage, EslProtocol
from ctibridge.tasks import stop

__all__ = ["SUBSCRIPTION", "EslConnector"]

logger = logging.getLogger(__name__)

_READ: Final = 65536
_REPLIES: Final = frozenset({"command/reply", "api/response"})
SUBSCRIPTION: Final = tuple(sorted(EVENT_NAMES))
"""The event names we ask for (``event plain …``): exactly what the mapper reads."""


class _EventSocket:
    """One ESL connection: feeds the protocol, matches replies in order, queues events."""

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        *,
        where: str,
        reply_timeout: float,
        queue_size: int,
    ) -> None:
        self.protocol = EslProtocol()
        self._reader, self._writer = reader, writer
        self._where = where
        self._timeout = reply_timeout
        self._replies: collections.deque[asyncio.Future[EslMessage]] = collections.deque()
        self.queue: EventQueue[EslMessage] = EventQueue(queue_size)
        self._greeting: asyncio.Future[EslMessage] = asyncio.get_running_loop().create_future()
        self._failure: BaseException | None = None
        self._expected: dict[str, asyncio.Future[EslEvent]] = {}
        self._allowed: set[str] = set()
        self.received = 0

    async def greeting(self) -> EslMessage:
        """The first frame the switch sent (``auth/request`` from a FreeSWITCH)."""
        try:
            async with asyncio.timeout(self._timeout):
                return await asyncio.shield(self._greeting)
        except TimeoutError as exc:
            raise PbxUnavailable(f"freeswitch {self._where}: no auth/request") from exc

    async def ask(self, send: Callable[[EslProtocol], None]) -> EslMessage:
        """Send one command; its ``command/reply`` or ``api/response``."""
        if self._failure is not None:
            raise self._failure
        send(self.protocol)
        future: asyncio.Future[EslMessage] = asyncio.get_running_loop().create_future()
        self._replies.append(future)
        for data in self.protocol.data_to_send():
            self._writer.write(data)
        await self._writer.drain()
        try:
            async with asyncio.timeout(self._timeout):
                return await future
        except TimeoutError as exc:  # a late reply still goes to this (cancelled) future
            held = f" ({len(self.queue)} events wait for the sink)" if self.queue.holding else ""
            raise PbxUnavailable(f"freeswitch {self._where}: no reply in time{held}") from exc

    async def api(self, command: str, args: str = "") -> EslMessage:
        """A blocking ``api`` command on this session (call control); its ``api/response``."""
        return await self.ask(lambda p: p.api(command, args))

    async def bgapi(self, command: str, args: str, job_uuid: str) -> EslMessage:
        """A ``bgapi`` command; its ``command/reply`` (``+OK Job-UUID: …``). The result
        comes later as a ``BACKGROUND_JOB`` event with ``job_uuid`` (see ``expect``)."""

        def send(protocol: EslProtocol) -> None:
            protocol.bgapi(command, args, job_uuid)

        return await self.ask(send)

    def expect(self, *keys: str) -> asyncio.Future[EslEvent]:
        """The first event from now on whose ``Job-UUID`` or ``Unique-ID`` is one of
        ``keys``. Cancel the future to stop waiting; it fails with the session."""
        future: asyncio.Future[EslEvent] = asyncio.get_running_loop().create_future()
        if self._failure is not None:
            future.set_exception(self._failure)
            return future
        for key in keys:
            self._expected[key] = future

        def forget(_done: asyncio.Future[EslEvent]) -> None:
            for key in keys:
                if self._expected.get(key) is future:
                    del self._expected[key]

        future.add_done_callback(forget)
        return future

    async def allow(self, event: str) -> None:
        """Subscribe to ``event`` as well (once per session; subscriptions add up)."""
        if event in self._allowed:
            return
        reply = await self.ask(lambda p: p.subscribe([event]))
        if not reply.ok:
            raise PbxUnavailable(f"freeswitch: subscription to {event} refused: {reply.reply_text}")
        self._allowed.add(event)

    async def read(self) -> None:
        """Read until the socket closes or the stream breaks, then queue the reason. While
        the queue is full, nothing more is read."""
        reason: BaseException
        try:
            while data := await self._reader.read(_READ):
                await self._receive(data)
            await self._receive(None)
            reason = PbxUnavailable(f"freeswitch {self._where}: connection closed by the server")
        except FrameError as exc:
            logger.warning("freeswitch %s: broken ESL stream: %s", self._where, exc.message)
            reason = exc
        except OSError as exc:
            reason = PbxUnavailable(f"freeswitch {self._where}: connection lost ({exc!r})")
        except Exception as exc:  # a bug: stop the session and let run() raise it
            reason = exc
        self.fail(reason)

    async def _receive(self, data: bytes | None) -> None:
        """The sans-I/O step. Replies of this read go to their commands at once; its events
        then wait for room in the queue. Frames parsed before a FrameError, or before a
        notice that ends the session, are still handed on (then that error is raised)."""
        ended: Exception | None = None
        try:
            if data is None:
                self.protocol.receive_eof()
            else:
                self.protocol.receive_data(data)
        except FrameError as exc:
            ended = exc
        events: list[EslMessage] = []
        for frame in self.protocol.events_received():
            routed = self._dispatch(frame)
            if isinstance(routed, Exception):
                ended = routed
                break
            if routed is not None:
                events.append(routed)
        for frame in events:
            await self.queue.put(frame)
        if ended is not None:
            raise ended

    def _dispatch(self, frame: EslMessage) -> EslMessage | Exception | None:
        """Hand a reply to its command; an event the mapper reads is returned (to be
        queued), and so is the error a disconnect notice or a rejection ends the session
        with."""
        kind = frame.content_type
        if not self._greeting.done():
            self._greeting.set_result(frame)
        elif kind in _REPLIES:
            if self._replies:
                future = self._replies.popleft()
                if not future.done():
                    future.set_result(frame)
        elif frame.is_event:
            if self._expected:
                self._match(frame)
            self.received += 1
            name = frame.event_name
            if name is None or name in EVENT_NAMES:  # JSON, or one the mapper reads
                return frame
        elif kind == "text/disconnect-notice":
            notice = frame.text.strip().splitlines()[:1] or [""]
            return PbxUnavailable(f"freeswitch {self._where}: disconnected: {notice[0]}")
        elif kind == "text/rude-rejection":
            return PbxAuthError(f"freeswitch {self._where}: rejected: {frame.text.strip()}")
        return None

    def _match(self, frame: EslMessage) -> None:
        try:
            event = frame.event()
        except FieldError:
            return
        for key in (event.get("Job-UUID"), event.channel_id):
            future = self._expected.get(key or "")
            if future is not None and not future.done():
                future.set_result(event)

    def fail(self, reason: BaseException) -> None:
        if self._failure is not None:
            return
        self._failure = reason
        waiting: list[asyncio.Future[Any]] = [self._greeting, *self._replies]
        for future in [*waiting, *self._expected.values()]:
            if not future.done():
                future.set_exception(reason)
        self.queue.fail(reason)

    async def next_batch(self) -> list[EslMessage]:
        """The next events in order: waits for one, then takes what is already queued."""
        return await self.queue.next_batch()

    async def close(self) -> None:
        await close_writer(self._writer, self._timeout)


class EslConnector:
    """Drives one FreeSWITCH through its inbound event socket, until cancelled."""

    def __init__(
        self, settings: FreeswitchSettings, *, sink: EventSink, internal_digits: int = 5
    ) -> None:
        self._settings = settings
        self._sink = sink
        self._where = f"{settings.host}:{settings.port}"
        self._mapper = FreeswitchMapper(
            settings.tenant_id,
            internal_digits=internal_digits,
            agent_profiles=settings.agent_profiles,
            trunk_profiles=settings.trunk_profiles,
        )
        self._retry = Reconnector(
            "freeswitch", initial=settings.reconnect_initial, maximum=settings.reconnect_max
        )
        self._link: _EventSocket | None = None
        self._received = 0
        self._skipped = 0
        self._queues = QueueStats()

    def status(self) -> dict[str, Any]:
        link = self._link
        return {
            "pbx": "freeswitch",
            "connected": link is not None,
            "server": self._where,
            "tenant_id": self._settings.tenant_id,
            "reconnects": self._retry.retries,
            "last_error": self._retry.last_error,
            "events_received": self._received + (link.received if link else 0),
            "events_skipped": self._skipped,
            **self._queues.status(link.queue if link else None),
        }

    def session(self) -> _EventSocket:
        """The authenticated session, for call control; PbxUnavailable while there is none."""
        if self._link is None:
            raise PbxUnavailable(f"freeswitch {self._where} is not connected")
        return self._link

    async def run(self) -> None:
        """Connect, stream, reconnect on trouble. Raises PbxAuthError when refused."""
        while True:
            try:
                await self._session()
            except Exception as exc:
                await self._retry.wait(exc)

    async def _session(self) -> None:
        link = await self._connect()
        reader = asyncio.create_task(link.read())
        pinger: asyncio.Task[None] | None = None
        try:
            await self._login(link)
            await self._subscribe(link)
            await self._resync(link)
            self._link = link
            self._retry.connected()
            logger.info(
                "freeswitch: connected to %s for tenant %s", self._where, self._settings.tenant_id
            )
            pinger = asyncio.create_task(self._ping(link))
            await self._pump(link)
        finally:
            await self._detach(link, reader, pinger)

    async def _connect(self) -> _EventSocket:
        settings = self._settings
        try:
            async with asyncio.timeout(settings.request_timeout):
                reader, writer = await asyncio.open_connection(settings.host, settings.port)
        except OSError as exc:  # TimeoutError included
            raise PbxUnavailable(f"freeswitch: cannot connect to {self._where}: {exc!r}") from exc
        return _EventSocket(
            reader,
            writer,
            where=self._where,
            reply_timeout=settings.request_timeout,
            queue_size=settings.queue_size,
        )

    async def _detach(
        self, link: _EventSocket, reader: asyncio.Task[None], pinger: asyncio.Task[None] | None
    ) -> None:
        self._link = None
        self._received += link.received
        self._queues.session_ended(link.queue)
        try:
            await stop(reader, pinger)
        finally:  # closed even when run() is cancelled meanwhile
            await link.close()

    # -- login and subscription -------------------------------------------------------------------

    async def _login(self, link: _EventSocket) -> None:
        greeting = await link.greeting()
        if greeting.content_type == "text/rude-rejection":  # the switch's ACL refuses us
            raise PbxAuthError(f"freeswitch: {self._where} rejected us: {greeting.text.strip()}")
        if greeting.content_type != "auth/request":
            raise FrameError(
                f"freeswitch: {self._where} is not an event socket "
                f"(first frame {greeting.content_type or 'without Content-Type'!r})"
            )
        password = self._settings.password
        reply = await link.ask(lambda p: p.auth(password))
        if not reply.ok:
            raise PbxAuthError(f"freeswitch: password refused: {reply.reply_text or 'error'}")

    async def _subscribe(self, link: _EventSocket) -> None:
        reply = await link.ask(lambda p: p.subscribe(SUBSCRIPTION))
        if not reply.ok:
            raise PbxUnavailable(f"freeswitch: event subscription refused: {reply.reply_text}")

    async def _ping(self, link: _EventSocket) -> None:
        while True:
            await asyncio.sleep(self._settings.ping_interval)
            stalls = link.queue.stalls
            try:
                await link.ask(lambda p: p.api("status"))
            except Exception as exc:  # the session ends through the event queue
                if link.queue.held_back(exc, stalls):
                    continue  # the reply waits behind events we hold back: not the switch's fault
                link.fail(exc)
                return

    # -- resync and events ------------------------------------------------------------------------

    async def _resync(self, link: _EventSocket) -> None:
        at = time.time()
        reply = await link.ask(lambda p: p.api("show", "channels as json"))
        try:
            listing = json.loads(reply.body)
        except (ValueError, RecursionError) as exc:
            raise PbxUnavailable(f"freeswitch: show channels failed: {reply.text[:200]!r}") from exc
        if not isinstance(listing, dict):
            raise PbxUnavailable("freeswitch: show channels did not answer a JSON object")
        live = self._mapper.snapshot(listing, at)
        logger.info("freeswitch: resync %s: %d live leg(s)", self._settings.tenant_id, len(live))
        await self._sink.resync(self._settings.tenant_id, live, at)

    async def _pump(self, link: _EventSocket) -> None:
        while True:
            batch = await link.next_batch()
            events = list(self._map_all(batch))
            if events:
                await self._sink.events(events)

    def _map_all(self, batch: Iterable[EslMessage]) -> Iterable[ChannelEvent]:
        for frame in batch:
            try:
                event = frame.event()
                yield from self._mapper.feed(event)
            except FieldError as exc:
                self._skipped += 1
                logger.warning(
                    "freeswitch: skipped %s (tenant=%s unique_id=%s): %s",
                    frame.event_name or frame.content_type,
                    self._settings.tenant_id,
                    _unique_id(frame),
                    exc.message,
                )


def _unique_id(frame: EslMessage) -> str | None:
    try:
        return frame.event().channel_id
    except FieldError:
        return None
