"""Asterisk hangup causes: Q.850 numbers → the cause names :class:`ChannelEvent` uses."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

__all__ = ["Q850_CAUSES", "cause_name"]

Q850_CAUSES: Final[Mapping[int, str]] = {
    0: "NONE", 1: "UNALLOCATED_NUMBER", 2: "NO_ROUTE_TRANSIT_NET", 3: "NO_ROUTE_DESTINATION",
    6: "CHANNEL_UNACCEPTABLE", 7: "CALL_AWARDED_DELIVERED", 16: "NORMAL_CLEARING",
    17: "USER_BUSY", 18: "NO_USER_RESPONSE", 19: "NO_ANSWER", 20: "SUBSCRIBER_ABSENT",
    21: "CALL_REJECTED", 22: "NUMBER_CHANGED", 23: "REDIRECTION_TO_NEW_DESTINATION",
    25: "EXCHANGE_ROUTING_ERROR", 26: "ANSWERED_ELSEWHERE", 27: "DESTINATION_OUT_OF_ORDER",
    28: "INVALID_NUMBER_FORMAT", 29: "FACILITY_REJECTED", 30: "RESPONSE_TO_STATUS_ENQUIRY",
    31: "NORMAL_UNSPECIFIED", 34: "NORMAL_CIRCUIT_CONGESTION", 38: "NETWORK_OUT_OF_ORDER",
    41: "NORMAL_TEMPORARY_FAILURE", 42: "SWITCH_CONGESTION", 43: "ACCESS_INFO_DISCARDED",
    44: "REQUESTED_CHAN_UNAVAIL", 50: "FACILITY_NOT_SUBSCRIBED", 52: "OUTGOING_CALL_BARRED",
    54: "INCOMING_CALL_BARRED", 57: "BEARERCAPABILITY_NOTAUTH",
    58: "BEARERCAPABILITY_NOTAVAIL", 65: "BEARERCAPABILITY_NOTIMPL",
    66: "CHAN_NOT_IMPLEMENTED", 69: "FACILITY_NOT_IMPLEMENTED", 81: "INVALID_CALL_REFERENCE",
    88: "INCOMPATIBLE_DESTINATION", 95: "INVALID_MSG_UNSPECIFIED", 96: "MANDATORY_IE_MISSING",
    97: "MESSAGE_TYPE_NONEXIST", 98: "WRONG_MESSAGE", 99: "IE_NONEXIST",
    100: "INVALID_IE_CONTENTS", 101: "WRONG_CALL_STATE", 102: "RECOVERY_ON_TIMER_EXPIRE",
    103: "MANDATORY_IE_LENGTH_ERROR", 111: "PROTOCOL_ERROR", 127: "INTERWORKING",
}  # fmt: skip
"""Q.850 cause numbers as Asterisk reports them → the cause names ChannelEvent uses.
26 (answered elsewhere) is the losing fork of a ring group, like FreeSWITCH's LOSE_RACE."""


def cause_name(cause: str | None) -> str | None:
    """``"16"`` → ``NORMAL_CLEARING``; an unknown number → ``CAUSE_<n>``; junk → None."""
    text = (cause or "").strip()
    if not (text.isascii() and text.isdigit() and len(text) <= 6):
        return None
    number = int(text)
    return Q850_CAUSES.get(number, f"CAUSE_{number}")
