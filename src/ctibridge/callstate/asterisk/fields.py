"""Reading AMI header values: times, caller ids, extensions, dial strings, variable names."""

from __future__ import annotations

import math
from typing import Final

from ctibridge.errors import FieldError
from ctibridge.protocols.ami import AmiMessage

_NO_VALUE: Final = frozenset({"", "<unknown>"})
_RECORDING_VAR: Final = "MIXMONITOR_FILENAME"


def _text(value: str | None) -> str | None:
    """A caller-id style value, or None for ``<unknown>``/empty."""
    if value is None:
        return None
    value = value.strip()
    return None if value in _NO_VALUE else value


def _exten(value: str | None) -> str | None:
    """A dialled extension, or None for the ``s`` (start) extension."""
    text = _text(value)
    return None if text == "s" else text


def _time(msg: AmiMessage, received_at: float | None) -> float:
    raw = msg.get("Timestamp")
    if raw is None:
        if received_at is None:
            raise FieldError(f"AMI {msg.name}: no Timestamp (set timestampevents=yes)")
        return received_at
    try:
        at = float(raw)
    except ValueError as exc:
        raise FieldError(f"AMI {msg.name}: bad Timestamp {raw[:30]!r}") from exc
    if not math.isfinite(at) or at < 0:
        raise FieldError(f"AMI {msg.name}: bad Timestamp {raw[:30]!r}")
    return at


def _var_name(raw: str | None) -> str:
    """``__CTIBRIDGE_REQ`` (inherited) → ``CTIBRIDGE_REQ``."""
    return (raw or "").lstrip("_").upper()


def _has_leg(msg: AmiMessage, prefix: str) -> bool:
    return bool(msg.get(prefix + "Uniqueid")) and bool(msg.get(prefix + "Channel"))


def _dialed(dial_string: str | None) -> str | None:
    """The number in a DialString: ``15559876543@carrier`` → ``15559876543``."""
    if not dial_string:
        return None
    target = dial_string.split("&", 1)[0].rpartition("/")[2]
    return _exten(target.partition("@")[0].partition(",")[0])
