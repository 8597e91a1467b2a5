"""The fake Kazoo of the tests is the demo server itself: one implementation, real sockets.

This module only re-exports it and adds a few builders for test scenarios.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from ctibridge.config import KazooSettings
from ctibridge.demo.kazoo.server import KazooServer
from ctibridge.demo.kazoo.state import QuickCall, RecordedRequest, Subscription
from ctibridge.protocols.kazoo import GREGORIAN_OFFSET

__all__ = [
    "ACCOUNT",
    "API_KEY",
    "FakeKazoo",
    "QuickCall",
    "RecordedRequest",
    "Subscription",
    "call_event",
    "fake_kazoo",
    "settings_for",
]

FakeKazoo = KazooServer

ACCOUNT = "acc1"
API_KEY = "k" * 64
T0 = 1_760_000_000  # unix seconds of the first event of a scenario


def fake_kazoo() -> KazooServer:
    """A server with one account (``ACCOUNT``/``API_KEY``), one user and their device."""
    server = KazooServer()
    server.add_account(ACCOUNT, API_KEY)
    server.add_user(ACCOUNT, "user1", first_name="Ada", last_name="Lovelace", extension="201")
    server.add_device(ACCOUNT, "dev1", owner_id="user1", name="Ada's desk phone")
    return server


def settings_for(server: KazooServer, **overrides: Any) -> KazooSettings:
    """Connector settings pointing at ``server``, with short test timings."""
    base = KazooSettings(
        enabled=True,
        api_url=server.url,
        ws_url=server.ws_url,
        api_key=API_KEY,
        reconnect_initial=0.01,
        reconnect_max=0.05,
        request_timeout=2.0,
    )
    return dataclasses.replace(base, **overrides)


def call_event(name: str, call_id: str, *, at: int = 0, **fields: Any) -> dict[str, Any]:
    """4.x snake_case event data for an agent's device leg (override any field)."""
    ccv = {
        "account_id": ACCOUNT,
        "owner_id": "user1",
        "authorizing_id": "dev1",
        "authorizing_type": "device",
        "call_interaction_id": f"{T0 + GREGORIAN_OFFSET}-{call_id}",
        "bridge_id": call_id,
    }
    ccv.update(fields.pop("custom_channel_vars", {}))
    data: dict[str, Any] = {
        "event_name": name,
        "call_id": call_id,
        "call_direction": "inbound",
        "caller_id_number": "201",
        "caller_id_name": "Ada",
        "callee_id_number": "+441202528735",
        "request": "+441202528735@acc1.example.net",
        "presence_id": "201@acc1.example.net",
        "media_server": "fs1.example.net",
        "timestamp": T0 + at + GREGORIAN_OFFSET,
        "custom_channel_vars": ccv,
    }
    data.update(fields)
    return data
