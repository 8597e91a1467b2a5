"""Call logs for the CRM: which record each agent's log goes to, and how it reads.

The association rules of seed 002, in one place for every CRM adapter:

- an internal call is never associated with a record;
- what the agent chose during the call wins: the record picked in the chooser, navigated to,
  or created with *New* (the latest choice);
- else the record a click-to-dial started from;
- else the only record that matched the number;
- else (several matches, nobody chose; or none) no record.

A transferred call yields one log per agent who handled it, each with that agent's own
choices. A missed call yields one log per agent whose phone rang.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers

from ctibridge.callstate.events import AgentRef
from ctibridge.callstate.model import Call, Direction, EndReason, Handling
from ctibridge.crm.base import CallLog, CrmRecord, CrmRef
from ctibridge.numbers import to_e164
from ctibridge.storage.base import Agent, StoredCall
from ctibridge.types import AgentId

__all__ = ["AgentContext", "associate", "call_logs", "display_number", "subject"]

PEOPLE = frozenset({"Contact", "Lead"})
"""Objects a log names as *who*; anything else (Account, Opportunity, Case...) is *what*."""

_CALL_TYPE = {
    Direction.INBOUND: "Inbound",
    Direction.OUTBOUND: "Outbound",
    Direction.INTERNAL: "Internal",
}
_DISPOSITION = {
    EndReason.COMPLETED: "Answered",
    EndReason.NO_ANSWER: "No answer",
    EndReason.BUSY: "Busy",
    EndReason.REJECTED: "Rejected",
    EndReason.FAILED: "Failed",
    EndReason.VOICEMAIL: "Voicemail",
    EndReason.TRANSFERRED: "Transferred",
}


@dataclass(frozen=True, slots=True)
class AgentContext:
    """What one agent did in the CRM during one call."""

    clicked: CrmRef | None = None
    """The record a click-to-dial started from."""
    chosen: CrmRef | None = None
    """Picked in the chooser, navigated to, or created with New (the latest)."""
    matches: tuple[CrmRecord, ...] = ()
    """What the number lookup found when the call rang."""


def associate(call: Call, context: AgentContext) -> tuple[CrmRef | None, CrmRef | None]:
    """(who, what) for one agent's log of ``call``."""
    if call.direction is Direction.INTERNAL:
        return None, None
    ref = context.chosen or context.clicked
    if ref is None and len(context.matches) == 1:
        ref = context.matches[0].ref
    if ref is None:
        return None, None
    return (ref, None) if ref.object in PEOPLE else (None, ref)


def display_number(number: str | None, region: str) -> str:
    """A number as people in ``region`` write it (``07814256404``); anything else as given."""
    if not number:
        return "unknown"
    e164 = to_e164(number, region)
    if e164 is None:
        return number
    parsed = phonenumbers.parse(e164, None)
    if parsed.country_code == phonenumbers.country_code_for_region(region.upper()):
        national = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.NATIONAL)
        return "".join(ch for ch in national if ch.isdigit())
    return e164


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def subject(
    call: Call,
    *,
    timezone: str,
    remote_number: str | None,
    remote_name: str | None,
    region: str = "GB",
) -> str:
    """``Inbound Call at 16:11:36 Europe/London from 07814256404 (Fred Bloggs)``."""
    zone = _zone(timezone)
    at = datetime.fromtimestamp(call.started_at, UTC).astimezone(zone).strftime("%H:%M:%S")
    word = "to" if call.direction is Direction.OUTBOUND else "from"
    text = f"{_CALL_TYPE[call.direction]} Call at {at} {zone.key} {word} "
    text += display_number(remote_number, region)
    return f"{text} ({remote_name})" if remote_name else text


def _remote(call: Call, agent: Agent) -> tuple[str | None, str | None]:
    if call.direction is Direction.OUTBOUND:
        return call.to_number, call.to_name
    if call.direction is Direction.INTERNAL and call.from_number == agent.extension:
        return call.to_number, call.to_name
    return call.from_number, call.from_name


def _disposition(call: Call, handling: Handling | None) -> str:
    if handling is not None and handling.transferred_to is not None:
        return "Transferred"
    if call.missed and call.end_reason is not EndReason.VOICEMAIL:
        return "Missed"
    return _DISPOSITION.get(call.end_reason or EndReason.COMPLETED, "Answered")


def _duration(call: Call, handling: Handling | None) -> int:
    if handling is None:
        return 0
    end = handling.ended_at if handling.ended_at is not None else call.ended_at
    if end is None:
        return 0
    start = handling.started_at
    if call.answered_at is not None and call.direction is not Direction.INBOUND:
        start = max(start, call.answered_at)  # a caller's own ringing is not talk time
    return max(0, round(end - start - handling.hold_seconds))


def call_logs(
    stored: StoredCall,
    agents: Mapping[AgentId, Agent],
    contexts: Mapping[AgentId, AgentContext],
    *,
    resolve: Callable[[AgentRef], AgentId | None],
    region: str = "GB",
    recording_url: str | None = None,
) -> list[CallLog]:
    """One log per agent who handled the call (or, for a missed call, was rung)."""
    call = stored.call
    if call.ended_at is None:
        return []
    handlings: dict[AgentId, Handling] = {}
    for handling in call.handlings:
        agent_id = resolve(handling.agent)
        if agent_id is not None and agent_id not in handlings:
            handlings[agent_id] = handling
    targets: list[AgentId] = list(handlings) or (list(stored.rung) if call.missed else [])
    logs: list[CallLog] = []
    for agent_id in targets:
        agent = agents.get(agent_id)
        if agent is None:
            continue
        handled = handlings.get(agent_id)
        who, what = associate(call, contexts.get(agent_id, AgentContext()))
        number, name = _remote(call, agent)
        logs.append(
            CallLog(
                key=f"{call.call_id}:{agent_id}",
                tenant_id=call.tenant_id,
                call_id=call.call_id,
                agent_id=agent_id,
                crm_user_id=agent.crm_user_id,
                call_type=_CALL_TYPE[call.direction],
                subject=subject(
                    call,
                    timezone=agent.timezone,
                    remote_number=number,
                    remote_name=name,
                    region=region,
                ),
                started_at=handled.started_at if handled else call.started_at,
                ended_at=(handled.ended_at if handled and handled.ended_at else call.ended_at),
                duration_seconds=_duration(call, handled),
                disposition=_disposition(call, handled),
                remote_number=number,
                remote_name=name,
                who=who,
                what=what,
                recording_url=recording_url,
                timezone=agent.timezone,
            )
        )
    return logs
