"""Kazoo blackhole websocket and crossbar replies, sans I/O.

Blackhole frames arrive already framed by WebSocket, so this module only decodes JSON text
frames into :class:`KazooEvent` / :class:`KazooReply` and encodes the client commands.
Blackhole normalises every key of an event (lower-case, ``-`` → ``_``, recursively); the
old 3.x ``{"name", "args"}`` shape carries the raw capitalised AMQP names instead. Both are
normalised here, once, so the rest of ctibridge sees snake_case only.

A bad message is a :class:`~ctibridge.errors.FieldError`: the caller logs it and skips it.
WebSocket framing already guarantees message boundaries, so nothing here is a FrameError.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from ctibridge.errors import FieldError

__all__ = [
    "GREGORIAN_OFFSET",
    "MAX_FRAME_BYTES",
    "KazooAuth",
    "KazooEvent",
    "KazooReply",
    "normalize_keys",
    "parse",
    "parse_auth",
    "parse_channels",
    "ping",
    "subscribe",
    "unsubscribe",
]

MAX_FRAME_BYTES = 1_048_576
"""Largest frame :func:`parse` accepts (the connector passes ``kazoo.max_message_bytes``)."""

GREGORIAN_OFFSET = 62_167_219_200
"""Kazoo timestamps are Gregorian seconds: unix = greg - GREGORIAN_OFFSET."""

_EXCERPT = 120


@dataclass(frozen=True, slots=True)
class KazooEvent:
    """One call event pushed by blackhole, keys normalised to snake_case."""

    name: str
    """``CHANNEL_CREATE``, ``CHANNEL_ANSWER``...: always upper-case."""
    account_id: str | None
    """The account the event belongs to: the channel vars' account id, else the one the
    subscription was made for (kz_hooks routes carrier legs without an Account-ID that way)."""
    routing_key: str | None
    data: dict[str, Any] = field(repr=False)

    @property
    def call_id(self) -> str:
        value = self.data["call_id"]
        assert isinstance(value, str)
        return value


@dataclass(frozen=True, slots=True)
class KazooReply:
    """Blackhole's answer to one of our commands."""

    request_id: str | None
    status: str
    data: dict[str, Any]

    @property
    def ok(self) -> bool:
        return self.status == "success"

    @property
    def errors(self) -> tuple[str, ...]:
        """Error strings of an error reply (``unauthorized account id``...)."""
        found = self.data.get("errors", ())
        if isinstance(found, str):
            return (found,)
        if isinstance(found, list):
            return tuple(str(item) for item in found)
        message = self.data.get("message")
        return (str(message),) if message else ()

    @property
    def subscribed(self) -> tuple[str, ...]:
        found = self.data.get("subscribed", ())
        return tuple(str(item) for item in found) if isinstance(found, list) else ()


@dataclass(frozen=True, slots=True)
class KazooAuth:
    """A crossbar ``PUT /v2/api_auth`` (or user_auth) success reply."""

    auth_token: str = field(repr=False)
    account_id: str
    owner_id: str | None = None


# -- encoders ---------------------------------------------------------------------------------


def subscribe(auth_token: str, account_id: str, binding: str, request_id: str) -> str:
    """One ``subscribe`` command: Kazoo requires exactly one ``data.binding`` per message."""
    return _binding_command("subscribe", auth_token, account_id, binding, request_id)


def unsubscribe(auth_token: str, account_id: str, binding: str, request_id: str) -> str:
    return _binding_command("unsubscribe", auth_token, account_id, binding, request_id)


def ping(request_id: str, *, auth_token: str | None = None) -> str:
    message: dict[str, Any] = {"action": "ping", "request_id": request_id}
    if auth_token:
        message["auth_token"] = auth_token
    return json.dumps(message)


def _binding_command(
    action: str, auth_token: str, account_id: str, binding: str, request_id: str
) -> str:
    if not binding or any(ch.isspace() or ch == "," for ch in binding):
        raise ValueError(f"one binding per {action}, got {binding!r}")
    if not account_id:
        raise ValueError(f"{action} needs an account id")
    data = {"account_id": account_id, "binding": binding}
    message = {"action": action, "auth_token": auth_token, "request_id": request_id, "data": data}
    return json.dumps(message)


# -- decoders ---------------------------------------------------------------------------------


def normalize_keys(value: Any) -> Any:
    """Blackhole's key normalisation: lower-case, ``-`` → ``_``, in every nested object."""
    if isinstance(value, dict):
        return {_normal_key(key): normalize_keys(item) for key, item in value.items()}
    if isinstance(value, Mapping):
        return {_normal_key(key): normalize_keys(item) for key, item in value.items()}
    if isinstance(value, list):
        return [normalize_keys(item) for item in value]
    return value


@functools.lru_cache(maxsize=4096)
def _normal_str(key: str) -> str:
    return key.lower().replace("-", "_")


def _normal_key(key: Any) -> str:
    # Frames repeat the same few hundred keys: normalise each spelling once.
    return _normal_str(key) if isinstance(key, str) else _normal_str(str(key))


