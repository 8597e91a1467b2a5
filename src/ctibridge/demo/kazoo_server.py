"""A Kazoo-compatible phone system on one local port: crossbar REST and blackhole websocket.

It is the demo PBX and the fake Kazoo of the tests (one implementation). It speaks the
documented protocols over real sockets (reference §1.2, §1.3, §1.5) and is driven through a
Python control plane: accounts, users, devices, :meth:`KazooServer.publish` of call events
(which also keeps the live channel table that ``GET .../channels`` lists), the old 3.x
event format, dropping sockets, expiring tokens, and logs of what clients sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
import logging
import secrets
import socket
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

from ctibridge.protocols.kazoo import GREGORIAN_OFFSET

__all__ = ["KazooServer", "QuickCall", "RecordedRequest", "Subscription"]

logger = logging.getLogger(__name__)

CALL_EVENTS = frozenset(
    {
        "CHANNEL_CREATE",
        "CHANNEL_ANSWER",
        "CHANNEL_DESTROY",
        "CHANNEL_HOLD",
        "CHANNEL_UNHOLD",
        "CHANNEL_BRIDGE",
        "PARK_PARKED",
        "PARK_RETRIEVED",
        "PARK_ABANDONED",
    }
)
_QUICKCALL_OPTIONS = frozenset(
    {
        "auto_answer",
        "cid-name",
        "cid-number",
        "ignore-early-media",
        "media",
        "number_filter",
        "target_call_id",
        "timeout",
    }
)
_UPPER_WORDS = {"id": "ID", "sip": "SIP", "sdp": "SDP", "uri": "URI", "url": "URL"}
_SEND_TIMEOUT = 5.0


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    method: str
    path: str
    query: dict[str, str]
    body: Any
    auth_token: str | None


@dataclass(frozen=True, slots=True)
class QuickCall:
    """A click-to-dial request: ring ``target`` first, then dial ``number``."""

    account_id: str
    target_type: str
    """``user`` or ``device``."""
    target_id: str
    number: str
    call_id: str
    """The Call-ID the target's leg will carry (``<36 hex>-quickcall``)."""
    options: dict[str, str]
    custom_application_vars: dict[str, str]


@dataclass(frozen=True, slots=True)
class Subscription:
    session_id: int
    account_id: str
    binding: str


@dataclass(slots=True)
class _Account:
    api_key: str | None
    parent_id: str | None
    users: dict[str, dict[str, Any]] = field(default_factory=dict)
    devices: dict[str, dict[str, Any]] = field(default_factory=dict)
    channels: dict[str, dict[str, Any]] = field(default_factory=dict)
    recordings: dict[str, _Recording] = field(default_factory=dict)
    last_event: dict[str, dict[str, Any]] = field(default_factory=dict)
    """call id -> the newest event data of that live channel (to build follow-up events)."""


@dataclass(frozen=True, slots=True)
class _Recording:
    doc: dict[str, Any]
    data: bytes


@dataclass(slots=True)
class _Session:
    session_id: int
    websocket: WebSocket
    auth_account_id: str | None = None
    bindings: list[tuple[str, str]] = field(default_factory=list)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    def match(self, account_id: str, name: str, call_id: str) -> str | None:
        for account, binding in self.bindings:
            if account == account_id and _binding_matches(binding, name, call_id):
                return binding
        return None


