"""The built-in CRM's objects and fields, and the checks every write goes through.

Pure: no SQL runs here. ``BuiltinCrm`` (one record at a time) and the CSV import (many at a
time) both clean their input with :func:`clean_fields`, so they accept and refuse the same
values, and both build the phone index with :func:`phone_rows`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import sqlalchemy as sa

from ctibridge.errors import InvalidRequest
from ctibridge.numbers import is_internal, to_e164
from ctibridge.storage.crm_tables import crm_accounts, crm_contacts, crm_leads

__all__ = [
    "ACCOUNT",
    "CONTACT",
    "LEAD",
    "MAX_LENGTH",
    "OBJECTS",
    "FieldSpec",
    "NumberRules",
    "ObjectSpec",
    "PhoneRow",
    "check_fields",
    "clean_fields",
    "display_name",
    "object_spec",
    "ordered_specs",
    "phone_rows",
    "record_url",
]

_SPACE = re.compile(r"\s")

MAX_LENGTH = 255
"""The longest value a field takes, in characters."""

DEFAULT_LEAD_STATUS = "Open"


@dataclass(frozen=True, slots=True)
class FieldSpec:
    name: str
    """Our name: the column, and the key in ``CrmRecord.fields``."""
    label: str
    """The Salesforce export header for it (``FirstName``, ``MobilePhone``...)."""
    phone: bool = False
    required: bool = False


@dataclass(frozen=True, slots=True)
class ObjectSpec:
    name: str
    """``Contact``, ``Lead`` or ``Account``: ``CrmRef.object``."""
    plural: str
    """``contacts``, ``leads``, ``accounts``: what the command line says."""
    table: sa.Table
    rank: int
    """Order among records sharing a number: Contacts, then Leads, then Accounts."""
    fields: tuple[FieldSpec, ...]

    @property
    def phone_fields(self) -> tuple[FieldSpec, ...]:
        return tuple(f for f in self.fields if f.phone)

    @property
    def is_person(self) -> bool:
        """Contacts and leads have first and last names; their ``name`` is derived."""
        return self.name != "Account"

    def field(self, name: str) -> FieldSpec | None:
        for spec in self.fields:
            if spec.name == name:
                return spec
        return None


_PHONES = (
    FieldSpec("phone", "Phone", phone=True),
    FieldSpec("mobile_phone", "MobilePhone", phone=True),
    FieldSpec("other_phone", "OtherPhone", phone=True),
)

CONTACT = ObjectSpec(
    "Contact",
    "contacts",
    crm_contacts,
    0,
    (
        FieldSpec("first_name", "FirstName"),
        FieldSpec("last_name", "LastName", required=True),
        FieldSpec("title", "Title"),
        FieldSpec("email", "Email"),
        FieldSpec("account_id", "AccountId"),
        *_PHONES,
    ),
)
LEAD = ObjectSpec(
    "Lead",
    "leads",
    crm_leads,
    1,
    (
        FieldSpec("first_name", "FirstName"),
        FieldSpec("last_name", "LastName", required=True),
        FieldSpec("title", "Title"),
        FieldSpec("company", "Company"),
        FieldSpec("email", "Email"),
        *_PHONES,
        FieldSpec("status", "Status"),
    ),
)
ACCOUNT = ObjectSpec(
    "Account",
    "accounts",
    crm_accounts,
    2,
    (
        FieldSpec("name", "Name", required=True),
        FieldSpec("phone", "Phone", phone=True),
        FieldSpec("website", "Website"),
        FieldSpec("industry", "Industry"),
        FieldSpec("city", "BillingCity"),
    ),
)

OBJECTS: dict[str, ObjectSpec] = {spec.name: spec for spec in (CONTACT, LEAD, ACCOUNT)}
_ALIASES = {alias: spec for spec in OBJECTS.values() for alias in (spec.name.lower(), spec.plural)}


def object_spec(name: str) -> ObjectSpec:
    """``Contact``, ``contact`` or ``contacts`` → the contact spec; InvalidRequest otherwise."""
    spec = OBJECTS.get(name) or _ALIASES.get(name.strip().lower())
    if spec is None:
        raise InvalidRequest(
            f"no such CRM object {name!r} (use Contact, Lead or Account)",
            details={"field": "object"},
        )
    return spec


@dataclass(frozen=True, slots=True)
class NumberRules:
    """How stored numbers are read: the region of national numbers, and the extension length."""

    region: str = "GB"
    internal_digits: int = 5

    def e164(self, raw: str) -> str | None:
        return to_e164(raw, self.region, self.internal_digits)


@dataclass(frozen=True, slots=True)
class PhoneRow:
    """One row of the phone index, for one phone field of one record."""

    field: str
    e164: str
    number: str


def _invalid(spec: ObjectSpec, field: str, reason: str, value: Any = None) -> InvalidRequest:
    details: dict[str, Any] = {"object": spec.name, "field": field, "reason": reason}
    if value is not None:
        details["value"] = value
    return InvalidRequest(f"{spec.name}.{field}: {reason}", details=details)


def _clean_value(spec: ObjectSpec, field: FieldSpec, value: Any, rules: NumberRules) -> str | None:
    if value is not None and not isinstance(value, str):
        raise _invalid(spec, field.name, f"must be text, not {type(value).__name__}")
    text = (value or "").strip()
    if not text:
        if field.required:
            raise _invalid(spec, field.name, "is required")
        return None
    if len(text) > MAX_LENGTH:
        raise _invalid(spec, field.name, f"is longer than {MAX_LENGTH} characters")
    if field.phone:
        _check_number(spec, field.name, text, rules)
    elif field.name == "email" and ("@" not in text or _SPACE.search(text)):
        raise _invalid(spec, field.name, "is not an email address", text)
    return text


def _check_number(spec: ObjectSpec, field: str, text: str, rules: NumberRules) -> None:
    if rules.e164(text) is not None:
        return
    if is_internal(text, rules.internal_digits):
        raise _invalid(spec, field, "is an extension, not an outside number", text)
    raise _invalid(spec, field, "is not a phone number", text)


def check_fields(
    spec: ObjectSpec, fields: Mapping[str, Any], rules: NumberRules, *, partial: bool = False
) -> tuple[dict[str, str | None], list[InvalidRequest]]:
    """The values to store (stripped, empty as None) and every problem found, one error per
    bad field (``details["field"]``, ``details["reason"]``).

    Without ``partial`` (a new record) missing fields are None, required ones must be set and
    a lead's status defaults to ``Open``. With it (an update) only the given fields come back.
    """
    problems = [_invalid(spec, name, "no such field") for name in fields if not spec.field(name)]
    values: dict[str, str | None] = {}
    for field in spec.fields:
        if partial and field.name not in fields:
            continue
        try:
            values[field.name] = _clean_value(spec, field, fields.get(field.name), rules)
        except InvalidRequest as exc:
            problems.append(exc)
    if spec is LEAD and values.get("status", "") is None:
        if partial:
            problems.append(_invalid(spec, "status", "is required"))
        else:
            values["status"] = DEFAULT_LEAD_STATUS
    return values, problems


def clean_fields(
    spec: ObjectSpec, fields: Mapping[str, Any], rules: NumberRules, *, partial: bool = False
) -> dict[str, str | None]:
    """:func:`check_fields`, raising the first problem as InvalidRequest."""
    values, problems = check_fields(spec, fields, rules, partial=partial)
    if problems:
        raise problems[0]
    return values


def display_name(spec: ObjectSpec, values: Mapping[str, Any]) -> str:
    """``First Last`` for people, the account name for accounts."""
    if not spec.is_person:
        return str(values["name"])
    return " ".join(part for part in (values.get("first_name"), values.get("last_name")) if part)


def phone_rows(spec: ObjectSpec, values: Mapping[str, Any], rules: NumberRules) -> list[PhoneRow]:
    """The phone index rows for a record with these values (numbers that do not normalise,
    which only older data can hold, are left out)."""
    rows = []
    for field in spec.phone_fields:
        number = values.get(field.name)
        e164 = rules.e164(number) if number else None
        if number and e164:
            rows.append(PhoneRow(field.name, e164, number))
    return rows


def record_url(object_name: str, record_id: str) -> str:
    """Where the console opens a record."""
    return f"/console/records/{object_name}/{quote(record_id, safe='')}"


def ordered_specs() -> Sequence[ObjectSpec]:
    """Contacts, leads, accounts: the order records sharing a number come back in."""
    return sorted(OBJECTS.values(), key=lambda spec: spec.rank)
