"""The Kazoo connector: crossbar login, blackhole subscriptions, resync, events to the sink.

One session: ``PUT /v2/api_auth`` → websocket → one ``subscribe`` per binding per account →
``GET .../channels`` per account handed to ``sink.resync`` → events, in order, in batches.
Events that arrive while subscribing and resyncing wait in the queue, so the sink sees the
resync first and every later event after it. The queue holds at most ``queue_size`` events:
when the sink falls that far behind, the reader stops reading the websocket until there is
room (TCP pushes back on Kazoo), and nothing is dropped. A dropped socket means backoff,
reconnect, resubscribe, resync; a refused token means one re-login; a refused API key is fatal.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import secrets
import time
from collections.abc import Callable
from typing import Any

import httpx
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from ctibridge.callstate.events import ChannelEvent
from ctibridge.callstate.kazoo import map_channel, map_event
from ctibridge.config import KazooSettings
from ctibridge.connectors.base import EventQueue, EventSink, QueueStats, Reconnector
from ctibridge.connectors.kazoo_auth import CrossbarAuth, TokenRejected, reply_json
from ctibridge.errors import FieldError, PbxAuthError, PbxUnavailable
from ctibridge.protocols import kazoo as proto
from ctibridge.tasks import stop

__all__ = ["KazooConnector"]

logger = logging.getLogger(__name__)

_TOKEN_ERRORS = ("authentication token required", "failed to authenticate token", "invalid token")
_ACCOUNT_ERRORS = ("unauthorized account id", "unauthorized wildcard account id")


class _Blackhole:
    """One websocket: matches replies to requests and queues events in arrival order."""

    def __init__(
        self,
        ws: ClientConnection,
        *,
        accounts: str,
        max_bytes: int,
        reply_timeout: float,
        queue_size: int,
    ) -> None:
        self.ws = ws
        self._accounts = accounts
        self._max_bytes = max_bytes
        self._reply_timeout = reply_timeout
        self._pending: dict[str, asyncio.Future[proto.KazooReply]] = {}
        self.queue: EventQueue[proto.KazooEvent] = EventQueue(queue_size)
        self.received = 0
        self.malformed = 0

    async def request(self, build: Callable[[str], str]) -> proto.KazooReply:
        request_id = secrets.token_hex(8)
        future: asyncio.Future[proto.KazooReply] = asyncio.get_running_loop().create_future()
        self._pending[request_id] = future
        try:
            await self.ws.send(build(request_id))
            async with asyncio.timeout(self._reply_timeout):
                return await future
        except TimeoutError as exc:
            held = f" ({len(self.queue)} events wait for the sink)" if self.queue.holding else ""
            raise PbxUnavailable(f"kazoo: no reply to request {request_id}{held}") from exc
        finally:
            self._pending.pop(request_id, None)

    async def read(self) -> None:
        """Read until the socket closes, then queue the reason for :meth:`next_batch`.
        While the queue is full, no frame is read (replies included)."""
        reason: BaseException
        try:
            async for frame in self.ws:
                event = self._on_frame(frame)
                if event is not None:
                    await self.queue.put(event)
            reason = PbxUnavailable("kazoo: websocket closed")
        except ConnectionClosed as exc:
            reason = PbxUnavailable(f"kazoo: websocket lost ({exc})")
        except Exception as exc:  # a bug: stop the session and let run() raise it
            reason = exc
        self.fail(reason)

    def fail(self, reason: BaseException) -> None:
        for future in self._pending.values():
            if not future.done():
                future.set_exception(reason)
        self.queue.fail(reason)

    async def next_batch(self) -> list[proto.KazooEvent]:
        """The next events in order: waits for one, then takes what is already queued."""
        return await self.queue.next_batch()

    def _on_frame(self, frame: str | bytes) -> proto.KazooEvent | None:
        """Parse one frame: a reply goes to its request at once; an event is returned."""
        try:
            message = proto.parse(frame, max_bytes=self._max_bytes)
        except FieldError as exc:
            self.received += 1
            self.malformed += 1
            call_id = exc.details.get("call_id") or "?"
            logger.warning(
                "kazoo: skipped frame (account=%s call_id=%s): %s",
                self._accounts,
                call_id,
                exc.message,
            )
            return None
        if isinstance(message, proto.KazooReply):
            future = self._pending.get(message.request_id or "")
            if future is not None and not future.done():
                future.set_result(message)
            return None
        self.received += 1
        return message


class KazooConnector:
    """Drives one Kazoo cluster for the configured accounts, until cancelled."""

    def __init__(
        self,
        settings: KazooSettings,
        *,
        sink: EventSink,
        internal_digits: int = 5,
        http: httpx.AsyncClient | None = None,
        auth: CrossbarAuth | None = None,
    ) -> None:
        self._settings = settings
        self._sink = sink
        self._internal_digits = internal_digits
        self._http = http
        self._auth = auth or CrossbarAuth(settings)
        """The crossbar token, shared with call control when the runtime passes one."""
        self._refused: set[str] = set()
        self._retry = Reconnector(
            "kazoo", initial=settings.reconnect_initial, maximum=settings.reconnect_max
        )
        self._link: _Blackhole | None = None
        self._received = 0
        self._skipped = 0
        self._queues = QueueStats()

    def status(self) -> dict[str, Any]:
        link = self._link
        return {
            "connected": link is not None,
            "accounts": self._accounts(),
            "reconnects": self._retry.retries,
            "last_error": self._retry.last_error,
            "events_received": self._received + (link.received if link else 0),
            "events_skipped": self._skipped + (link.malformed if link else 0),
            **self._queues.status(link.queue if link else None),
        }

    async def run(self) -> None:
        """Connect, stream, reconnect on trouble. Raises PbxAuthError when the key is refused."""
        if self._http is not None:
            await self._run_forever(self._http)
            return
        async with httpx.AsyncClient(timeout=self._settings.request_timeout) as http:
            await self._run_forever(http)

    async def _run_forever(self, http: httpx.AsyncClient) -> None:
        while True:
            try:
                await self._session(http)
            except Exception as exc:
                await self._retry.wait(exc)

    async def _session(self, http: httpx.AsyncClient) -> None:
        if self._auth.token is None:
            await self._auth.login(http)
        settings = self._settings
        async with connect(
            settings.ws_url,
            max_size=settings.max_message_bytes,
            open_timeout=settings.request_timeout,
            close_timeout=settings.request_timeout,
        ) as ws:
            link = _Blackhole(
                ws,
                accounts=",".join(self._accounts()),
                max_bytes=settings.max_message_bytes,
                reply_timeout=settings.request_timeout,
                queue_size=settings.queue_size,
            )
            reader = asyncio.create_task(link.read())
            pinger: asyncio.Task[None] | None = None
            try:
                await self._subscribe_all(http, link)
                await self._resync_all(http)
                self._link = link
                self._retry.connected()
                logger.info("kazoo: connected to %s for %s", settings.ws_url, self._accounts())
                pinger = asyncio.create_task(self._ping(link))
                await self._pump(link)
            finally:
                await self._detach(link, reader, pinger)

    async def _detach(
        self, link: _Blackhole, reader: asyncio.Task[None], pinger: asyncio.Task[None] | None
    ) -> None:
        self._link = None
        self._received += link.received
        self._skipped += link.malformed
        self._queues.session_ended(link.queue)
        await stop(reader, pinger)

    # -- login and subscriptions ------------------------------------------------------------------

    def _accounts(self) -> list[str]:
        key_account = self._auth.key_account
        configured = self._settings.account_ids or ((key_account,) if key_account else ())
        return [account for account in configured if account not in self._refused]

    async def _subscribe_all(self, http: httpx.AsyncClient, link: _Blackhole) -> None:
        for account in self._accounts():
            for binding in self._settings.bindings:
                subscribe = functools.partial(
                    self._subscribe, link, account=account, binding=binding
                )
                await self._auth.with_token(http, subscribe)
        if not self._accounts():
            raise PbxAuthError("kazoo: no account may be watched with this API key")

    async def _subscribe(self, link: _Blackhole, token: str, *, account: str, binding: str) -> None:
        reply = await link.request(lambda rid: proto.subscribe(token, account, binding, rid))
        if reply.ok:
            return
        errors = "; ".join(reply.errors) or reply.status
        if any(error.startswith(_TOKEN_ERRORS) for error in reply.errors):
            raise TokenRejected(f"kazoo: subscribe refused the token: {errors}")
        if any(error in _ACCOUNT_ERRORS for error in reply.errors):
            logger.error("kazoo: account %s may not be watched: %s", account, errors)
            self._refused.add(account)
            return
        logger.warning("kazoo: subscribe %s for account %s refused: %s", binding, account, errors)

    async def _ping(self, link: _Blackhole) -> None:
        while True:
            await asyncio.sleep(self._settings.ping_interval)
            stalls = link.queue.stalls
            try:
                await link.request(lambda rid: proto.ping(rid, auth_token=self._auth.token))
            except PbxUnavailable as exc:
                if link.queue.held_back(exc, stalls):
                    continue  # the pong waits behind events we hold back: not Kazoo's fault
                link.fail(exc)
                return

    # -- resync and events ------------------------------------------------------------------------

    async def _resync_all(self, http: httpx.AsyncClient) -> None:
        for account in self._accounts():
            at = time.time()
            listing = functools.partial(self._channels, http, account=account)
            channels = await self._auth.with_token(http, listing)
            live = [event for event in (self._snapshot(c, account, at) for c in channels) if event]
            logger.info("kazoo: resync %s: %d live leg(s)", account, len(live))
            await self._sink.resync(account, live, at)

    async def _channels(
        self, http: httpx.AsyncClient, token: str, *, account: str
    ) -> list[dict[str, Any]]:
        reply = await self._auth.rest(
            http, "GET", f"/v2/accounts/{account}/channels", headers={"X-Auth-Token": token}
        )
        if reply.status_code == 401:
            raise TokenRejected("kazoo: channels listing refused the token")
        return proto.parse_channels(reply_json(reply))

    def _snapshot(self, channel: dict[str, Any], account: str, at: float) -> ChannelEvent | None:
        try:
            return map_channel(channel, account, at, internal_digits=self._internal_digits)
        except FieldError as exc:
            self._skipped += 1
            call_id = channel.get("uuid", "?")
            logger.warning(
                "kazoo: skipped channel (account=%s call_id=%s): %s", account, call_id, exc.message
            )
            return None

    async def _pump(self, link: _Blackhole) -> None:
        while True:
            batch = await link.next_batch()
            events = [event for event in map(self._map, batch) if event is not None]
            if events:
                await self._sink.events(events)

    def _map(self, event: proto.KazooEvent) -> ChannelEvent | None:
        try:
            mapped = map_event(event, internal_digits=self._internal_digits)
        except FieldError as exc:
            logger.warning(
                "kazoo: skipped %s (account=%s call_id=%s): %s",
                event.name,
                event.account_id,
                event.call_id,
                exc.message,
            )
            mapped = None
        if mapped is None:
            self._skipped += 1
        return mapped