def parse(frame: str | bytes, *, max_bytes: int = MAX_FRAME_BYTES) -> KazooReply | KazooEvent:
    """Decode one blackhole text frame (4.x ``action`` shape or 3.x ``name``/``args``)."""
    message = _load(frame, max_bytes)
    action = message.get("action")
    if action == "reply":
        return _reply(message)
    if action == "event" or (action is None and ("args" in message or "name" in message)):
        return _event(message)
    raise FieldError(
        f"kazoo: unknown message (action={action!r})", details={"excerpt": _excerpt(message)}
    )


def parse_channels(body: Any) -> list[dict[str, Any]]:
    """The live legs of a ``GET /v2/accounts/{id}/channels`` reply, keys normalised."""
    if not isinstance(body, Mapping):
        raise FieldError("kazoo channels: reply is not a JSON object")
    status = body.get("status", "success")
    if status != "success":
        raise FieldError(f"kazoo channels: status {status!r}", details={"reply": dict(body)})
    data = body.get("data")
    if not isinstance(data, list):
        raise FieldError("kazoo channels: 'data' is not a list")
    return [_channel(entry, index) for index, entry in enumerate(data)]


def parse_auth(body: Any) -> KazooAuth:
    """The token and account of a crossbar authentication reply."""
    if not isinstance(body, Mapping):
        raise FieldError("kazoo auth: reply is not a JSON object")
    token = body.get("auth_token")
    data = body.get("data")
    if not isinstance(token, str) or not token:
        raise FieldError("kazoo auth: reply has no auth_token")
    if not isinstance(data, Mapping) or not _text(data.get("account_id")):
        raise FieldError("kazoo auth: reply has no data.account_id")
    owner = data.get("owner_id")
    return KazooAuth(token, str(data["account_id"]), str(owner) if owner else None)


def _load(frame: str | bytes, max_bytes: int) -> dict[str, Any]:
    size = len(frame)
    if isinstance(frame, str) and size * 4 > max_bytes:  # UTF-8: at most 4 bytes a character
        size = len(frame.encode("utf-8", "replace"))
    if size > max_bytes:
        raise FieldError(f"kazoo: frame of {size} bytes exceeds the {max_bytes}-byte limit")
    try:
        message = orjson.loads(frame)
    except (UnicodeDecodeError, ValueError) as exc:
        raise FieldError(
            f"kazoo: frame is not valid JSON: {exc}", details={"excerpt": _excerpt(frame)}
        ) from exc
    if not isinstance(message, dict):
        raise FieldError(
            f"kazoo: frame is a JSON {type(message).__name__}, not an object",
            details={"excerpt": _excerpt(frame)},
        )
    return message


def _reply(message: dict[str, Any]) -> KazooReply:
    status = message.get("status")
    data = message.get("data", {})
    if not isinstance(status, str):
        raise FieldError("kazoo: reply without a status", details={"excerpt": _excerpt(message)})
    if not isinstance(data, dict):
        data = {"value": data}
    request_id = message.get("request_id")
    return KazooReply(str(request_id) if request_id is not None else None, status, data)


def _event(message: dict[str, Any]) -> KazooEvent:
    raw = message["args"] if "args" in message else message.get("data")
    if not isinstance(raw, Mapping):
        raise FieldError("kazoo: event without a data object", details=_where(message, {}))
    data: dict[str, Any] = normalize_keys(raw)
    name = message.get("name") or data.get("event_name")
    if not isinstance(name, str) or not name:
        raise FieldError("kazoo: event without a name", details=_where(message, data))
    if not _text(data.get("call_id")):
        raise FieldError(f"kazoo: {name} event without call_id", details=_where(message, data))
    routing_key = message.get("routing_key")
    return KazooEvent(
        name=name.upper(),
        account_id=_account_id(data, message.get("subscription_key")),
        routing_key=routing_key if isinstance(routing_key, str) else None,
        data=data,
    )


def _account_id(data: Mapping[str, Any], subscription_key: Any) -> str | None:
    ccv = data.get("custom_channel_vars")
    if isinstance(ccv, Mapping) and _text(ccv.get("account_id")):
        return str(ccv["account_id"])
    if _text(data.get("account_id")):
        return str(data["account_id"])
    if isinstance(subscription_key, str):
        # "call.<account_id>.<EVENT>.<CALL_ID>": the account the subscription was made for.
        parts = subscription_key.split(".")
        if len(parts) >= 3 and parts[1] not in ("", "*", "#"):
            return parts[1]
    return None


def _channel(entry: Any, index: int) -> dict[str, Any]:
    if not isinstance(entry, Mapping):
        raise FieldError(f"kazoo channels: entry {index} is not an object")
    channel: dict[str, Any] = normalize_keys(entry)
    if not _text(channel.get("uuid")):
        raise FieldError(f"kazoo channels: entry {index} has no uuid")
    return channel


def _text(value: Any) -> bool:
    return isinstance(value, str) and value != ""


def _where(message: Mapping[str, Any], data: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "name": message.get("name"),
        "call_id": data.get("call_id"),
        "excerpt": _excerpt(message),
    }


def _excerpt(value: Any) -> str:
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= _EXCERPT else text[:_EXCERPT] + "..."
