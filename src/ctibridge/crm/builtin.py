"""``BuiltinCrm``: a small CRM (accounts, contacts, leads, call activities) in our own database.

It shares the storage engine (SQLite by default, PostgreSQL in production); the tables are
in ``storage/crm_tables.py`` and ``SqlStorage.start()`` creates them. Screen pop is one
indexed query on the phone index ``crm_phones (tenant_id, e164)``, which every write keeps
in step with the records inside the same transaction. See ``docs/crm.md``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from ctibridge.crm import _builtin_queries as q
from ctibridge.crm._builtin_activities import Activity, activities_query, activity_from_row
from ctibridge.crm._builtin_activities import log_call as _log_call
from ctibridge.crm._builtin_schema import (
    CONTACT,
    OBJECTS,
    NumberRules,
    ObjectSpec,
    clean_fields,
    object_spec,
    ordered_specs,
)
from ctibridge.crm._builtin_writes import (
    BulkRow,
    BulkWriter,
    delete_record,
    existing_ids,
    insert_record,
    larger_page_cache,
    new_id,
    update_record,
)
from ctibridge.crm._fast_lookup import FastLookup
from ctibridge.crm.base import CallLog, CrmRecord, CrmRef
from ctibridge.errors import InvalidRequest, NotFound
from ctibridge.storage._engine import HasEngine, db_errors
from ctibridge.storage.crm_tables import crm_accounts

__all__ = ["Activity", "BuiltinCrm", "RecordPage"]

logger = logging.getLogger(__name__)

_MIN_SEARCH_DIGITS = 3


@dataclass(frozen=True, slots=True)
class RecordPage:
    records: list[CrmRecord]
    next_cursor: str | None
    """Pass it back as ``cursor`` for the next page; None on the last page."""


class BuiltinCrm:
    """The :class:`~ctibridge.crm.base.CrmAdapter` on our own database.

    ``store`` is a started ``SqlStorage`` (or its ``AsyncEngine``); the CRM borrows its
    engine and never disposes it. The phone lookup opens a connection of its own on first
    use (see ``_fast_lookup.py``): call :meth:`close` before closing the storage. Numbers
    are read with ``default_region`` for national spellings; numbers of at most
    ``internal_digits`` digits are extensions, never looked up.
    """

    name = "builtin"

    def __init__(
        self,
        store: AsyncEngine | HasEngine,
        *,
        default_region: str = "GB",
        internal_digits: int = 5,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._engine = store if isinstance(store, AsyncEngine) else store.engine
        self._rules = NumberRules(default_region.upper(), internal_digits)
        self._clock = clock
        self._fast = FastLookup(self._engine)

    def __repr__(self) -> str:
        return f"BuiltinCrm({self._engine.url!r}, region={self._rules.region!r})"

    @property
    def rules(self) -> NumberRules:
        return self._rules

    @asynccontextmanager
    async def _connect(self, what: str, *, write: bool = False) -> AsyncIterator[AsyncConnection]:
        with db_errors(what):
            async with self._engine.begin() if write else self._engine.connect() as conn:
                yield conn

    # screen pop and search

    async def lookup_by_number(
        self, tenant_id: str, number: str, *, limit: int = 20
    ) -> list[CrmRecord]:
        """Records holding ``number`` (any usual spelling) in a phone field: most recent
        activity first, then contacts, leads, accounts, then name, then id. Extensions and
        numbers that do not normalise give [] without a query."""
        e164 = self._rules.e164(number) if number and limit > 0 else None
        if e164 is None:
            return []
        params = {"tenant_id": tenant_id, "e164": e164, "limit": limit * 3}
        rows = await self._fast.fetch(params)
        if rows is None:
            async with self._connect("looking up a number") as conn:
                rows = (await conn.execute(q.LOOKUP, params)).mappings().all()
        return q.phone_records(rows, limit)

    async def search(self, tenant_id: str, text: str, *, limit: int = 20) -> list[CrmRecord]:
        """Records whose name, email or company contains ``text`` (ignoring case), or whose
        number contains its digits (a full number is looked up exactly)."""
        text = text.strip()
        if not text or limit < 1:
            return []
        if _looks_like_number(text):
            return await self._number_search(tenant_id, text, limit)
        found: list[CrmRecord] = []
        async with self._connect("searching the CRM") as conn:
            for spec in ordered_specs():
                result = await conn.execute(q.text_search(spec, tenant_id, text, limit))
                found += [q.record_from_row(spec, row) for row in result.mappings()]
        return q.sort_records(found)[:limit]

    async def _number_search(self, tenant_id: str, text: str, limit: int) -> list[CrmRecord]:
        exact = await self.lookup_by_number(tenant_id, text, limit=limit)
        if exact:
            return exact
        digits = "".join(ch for ch in text if ch.isdigit())
        digits = digits[2:] if digits.startswith("00") else digits.removeprefix("0")
        if len(digits) < _MIN_SEARCH_DIGITS:
            return []
        async with self._connect("searching the CRM by number") as conn:
            result = await conn.execute(q.digits_search(tenant_id, digits, limit * 3))
            return q.phone_records(result.mappings().all(), limit)

    # records

    async def get_record(self, tenant_id: str, ref: CrmRef) -> CrmRecord | None:
        spec = OBJECTS.get(ref.object)
        if spec is None:
            return None
        async with self._connect("reading a CRM record") as conn:
            return await _get(conn, spec, tenant_id, ref.record_id)

    async def create_record(
        self, tenant_id: str, object: str, fields: Mapping[str, Any]
    ) -> CrmRecord:
        """A new record from our field names (``first_name``, ``mobile_phone``...).
        InvalidRequest names the field for an unknown object or field, a missing name, a bad
        number or email, or an ``account_id`` the tenant does not have."""
        spec = object_spec(object)
        values = clean_fields(spec, fields, self._rules)
        record_id = new_id()
        async with self._connect("creating a CRM record", write=True) as conn:
            await _check_account(conn, spec, tenant_id, values)
            await insert_record(
                conn, spec, tenant_id, record_id, values, now=self._clock(), rules=self._rules
            )
            record = await _get(conn, spec, tenant_id, record_id)
        logger.info("crm: created %s %s in tenant %s", spec.name, record_id, tenant_id)
        assert record is not None
        return record

    async def update_record(
        self, tenant_id: str, ref: CrmRef, fields: Mapping[str, Any]
    ) -> CrmRecord:
        """Change the given fields (None or "" clears one). NotFound for a missing record."""
        spec = object_spec(ref.object)
        changes = clean_fields(spec, fields, self._rules, partial=True)
        async with self._connect("updating a CRM record", write=True) as conn:
            current = await _get(conn, spec, tenant_id, ref.record_id)
            if current is None:
                raise NotFound(f"no {spec.name} {ref.record_id}", details={"ref": _ref(ref)})
            values = {f.name: current.fields.get(f.name) for f in spec.fields} | changes
            await _check_account(conn, spec, tenant_id, changes)
            await update_record(
                conn,
                spec,
                tenant_id,
                ref.record_id,
                values,
                changes,
                now=self._clock(),
                rules=self._rules,
            )
            record = await _get(conn, spec, tenant_id, ref.record_id)
        assert record is not None
        return record

    async def delete_record(self, tenant_id: str, ref: CrmRef) -> bool:
        """Delete the record and its numbers; False when there was none. Its call activities
        stay (they are history); an account's contacts lose their account."""
        spec = OBJECTS.get(ref.object)
        if spec is None:
            return False
        async with self._connect("deleting a CRM record", write=True) as conn:
            deleted = await delete_record(conn, spec, tenant_id, ref.record_id)
        if deleted:
            logger.info("crm: deleted %s %s in tenant %s", spec.name, ref.record_id, tenant_id)
        return deleted

    async def list_records(
        self,
        tenant_id: str,
        object: str,
        *,
        query: str = "",
        limit: int = 50,
        cursor: str | None = None,
    ) -> RecordPage:
        """One object's records by name then id, optionally filtered like :meth:`search`
        (by text only). InvalidRequest for a bad object, limit or cursor."""
        spec = object_spec(object)
        q.check_limit(limit)
        after = q.decode_cursor(cursor) if cursor else None
        stmt = q.list_query(spec, tenant_id, query.strip(), after, limit + 1)
        async with self._connect("listing CRM records") as conn:
            rows = (await conn.execute(stmt)).mappings().all()
        records = [q.record_from_row(spec, row) for row in rows[:limit]]
        more = len(rows) > limit
        last = records[-1] if records else None
        next_cursor = q.encode_cursor(last.name, last.ref.record_id) if more and last else None
        return RecordPage(records, next_cursor)

    # call logs

    async def log_call(self, log: CallLog) -> str:
        """Store the log as an activity on ``who`` and ``what``; the same ``key`` again
        returns the first activity's id and changes nothing. A new activity moves the
        records' ``last_activity_at`` to the call's end (never backwards)."""
        async with self._connect("logging a call in the CRM", write=True) as conn:
            return await _log_call(conn, log, now=self._clock())

    async def activities(self, tenant_id: str, ref: CrmRef, *, limit: int = 100) -> list[Activity]:
        """The record's call history (as who or what), newest call first."""
        query = activities_query(tenant_id, ref, limit)
        async with self._connect("reading CRM activities") as conn:
            return [activity_from_row(row) for row in (await conn.execute(query)).mappings()]

    # bulk

    @asynccontextmanager
    async def bulk(
        self, tenant_id: str, *, rules: NumberRules | None = None
    ) -> AsyncIterator[BulkWriter]:
        """One transaction for many upserts: committed at the end unless the block raises
        or calls ``writer.discard()``. ``rules`` (default: the CRM's) read the numbers."""
        with db_errors("writing CRM records in bulk"):
            async with self._engine.connect() as conn, larger_page_cache(conn):
                transaction = await conn.begin()
                writer = BulkWriter(conn, tenant_id, rules or self._rules, self._clock())
                try:
                    yield writer
                except BaseException:
                    await transaction.rollback()
                    raise
                await (transaction.rollback() if writer.discarded else transaction.commit())

    async def upsert_many(
        self, tenant_id: str, object: str, rows: Sequence[Mapping[str, Any]], *, chunk: int = 2000
    ) -> int:
        """Create or overwrite records by ``id`` in one transaction (the demo data set uses
        it). Each row is checked like :meth:`create_record`; InvalidRequest names the row
        (``details["row"]``, from 0) and the field of the first bad one, and nothing is
        written. Returns the number of records written."""
        spec = object_spec(object)
        cleaned = [self._bulk_row(spec, index, row) for index, row in enumerate(rows)]
        _check_unique_ids(cleaned)
        async with self.bulk(tenant_id) as writer:
            await _check_bulk_accounts(writer, spec, cleaned)
            for start in range(0, len(cleaned), chunk):
                await writer.upsert(spec, cleaned[start : start + chunk])
        return len(cleaned)

    def _bulk_row(self, spec: ObjectSpec, index: int, row: Mapping[str, Any]) -> BulkRow:
        fields = dict(row)
        record_id = fields.pop("id", None) or new_id()
        try:
            if not isinstance(record_id, str):
                raise InvalidRequest("id must be text", details={"field": "id"})
            return BulkRow(record_id, clean_fields(spec, fields, self._rules))
        except InvalidRequest as exc:
            exc.details["row"] = index
            raise

    async def close(self) -> None:
        """Close the lookup's own connection; the engine belongs to the storage."""
        await self._fast.close()


