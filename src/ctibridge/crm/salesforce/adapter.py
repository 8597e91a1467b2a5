"""``SalesforceAdapter``: the :class:`~ctibridge.crm.base.CrmAdapter` for Salesforce orgs.

One adapter serves every tenant; each tenant has its own org connection (an
:class:`~ctibridge.crm.salesforce.orgs.OrgSource` says which), opened on first use and kept:
a client, a session, single-flight renewals.

API budget (the daily allocation is org-wide): a lookup is one SOSL search; a batch of up
to 25 call logs is one composite request; a retried log updates what it wrote (upsert by
key), it never adds a second Task.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from ctibridge.config import CallsSettings
from ctibridge.crm.base import CallLog, CrmRecord, CrmRef
from ctibridge.crm.salesforce import calllog
from ctibridge.crm.salesforce.auth import (
    Grant,
    JwtGrant,
    RefreshGrant,
    SalesforceAuth,
    Session,
    load_private_key,
)
from ctibridge.crm.salesforce.client import SalesforceClient
from ctibridge.crm.salesforce.errors import ApiUsage
from ctibridge.crm.salesforce.orgs import OrgSource, SalesforceOrg
from ctibridge.crm.salesforce.search import (
    MAX_ROWS,
    OBJECT_FIELDS,
    matching_field,
    name_sosl,
    phone_sosl,
    record_from_row,
    soql_quote,
    sort_records,
)
from ctibridge.errors import ConfigError, CrmAuthError, CrmError, CrmRejected
from ctibridge.numbers import display_forms, to_e164

__all__ = ["BATCH_SIZE", "SalesforceAdapter"]

logger = logging.getLogger(__name__)

BATCH_SIZE = 25
"""Logs per composite request: two collection parts of 25 records each stays well under the
composite's limits and far below the 20-second mark of a "long-running" request."""
_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,79}$")
_RECORD_ID = re.compile(r"^[A-Za-z0-9]{15}(?:[A-Za-z0-9]{3})?$")
_DEFAULT_FIELDS = ("Id", "Name")


@dataclass(frozen=True, slots=True)
class _Connection:
    org: SalesforceOrg
    client: SalesforceClient
    region: str


