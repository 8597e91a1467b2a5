"""Scenario events in their wire forms: the 4.x blackhole message and the old 3.x shape."""

from __future__ import annotations

import string
from typing import Any

__all__ = ["blackhole_message", "legacy_message", "routing_key_encode"]


def routing_key_encode(key: str) -> str:
    """Kazoo's AMQP routing-key escaping: keep ``[A-Za-z0-9_~-]``, space → ``+``, rest ``%XX``."""
    if key in ("*", "#"):
        return key
    safe = string.ascii_letters + string.digits + "-~_"
    out = []
    for byte in key.encode():
        char = chr(byte)
        out.append(char if char in safe else "+" if char == " " else f"%{byte:02X}")
    return "".join(out)


def blackhole_message(account_id: str, data: dict[str, Any]) -> dict[str, Any]:
    """The websocket message a blackhole client subscribed to ``call.<EVENT>.*`` receives."""
    name = data["event_name"]
    return {
        "action": "event",
        "subscribed_key": f"call.{name}.*",
        "subscription_key": f"call.{account_id}.{name}.*",
        "name": name,
        "routing_key": f"call.{name}.{routing_key_encode(data['call_id'])}",
        "data": data,
    }


_NUMERIC_AS_TEXT = ("duration_seconds", "billing_seconds", "ringing_seconds")
_UPPER_WORDS = {"id": "ID", "cid": "CID", "uri": "URI", "url": "URL", "sip": "SIP", "sdp": "SDP"}


def legacy_message(data: dict[str, Any]) -> dict[str, Any]:
    """The same event in the old 3.x shape: ``{"name", "args"}`` with ``Capitalised-Keys``
    (custom application vars keep their keys; durations are strings, as 3.x sent them)."""
    args: dict[str, Any] = {"App-Name": "ecallmgr"}
    for key, value in data.items():
        if key == "custom_channel_vars":
            value = {_legacy_key(k): v for k, v in value.items()}
        elif key in _NUMERIC_AS_TEXT:
            value = str(value)
        args[_legacy_key(key)] = value
    return {"name": data["event_name"], "args": args}


def _legacy_key(key: str) -> str:
    return "-".join(_UPPER_WORDS.get(word, word.capitalize()) for word in key.split("_"))