def _check_unique_ids(rows: Sequence[BulkRow]) -> None:
    seen: set[str] = set()
    for index, row in enumerate(rows):
        if row.record_id in seen:
            raise InvalidRequest(
                f"duplicate id {row.record_id}", details={"field": "id", "row": index}
            )
        seen.add(row.record_id)


def _looks_like_number(text: str) -> bool:
    digits = sum(ch.isdigit() for ch in text)
    return digits >= _MIN_SEARCH_DIGITS and all(ch.isdigit() or ch in " +-().x" for ch in text)


def _ref(ref: CrmRef) -> dict[str, str]:
    return {"object": ref.object, "record_id": ref.record_id}


async def _get(
    conn: AsyncConnection, spec: ObjectSpec, tenant_id: str, record_id: str
) -> CrmRecord | None:
    row = (await conn.execute(q.get_query(spec, tenant_id, record_id))).mappings().first()
    return q.record_from_row(spec, row) if row else None


async def _check_account(
    conn: AsyncConnection, spec: ObjectSpec, tenant_id: str, values: Mapping[str, Any]
) -> None:
    account_id = values.get("account_id")
    if spec is not CONTACT or not account_id:
        return
    if not await existing_ids(conn, crm_accounts, tenant_id, [account_id]):
        raise InvalidRequest(
            f"Contact.account_id: no account {account_id}",
            details={"object": spec.name, "field": "account_id", "value": account_id},
        )


async def _check_bulk_accounts(writer: BulkWriter, spec: ObjectSpec, rows: list[BulkRow]) -> None:
    if spec is not CONTACT:
        return
    wanted = {r.values["account_id"] for r in rows if r.values["account_id"]}
    missing = wanted - await writer.existing_accounts(a for a in wanted if a)
    for index, row in enumerate(rows):
        if row.values["account_id"] in missing:
            raise InvalidRequest(
                f"Contact.account_id: no account {row.values['account_id']}",
                details={"object": spec.name, "field": "account_id", "row": index},
            )
