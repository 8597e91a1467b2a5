"""Blackhole websocket messages: call event frames (4.x, or the old 3.x shape), command
replies, and checking subscription bindings."""

from __future__ import annotations

import json
from typing import Any

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
_UPPER_WORDS = {"id": "ID", "sip": "SIP", "sdp": "SDP", "uri": "URI", "url": "URL"}


def _event_frame(account_id: str, binding: str, data: dict[str, Any], *, legacy: bool) -> str:
    name = data["event_name"]
    if legacy:
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
