"""Kazoo call events and channel listings → :class:`ChannelEvent`. Mapping only: pure.

Field rules (snake_case names, as :mod:`ctibridge.protocols.kazoo` normalises them):

- ``leg_id`` = ``call_id``; ``tenant_id`` = ``custom_channel_vars.account_id``, else the
  top-level ``account_id``, else the account the subscription was made for.
- ``originator`` = ``call_direction == "inbound"``: the leg came *into* the switch (A-leg).
  Kazoo's direction is switch-relative; the business direction is the normaliser's job.
- ``party``/``agent`` come from the channel vars (``authorizing_type``, ``owner_id``,
  ``resource_id``...), see :func:`_party`.
- Loopback legs, events without an account and event names we do not use map to ``None``;
  a field we cannot read raises :class:`~ctibridge.errors.FieldError`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from ctibridge.callstate.events import AgentRef, ChannelEvent, LegEventKind, Party, Recording
from ctibridge.errors import FieldError
from ctibridge.protocols.kazoo import GREGORIAN_OFFSET, KazooEvent

__all__ = ["map_channel", "map_event", "unix_time"]

_KINDS: Final[Mapping[str, LegEventKind]] = {
    "CHANNEL_CREATE": LegEventKind.CREATED,
    "CHANNEL_ANSWER": LegEventKind.ANSWERED,
    "CHANNEL_BRIDGE": LegEventKind.BRIDGED,
    "CHANNEL_HOLD": LegEventKind.HELD,
    "CHANNEL_UNHOLD": LegEventKind.UNHELD,
    "CHANNEL_DESTROY": LegEventKind.DESTROYED,
}
_AGENT_TYPES: Final = frozenset({"device", "mobile", "user"})
_TRUE: Final = frozenset({"true", "1", "yes"})


def map_event(event: KazooEvent, *, internal_digits: int = 5) -> ChannelEvent | None:
    """One blackhole call event as a :class:`ChannelEvent`, or ``None`` if we ignore it."""
    kind = _KINDS.get(event.name)
    data = event.data
    if kind is None or _is_loopback(data):
        return None
    ccv = _obj(data, "custom_channel_vars")
    tenant = _text(ccv, "account_id") or _text(data, "account_id") or event.account_id
    if tenant is None:
        return None
    if kind is LegEventKind.ANSWERED:
        kind = _answer_kind(data)
    ended = kind is LegEventKind.DESTROYED
    return ChannelEvent(
        kind=kind,
        tenant_id=tenant,
        leg_id=event.call_id,
        at=unix_time(data.get("timestamp")),
        node=_text(data, "media_server"),
        event_id=_text(data, "msg_id"),
        group_key=_text(ccv, "call_interaction_id"),
        bridge_key=_text(ccv, "bridge_id"),
        other_leg_id=_other_leg(data, event.call_id, kind),
        hangup_cause=_upper(_text(data, "hangup_cause")) if ended else None,
        moving=ended and _flag(data.get("channel_moving")),
        recordings=_recordings(data.get("media_recordings")) if ended else (),
        **_leg_fields(data, ccv, _text(data, "request"), internal_digits),
    )


def map_channel(
    channel: Mapping[str, Any], account_id: str, at: float, *, internal_digits: int = 5
) -> ChannelEvent | None:
    """One entry of ``GET /v2/accounts/{id}/channels`` as a SNAPSHOT event taken at ``at``."""
    if not isinstance(channel, Mapping):
        raise FieldError("kazoo channel: entry is not an object")
    if _is_loopback(channel):
        return None
    leg_id = _text(channel, "uuid")
    if leg_id is None:
        raise FieldError("kazoo channel: entry has no uuid")
    ccv = _obj(channel, "custom_channel_vars")
    request = _text(channel, "request") or _text(channel, "destination")
    return ChannelEvent(
        kind=LegEventKind.SNAPSHOT,
        tenant_id=account_id,
        leg_id=leg_id,
        at=at,
        node=_text(channel, "node") or _text(channel, "media_server"),
        group_key=_text(channel, "interaction_id") or _text(ccv, "call_interaction_id"),
        bridge_key=_text(channel, "bridge_id") or _text(ccv, "bridge_id"),
        other_leg_id=_text(channel, "other_leg") or _text(channel, "other_leg_call_id"),
        answered=_flag(channel.get("answered")),
        held=_flag(channel.get("is_onhold")),
        **_leg_fields(channel, ccv, request, internal_digits),
    )


def unix_time(value: Any) -> float:
    """A Kazoo (Gregorian seconds) timestamp as unix seconds."""
    if isinstance(value, bool) or value is None or value == "":
        raise FieldError(f"kazoo: unusable timestamp {value!r}")
    try:
        greg = float(value)
    except (TypeError, ValueError) as exc:
        raise FieldError(f"kazoo: non-numeric timestamp {value!r}") from exc
    if not greg >= GREGORIAN_OFFSET:  # also rejects NaN
        raise FieldError(f"kazoo: timestamp {value!r} is not Gregorian seconds")
    return greg - GREGORIAN_OFFSET


# -- who is on the leg ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Ids:
    """Identity fields, from the channel vars first, else the top level (channel listing)."""

    owner_id: str | None
    authorizing_id: str | None
    authorizing_type: str
    resource: bool

    @classmethod
    def of(cls, data: Mapping[str, Any], ccv: Mapping[str, Any]) -> _Ids:
        def pick(key: str) -> str | None:
            return _text(ccv, key) or _text(data, key)

        resource_type = (pick("resource_type") or "").lower()
        resource = bool(
            pick("resource_id")
            or _flag(ccv.get("global_resource"))
            or resource_type.startswith("offnet")
        )
        auth_type = (pick("authorizing_type") or "").lower()
        return cls(pick("owner_id"), pick("authorizing_id"), auth_type, resource)


def _party(ids: _Ids, originator: bool) -> Party:
    """AGENT for a user's device; TRUNK for a carrier/resource leg; else UNKNOWN.

    A device-authorised leg is an agent's, except a B-leg sent out through a resource
    (its channel vars are inherited from the device that dialled): that one is the carrier.
    """
    if ids.authorizing_type == "resource":
        return Party.TRUNK
    if ids.authorizing_type in _AGENT_TYPES:
        if originator or not ids.resource or ids.authorizing_type == "mobile":
            return Party.AGENT
        return Party.TRUNK
    if ids.resource:
        return Party.TRUNK
    if ids.owner_id:
        return Party.AGENT
    if originator and not ids.authorizing_id:
        return Party.TRUNK  # a carrier A-leg: nobody of ours authorised it
    return Party.UNKNOWN


def _leg_fields(
    data: Mapping[str, Any], ccv: Mapping[str, Any], request: str | None, internal_digits: int
) -> dict[str, Any]:
    """The ChannelEvent fields shared by events and listings."""
    originator = (_text(data, "call_direction") or _text(data, "direction") or "") == "inbound"
    ids = _Ids.of(data, ccv)
    party = _party(ids, originator)
    caller = _text(data, "caller_id_number")
    callee = _text(data, "callee_id_number")
    agent = None
    if party is Party.AGENT:
        extension = _extension(
            _text(data, "presence_id"), caller if originator else callee, internal_digits
        )
        agent = AgentRef(ids.owner_id, ids.authorizing_id, extension)
    return {
        "originator": originator,
        "party": party,
        "agent": agent,
        "caller_number": caller,
        "caller_name": _text(data, "caller_id_name"),
        "callee_number": callee,
        "callee_name": _text(data, "callee_id_name"),
        "dialed_number": _user_part(request) or _text(data, "caller_destination_number"),
        "origin_tag": _text(_obj(data, "custom_application_vars"), "ctibridge_req"),
    }


def _extension(presence_id: str | None, number: str | None, internal_digits: int) -> str | None:
    user = _user_part(presence_id)
    if user and _digits(user):
        return user
    if number and _digits(number) and len(number) <= internal_digits:
        return number
    return None


# -- what happened ----------------------------------------------------------------------------


def _answer_kind(data: Mapping[str, Any]) -> LegEventKind:
    """Early media is not an answer.

    ``channel_answer_state`` is the switch's own state and decides when present; the
    ``disposition`` (which keeps saying ``EARLY MEDIA`` after a pre-answered leg is really
    answered) is only the fallback when the state is missing.
    """
    state = (_text(data, "channel_answer_state") or "").lower()
    if state:
        return LegEventKind.EARLY if state == "early" else LegEventKind.ANSWERED
    if _upper(_text(data, "disposition")) == "EARLY MEDIA":
        return LegEventKind.EARLY
    return LegEventKind.ANSWERED


def _other_leg(data: Mapping[str, Any], leg_id: str, kind: LegEventKind) -> str | None:
    other = _text(data, "other_leg_call_id")
    if other or kind is not LegEventKind.BRIDGED:
        return other
    for key in ("bridge_b_unique_id", "bridge_a_unique_id"):
        candidate = _text(data, key)
        if candidate and candidate != leg_id:
            return candidate
    return None


def _recordings(value: Any) -> tuple[Recording, ...]:
    if value is None or value == "":
        return ()
    items = [value] if isinstance(value, (str, Mapping)) else value
    if not isinstance(items, list):
        raise FieldError(f"kazoo: media_recordings is a {type(value).__name__}")
    return tuple(_recording(item) for item in items if item not in ("", None))


def _recording(item: Any) -> Recording:
    if isinstance(item, str):
        return Recording(ref=item)
    if isinstance(item, Mapping):
        url = _text(item, "url")
        ref = _text(item, "media_name") or _text(item, "id") or url
        if ref:
            return Recording(ref=ref, url=url)
    raise FieldError(f"kazoo: unusable media_recordings entry {item!r}")


def _is_loopback(data: Mapping[str, Any]) -> bool:
    name = data.get("channel_name")
    if isinstance(name, str) and name.lower().startswith("loopback/"):
        return True
    return _flag(data.get("channel_is_loopback")) or _flag(data.get("is_loopback"))


# -- field readers ----------------------------------------------------------------------------


def _text(data: Mapping[str, Any], key: str) -> str | None:
    value = data.get(key)
    if value is None or value == "":
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    raise FieldError(f"kazoo: {key} is a {type(value).__name__}, not a string")


def _obj(data: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = data.get(key)
    if value is None:
        return {}
    if isinstance(value, Mapping):
        return value
    raise FieldError(f"kazoo: {key} is a {type(value).__name__}, not an object")


def _flag(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    return isinstance(value, str) and value.strip().lower() in _TRUE


def _upper(value: str | None) -> str | None:
    return value.upper() if value else None


def _user_part(value: str | None) -> str | None:
    if not value:
        return None
    user = value.split("@", 1)[0]
    if user.lower().startswith("sip:"):
        user = user[4:]
    return user or None


def _digits(value: str) -> bool:
    return value.isascii() and value.isdigit()
