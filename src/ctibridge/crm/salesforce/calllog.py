"""A :class:`CallLog` as Salesforce records: a call Task and a ``KazooCallData__c`` record.

Both are upserted by the log's key (``ctibridge_Key__c``, an external id shipped in
``metadata/``), so writing the same log again updates the records it wrote before instead of
adding a second Task. A batch of logs is one composite request with two parts, an sObject
collection upsert of the Tasks and one of the call-data records.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ctibridge.crm.base import CallLog
from ctibridge.crm.salesforce.client import SubResponse
from ctibridge.crm.salesforce.errors import error_for, parse_errors
from ctibridge.errors import CrmError, CrmRejected

__all__ = [
    "CALL_DATA_OBJECT",
    "CALL_TYPES",
    "KEY_FIELD",
    "call_data_fields",
    "check",
    "item_results",
    "refuses_subtype",
    "task_fields",
    "without_subtype",
]

KEY_FIELD = "ctibridge_Key__c"
CALL_DATA_OBJECT = "KazooCallData__c"
CALL_TYPES = frozenset({"Inbound", "Outbound", "Internal"})
TASK_SUBTYPE = "TaskSubtype"
"""Create-only: an upsert that finds the Task already there may refuse it (see adapter)."""
_PEOPLE = frozenset({"Contact", "Lead"})
_SHORT = 255
_LONG = 32_000


def check(log: CallLog) -> CrmRejected | None:
    """What Salesforce would refuse anyway, found before spending an API call."""
    if log.call_type not in CALL_TYPES:
        return CrmRejected(
            f"Call Type: bad value for restricted picklist field: {log.call_type}",
            details={"fields": ["CallType"], "error_code": "LOCAL_VALIDATION"},
        )
    if not 0 < len(log.key) <= _SHORT:
        return CrmRejected(
            "a call log key has 1 to 255 characters", details={"fields": [KEY_FIELD]}
        )
    return None


def task_fields(log: CallLog, *, default_owner: str = "") -> dict[str, Any]:
    fields: dict[str, Any] = {
        KEY_FIELD: log.key,
        TASK_SUBTYPE: "Call",
        "Status": "Completed",
        "Subject": log.subject[:_SHORT],
        "CallType": log.call_type,
        "CallDurationInSeconds": max(0, int(log.duration_seconds)),
        "CallObject": log.call_id[:_SHORT],
        "CallDisposition": log.disposition[:_SHORT],
        "ActivityDate": _local_date(log.started_at, log.timezone),
        "Description": _description(log)[:_LONG],
    }
    owner = log.crm_user_id or default_owner
    if owner:
        fields["OwnerId"] = owner
    fields.update(_who_what(log))
    return fields


def _who_what(log: CallLog) -> dict[str, str]:
    """``WhoId`` is a Contact or Lead; a Lead cannot be combined with ``WhatId``."""
    out: dict[str, str] = {}
    who, what = log.who, log.what
    if who is not None and who.object not in _PEOPLE and what is None:
        who, what = None, who
    if who is not None:
        out["WhoId"] = who.record_id
    if what is not None and not (who is not None and who.object == "Lead"):
        out["WhatId"] = what.record_id
    return out


def _description(log: CallLog) -> str:
    lines = [log.description.strip()] if log.description.strip() else []
    if log.recording_url:
        lines.append(f"Recording: {log.recording_url}")
    return "\n".join(lines)


def _local_date(epoch: float, timezone: str) -> str:
    try:
        zone: dt.tzinfo = ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        zone = dt.UTC
    return dt.datetime.fromtimestamp(epoch, zone).date().isoformat()


def _datetime(epoch: float) -> str:
    moment = dt.datetime.fromtimestamp(epoch, dt.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def call_data_fields(log: CallLog, *, default_owner: str = "") -> dict[str, Any]:
    """The call facts for ``KazooCallData__c`` (field names as in the shipped metadata)."""
    fields: dict[str, Any] = {
        KEY_FIELD: log.key,
        "CallId__c": log.call_id[:_SHORT],
        "AgentId__c": log.agent_id[:_SHORT],
        "Direction__c": log.call_type,
        "Disposition__c": log.disposition[:_SHORT],
        "Subject__c": log.subject[:_SHORT],
        "StartedAt__c": _datetime(log.started_at),
        "EndedAt__c": _datetime(log.ended_at),
        "DurationSeconds__c": max(0, int(log.duration_seconds)),
        "RemoteNumber__c": (log.remote_number or "")[:40] or None,
        "RemoteName__c": (log.remote_name or "")[:_SHORT] or None,
        "RecordingUrl__c": _url(log.recording_url),
    }
    owner = log.crm_user_id or default_owner
    if owner:
        fields["OwnerId"] = owner
    fields.update(_links(log))
    return fields


def _url(url: str | None) -> str | None:
    """A URL field holds 255 characters; a longer link stays whole in the Task's comments."""
    return url if url and len(url) <= _SHORT else None


def _links(log: CallLog) -> dict[str, str]:
    """Plain ids: a custom object cannot look up to Tasks, and text keeps the object
    deployable whatever the org allows for lookups to Leads."""
    links: dict[str, str] = {}
    if log.who is not None:
        links["WhoId__c"] = log.who.record_id
    if log.what is not None:
        links["WhatId__c"] = log.what.record_id
    return links


def item_results(part: SubResponse | None, count: int) -> list[str | CrmError]:
    """Per-record outcome of a collection part: the record id, or the error."""
    if part is None:
        return [CrmRejected("Salesforce did not answer this part")] * count
    if not part.ok or not isinstance(part.body, list):
        error = error_for(part.status, part.body)
        return [error] * count
    results: list[str | CrmError] = [_item(entry) for entry in part.body[:count]]
    missing = count - len(results)
    return results + [CrmRejected("Salesforce returned too few results")] * missing


def _item(entry: Any) -> str | CrmError:
    if isinstance(entry, Mapping) and entry.get("success") and entry.get("id"):
        return str(entry["id"])
    errors = entry.get("errors") if isinstance(entry, Mapping) else None
    return error_for(400, errors or [])


def refuses_subtype(result: str | CrmError) -> bool:
    """The upsert updated an existing Task and refused the create-only ``TaskSubtype``."""
    if not isinstance(result, CrmRejected):
        return False
    items = parse_errors(result.details.get("errors"))
    return any(
        i.error_code == "INVALID_FIELD_FOR_INSERT_UPDATE" and TASK_SUBTYPE in i.fields
        for i in items
    )


def without_subtype(records: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in r.items() if k != TASK_SUBTYPE} for r in records]
