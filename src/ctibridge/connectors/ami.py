"""The Asterisk connector: AMI login, event filters, CoreShowChannels resync, events to the sink.

One session: TCP → banner ``Asterisk Call Manager/…`` → ``Login`` (plain, or ``Challenge``
then an MD5 ``Key``) with the event mask ``call,dialplan`` → two ``Filter`` actions, so only
the events the mapper reads cross the wire → ``CoreShowChannels`` (the ``CoreShowChannel``
list up to ``CoreShowChannelsComplete``) → ``mapper.snapshot`` → ``sink.resync`` → events,
in order, in batches. Events that arrive before the resync is handed on wait in the queue.
The queue holds at most ``queue_size`` events: when the sink falls that far behind, the
reader stops reading the socket until there is room (TCP pushes back on Asterisk), and
nothing is dropped.
A ``Ping`` every ``ping_interval`` keeps the session honest. A broken stream (FrameError,
wrong banner), a silent or closed socket: backoff, reconnect, log in, resync. Refused
credentials are fatal (PbxAuthError).

Call control (``connectors/ami_control.py``) sends its actions on this same session
(``session()``: no second login): ``action()`` awaits the reply by ``ActionID``,
``expect()`` the first later event carrying a given ActionID or Uniqueid (an
``OriginateResponse``, the originated channel's ``Newchannel``), and ``allow()`` adds a
filter for an event the mapper does not read, once per session, on first use.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Final

from ctibridge.callstate.asterisk import EVENT_NAMES, AsteriskMapper
from ctibridge.callstate.events import ChannelEvent
from ctibridge.config import AsteriskSettings
from ctibridge.connectors.base import (
    EventQueue,
    EventSink,
    QueueStats,
    Reconnector,
    close_writer,
)
from ctibridge.errors import FieldError, FrameError, PbxAuthError, PbxUnavailable
from ctibridge.protocols.ami import AmiMessage, AmiProtocol, Headers
from ctibridge.tasks import stop

__all__ = ["EVENT_MASK", "FILTERS", "ORIGIN_VARS", "AmiConnector"]

logger = logging.getLogger(__name__)

_READ: Final = 65536
EVENT_MASK: Final = "call,dialplan"
"""Event classes we ask for at login: every event the mapper reads is in one of them."""
ORIGIN_VARS: Final = ("CTIBRIDGE_REQ", "CTI_REQUEST")
"""Our click-to-dial variables (the mapper's defaults, passed to it explicitly)."""
_VARIABLES: Final = ("MIXMONITOR_FILENAME", *ORIGIN_VARS)


def _nocase(name: str) -> str:
    """A POSIX ERE matching ``name`` in any case (Asterisk variable names are not cased)."""
    return "".join(f"[{c.upper()}{c.lower()}]" if c.isalpha() else c for c in name)


FILTERS: Final = (
    f"Event: ({'|'.join(sorted(EVENT_NAMES - {'VarSet'}))})[[:space:]]",
    f"Event: VarSet[[:space:]].*[[:space:]]Variable: _{{0,2}}"
    f"({'|'.join(map(_nocase, _VARIABLES))})[[:space:]]",
)
"""``Filter`` regexes (POSIX ERE over the whole event text; several include filters add up).
The first lets through the events the mapper reads, by exact name; the second only the
``VarSet`` of the variables it reads (about half of all dialplan traffic is ``VarSet``).
Neither is anchored with ``^``: letting a stray ``UserEvent: Hangup`` through costs a dict
lookup, while an anchor that some Asterisk did not honour would silence every event."""


@dataclass(slots=True)
class _Pending:
    """An action waiting for its reply (or, for a list action, its whole list)."""

    future: asyncio.Future[list[AmiMessage]]
    listing: bool
    items: list[AmiMessage] = field(default_factory=list)

    def add(self, message: AmiMessage) -> None:
        self.items.append(message)
        failed = message.is_response and (message.get("Response") or "").lower() != "success"
        complete = (message.get("EventList") or "").lower() == "complete"
        if (not self.listing or failed or complete) and not self.future.done():
            self.future.set_result(self.items)


class _Manager:
    """One AMI connection: feeds the protocol, matches replies by ActionID, queues events."""

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        *,
        where: str,
        reply_timeout: float,
        queue_size: int,
    ) -> None:
        self.protocol = AmiProtocol(action_prefix="ctibridge")
        self._reader, self._writer = reader, writer
        self._where = where
        self._timeout = reply_timeout
        self._pending: dict[str, _Pending] = {}
        self.queue: EventQueue[tuple[AmiMessage, float]] = EventQueue(queue_size)
        self._banner = asyncio.get_running_loop().create_future()
        self._failure: BaseException | None = None
        self._expected: dict[str, asyncio.Future[AmiMessage]] = {}
        self._allowed: set[str] = set()
        self.received = 0

    async def banner(self) -> str:
        try:
            async with asyncio.timeout(self._timeout):
                return await asyncio.shield(self._banner)
        except TimeoutError as exc:
            raise PbxUnavailable(f"asterisk {self._where}: no banner") from exc

    async def ask(self, send: Callable[[AmiProtocol], str]) -> AmiMessage:
        """Send one action; its reply."""
        return (await self._request(send, listing=False))[0]

    async def collect(self, send: Callable[[AmiProtocol], str]) -> list[AmiMessage]:
        """Send one list action; its reply, the listed events and the ``…Complete`` event."""
        return await self._request(send, listing=True)

    async def action(
        self, name: str, headers: Headers = (), *, action_id: str | None = None
    ) -> AmiMessage:
        """Send one action on this session (call control); its reply."""
        return await self.ask(lambda p: p.send_action(name, headers, action_id))

    def expect(self, *keys: str) -> asyncio.Future[AmiMessage]:
        """The first event from now on whose ActionID or Uniqueid is one of ``keys``.
        Cancel the future to stop waiting; it fails with the session."""
        future: asyncio.Future[AmiMessage] = asyncio.get_running_loop().create_future()
        if self._failure is not None:
            future.set_exception(self._failure)
            return future
        for key in keys:
            self._expected[key] = future

        def forget(_done: asyncio.Future[AmiMessage]) -> None:
            for key in keys:
                if self._expected.get(key) is future:
                    del self._expected[key]

        future.add_done_callback(forget)
        return future

    async def allow(self, event: str) -> None:
        """Let ``event`` through this session's filters as well (once per session)."""
        if event in self._allowed:
            return
        reply = await self.ask(_add_filter(f"Event: {event}[[:space:]]"))
        self._allowed.add(event)
        if (reply.get("Response") or "").lower() != "success":
            logger.warning(
                "asterisk %s: filter for %s refused: %s", self._where, event, reply.get("Message")
            )

    async def _request(
        self, send: Callable[[AmiProtocol], str], *, listing: bool
    ) -> list[AmiMessage]:
        if self._failure is not None:
            raise self._failure
        action_id = send(self.protocol)
        future: asyncio.Future[list[AmiMessage]] = asyncio.get_running_loop().create_future()
        self._pending[action_id] = _Pending(future, listing)
        try:
            await self._flush()
            async with asyncio.timeout(self._timeout):
                return await future
        except TimeoutError as exc:
            held = f" ({len(self.queue)} events wait for the sink)" if self.queue.holding else ""
            raise PbxUnavailable(f"asterisk {self._where}: no reply to {action_id}{held}") from exc
        finally:
            self._pending.pop(action_id, None)

    async def _flush(self) -> None:
        for data in self.protocol.data_to_send():
            self._writer.write(data)
        await self._writer.drain()

    async def read(self) -> None:
        """Read until the socket closes or the stream breaks, then queue the reason. While
        the queue is full, nothing more is read."""
        reason: BaseException
        try:
            while data := await self._reader.read(_READ):
                await self._receive(data)
            if self.protocol.banner is not None:  # else the server hung up before a word
                await self._receive(None)
            reason = PbxUnavailable(f"asterisk {self._where}: connection closed by the server")
        except FrameError as exc:
            if self.protocol.banner is None:
                logger.error("asterisk %s: not an Asterisk manager: %s", self._where, exc.message)
            else:
                logger.warning("asterisk %s: broken AMI stream: %s", self._where, exc.message)
            reason = exc
        except OSError as exc:
            reason = PbxUnavailable(f"asterisk {self._where}: connection lost ({exc!r})")
        except Exception as exc:  # a bug: stop the session and let run() raise it
            reason = exc
        self.fail(reason)

    async def _receive(self, data: bytes | None) -> None:
        """The sans-I/O step. Replies of this read go to their actions at once; its events
        then wait for room in the queue. Messages parsed before a FrameError are still
        handed on."""
        broken: FrameError | None = None
        try:
            if data is None:
                self.protocol.receive_eof()
            else:
                self.protocol.receive_data(data)
        except FrameError as exc:
            broken = exc
        at = time.time()
        events = [m for m in self.protocol.events_received() if self._dispatch(m)]
        if self.protocol.banner is not None and not self._banner.done():
            self._banner.set_result(self.protocol.banner)
        for message in events:
            await self.queue.put((message, at))
        if broken is not None:
            raise broken

    def _dispatch(self, message: AmiMessage) -> bool:
        """Hand a reply to its action; True for an event the mapper reads (to be queued)."""
        if self._expected and message.is_event:
            self._match(message)
        pending = self._pending.get(message.action_id or "")
        if pending is not None:
            pending.add(message)
            return False
        if not message.is_event:
            return False
        self.received += 1
        return message.name in EVENT_NAMES  # skip the rest before it reaches the mapper

    def _match(self, message: AmiMessage) -> None:
        for key in (message.action_id, message.channel_id):
            future = self._expected.get(key or "")
            if future is not None and not future.done():
                future.set_result(message)

    def fail(self, reason: BaseException) -> None:
        if self._failure is not None:
            return
        self._failure = reason
        waiting = [self._banner, *(p.future for p in self._pending.values())]
        for future in [*waiting, *self._expected.values()]:
            if not future.done():
                future.set_exception(reason)
        self.queue.fail(reason)

    async def next_batch(self) -> list[tuple[AmiMessage, float]]:
        """The next events in order: waits for one, then takes what is already queued."""
        return await self.queue.next_batch()

    async def close(self) -> None:
        await close_writer(self._writer, self._timeout)