class SalesforceAdapter:
    name = "salesforce"

    def __init__(
        self,
        *,
        orgs: OrgSource,
        calls: CallsSettings | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        timeout: float = 20.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._orgs = orgs
        self._calls = calls or CallsSettings()
        self._transport = transport
        self._timeout = timeout
        self._clock = clock
        self._connections: dict[str, _Connection] = {}
        self._opening = asyncio.Lock()

    # --- lookups ---

    async def lookup_by_number(
        self, tenant_id: str, number: str, *, limit: int = 20
    ) -> list[CrmRecord]:
        conn = await self._connection(tenant_id)
        e164 = to_e164(number, conn.region, self._calls.internal_digits)
        if e164 is None:
            return []
        sosl = phone_sosl(display_forms(e164), min(MAX_ROWS, max(3 * limit, 20)))
        rows = await self._search(conn, sosl)
        found = []
        for row in rows:
            field = matching_field(
                row, e164, region=conn.region, internal_digits=self._calls.internal_digits
            )
            if field and not row.get("IsConverted"):
                found.append(record_from_row(row, _instance(conn), matched_field=field))
        return sort_records(found)[:limit]

    async def search(self, tenant_id: str, text: str, *, limit: int = 20) -> list[CrmRecord]:
        conn = await self._connection(tenant_id)
        if to_e164(text, conn.region, self._calls.internal_digits):
            return await self.lookup_by_number(tenant_id, text, limit=limit)
        if len(text.strip()) < 2:
            return []
        rows = await self._search(conn, name_sosl(text, min(MAX_ROWS, limit)))
        found = [record_from_row(r, _instance(conn)) for r in rows if not r.get("IsConverted")]
        return found[:limit]

    async def _search(self, conn: _Connection, sosl: str) -> list[dict[str, Any]]:
        try:
            return await conn.client.search(sosl)
        except CrmRejected as exc:
            if "SEARCH" not in str(exc.details.get("error_code") or ""):
                raise
            logger.info("Salesforce cannot search this: %s", exc)
            return []

    async def get_record(self, tenant_id: str, ref: CrmRef) -> CrmRecord | None:
        conn = await self._connection(tenant_id)
        _check_name(ref.object)
        if not _RECORD_ID.match(ref.record_id):
            return None
        fields = [f for f in OBJECT_FIELDS.get(ref.object, _DEFAULT_FIELDS) if "." not in f]
        row = await conn.client.retrieve(ref.object, ref.record_id, fields)
        if row is None:
            return None
        row.setdefault("attributes", {"type": ref.object})
        return record_from_row(row, _instance(conn))

    async def create_record(self, tenant_id: str, object: str, fields: dict[str, Any]) -> CrmRecord:
        """A new record (a Lead unless told otherwise), with the required fields of Leads
        and Contacts filled in when missing."""
        conn = await self._connection(tenant_id)
        sobject = object or "Lead"
        _check_name(sobject)
        values = _with_required(sobject, fields, conn.org)
        record_id = await conn.client.create(sobject, values)
        row = {"attributes": {"type": sobject}, "Id": record_id, "Name": _name(values), **values}
        return record_from_row(row, _instance(conn))

    async def logged_task_id(self, tenant_id: str, key: str) -> str | None:
        """The Task written for a log key, if any (one SOQL query)."""
        conn = await self._connection(tenant_id)
        soql = f"SELECT Id FROM Task WHERE {calllog.KEY_FIELD} = {soql_quote(key)} LIMIT 1"
        rows = await conn.client.query(soql)
        return str(rows[0]["Id"]) if rows else None

    # --- call logs ---

    async def log_call(self, log: CallLog) -> str:
        (result,) = await self.log_calls([log])
        if isinstance(result, CrmError):
            raise result
        return result

    async def log_calls(self, logs: Sequence[CallLog]) -> list[str | CrmError]:
        """Write many logs, up to 25 per composite request; per log, in order, the Task id or
        the error (retry those that are :class:`~ctibridge.errors.CrmUnavailable`).
        A tenant whose org fails a whole request gets that error for its remaining logs
        (no more requests spent on it); other tenants go on."""
        results: list[str | CrmError] = [CrmRejected("not written")] * len(logs)
        by_tenant: dict[str, list[int]] = {}
        for index, log in enumerate(logs):
            problem = calllog.check(log)
            if problem is not None:
                results[index] = problem
            else:
                by_tenant.setdefault(log.tenant_id, []).append(index)
        for tenant_id, indexes in by_tenant.items():
            written = await self._log_tenant(tenant_id, [logs[i] for i in indexes])
            for index, result in zip(indexes, written, strict=True):
                results[index] = result
        return results

    async def _log_tenant(self, tenant_id: str, logs: list[CallLog]) -> list[str | CrmError]:
        try:
            conn = await self._connection(tenant_id)
        except CrmError as exc:
            return [exc] * len(logs)
        out: list[str | CrmError] = []
        failed: CrmError | None = None
        for start in range(0, len(logs), BATCH_SIZE):
            batch = logs[start : start + BATCH_SIZE]
            if failed is None:
                try:
                    out += await self._write_batch(conn, batch)
                    continue
                except CrmError as exc:
                    logger.warning("Salesforce log batch for %s failed: %s", tenant_id, exc)
                    failed = exc
            out += [failed] * len(batch)
        return out

    async def _write_batch(self, conn: _Connection, logs: list[CallLog]) -> list[str | CrmError]:
        unique = list({log.key: log for log in logs}.values())
        owner = conn.org.default_owner_id
        tasks = [calllog.task_fields(log, default_owner=owner) for log in unique]
        client = conn.client
        parts = [client.collection_upsert("Task", calllog.KEY_FIELD, tasks, reference_id="tasks")]
        if conn.org.write_call_data:
            data = [calllog.call_data_fields(log, default_owner=owner) for log in unique]
            parts.append(
                client.collection_upsert(
                    calllog.CALL_DATA_OBJECT, calllog.KEY_FIELD, data, reference_id="callData"
                )
            )
        answers = {a.reference_id: a for a in await client.composite(parts)}
        task_results = calllog.item_results(answers.get("tasks"), len(unique))
        task_results = await self._rewrite_existing(conn, tasks, task_results)
        data_results = (
            calllog.item_results(answers.get("callData"), len(unique))
            if conn.org.write_call_data
            else task_results
        )
        by_key = {
            log.key: _combined(t, d)
            for log, t, d in zip(unique, task_results, data_results, strict=True)
        }
        return [by_key[log.key] for log in logs]

    async def _rewrite_existing(
        self, conn: _Connection, tasks: list[dict[str, Any]], results: list[str | CrmError]
    ) -> list[str | CrmError]:
        """Tasks the upsert found already written (a retry) may refuse the create-only
        ``TaskSubtype``: update those without it, in one more request."""
        again = [i for i, result in enumerate(results) if calllog.refuses_subtype(result)]
        if not again:
            return results
        records = calllog.without_subtype([tasks[i] for i in again])
        part = conn.client.collection_upsert(
            "Task", calllog.KEY_FIELD, records, reference_id="tasks"
        )
        (answer,) = await conn.client.composite([part])
        retried = calllog.item_results(answer, len(again))
        merged = list(results)
        for i, result in zip(again, retried, strict=True):
            merged[i] = result
        return merged

    # --- connections ---

    def api_usage(self, tenant_id: str) -> ApiUsage | None:
        """The tenant's org API usage as of its latest answer (None before any)."""
        conn = self._connections.get(tenant_id)
        return conn.client.usage if conn else None

    async def forget(self, tenant_id: str) -> None:
        """Drop a tenant's connection (after its settings changed)."""
        conn = self._connections.pop(tenant_id, None)
        if conn is not None:
            await conn.client.aclose()

    async def close(self) -> None:
        connections, self._connections = self._connections, {}
        for conn in connections.values():
            await conn.client.aclose()

    async def _connection(self, tenant_id: str) -> _Connection:
        conn = self._connections.get(tenant_id)
        if conn is not None:
            return conn
        async with self._opening:
            conn = self._connections.get(tenant_id)
            if conn is None:
                conn = await self._open(tenant_id)
                self._connections[tenant_id] = conn
            return conn

    async def _open(self, tenant_id: str) -> _Connection:
        try:
            org = await self._orgs.org(tenant_id)
        except ConfigError as exc:
            raise CrmAuthError(f"tenant {tenant_id}: Salesforce settings: {exc}") from exc
        if org is None:
            raise CrmAuthError(f"tenant {tenant_id} has no Salesforce connection")
        session = Session(refresh_token=org.refresh_token or None)
        client = SalesforceClient(
            SalesforceAuth(session, await self._grant(org)),
            api_version=org.api_version,
            transport=self._transport,
            timeout=self._timeout,
            on_refresh_token=functools.partial(self._orgs.refresh_token_rotated, tenant_id),
        )
        return _Connection(org, client, org.region or self._calls.default_region)

    async def _grant(self, org: SalesforceOrg) -> Grant:
        if org.flow == "web":
            return RefreshGrant(org.login_url, org.client_id, org.client_secret)
        try:
            pem = await asyncio.to_thread(Path(org.private_key_file).read_bytes)
            key = load_private_key(pem)
        except (OSError, ValueError) as exc:
            raise CrmAuthError(f"cannot use the JWT key {org.private_key_file}: {exc}") from exc
        return JwtGrant(org.login_url, org.client_id, org.username, key, clock=self._clock)


def _instance(conn: _Connection) -> str:
    return conn.client.instance_url or ""


def _check_name(sobject: str) -> None:
    if not _NAME.match(sobject):
        raise CrmRejected(f"not a Salesforce object name: {sobject!r}")


def _with_required(sobject: str, fields: dict[str, Any], org: SalesforceOrg) -> dict[str, Any]:
    values = dict(fields)
    if sobject in ("Lead", "Contact") and not values.get("LastName"):
        values["LastName"] = "Unknown caller"
    if sobject == "Lead" and not values.get("Company"):
        values["Company"] = org.lead_company
    return values


def _name(values: dict[str, Any]) -> str:
    if values.get("Name"):
        return str(values["Name"])
    return " ".join(str(values[k]) for k in ("FirstName", "LastName") if values.get(k))


def _combined(task: str | CrmError, data: str | CrmError) -> str | CrmError:
    if isinstance(task, CrmError):
        return task
    return data if isinstance(data, CrmError) else task
