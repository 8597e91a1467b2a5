"""Call logs as activities on built-in CRM records, and the records' last activity time."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from ctibridge.crm._builtin_schema import OBJECTS
from ctibridge.crm._builtin_writes import new_id
from ctibridge.crm.base import CallLog, CrmRef
from ctibridge.storage._engine import insert_for
from ctibridge.storage.crm_tables import crm_activities

__all__ = ["Activity", "activities_query", "activity_from_row", "log_call"]

_a = crm_activities.c


@dataclass(frozen=True, slots=True)
class Activity:
    """One call log stored on a record."""

    activity_id: str
    log: CallLog
    logged_at: float
    """When the CRM stored it."""


def _ref_columns(prefix: str, ref: CrmRef | None) -> dict[str, str | None]:
    return {
        f"{prefix}_object": ref.object if ref else None,
        f"{prefix}_id": ref.record_id if ref else None,
    }


def _activity_row(log: CallLog, activity_id: str, now: float) -> dict[str, Any]:
    return {
        "id": activity_id,
        "tenant_id": log.tenant_id,
        "key": log.key,
        "call_id": log.call_id,
        "agent_id": log.agent_id,
        "crm_user_id": log.crm_user_id,
        "call_type": log.call_type,
        "subject": log.subject,
        "started_at": log.started_at,
        "ended_at": log.ended_at,
        "duration_seconds": log.duration_seconds,
        "disposition": log.disposition,
        "remote_number": log.remote_number,
        "remote_name": log.remote_name,
        **_ref_columns("who", log.who),
        **_ref_columns("what", log.what),
        "recording_url": log.recording_url,
        "description": log.description,
        "timezone": log.timezone,
        "logged_at": now,
    }


async def log_call(conn: AsyncConnection, log: CallLog, *, now: float) -> str:
    """Insert the activity unless its key is already stored; the stored id either way.
    Only a new activity moves ``last_activity_at`` of its who and what records."""
    stmt = insert_for(conn, crm_activities).on_conflict_do_nothing(
        index_elements=["tenant_id", "key"]
    )
    result = await conn.execute(stmt, [_activity_row(log, new_id(), now)])
    if result.rowcount:
        for ref in (log.who, log.what):
            if ref is not None:
                await _touch(conn, log.tenant_id, ref, log.ended_at)
    query = sa.select(_a.id).where(_a.tenant_id == log.tenant_id, _a.key == log.key)
    return str((await conn.execute(query)).scalar_one())


async def _touch(conn: AsyncConnection, tenant_id: str, ref: CrmRef, at: float) -> None:
    spec = OBJECTS.get(ref.object)
    if spec is None:  # an object the built-in CRM does not have: the log is kept anyway
        return
    table = spec.table.c
    await conn.execute(
        sa.update(spec.table)
        .where(
            table.tenant_id == tenant_id,
            table.id == ref.record_id,
            sa.or_(table.last_activity_at.is_(None), table.last_activity_at < at),
        )
        .values(last_activity_at=at)
    )


def activities_query(tenant_id: str, ref: CrmRef, limit: int) -> sa.Select[Any]:
    as_who = sa.and_(_a.who_object == ref.object, _a.who_id == ref.record_id)
    as_what = sa.and_(_a.what_object == ref.object, _a.what_id == ref.record_id)
    return (
        sa.select(crm_activities)
        .where(_a.tenant_id == tenant_id, sa.or_(as_who, as_what))
        .order_by(_a.started_at.desc(), _a.id)
        .limit(max(limit, 0))
    )


def _ref(row: Mapping[str, Any], prefix: str) -> CrmRef | None:
    object_name, record_id = row[f"{prefix}_object"], row[f"{prefix}_id"]
    return CrmRef(object_name, record_id) if object_name and record_id else None


def activity_from_row(row: Mapping[str, Any]) -> Activity:
    log = CallLog(
        key=row["key"],
        tenant_id=row["tenant_id"],
        call_id=row["call_id"],
        agent_id=row["agent_id"],
        crm_user_id=row["crm_user_id"],
        call_type=row["call_type"],
        subject=row["subject"],
        started_at=row["started_at"],
        ended_at=row["ended_at"],
        duration_seconds=row["duration_seconds"],
        disposition=row["disposition"],
        remote_number=row["remote_number"],
        remote_name=row["remote_name"],
        who=_ref(row, "who"),
        what=_ref(row, "what"),
        recording_url=row["recording_url"],
        description=row["description"],
        timezone=row["timezone"],
    )
    return Activity(row["id"], log, row["logged_at"])