class AmiConnector:
    """Drives one Asterisk through its manager interface, until cancelled."""

    def __init__(
        self, settings: AsteriskSettings, *, sink: EventSink, internal_digits: int = 5
    ) -> None:
        self._settings = settings
        self._sink = sink
        self._where = f"{settings.host}:{settings.port}"
        self._mapper = AsteriskMapper(
            settings.tenant_id,
            internal_digits=internal_digits,
            agent_pattern=settings.agent_pattern or None,
            trunk_pattern=settings.trunk_pattern or None,
            origin_vars=ORIGIN_VARS,
        )
        self._retry = Reconnector(
            "asterisk", initial=settings.reconnect_initial, maximum=settings.reconnect_max
        )
        self._link: _Manager | None = None
        self._version: str | None = None
        self._received = 0
        self._skipped = 0
        self._filtered = False
        self._queues = QueueStats()

    def status(self) -> dict[str, Any]:
        link = self._link
        return {
            "pbx": "asterisk",
            "connected": link is not None,
            "server": self._where,
            "tenant_id": self._settings.tenant_id,
            "ami_version": self._version,
            "filtered": self._filtered,
            "reconnects": self._retry.retries,
            "last_error": self._retry.last_error,
            "events_received": self._received + (link.received if link else 0),
            "events_skipped": self._skipped,
            **self._queues.status(link.queue if link else None),
        }

    def session(self) -> _Manager:
        """The logged-in session, for call control; PbxUnavailable while there is none."""
        if self._link is None:
            raise PbxUnavailable(f"asterisk {self._where} is not connected")
        return self._link

    async def run(self) -> None:
        """Connect, stream, reconnect on trouble. Raises PbxAuthError when login is refused."""
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
            self._version = (await link.banner()).partition("/")[2]
            await self._login(link)
            await self._filter(link)
            await self._resync(link)
            self._link = link
            self._retry.connected()
            logger.info(
                "asterisk: connected to %s (AMI %s) for tenant %s",
                self._where,
                self._version,
                self._settings.tenant_id,
            )
            pinger = asyncio.create_task(self._ping(link))
            await self._pump(link)
        finally:
            await self._detach(link, reader, pinger)

    async def _connect(self) -> _Manager:
        settings = self._settings
        try:
            async with asyncio.timeout(settings.request_timeout):
                reader, writer = await asyncio.open_connection(settings.host, settings.port)
        except OSError as exc:  # TimeoutError included
            raise PbxUnavailable(f"asterisk: cannot connect to {self._where}: {exc!r}") from exc
        return _Manager(
            reader,
            writer,
            where=self._where,
            reply_timeout=settings.request_timeout,
            queue_size=settings.queue_size,
        )

    async def _detach(
        self, link: _Manager, reader: asyncio.Task[None], pinger: asyncio.Task[None] | None
    ) -> None:
        self._link = None
        self._received += link.received
        self._queues.session_ended(link.queue)
        try:
            await stop(reader, pinger)
        finally:  # closed even when run() is cancelled meanwhile
            await link.close()

    # -- login and filters ------------------------------------------------------------------------

    async def _login(self, link: _Manager) -> None:
        settings = self._settings
        user, secret = settings.username, settings.secret
        if settings.auth == "md5":
            challenge = await link.ask(lambda p: p.challenge())
            _refused(challenge, f"asterisk: MD5 challenge refused for {user!r} (try auth=plain)")
            code = challenge.get("Challenge") or ""
            reply = await link.ask(lambda p: p.login_md5(user, secret, code, events=EVENT_MASK))
        else:
            reply = await link.ask(lambda p: p.login(user, secret, events=EVENT_MASK))
        _refused(reply, f"asterisk: login refused for {user!r}")

    async def _filter(self, link: _Manager) -> None:
        """Ask the server to send only what we read; without them, the mask still applies."""
        refused = []
        for regex in FILTERS:
            reply = await link.ask(_add_filter(regex))
            if (reply.get("Response") or "").lower() != "success":
                refused.append(reply.get("Message") or "error")
        self._filtered = not refused
        if refused:
            logger.warning(
                "asterisk: %s refused the event filters (%s): every %s event will arrive",
                self._where,
                "; ".join(refused),
                EVENT_MASK,
            )

    async def _ping(self, link: _Manager) -> None:
        while True:
            await asyncio.sleep(self._settings.ping_interval)
            stalls = link.queue.stalls
            try:
                await link.ask(lambda p: p.ping())
            except Exception as exc:  # the session ends through the event queue
                if link.queue.held_back(exc, stalls):
                    continue  # the pong waits behind events we hold back: not the PBX's fault
                link.fail(exc)
                return

    # -- resync and events ------------------------------------------------------------------------

    async def _resync(self, link: _Manager) -> None:
        at = time.time()
        listing = await link.collect(lambda p: p.send_action("CoreShowChannels"))
        reply = listing[0]
        if (reply.get("Response") or "").lower() != "success":
            text = reply.get("Message") or "error"
            if "permission" in text.lower():
                raise PbxAuthError(f"asterisk: CoreShowChannels refused ({text})")
            raise PbxUnavailable(f"asterisk: CoreShowChannels failed ({text})")
        channels = [m for m in listing if m.name == "CoreShowChannel"]
        live = self._mapper.snapshot(channels, at)
        logger.info(
            "asterisk: resync %s: %d channel(s), %d live leg(s)",
            self._settings.tenant_id,
            len(channels),
            len(live),
        )
        await self._sink.resync(self._settings.tenant_id, live, at)

    async def _pump(self, link: _Manager) -> None:
        while True:
            batch = await link.next_batch()
            events = list(self._map_all(batch))
            if events:
                await self._sink.events(events)

    def _map_all(self, batch: Iterable[tuple[AmiMessage, float]]) -> Iterable[ChannelEvent]:
        for message, at in batch:
            try:
                yield from self._mapper.feed(message, received_at=at)
            except FieldError as exc:
                self._skipped += 1
                logger.warning(
                    "asterisk: skipped %s (tenant=%s channel=%s uniqueid=%s): %s",
                    message.name,
                    self._settings.tenant_id,
                    message.get("Channel"),
                    message.channel_id,
                    exc.message,
                )


def _add_filter(regex: str) -> Callable[[AmiProtocol], str]:
    return lambda p: p.send_action("Filter", {"Operation": "Add", "Filter": regex})


def _refused(reply: AmiMessage, what: str) -> None:
    if (reply.get("Response") or "").lower() != "success":
        raise PbxAuthError(f"{what}: {reply.get('Message') or 'error'}")