class _EmbeddedServer(uvicorn.Server):
    """uvicorn inside someone else's event loop: the host application owns the signals."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


QuickCallHook = Callable[[QuickCall], Awaitable[None] | None]


class KazooServer:
    """Kazoo crossbar + blackhole on ``127.0.0.1:port`` (port 0: a free one)."""

    def __init__(
        self, *, host: str = "127.0.0.1", port: int = 0, on_quickcall: QuickCallHook | None = None
    ) -> None:
        self.host = host
        self.port = port
        self.on_quickcall = on_quickcall
        self._accounts: dict[str, _Account] = {}
        self._tokens: dict[str, str] = {}
        self._sessions: dict[int, _Session] = {}
        self._next_session = 0
        self._publish_lock = asyncio.Lock()
        self._server: _EmbeddedServer | None = None
        self._task: asyncio.Task[None] | None = None
        self._hook_tasks: set[asyncio.Task[None]] = set()
        self._legacy = False
        self._available = True
        self._unresponsive = False
        self._requests: list[RecordedRequest] = []
        self._ws_messages: list[dict[str, Any]] = []
        self._quickcalls: list[QuickCall] = []
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
        name, call_id = data["event_name"], data["call_id"]
        self._track(account_id, name, data)
        async with self._publish_lock:
            for session in list(self._sessions.values()):
                binding = session.match(account_id, name, call_id)
                if binding is not None:
                    await self._send(session, self._event_frame(account_id, binding, data))

    async def send_raw(self, text: str, *, account_id: str | None = None) -> None:
        """Send any text frame to every subscribed socket (to test broken messages)."""
        async with self._publish_lock:
            for session in list(self._sessions.values()):
                if any(account_id in (None, acc) for acc, _ in session.bindings):
                    await self._send(session, text)

    def set_legacy_format(self, legacy: bool = True) -> None:
        """Send events in the old 3.x ``{"name", "args"}`` capitalised shape."""
        self._legacy = legacy

    def set_unresponsive(self, unresponsive: bool = True) -> None:
        """``True``: blackhole reads commands but answers none (a hung Kazoo)."""
        self._unresponsive = unresponsive

    def set_available(self, available: bool) -> None:
        """``False``: the PBX is down; REST answers 503 and websocket handshakes are refused."""
        self._available = available

    async def drop_websockets(self) -> None:
        """Cut every websocket's TCP connection without a close frame; returns once gone."""
        dropped = set(self._sessions)
        self._abort_websockets()
        for _ in range(500):
            if dropped.isdisjoint(self._sessions):
                return
            await asyncio.sleep(0.01)
        raise RuntimeError("websocket sessions did not end after the drop")

    def expire_tokens(self) -> None:
        """Forget every auth token (sessions already authenticated keep working, as in Kazoo)."""
        self._tokens.clear()

    def requests(self) -> list[RecordedRequest]:
        return list(self._requests)

    def ws_messages(self) -> list[dict[str, Any]]:
        """Every message clients sent on websockets, decoded."""
        return list(self._ws_messages)

    def quickcalls(self) -> list[QuickCall]:
        return list(self._quickcalls)

    def subscriptions(self) -> list[Subscription]:
        return [
            Subscription(session.session_id, account, binding)
            for session in self._sessions.values()
            for account, binding in session.bindings
        ]

    def channels(self, account_id: str) -> list[dict[str, Any]]:
        """The live channel table, as ``GET .../channels`` lists it."""
        now = _greg_now()
        return [
            {**channel, "elapsed_s": max(0, now - int(channel.get("timestamp", now)))}
            for channel in self._accounts[account_id].channels.values()
        ]

    def reset(self) -> None:
        """Forget traffic (logs, quickcalls, live channels, format, outage); keep the directory."""
        self._requests.clear()
        self._ws_messages.clear()
        self._quickcalls.clear()
        for account in self._accounts.values():
            account.channels.clear()
            account.recordings.clear()
        self._legacy = False
        self._available = True
        self._unresponsive = False

    # -- channel table --------------------------------------------------------------------------

    def _track(self, account_id: str, name: str, data: dict[str, Any]) -> None:
        account = self._accounts[account_id]
        table = account.channels
        call_id = data["call_id"]
        if name == "CHANNEL_DESTROY":
            if not _flag(data.get("channel_moving")):
                table.pop(call_id, None)
                account.last_event.pop(call_id, None)
            return
        account.last_event[call_id] = data
        channel = table.setdefault(
            call_id, {"uuid": call_id, "answered": False, "is_onhold": False, "is_loopback": False}
        )
        channel.update(_channel_fields(data))
        channel.setdefault("timestamp", data["timestamp"])
        if name == "CHANNEL_ANSWER" and not _is_early(data):
            channel["answered"] = True
        elif name in ("CHANNEL_HOLD", "CHANNEL_UNHOLD"):
            channel["is_onhold"] = name == "CHANNEL_HOLD"
        elif name == "CHANNEL_BRIDGE":
            channel["answered"] = True
            other = data.get("other_leg_call_id") or _bridge_peer(data)
            if other:
                channel["other_leg"] = other

    # -- blackhole --------------------------------------------------------------------------------

    def _event_frame(self, account_id: str, binding: str, data: dict[str, Any]) -> str:
        name = data["event_name"]
        if self._legacy:
            return json.dumps({"name": name, "args": _capitalise(data)})
        _, event, call = binding.split(".", 2)
        return json.dumps(
            {
                "action": "event",
                "name": name,
                "subscribed_key": binding,
                "subscription_key": f"call.{account_id}.{event}.{call}",
                "routing_key": f"call.{name}.{_amqp_encode(data['call_id'])}",
                "data": data,
            }
        )

    async def _websocket(self, websocket: WebSocket) -> None:
        if "sec-websocket-protocol" in websocket.headers:
            await websocket.send_denial_response(Response(status_code=400))
            return
        if not self._available:
            await websocket.send_denial_response(Response(status_code=503))
            return
        await websocket.accept()
        self._next_session += 1
        session = _Session(self._next_session, websocket)
        self._sessions[session.session_id] = session
        try:
            while True:
                message = await websocket.receive()
                if message["type"] == "websocket.disconnect":
                    break
                text = message.get("text") or (message.get("bytes") or b"").decode(
                    "utf-8", "replace"
                )
                reply = self._command(session, text)
                if reply is not None and not self._unresponsive:
                    await self._send(session, json.dumps(reply))
        finally:
            self._sessions.pop(session.session_id, None)

    def _command(self, session: _Session, text: str) -> dict[str, Any] | None:
        try:
            message = json.loads(text)
        except ValueError:
            message = None
        if not isinstance(message, dict):
            self._ws_messages.append({"raw": text})
            return _reply(None, ["invalid json"])
        self._ws_messages.append(message)
        action = message.get("action")
        request_id = message.get("request_id") or secrets.token_hex(16)
        if action is None:
            return None  # noop
        if session.auth_account_id is None:
            error = self._authenticate(session, message.get("auth_token"))
            if error:
                return _reply(request_id, [error])
        data = message.get("data")
        if action == "ping":
            return _reply(request_id, data={"response": "pong"})
        if action == "subscribe":
            return self._subscribe(session, request_id, data)
        if action == "unsubscribe":
            return self._unsubscribe(session, request_id, data)
        return _reply(request_id, [f"action {action} not supported"])

    def _authenticate(self, session: _Session, token: Any) -> str | None:
        if not token:
            return "authentication token required"
        account_id = self._tokens.get(str(token))
        if account_id is None:
            return f"failed to authenticate token {token}"
        session.auth_account_id = account_id
        return None

    def _subscribe(self, session: _Session, request_id: str, data: Any) -> dict[str, Any]:
        error = _check_binding_keys(data) or self._authorize(session, data["account_id"])
        if error:
            return _reply(request_id, [error])
        key = (data["account_id"], data["binding"])
        fresh = key not in session.bindings
        if fresh:
            session.bindings.append(key)
        return _reply(request_id, data={"subscribed": [key[1]] if fresh else []})

    def _unsubscribe(self, session: _Session, request_id: str, data: Any) -> dict[str, Any]:
        if not data:
            removed, session.bindings = session.bindings, []
        else:
            error = _check_binding_keys(data)
            if error:
                return _reply(request_id, [error])
            key = (data["account_id"], data["binding"])
            removed = [key] if key in session.bindings else []
            session.bindings = [b for b in session.bindings if b != key]
        return _reply(
            request_id,
            data={
                "unsubscribed": [binding for _, binding in removed],
                "subscribed": [binding for _, binding in session.bindings],
            },
        )

    def _authorize(self, session: _Session, account_id: str) -> str | None:
        if account_id == "*":
            return "unauthorized wildcard account id"
        if session.auth_account_id is None or not self._within(session.auth_account_id, account_id):
            return "unauthorized account id"
        return None

    def _within(self, auth_account_id: str, account_id: str | None) -> bool:
        """``account_id`` is ``auth_account_id`` or one of its descendants."""
        seen: set[str] = set()
        while account_id is not None and account_id in self._accounts and account_id not in seen:
            if account_id == auth_account_id:
                return True
            seen.add(account_id)
            account_id = self._accounts[account_id].parent_id
        return False

    async def _send(self, session: _Session, text: str) -> None:
        try:
            async with session.lock:
                await asyncio.wait_for(session.websocket.send_text(text), _SEND_TIMEOUT)
        except Exception as exc:  # a dead or stuck socket: forget it, keep serving the others
            logger.debug("dropping websocket session %s: %r", session.session_id, exc)
            self._sessions.pop(session.session_id, None)

    def _abort_websockets(self) -> None:
        if self._server is None:
            return
        for connection in list(self._server.server_state.connections):
            if isinstance(connection, WebSocketsSansIOProtocol) and connection.transport:
                connection.transport.abort()

    # -- crossbar -------------------------------------------------------------------------------

    def _routes(self) -> list[Route | WebSocketRoute]:
        account = "/v2/accounts/{account_id}"
        return [
            Route("/v2/api_auth", self._http(self._api_auth, auth=False), methods=["PUT"]),
            Route(f"{account}/channels", self._http(self._list_channels), methods=["GET"]),
            Route(f"{account}/users", self._http(self._list_users), methods=["GET"]),
            Route(f"{account}/devices", self._http(self._list_devices), methods=["GET"]),
            Route(
                f"{account}/{{kind}}/{{target_id}}/quickcall/{{number}}",
                self._http(self._quickcall),
                methods=["GET"],
            ),
            Route(
                f"{account}/channels/{{call_id}}",
                self._http(self._channel_action),
                methods=["POST", "PUT"],
            ),
            Route(f"{account}/recordings", self._http(self._list_recordings), methods=["GET"]),
            Route(
                f"{account}/recordings/{{recording_id}}",
                self._http(self._get_recording),
                methods=["GET"],
            ),
            Route("/v2/{rest:path}", self._http(self._not_found), methods=_ALL_METHODS),
            WebSocketRoute("/{path:path}", self._websocket),
        ]

    def _http(
        self, handler: Callable[[Request, str, Any], Awaitable[Response]], *, auth: bool = True
    ) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            body = await _json_body(request)
            token = request.headers.get("x-auth-token")
            self._requests.append(
                RecordedRequest(
                    request.method, request.url.path, dict(request.query_params), body, token
                )
            )
            if not self._available:
                return _error(503, "service_unavailable")
            token_account = self._tokens.get(token or "")
            if auth and token_account is None:
                return _error(401, "invalid_credentials")
            path_account = request.path_params.get("account_id")
            if auth and path_account and not self._within(token_account or "", path_account):
                return _error(403, "forbidden")
            return await handler(request, token or "", body)

        return endpoint

    async def _api_auth(self, request: Request, token: str, body: Any) -> Response:
        key = body.get("data", {}).get("api_key") if isinstance(body, dict) else None
        found = [acc for acc, a in self._accounts.items() if key and a.api_key == key]
        if not found:
            return _error(401, "invalid_credentials")
        new_token = secrets.token_hex(16)
        self._tokens[new_token] = found[0]
        data = {"account_id": found[0], "owner_id": None, "is_reseller": False}
        return _ok({"auth_token": new_token, "data": data}, new_token)

    async def _list_channels(self, request: Request, token: str, body: Any) -> Response:
        return _ok({"data": self.channels(request.path_params["account_id"])}, token)

    async def _list_users(self, request: Request, token: str, body: Any) -> Response:
        users = self._accounts[request.path_params["account_id"]].users
        return _ok({"data": list(users.values())}, token)

    async def _list_devices(self, request: Request, token: str, body: Any) -> Response:
        devices = self._accounts[request.path_params["account_id"]].devices
        return _ok({"data": list(devices.values())}, token)

    async def _quickcall(self, request: Request, token: str, body: Any) -> Response:
        params = request.path_params
        account = self._accounts[params["account_id"]]
        directory = {"users": account.users, "devices": account.devices}.get(params["kind"])
        if directory is None or params["target_id"] not in directory:
            return _error(404, "bad_identifier")
        query = dict(request.query_params)
        call = QuickCall(
            account_id=params["account_id"],
            target_type=params["kind"][:-1],
            target_id=params["target_id"],
            number=params["number"],
            call_id=f"{secrets.token_hex(18)}-quickcall",
            options={k: v for k, v in query.items() if k in _QUICKCALL_OPTIONS},
            custom_application_vars={k: v for k, v in query.items() if k not in _QUICKCALL_OPTIONS},
        )
        self._quickcalls.append(call)
        self._run_hook(call)
        return _ok({"data": _originate(call, account)}, token, status_code=202)

    async def _channel_action(self, request: Request, token: str, body: Any) -> Response:
        """Channel actions (``POST``: hangup, transfer) and metaflows (``PUT``: hold, resume),
        carried out as a Kazoo with Konami would: the resulting call events are published."""
        account_id, call_id = request.path_params["account_id"], request.path_params["call_id"]
        account = self._accounts[account_id]
        last = account.last_event.get(call_id)
        if last is None:
            return _error(404, "bad_identifier")
        data = body.get("data") if isinstance(body, dict) else None
        if isinstance(body, dict) and body.get("action") == "metaflow":
            data = body  # the metaflow shape with the action outside "data" (both are seen)
        if not isinstance(data, dict):
            return _error(400, "invalid data")
        if request.method == "PUT":
            if data.get("action") != "metaflow" or not isinstance(data.get("data"), dict):
                return _error(400, "metaflow expected")
            module = data["data"].get("module")
            steps = {"hold": "CHANNEL_HOLD", "resume": "CHANNEL_UNHOLD"}.get(str(module))
            if steps is None:
                return _error(400, f"metaflow module {module} not supported here")
            self._later(account_id, [(0.0, _follow(last, steps))])
            return _ok({"data": {"message": f"{module} initiated"}}, token, status_code=202)
        action = data.get("action")
        if action == "hangup":
            events = [(0.0, _follow(last, "CHANNEL_DESTROY", hangup_cause="NORMAL_CLEARING"))]
            other = account.last_event.get(str(last.get("other_leg_call_id") or ""))
            if other is not None:
                events.append(
                    (0.0, _follow(other, "CHANNEL_DESTROY", hangup_cause="NORMAL_CLEARING"))
                )
            self._later(account_id, events)
            return _ok({"data": {"message": "hangup initiated"}}, token, status_code=202)
        if action == "transfer":
            plan = self._blind_transfer(account, last, str(data.get("target", "")))
            if plan is None:
                return _error(404, "transfer target not found")
            self._later(account_id, plan)
            return _ok({"data": {"message": "transfer initiated"}}, token, status_code=202)
        return _error(400, f"action {action} not supported here")

    def _blind_transfer(
        self, account: _Account, transferor: dict[str, Any], target: str
    ) -> list[tuple[float, dict[str, Any]]] | None:
        """The transferor's leg ends; the target extension's phone rings and answers."""
        user = next((u for u in account.users.values() if u.get("extension") == target), None)
        caller_leg = account.last_event.get(str(transferor.get("other_leg_call_id") or ""))
        if user is None or caller_leg is None:
            return None
        device = next(
            (d for d in account.devices.values() if d.get("owner_id") == user["id"]), None
        )
        leg = dict(transferor)
        leg["call_id"] = secrets.token_hex(16)
        leg["other_leg_call_id"] = caller_leg["call_id"]
        leg["presence_id"] = f"{target}@{str(transferor.get('presence_id', '@')).split('@')[-1]}"
        leg["callee_id_number"] = target
        ccv = dict(leg.get("custom_channel_vars") or {})
        ccv["owner_id"] = user["id"]
        if device is not None:
            ccv["authorizing_id"] = device["id"]
        leg["custom_channel_vars"] = ccv
        for key in ("hangup_cause", "hangup_code", "disposition"):
            leg.pop(key, None)
        return [
            (0.0, _follow(transferor, "CHANNEL_DESTROY", hangup_cause="BLIND_TRANSFER")),
            (0.2, _follow(leg, "CHANNEL_CREATE")),
            (2.5, _follow(leg, "CHANNEL_ANSWER", disposition="ANSWER")),
            (0.0, _follow(caller_leg, "CHANNEL_BRIDGE", other_leg_call_id=leg["call_id"])),
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

    async def _list_recordings(self, request: Request, token: str, body: Any) -> Response:
        recordings = self._accounts[request.path_params["account_id"]].recordings.values()
        filters = {
            key.removeprefix("filter_"): value
            for key, value in request.query_params.items()
            if key.startswith("filter_")
        }
        docs = [
            r.doc for r in recordings if all(str(r.doc.get(k)) == v for k, v in filters.items())
        ]
        return _ok({"data": docs, "page_size": len(docs)}, token)

    async def _get_recording(self, request: Request, token: str, body: Any) -> Response:
        account = self._accounts[request.path_params["account_id"]]
        recording = account.recordings.get(request.path_params["recording_id"])
        if recording is None:
            return _error(404, "bad_identifier")
        accept = request.query_params.get("accept") or request.headers.get("accept", "")
        if "audio/" not in accept:
            return _ok({"data": recording.doc}, token)
        return Response(recording.data, media_type=recording.doc["content_type"])

    async def _not_found(self, request: Request, token: str, body: Any) -> Response:
        return _error(404, "not_found")

    def _run_hook(self, call: QuickCall) -> None:
        if self.on_quickcall is None:
            return
        result = self.on_quickcall(call)
        if inspect.isawaitable(result):
            task = asyncio.ensure_future(result)
            self._hook_tasks.add(task)
            task.add_done_callback(self._hook_tasks.discard)


_ALL_METHODS = ["GET", "PUT", "POST", "PATCH", "DELETE"]


# -- helpers ------------------------------------------------------------------------------------


def _follow(last: dict[str, Any], name: str, **changes: Any) -> dict[str, Any]:
    """The next event of a channel: its newest event data under another name."""
    data = {k: v for k, v in last.items() if k not in ("msg_id", "timestamp")}
    data["event_name"] = name
    data.update(changes)
    return data


def _complete(event_data: dict[str, Any]) -> dict[str, Any]:
    data = dict(event_data)
    name = data.get("event_name")
    if not isinstance(name, str) or not data.get("call_id"):
        raise ValueError("a call event needs event_name and call_id")
    data["event_name"] = name.upper()
    data.setdefault("event_category", "call_event")
    data.setdefault("msg_id", secrets.token_hex(8))
    data.setdefault("timestamp", _greg_now())
    return data


def _channel_fields(data: dict[str, Any]) -> dict[str, Any]:
    ccv = data.get("custom_channel_vars") or {}
    request = data.get("request")
    name = str(data.get("channel_name") or "")
    fields = {
        "account_id": ccv.get("account_id"),
        "authorizing_id": ccv.get("authorizing_id"),
        "authorizing_type": ccv.get("authorizing_type"),
        "owner_id": ccv.get("owner_id"),
        "resource_id": ccv.get("resource_id"),
        "bridge_id": ccv.get("bridge_id"),
        "interaction_id": ccv.get("call_interaction_id"),
        "username": ccv.get("username"),
        "realm": ccv.get("realm"),
        "direction": data.get("call_direction"),
        "presence_id": data.get("presence_id"),
        "request": request,
        "destination": str(request).split("@", 1)[0] if request else None,
        "other_leg": data.get("other_leg_call_id"),
        "caller_id_name": data.get("caller_id_name"),
        "caller_id_number": data.get("caller_id_number"),
        "callee_id_name": data.get("callee_id_name"),
        "callee_id_number": data.get("callee_id_number"),
        "node": data.get("media_server"),
        "custom_channel_vars": data.get("custom_channel_vars"),
        "custom_application_vars": data.get("custom_application_vars"),
    }
    if _flag(data.get("channel_is_loopback")) or name.startswith("loopback/"):
        fields["is_loopback"] = True
    return {key: value for key, value in fields.items() if value is not None}


def _originate(call: QuickCall, account: _Account) -> dict[str, Any]:
    """The 202 body: the originate request Kazoo echoes back."""
    if call.target_type == "user":
        devices = [d for d in account.devices.values() if d.get("owner_id") == call.target_id]
    else:
        devices = [account.devices[call.target_id]]
    endpoints = [
        {"outbound_call_id": call.call_id, "endpoint_id": d["id"], "owner_id": d.get("owner_id")}
        for d in devices
    ] or [{"outbound_call_id": call.call_id, "owner_id": call.target_id}]
    return {
        "application_name": "transfer",
        "application_data": {"route": call.number},
        "endpoints": endpoints,
        "custom_application_vars": call.custom_application_vars,
        "timeout": int(call.options.get("timeout", "30")),
        "auto_answer": call.options.get("auto_answer", "true") != "false",
    }


def _binding_matches(binding: str, name: str, call_id: str) -> bool:
    parts = binding.split(".", 2)
    return len(parts) == 3 and parts[1] in ("*", name) and parts[2] in ("*", "#", call_id)


def _check_binding_keys(data: Any) -> str | None:
    if not isinstance(data, dict) or not data:
        return "missing required keys in data object"
    missing = [key for key in ("account_id", "binding") if key not in data]
    if missing:
        return f"missing required keys : {', '.join(missing)}"
    binding = data["binding"]
    parts = binding.split(".") if isinstance(binding, str) else []
    if len(parts) != 3 or parts[0] != "call":
        return "no available subscriptions to requested binding"
    if parts[1] != "*" and parts[1] not in CALL_EVENTS:
        return f"event {parts[1]} not supported"
    return None


def _reply(
    request_id: str | None, errors: list[str] | None = None, *, data: dict[str, Any] | None = None
) -> dict[str, Any]:
    status = "error" if errors else "success"
    return {
        "action": "reply",
        "request_id": request_id,
        "status": status,
        "data": {"errors": errors} if errors else (data or {}),
    }


def _ok(body: dict[str, Any], token: str, *, status_code: int = 200) -> JSONResponse:
    return JSONResponse(
        {**body, "status": "success", "auth_token": token, "request_id": secrets.token_hex(16)},
        status_code=status_code,
    )


def _error(status_code: int, message: str) -> JSONResponse:
    body = {"error": str(status_code), "message": message, "status": "error", "data": {}}
    return JSONResponse(body, status_code=status_code)


async def _json_body(request: Request) -> Any:
    raw = await request.body()
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return {"raw": raw.decode("utf-8", "replace")}


def _capitalise(value: Any) -> Any:
    """4.x snake_case back to the raw AMQP names of the 3.x format (``Call-ID``)."""
    if isinstance(value, dict):
        return {_legacy_key(str(key)): _capitalise(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_capitalise(item) for item in value]
    return value


def _legacy_key(key: str) -> str:
    return "-".join(_UPPER_WORDS.get(word, word.capitalize()) for word in key.split("_"))


def _amqp_encode(call_id: str) -> str:
    return call_id.replace("%", "%25").replace(".", "%2E").replace("*", "%2A").replace("#", "%23")


def _bridge_peer(data: dict[str, Any]) -> str | None:
    for key in ("bridge_b_unique_id", "bridge_a_unique_id"):
        peer = data.get(key)
        if peer and peer != data["call_id"]:
            return str(peer)
    return None


def _is_early(data: dict[str, Any]) -> bool:
    state = str(data.get("channel_answer_state") or "").lower()
    if state:
        return state == "early"
    return str(data.get("disposition") or "").upper() == "EARLY MEDIA"


def _flag(value: Any) -> bool:
    return value is True or (isinstance(value, str) and value.lower() == "true")


def _greg_now() -> int:
    return int(time.time()) + GREGORIAN_OFFSET
