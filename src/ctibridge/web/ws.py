"""``/ws``: an agent's live call cards. First a snapshot of its active calls, then deltas.

Messages (JSON text frames), server → client::

    {"type": "hello", "role": "agent", "agent": {...}, "server_time": 1732200000.123}
    {"type": "snapshot", "calls": [card, ...]}
    {"type": "event", "event": "ringing", "call": card}
    {"type": "ping", "server_time": ...}          every 25 s; the client answers "pong"
    {"type": "error", "error_id": "not-authenticated", "message": "..."}  then close 4001

Client → server: ``{"type": "ping"}`` (answered with ``{"type": "pong"}``) or ``pong``.
Close codes: 4001 not authenticated, 4003 forbidden, 4008 too slow (reconnect and resync).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

from starlette.websockets import WebSocket, WebSocketDisconnect

from ctibridge.errors import CtiError
from ctibridge.services.agents import ALL_TENANTS, Principal
from ctibridge.web.auth import principal_of
from ctibridge.web.push import CLOSE_TOO_SLOW, PushConnection, PushHub
from ctibridge.web.schemas import agent_out

__all__ = ["PING_INTERVAL", "agent_socket"]

logger = logging.getLogger(__name__)

PING_INTERVAL = 25.0
_CLOSE_FOR = {"not-authenticated": 4001, "forbidden": 4003}


async def agent_socket(websocket: WebSocket) -> None:
    await websocket.accept()
    try:
        principal = await principal_of(websocket)
    except CtiError as exc:
        await websocket.send_json({"type": "error", **exc.to_dict()})
        await websocket.close(code=_CLOSE_FOR.get(exc.error_id, 4001), reason=exc.message[:100])
        return
    hub: PushHub = websocket.app.state.hub
    conn = hub.connect(principal)
    try:
        await websocket.send_json(_hello(principal))
        await websocket.send_json(
            {"type": "snapshot", "calls": _snapshot(websocket, principal, conn)}
        )
        await _serve(websocket, conn)
    except WebSocketDisconnect:
        pass
    finally:
        hub.disconnect(conn)


def _hello(principal: Principal) -> dict[str, Any]:
    agent = agent_out(principal.agent) if principal.agent is not None else None
    return {
        "type": "hello",
        "role": principal.role,
        "tenant_id": principal.tenant_id,
        "agent": agent,
        "server_time": time.time(),
    }


def _snapshot(websocket: WebSocket, principal: Principal, conn: PushConnection) -> list[Any]:
    calls_service = websocket.app.state.services.calls
    if principal.is_admin:
        tenants = calls_service.tenants()
        if principal.tenant_id != ALL_TENANTS:
            tenants = [principal.tenant_id]
        stored = [s for t in tenants for s in calls_service.active(t)]
    else:
        stored = calls_service.active(principal.tenant_id, principal.agent_id)
    cards = [calls_service.notifier.card(s) for s in stored]
    for card in cards:
        conn.fresh(card)
    return cards


async def _serve(websocket: WebSocket, conn: PushConnection) -> None:
    sender = asyncio.create_task(_send_loop(websocket, conn))
    try:
        while True:
            message = await websocket.receive_json()
            if isinstance(message, dict) and message.get("type") == "ping":
                conn.offer({"type": "pong", "server_time": time.time()})
    except (WebSocketDisconnect, ValueError, KeyError):
        pass
    finally:
        sender.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await sender


async def _send_loop(websocket: WebSocket, conn: PushConnection) -> None:
    while True:
        frame: str | dict[str, Any] | None
        try:
            async with asyncio.timeout(PING_INTERVAL):
                frame = await conn.queue.get()
        except TimeoutError:
            frame = {"type": "ping", "server_time": time.time()}
        if frame is None:
            logger.info("closing a slow agent socket", extra={"agent_id": conn.principal.agent_id})
            await websocket.close(code=CLOSE_TOO_SLOW, reason="too slow; reconnect")
            return
        if isinstance(frame, str):
            await websocket.send_text(frame)  # encoded once for every socket it goes to
        else:
            await websocket.send_json(frame)
