"""SOSL for caller lookup and agent search, and Salesforce rows as :class:`CrmRecord`.

Phone numbers are stored as people typed them (``+44 1632 960123``, ``01632 960123``,
``(415) 555-0100``), so a lookup searches every spelling of the caller's E.164 number at once
(``"a" OR "b" OR ...``, each reserved character escaped) and keeps only the rows one of whose
phone fields normalises back to that number: SOSL also matches on parts of numbers.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from ctibridge.crm.base import CrmRecord, CrmRef
from ctibridge.numbers import to_e164

__all__ = [
    "OBJECT_FIELDS",
    "PHONE_FIELDS",
    "escape",
    "matching_field",
    "name_sosl",
    "phone_sosl",
    "record_from_row",
    "soql_quote",
    "sort_records",
]

RESERVED = frozenset("?&|!{}[]()^~*:\\\"'+-")
"""Characters SOSL's FIND clause reserves; each is escaped with a backslash."""
PHONE_FIELDS: Mapping[str, tuple[str, ...]] = {
    "Contact": ("Phone", "MobilePhone", "HomePhone", "OtherPhone", "AssistantPhone"),
    "Account": ("Phone",),
    "Lead": ("Phone", "MobilePhone"),
}
_EXTRA: Mapping[str, tuple[str, ...]] = {
    "Contact": ("Account.Name",),
    "Account": (),
    "Lead": ("Company", "IsConverted"),
}
OBJECT_FIELDS: Mapping[str, tuple[str, ...]] = {
    obj: ("Id", "Name", *phones, *_EXTRA[obj], "LastActivityDate", "LastModifiedDate")
    for obj, phones in PHONE_FIELDS.items()
}
_ORDER = {"Contact": 0, "Account": 1, "Lead": 2}
"""Tie-break when two records were active on the same day (a person before a company)."""
MAX_ROWS = 200


def escape(text: str) -> str:
    return "".join(f"\\{ch}" if ch in RESERVED else ch for ch in text)


def soql_quote(value: str) -> str:
    """A SOQL string literal."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _returning() -> str:
    return ", ".join(f"{obj}({', '.join(fields)})" for obj, fields in OBJECT_FIELDS.items())


def phone_sosl(spellings: Sequence[str], limit: int) -> str:
    terms = " OR ".join(f'"{escape(s)}"' for s in spellings)
    return f"FIND {{{terms}}} IN PHONE FIELDS RETURNING {_returning()} LIMIT {limit}"


def name_sosl(text: str, limit: int) -> str:
    words = " ".join(escape(w) for w in text.split())
    return f"FIND {{{words}}} IN ALL FIELDS RETURNING {_returning()} LIMIT {limit}"


def matching_field(
    row: Mapping[str, Any], e164: str, *, region: str, internal_digits: int
) -> str | None:
    """The first phone field of ``row`` that holds ``e164`` in any spelling."""
    obj = _object(row)
    for name in PHONE_FIELDS.get(obj, ()):
        value = row.get(name)
        if isinstance(value, str) and to_e164(value, region, internal_digits) == e164:
            return name
    return None


def _object(row: Mapping[str, Any]) -> str:
    attributes = row.get("attributes") or {}
    return str(attributes.get("type", ""))


def record_from_row(
    row: Mapping[str, Any], instance_url: str, *, matched_field: str | None = None
) -> CrmRecord:
    obj = _object(row)
    record_id = str(row["Id"])
    number = row.get(matched_field) if matched_field else _first_phone(obj, row)
    return CrmRecord(
        ref=CrmRef(obj, record_id),
        name=str(row.get("Name") or ""),
        matched_field=matched_field,
        number=str(number) if number else None,
        account_name=_account_name(obj, row),
        url=f"{instance_url}/lightning/r/{obj}/{record_id}/view",
        last_activity_at=_when(row.get("LastActivityDate")) or _when(row.get("LastModifiedDate")),
        fields={k: v for k, v in row.items() if k != "attributes"},
    )


def _first_phone(obj: str, row: Mapping[str, Any]) -> Any:
    return next((row[f] for f in PHONE_FIELDS.get(obj, ()) if row.get(f)), None)


def _account_name(obj: str, row: Mapping[str, Any]) -> str | None:
    if obj == "Account":
        return str(row.get("Name") or "") or None
    if obj == "Lead":
        return row.get("Company") or None
    account = row.get("Account")
    return str(account.get("Name")) if isinstance(account, Mapping) else None


def _when(value: Any) -> float | None:
    """Epoch seconds of a Salesforce date (``2026-03-12``) or datetime
    (``2026-03-12T10:15:00.000+0000``)."""
    if not isinstance(value, str) or not value:
        return None
    text = value.replace("Z", "+00:00")
    if len(text) > 5 and text[-5] in "+-" and text[-3] != ":":
        text = f"{text[:-2]}:{text[-2:]}"
    try:
        parsed = dt.datetime.fromisoformat(text)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    return parsed.timestamp()


def sort_records(records: Iterable[CrmRecord]) -> list[CrmRecord]:
    """Most recent activity first; never-active records last."""
    return sorted(
        records,
        key=lambda r: (-(r.last_activity_at or 0.0), _ORDER.get(r.ref.object, 9), r.name),
    )
