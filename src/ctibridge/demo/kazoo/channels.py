"""The live channel table that ``GET .../channels`` lists, kept from the published events."""

from __future__ import annotations

from typing import Any

from ctibridge.demo.kazoo.events import _greg_now
from ctibridge.demo.kazoo.state import _Account


def _track(account: _Account, name: str, data: dict[str, Any]) -> None:
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


def _listing(account: _Account) -> list[dict[str, Any]]:
    """The live channel table, as ``GET .../channels`` lists it."""
    now = _greg_now()
    return [
        {**channel, "elapsed_s": max(0, now - int(channel.get("timestamp", now)))}
        for channel in account.channels.values()
    ]


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
