"""Call event data: completing an event before it is published, a channel's next event, and
Kazoo's (Gregorian) clock."""

from __future__ import annotations

import secrets
import time
from typing import Any

from ctibridge.protocols.kazoo import GREGORIAN_OFFSET


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


def _greg_now() -> int:
    return int(time.time()) + GREGORIAN_OFFSET
