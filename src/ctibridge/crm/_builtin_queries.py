"""The built-in CRM's reads: the screen-pop lookup, search, listing, and rows to records.

Statements are built once at import where they can be. The lookup is the hot path: one
indexed query with bound parameters, which ``_fast_lookup.py`` compiles once per dialect
and runs on the driver.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterable, Mapping
from typing import Any

import sqlalchemy as sa

from ctibridge.crm._builtin_schema import (
    CONTACT,
    LEAD,
    OBJECTS,
    ObjectSpec,
    ordered_specs,
    record_url,
)
from ctibridge.crm.base import CrmRecord, CrmRef
from ctibridge.errors import InvalidRequest
from ctibridge.storage.crm_tables import crm_accounts, crm_contacts, crm_leads, crm_phones

__all__ = [
    "LOOKUP",
    "MAX_PAGE",
    "check_limit",
    "decode_cursor",
    "digits_search",
    "encode_cursor",
    "get_query",
    "list_query",
    "phone_records",
    "record_from_row",
    "sort_records",
    "text_search",
]

MAX_PAGE = 1000

Row = Mapping[str, Any]

_p = crm_phones.c
_contact_account = crm_accounts.alias("contact_account")


def _on(table: sa.Table, object_name: str) -> sa.ColumnElement[bool]:
    return sa.and_(
        _p.object == object_name, table.c.tenant_id == _p.tenant_id, table.c.id == _p.record_id
    )


_TABLES = (crm_contacts, crm_leads, crm_accounts)
_name = sa.func.coalesce(*(t.c.name for t in _TABLES))
_last = sa.func.coalesce(*(t.c.last_activity_at for t in _TABLES))
_rank = sa.case({spec.name: spec.rank for spec in OBJECTS.values()}, value=_p.object)
_field_rank = sa.case({"phone": 0, "mobile_phone": 1, "other_phone": 2}, value=_p.field)


def _phone_select(where: sa.ColumnElement[bool]) -> sa.Select[Any]:
    """Phone index rows matching ``where`` with their records, best first."""
    joined = (
        crm_phones.outerjoin(crm_contacts, _on(crm_contacts, CONTACT.name))
        .outerjoin(crm_leads, _on(crm_leads, LEAD.name))
        .outerjoin(crm_accounts, _on(crm_accounts, "Account"))
        .outerjoin(
            _contact_account,
            sa.and_(
                _contact_account.c.tenant_id == crm_contacts.c.tenant_id,
                _contact_account.c.id == crm_contacts.c.account_id,
            ),
        )
    )
    return (
        sa.select(
            _p.object,
            _p.record_id,
            _p.field,
            _p.number,
            _name.label("name"),
            _last.label("last_activity_at"),
            sa.func.coalesce(_contact_account.c.name, crm_leads.c.company).label("account_name"),
            sa.func.coalesce(crm_contacts.c.email, crm_leads.c.email).label("email"),
        )
        .select_from(joined)
        .where(where)
        .order_by(_last.desc().nulls_last(), _rank, _name, _p.record_id, _field_rank)
    )


LOOKUP = _phone_select(
    sa.and_(_p.tenant_id == sa.bindparam("tenant_id"), _p.e164 == sa.bindparam("e164"))
).limit(sa.bindparam("limit", type_=sa.Integer))
"""The screen-pop query: parameters ``tenant_id``, ``e164``, ``limit`` (index rows)."""


def digits_search(tenant_id: str, digits: str, limit: int) -> sa.Select[Any]:
    """Records with a number whose E.164 form contains ``digits``."""
    where = sa.and_(_p.tenant_id == tenant_id, _p.e164.contains(digits, autoescape=True))
    return _phone_select(where).limit(limit)


def phone_records(rows: Iterable[Row], limit: int) -> list[CrmRecord]:
    """One record per matched record (its best field first), at most ``limit``."""
    records: list[CrmRecord] = []
    seen: set[tuple[str, str]] = set()
    for row in rows:
        key = (row["object"], row["record_id"])
        if key in seen:
            continue
        seen.add(key)
        records.append(
            CrmRecord(
                ref=CrmRef(row["object"], row["record_id"]),
                name=row["name"] or "",
                matched_field=row["field"],
                number=row["number"],
                account_name=row["account_name"],
                url=record_url(row["object"], row["record_id"]),
                last_activity_at=row["last_activity_at"],
                fields={"email": row["email"]} if row["email"] else {},
            )
        )
        if len(records) == limit:
            break
    return records


def _columns(spec: ObjectSpec) -> list[Any]:
    columns: list[Any] = list(spec.table.c)
    if spec is CONTACT:
        columns.append(_contact_account.c.name.label("account_name"))
    elif spec is LEAD:
        columns.append(crm_leads.c.company.label("account_name"))
    else:
        columns.append(sa.null().label("account_name"))
    return columns


def _from(spec: ObjectSpec) -> sa.FromClause:
    if spec is not CONTACT:
        return spec.table
    return crm_contacts.outerjoin(
        _contact_account,
        sa.and_(
            _contact_account.c.tenant_id == crm_contacts.c.tenant_id,
            _contact_account.c.id == crm_contacts.c.account_id,
        ),
    )


def _select(spec: ObjectSpec, tenant_id: str) -> sa.Select[Any]:
    return (
        sa.select(*_columns(spec))
        .select_from(_from(spec))
        .where(spec.table.c.tenant_id == tenant_id)
    )


def get_query(spec: ObjectSpec, tenant_id: str, record_id: str) -> sa.Select[Any]:
    return _select(spec, tenant_id).where(spec.table.c.id == record_id)


def _text_match(spec: ObjectSpec, text: str) -> sa.ColumnElement[bool]:
    """Name, email or company contains ``text``, ignoring case."""
    pattern = "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    columns = [spec.table.c.name]
    if spec.is_person:
        columns.append(spec.table.c.email)
    if spec is CONTACT:
        columns.append(_contact_account.c.name)
    elif spec is LEAD:
        columns.append(crm_leads.c.company)
    return sa.or_(*(column.ilike(pattern, escape="\\") for column in columns))


def text_search(spec: ObjectSpec, tenant_id: str, text: str, limit: int) -> sa.Select[Any]:
    table = spec.table.c
    return (
        _select(spec, tenant_id)
        .where(_text_match(spec, text))
        .order_by(table.last_activity_at.desc().nulls_last(), table.name, table.id)
        .limit(limit)
    )


def list_query(
    spec: ObjectSpec, tenant_id: str, text: str, after: tuple[str, str] | None, limit: int
) -> sa.Select[Any]:
    """A page of ``spec`` records by name then id, after the ``(name, id)`` of a cursor."""
    table = spec.table.c
    query = _select(spec, tenant_id)
    if text:
        query = query.where(_text_match(spec, text))
    if after is not None:
        query = query.where(sa.tuple_(table.name, table.id) > sa.tuple_(*after))
    return query.order_by(table.name, table.id).limit(limit)


_BOOKKEEPING = ("tenant_id", "id", "account_name")


def record_from_row(spec: ObjectSpec, row: Row) -> CrmRecord:
    fields = {k: v for k, v in row.items() if k not in _BOOKKEEPING}
    return CrmRecord(
        ref=CrmRef(spec.name, row["id"]),
        name=row["name"],
        account_name=row["account_name"],
        url=record_url(spec.name, row["id"]),
        last_activity_at=row["last_activity_at"],
        fields=fields,
    )


def sort_records(records: Iterable[CrmRecord]) -> list[CrmRecord]:
    """Most recent activity first, then contacts, leads, accounts, then name, then id."""
    rank = {spec.name: spec.rank for spec in ordered_specs()}

    def key(record: CrmRecord) -> tuple[float, int, str, str]:
        last = record.last_activity_at
        return (-last if last is not None else float("inf"), rank[record.ref.object],
                record.name, record.ref.record_id)  # fmt: skip

    return sorted(records, key=key)


def encode_cursor(name: str, record_id: str) -> str:
    raw = json.dumps([name, record_id], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[str, str]:
    """InvalidRequest for anything :func:`encode_cursor` did not make."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        name, record_id = json.loads(raw)
    except (binascii.Error, ValueError, TypeError) as exc:
        raise InvalidRequest("bad cursor", details={"field": "cursor"}) from exc
    if not isinstance(name, str) or not isinstance(record_id, str):
        raise InvalidRequest("bad cursor", details={"field": "cursor"})
    return name, record_id


def check_limit(limit: int) -> None:
    if not 1 <= limit <= MAX_PAGE:
        raise InvalidRequest(f"limit must be between 1 and {MAX_PAGE}", details={"field": "limit"})
