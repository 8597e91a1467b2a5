"""The blackhole websocket hub: sessions, their commands (ping, subscribe, unsubscribe, with
auth tokens), and fanning call events out to the sockets subscribed to them."""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
from dataclasses import dataclass, field
from typing import Any

from starlette.responses import Response
from starlette.websockets import WebSocket

from ctibridge.demo.kazoo.frames import _binding_matches, _check_binding_keys, _event_frame, _reply
from ctibridge.demo.kazoo.state import _State

logger = logging.getLogger(__name__)

_SEND_TIMEOUT = 5.0


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


class _Blackhole:
    """The websocket side of the server; its sessions live as long as their sockets."""

    def __init__(self, state: _State) -> None:
        self._state = state
        self.sessions: dict[int, _Session] = {}
        self._next_session = 0
        self._publish_lock = asyncio.Lock()
        self.legacy = False
        """Send events in the old 3.x ``{"name", "args"}`` shape."""
        self.unresponsive = False
        """Read commands but answer none (a hung Kazoo)."""
        self.messages: list[dict[str, Any]] = []
        """Every message clients sent, decoded."""

    async def publish(self, account_id: str, data: dict[str, Any]) -> None:
        """Send a completed call event to every socket subscribed to it; returns once each
        one has the frame."""
        name, call_id = data["event_name"], data["call_id"]
        async with self._publish_lock:
            for session in list(self.sessions.values()):
                binding = session.match(account_id, name, call_id)
                if binding is not None:
                    frame = _event_frame(account_id, binding, data, legacy=self.legacy)
                    await self._send(session, frame)

    async def send_raw(self, text: str, *, account_id: str | None = None) -> None:
        """Send any text frame to every subscribed socket (to test broken messages)."""
        async with self._publish_lock:
            for session in list(self.sessions.values()):
                if any(account_id in (None, acc) for acc, _ in session.bindings):
                    await self._send(session, text)

    async def endpoint(self, websocket: WebSocket) -> None:
        if "sec-websocket-protocol" in websocket.headers:
            await websocket.send_denial_response(Response(status_code=400))
            return
        if not self._state.available:
            await websocket.send_denial_response(Response(status_code=503))
            return
        await websocket.accept()
        self._next_session += 1
        session = _Session(self._next_session, websocket)
        self.sessions[session.session_id] = session
        try:
            while True:
                message = await websocket.receive()
                if message["type"] == "websocket.disconnect":
                    break
                text = message.get("text") or (message.get("bytes") or b"").decode(
                    "utf-8", "replace"
                )
                reply = self._command(session, text)
                if reply is not None and not self.unresponsive:
                    await self._send(session, json.dumps(reply))
        finally:
            self.sessions.pop(session.session_id, None)

    def _command(self, session: _Session, text: str) -> dict[str, Any] | None:
        try:
            message = json.loads(text)
        except ValueError:
            message = None
        if not isinstance(message, dict):
            self.messages.append({"raw": text})
            return _reply(None, ["invalid json"])
        self.messages.append(message)
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
        account_id = self._state.tokens.get(str(token))
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
        auth_account_id = session.auth_account_id
        if auth_account_id is None or not self._state.within(auth_account_id, account_id):
            return "unauthorized account id"
        return None

    async def _send(self, session: _Session, text: str) -> None:
        try:
            async with session.lock:
                async with asyncio.timeout(_SEND_TIMEOUT):
                    await session.websocket.send_text(text)
        except Exception as exc:  # a dead or stuck socket: forget it, keep serving the others
            logger.debug("dropping websocket session %s: %r", session.session_id, exc)
            self.sessions.pop(session.session_id, None)
