"""The Kazoo-compatible server: its lifecycle (uvicorn on one local port, inside the host's
event loop), its routes, and the Python control plane the demo and the tests drive it with."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import socket
from collections.abc import Iterator
from functools import partial
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.routing import Route, WebSocketRoute
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

from ctibridge.demo.kazoo.accounts import _api_auth, _list_devices, _list_users
from ctibridge.demo.kazoo.blackhole import _Blackhole
from ctibridge.demo.kazoo.channel_actions import _channel_action, _list_channels
from ctibridge.demo.kazoo.channels import _listing, _track
from ctibridge.demo.kazoo.crossbar import _http, _not_found
from ctibridge.demo.kazoo.events import _complete, _greg_now
from ctibridge.demo.kazoo.quickcall import _quickcall
from ctibridge.demo.kazoo.recordings import _get_recording, _list_recordings
from ctibridge.demo.kazoo.state import (
    QuickCall,
    QuickCallHook,
    RecordedRequest,
    Subscription,
    _Account,
    _Recording,
    _State,
)

__all__ = ["KazooServer"]

logger = logging.getLogger(__name__)

_ALL_METHODS = ["GET", "PUT", "POST", "PATCH", "DELETE"]


class _EmbeddedServer(uvicorn.Server):
    """uvicorn inside someone else's event loop: the host application owns the signals."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class KazooServer:
    """Kazoo crossbar + blackhole on ``127.0.0.1:port`` (port 0: a free one)."""

    def __init__(
        self, *, host: str = "127.0.0.1", port: int = 0, on_quickcall: QuickCallHook | None = None
    ) -> None:
        self.host = host
        self.port = port
        self.on_quickcall = on_quickcall
        self._state = _State()
        self._accounts = self._state.accounts
        """The directory: the very dict the handlers read (a test reaches into it)."""
        self._hub = _Blackhole(self._state)
        self._server: _EmbeddedServer | None = None
        self._task: asyncio.Task[None] | None = None
        self._hook_tasks: set[asyncio.Task[None]] = set()
        self.app = Starlette(routes=self._routes())

    # -- lifecycle ------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://{self.host}:{self.port}/"

    async def start(self) -> None:
        # IPPROTO_TCP explicitly: asyncio sets TCP_NODELAY only on sockets that say so, and
        # without it every small response waits for the peer's delayed ACK (~40 ms).
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port))
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(
            self.app,
            log_config=None,
            access_log=False,
            lifespan="off",
            ws="websockets-sansio",
            timeout_graceful_shutdown=2,
        )
        self._server = _EmbeddedServer(config)
        self._task = asyncio.create_task(self._server.serve(sockets=[sock]))
        for _ in range(1000):
            if self._server.started or self._task.done():
                break
            await asyncio.sleep(0.01)
        if not self._server.started:
            await self.stop()
            raise RuntimeError(f"the Kazoo demo server did not start on {self.url}")
        logger.info("Kazoo demo server listening on %s", self.url)

    async def stop(self) -> None:
        for task in self._hook_tasks:
            task.cancel()
        if self._server is None or self._task is None:
            return
        self._abort_websockets()
        self._server.should_exit = True
        with contextlib.suppress(asyncio.CancelledError, SystemExit):
            await self._task
        self._server = self._task = None

    async def __aenter__(self) -> KazooServer:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    # -- control plane --------------------------------------------------------------------------

    def add_account(
        self, account_id: str, api_key: str | None = None, *, parent_id: str | None = None
    ) -> None:
        self._accounts[account_id] = _Account(api_key, parent_id)

    def add_user(
        self,
        account_id: str,
        user_id: str,
        *,
        first_name: str = "",
        last_name: str = "",
        extension: str | None = None,
        presence_id: str | None = None,
        email: str | None = None,
    ) -> None:
        self._accounts[account_id].users[user_id] = {
            "id": user_id,
            "first_name": first_name,
            "last_name": last_name,
            "presence_id": presence_id or extension,
            "extension": extension,
            "email": email,
            "username": email,
        }

    def add_device(
        self,
        account_id: str,
        device_id: str,
        *,
        owner_id: str | None = None,
        name: str = "",
        device_type: str = "sip_device",
        username: str | None = None,
    ) -> None:
        self._accounts[account_id].devices[device_id] = {
            "id": device_id,
            "name": name or device_id,
            "owner_id": owner_id,
            "device_type": device_type,
            "enabled": True,
            "username": username or device_id,
        }

    def add_recording(
        self,
        account_id: str,
        recording_id: str,
        data: bytes,
        *,
        name: str | None = None,
        call_id: str | None = None,
        content_type: str = "audio/mpeg",
    ) -> None:
        """A call recording in the account: ``GET .../recordings?filter_name=<name>`` finds
        it, ``GET .../recordings/<id>`` with ``Accept: audio/*`` returns ``data``."""
        media_type = "wav" if "wav" in content_type else "mp3"
        doc = {
            "id": recording_id,
            "name": name or f"{recording_id}.{media_type}",
            "call_id": call_id,
            "content_type": content_type,
            "media_type": media_type,
            "media_source": "recorded",
            "start": _greg_now(),
        }
        self._accounts[account_id].recordings[recording_id] = _Recording(doc, data)

    async def publish(self, account_id: str, event_data: dict[str, Any]) -> None:
        """Send a 4.x snake_case call event (``event_name``, ``call_id``...) to every socket
        subscribed to it; returns once each one has the frame. Updates the channel table."""
        data = _complete(event_data)
        _track(self._accounts[account_id], data["event_name"], data)
        await self._hub.publish(account_id, data)

    async def send_raw(self, text: str, *, account_id: str | None = None) -> None:
        """Send any text frame to every subscribed socket (to test broken messages)."""
        await self._hub.send_raw(text, account_id=account_id)

    def set_legacy_format(self, legacy: bool = True) -> None:
        """Send events in the old 3.x ``{"name", "args"}`` capitalised shape."""
        self._hub.legacy = legacy

    def set_unresponsive(self, unresponsive: bool = True) -> None:
        """``True``: blackhole reads commands but answers none (a hung Kazoo)."""
        self._hub.unresponsive = unresponsive

    def set_available(self, available: bool) -> None:
        """``False``: the PBX is down; REST answers 503 and websocket handshakes are refused."""
        self._state.available = available

    async def drop_websockets(self) -> None:
        """Cut every websocket's TCP connection without a close frame; returns once gone."""
        dropped = set(self._hub.sessions)
        self._abort_websockets()
        for _ in range(500):
            if dropped.isdisjoint(self._hub.sessions):
                return
            await asyncio.sleep(0.01)
        raise RuntimeError("websocket sessions did not end after the drop")

    def expire_tokens(self) -> None:
        """Forget every auth token (sessions already authenticated keep working, as in Kazoo)."""
        self._state.tokens.clear()

    def requests(self) -> list[RecordedRequest]:
        return list(self._state.requests)

    def ws_messages(self) -> list[dict[str, Any]]:
        """Every message clients sent on websockets, decoded."""
        return list(self._hub.messages)

    def quickcalls(self) -> list[QuickCall]:
        return list(self._state.quickcalls)

    def subscriptions(self) -> list[Subscription]:
        return [
            Subscription(session.session_id, account, binding)
            for session in self._hub.sessions.values()
            for account, binding in session.bindings
        ]

    def channels(self, account_id: str) -> list[dict[str, Any]]:
        """The live channel table, as ``GET .../channels`` lists it."""
        return _listing(self._accounts[account_id])

    def reset(self) -> None:
        """Forget traffic (logs, quickcalls, live channels, format, outage); keep the directory."""
        self._state.requests.clear()
        self._hub.messages.clear()
        self._state.quickcalls.clear()
        for account in self._accounts.values():
            account.channels.clear()
            account.recordings.clear()
        self._hub.legacy = False
        self._state.available = True
        self._hub.unresponsive = False

    # -- crossbar -------------------------------------------------------------------------------

    def _routes(self) -> list[Route | WebSocketRoute]:
        account, state = "/v2/accounts/{account_id}", self._state
        http = partial(_http, state)
        return [
            Route("/v2/api_auth", http(partial(_api_auth, state), auth=False), methods=["PUT"]),
            Route(f"{account}/channels", http(partial(_list_channels, state)), methods=["GET"]),
            Route(f"{account}/users", http(partial(_list_users, state)), methods=["GET"]),
            Route(f"{account}/devices", http(partial(_list_devices, state)), methods=["GET"]),
            Route(
                f"{account}/{{kind}}/{{target_id}}/quickcall/{{number}}",
                http(partial(_quickcall, state, self._run_hook)),
                methods=["GET"],
            ),
            Route(
                f"{account}/channels/{{call_id}}",
                http(partial(_channel_action, state, self._later)),
                methods=["POST", "PUT"],
            ),
            Route(f"{account}/recordings", http(partial(_list_recordings, state)), methods=["GET"]),
            Route(
                f"{account}/recordings/{{recording_id}}",
                http(partial(_get_recording, state)),
                methods=["GET"],
            ),
            Route("/v2/{rest:path}", http(_not_found), methods=_ALL_METHODS),
            WebSocketRoute("/{path:path}", self._hub.endpoint),
        ]

    def _later(self, account_id: str, steps: list[tuple[float, dict[str, Any]]]) -> None:
        async def play() -> None:
            for delay, data in steps:
                if delay:
                    await asyncio.sleep(delay)
                data["timestamp"] = _greg_now()
                await self.publish(account_id, data)

        task = asyncio.ensure_future(play())
        self._hook_tasks.add(task)
        task.add_done_callback(self._hook_tasks.discard)

    def _run_hook(self, call: QuickCall) -> None:
        if self.on_quickcall is None:
            return
        result = self.on_quickcall(call)
        if inspect.isawaitable(result):
            task = asyncio.ensure_future(result)
            self._hook_tasks.add(task)
            task.add_done_callback(self._hook_tasks.discard)

    def _abort_websockets(self) -> None:
        if self._server is None:
            return
        for connection in list(self._server.server_state.connections):
            if isinstance(connection, WebSocketsSansIOProtocol) and connection.transport:
                connection.transport.abort()
