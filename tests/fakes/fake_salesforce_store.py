"""The fake Salesforce's records: the schema of what ctibridge touches (standard objects, and
the custom fields read from the metadata ctibridge ships), and Salesforce's rules for writes:
unknown fields, create-only fields, required fields, lengths, restricted picklists, ids of
the right type, unique external ids, the Lead-with-WhatId rule of Tasks, and the org's own
validation rules (``FIELD_CUSTOM_VALIDATION_EXCEPTION``, checked after the others).
"""

from __future__ import annotations

import copy
import itertools
import re
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import ctibridge.crm.salesforce as salesforce_package
from tests.fakes.fake_salesforce_query import Field

__all__ = ["API_VERSION", "USER_ID", "Reply", "Store", "ValidationRule", "entry", "error"]

USER_ID = "005Fk0000000001AAA"
API_VERSION = "62.0"
METADATA = Path(salesforce_package.__file__).parent / "metadata" / "objects"
_NS = "{http://soap.sforce.com/2006/04/metadata}"
PREFIX = {"Account": "001", "Contact": "003", "Lead": "00Q", "Task": "00T", "User": "005"}
_CUSTOM_PREFIX = "a0K"
_CHECKSUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"
_ID = re.compile(r"^[A-Za-z0-9]{15}(?:[A-Za-z0-9]{3})?$")


# --- schema ---------------------------------------------------------------------------------


def _ro(name: str, kind: str, length: int = 255) -> Field:
    """A read-only field (system fields, formulas)."""
    return Field(name, kind, length, create=False, update=False)


def _common(name_kind: str = "ro") -> list[Field]:
    fields = [
        _ro("Id", "id", 18),
        _ro("CreatedDate", "datetime"),
        _ro("LastModifiedDate", "datetime"),
        Field("OwnerId", "reference", 18, refs=("User",)),
    ]
    if name_kind == "ro":
        fields.append(_ro("Name", "string", 121))
    return fields


def _phones(*names: str) -> list[Field]:
    return [Field(n, "phone", 40) for n in names]


def _standard() -> dict[str, list[Field]]:
    activity = _ro("LastActivityDate", "date")
    return {
        "User": [
            *_common(),
            Field("Username", "string", 80),
            Field("Email", "email", 128),
            Field("FederationIdentifier", "string", 512),
            Field("IsActive", "bool"),
        ],
        "Account": [
            *_common("rw"),
            Field("Name", "string", 255, required=True),
            *_phones("Phone"),
            Field("Website", "url"),
            Field("Description", "textarea", 32000),
            activity,
        ],
        "Contact": [
            *_common(),
            Field("FirstName", "string", 40),
            Field("LastName", "string", 80, required=True),
            *_phones("Phone", "MobilePhone", "HomePhone", "OtherPhone", "AssistantPhone"),
            Field("Email", "email", 80),
            Field("AccountId", "reference", 18, refs=("Account",)),
            Field("Description", "textarea", 32000),
            activity,
        ],
        "Lead": [
            *_common(),
            Field("FirstName", "string", 40),
            Field("LastName", "string", 80, required=True),
            Field("Company", "string", 255, required=True),
            *_phones("Phone", "MobilePhone"),
            Field("Email", "email", 80),
            Field("Status", "picklist", values=("Open - Not Contacted", "Working", "Closed")),
            Field("LeadSource", "picklist", values=("Phone Inquiry", "Web", "Other")),
            _ro("IsConverted", "bool"),
            Field("Description", "textarea", 32000),
            activity,
        ],
        "Task": [
            *_common("none"),
            Field("Subject", "string", 255),
            Field("Status", "picklist", values=_TASK_STATUS, restricted=True),
            Field("Priority", "picklist", values=("High", "Normal", "Low"), restricted=True),
            Field("ActivityDate", "date"),
            Field("Description", "textarea", 32000),
            Field("TaskSubtype", "picklist", values=_SUBTYPES, restricted=True, update=False),
            Field("Type", "picklist", values=("Call", "Email", "Meeting", "Other")),
            Field(
                "CallType", "picklist", values=("Inbound", "Internal", "Outbound"), restricted=True
            ),
            Field("CallDurationInSeconds", "int"),
            Field("CallObject", "string", 255),
            Field("CallDisposition", "string", 255),
            Field("WhoId", "reference", 18, refs=("Contact", "Lead")),
            Field("WhatId", "reference", 18, refs=("Account", "Opportunity", "Case")),
            _ro("IsClosed", "bool"),
        ],
    }


_TASK_STATUS = ("Not Started", "In Progress", "Completed", "Waiting on someone else", "Deferred")
_SUBTYPES = ("Task", "Email", "List Email", "Call")
_KINDS = {
    "Text": "string",
    "Phone": "phone",
    "Url": "url",
    "DateTime": "datetime",
    "Date": "date",
    "Number": "double",
    "Picklist": "picklist",
    "Checkbox": "bool",
    "LongTextArea": "textarea",
}


def _metadata_fields(path: Path) -> list[Field]:
    out = []
    for node in ET.parse(path).getroot().iter(f"{_NS}fields"):

        def get(tag: str, node: ET.Element = node) -> str:
            return (node.findtext(f"{_NS}{tag}") or "").strip()

        values = tuple(v.text or "" for v in node.iter(f"{_NS}fullName"))[1:]
        out.append(
            Field(
                get("fullName"),
                _KINDS[get("type")],
                int(get("length") or 255),
                values=values,
                restricted=get("restricted") == "true",
                external_id=get("externalId") == "true",
                unique=get("unique") == "true",
                label=get("label"),
            )
        )
    return out


def build_schema() -> dict[str, dict[str, Field]]:
    objects = _standard()
    objects["Task"] += _metadata_fields(METADATA / "Activity.object")
    objects["KazooCallData__c"] = [
        *_common(),
        *_metadata_fields(METADATA / "KazooCallData__c.object"),
    ]
    return {obj: {f.name: f for f in fields} for obj, fields in objects.items()}


# --- records --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Reply:
    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)


def error(status: int, code: str, message: str, fields: list[str] | None = None) -> Reply:
    entry: dict[str, Any] = {"message": message, "errorCode": code}
    if fields is not None:
        entry["fields"] = fields
    return Reply(status, [entry])


def _now_iso() -> str:
    moment = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(moment)) + ".000+0000"


def _with_checksum(short: str) -> str:
    suffix = ""
    for chunk in (short[0:5], short[5:10], short[10:15]):
        flags = sum(1 << i for i, ch in enumerate(chunk) if ch.isupper())
        suffix += _CHECKSUM[flags]
    return short + suffix


@dataclass(frozen=True)
class ValidationRule:
    """An org's validation rule: a write of ``obj`` whose record (as it would be saved) makes
    ``when`` true is refused with ``message``, shown at ``field`` (or at the top of the page)."""

    obj: str
    message: str
    when: Callable[[dict[str, Any]], bool] = lambda record: True
    field: str | None = None

    def error(self) -> dict[str, Any]:
        fields = [self.field] if self.field else []
        return entry("FIELD_CUSTOM_VALIDATION_EXCEPTION", self.message, fields)


class Store:
    """Records by type and id, with Salesforce's validation rules for what ctibridge writes."""

    def __init__(self) -> None:
        self.rules: list[ValidationRule] = []
        self.schema = build_schema()
        self.db: dict[str, dict[str, dict[str, Any]]] = {obj: {} for obj in self.schema}
        self.keys: dict[tuple[str, str], dict[Any, list[str]]] = {}
        """Ids by value of each external-id or unique field (what a real org indexes)."""
        self._ids = itertools.count(1)
        self._autonumber = itertools.count(1)

    def snapshot(self) -> tuple[Any, Any]:
        return copy.deepcopy((self.db, self.keys))

    def restore(self, snapshot: tuple[Any, Any]) -> None:
        self.db, self.keys = snapshot

    def matching(self, obj: str, name: str, value: Any) -> list[str]:
        return list(self.keys.get((obj, name), {}).get(value, ()))

    def _index(self, obj: str, record: dict[str, Any], *, add: bool) -> None:
        for spec in self.schema[obj].values():
            value = record.get(spec.name)
            if not (spec.external_id or spec.unique) or value is None:
                continue
            ids = self.keys.setdefault((obj, spec.name), {}).setdefault(value, [])
            if add:
                ids.append(record["Id"])
            else:
                ids.remove(record["Id"])

    def new_id(self, obj: str) -> str:
        prefix = PREFIX.get(obj, _CUSTOM_PREFIX)
        n, digits = next(self._ids), ""
        alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
        while n:
            n, rest = divmod(n, 62)
            digits = alphabet[rest] + digits
        return _with_checksum(f"{prefix}Fk0{digits.rjust(9, '0')}")

    def find(self, record_id: str) -> tuple[str, dict[str, Any]] | None:
        for obj, records in self.db.items():
            if record_id in records:
                return obj, records[record_id]
        return None

    def insert(self, obj: str, values: dict[str, Any], *, checked: bool = True) -> Reply:
        errors = self.validate(obj, values, existing=None) if checked else []
        if errors:
            return Reply(400, errors)
        record_id = self.new_id(obj)
        record = {**self._defaults(obj), **values, "Id": record_id, "CreatedDate": _now_iso()}
        self.db[obj][record_id] = self._computed(obj, record)
        self._index(obj, record, add=True)
        return Reply(201, {"id": record_id, "success": True, "errors": []})

    def modify(self, obj: str, record_id: str, values: dict[str, Any]) -> Reply:
        record = self.db.get(obj, {}).get(record_id)
        if record is None:
            return error(404, "NOT_FOUND", "The requested resource does not exist")
        errors = self.validate(obj, values, existing=record)
        if errors:
            return Reply(400, errors)
        self._index(obj, record, add=False)
        record.update(values)
        self._index(obj, record, add=True)
        self._computed(obj, record)
        return Reply(204)

    def upsert(self, obj: str, key_field: str, value: str, values: dict[str, Any]) -> Reply:
        spec = self.schema.get(obj, {}).get(key_field)
        if spec is None or not spec.external_id:
            return error(
                404,
                "NOT_FOUND",
                f"Provided external ID field does not exist or is not accessible: {key_field}",
            )
        if key_field in values and values[key_field] != value:
            return error(400, "INVALID_FIELD", f"{key_field} in the body differs from the URL")
        matches = self.matching(obj, key_field, value)
        if len(matches) > 1:
            return Reply(
                300, [f"/services/data/v{API_VERSION}/sobjects/{obj}/{i}" for i in matches]
            )
        if not matches:
            reply = self.insert(obj, {**values, key_field: value})
            return (
                replace(reply, body={**reply.body, "created": True})
                if reply.status == 201
                else reply
            )
        reply = self.modify(obj, matches[0], {k: v for k, v in values.items() if k != key_field})
        if reply.status != 204:
            return reply
        return Reply(200, {"id": matches[0], "success": True, "errors": [], "created": False})

    def _defaults(self, obj: str) -> dict[str, Any]:
        defaults: dict[str, Any] = {"OwnerId": USER_ID}
        if obj == "Task":
            defaults.update(Status="Not Started", Priority="Normal", TaskSubtype="Task")
        if obj == "Lead":
            defaults.update(Status="Open - Not Contacted", IsConverted=False)
        if obj == "KazooCallData__c":
            defaults["Name"] = f"KCD-{next(self._autonumber):06d}"
        return defaults

    def _computed(self, obj: str, record: dict[str, Any]) -> dict[str, Any]:
        record["LastModifiedDate"] = _now_iso()
        if obj in ("Contact", "Lead"):
            record["Name"] = " ".join(
                filter(None, (record.get("FirstName"), record.get("LastName")))
            )
        if obj == "Task":
            record["IsClosed"] = record.get("Status") == "Completed"
        return record

    def validate(
        self, obj: str, values: dict[str, Any], *, existing: dict[str, Any] | None
    ) -> list[dict[str, Any]]:
        fields = self.schema[obj]
        errors: list[dict[str, Any]] = []
        for name, value in values.items():
            spec = fields.get(name)
            if spec is None:
                errors.append(
                    entry("INVALID_FIELD", f"No such column '{name}' on sobject of type {obj}")
                )
            elif not (spec.update if existing is not None else spec.create):
                errors.append(
                    entry(
                        "INVALID_FIELD_FOR_INSERT_UPDATE",
                        f"Unable to create/update fields: {name}. Please check the security "
                        "settings of this field and verify that it is read/write for your "
                        "profile or permission set.",
                        [name],
                    )
                )
            else:
                errors += self._value_errors(obj, spec, value, existing)
        if existing is None:
            missing = [f.name for f in fields.values() if f.required and not values.get(f.name)]
            if missing:
                errors.append(
                    entry(
                        "REQUIRED_FIELD_MISSING",
                        f"Required fields are missing: [{', '.join(missing)}]",
                        missing,
                    )
                )
        merged = {**(existing or {}), **values}
        errors += self._cross_errors(obj, merged)
        if not errors:  # the org's rules run once the record is valid otherwise
            errors = [r.error() for r in self.rules if r.obj == obj and r.when(merged)]
        return errors

    def _value_errors(
        self, obj: str, spec: Field, value: Any, existing: dict[str, Any] | None
    ) -> list[dict[str, Any]]:
        if value is None:
            return []
        label = spec.label or spec.name
        problem = _type_problem(spec, value)
        if problem:
            return [entry(*problem, [spec.name])]
        if spec.kind == "reference" and self._bad_ref(spec, str(value)):
            return [
                entry("MALFORMED_ID", f"{label}: id value of incorrect type: {value}", [spec.name])
            ]
        others = [
            i for i in self.matching(obj, spec.name, value) if i != (existing or {}).get("Id")
        ]
        if spec.unique and others:
            other = others[0]
            return [
                entry(
                    "DUPLICATE_VALUE",
                    f"duplicate value found: {spec.name} duplicates value on record with id: "
                    + other,
                    [spec.name],
                )
            ]
        return []

    def _bad_ref(self, spec: Field, value: str) -> bool:
        found = self.find(value) if _ID.match(value) else None
        return found is None or found[0] not in spec.refs

    def _cross_errors(self, obj: str, merged: dict[str, Any]) -> list[dict[str, Any]]:
        who = str(merged.get("WhoId") or "")
        if obj == "Task" and who.startswith(PREFIX["Lead"]) and merged.get("WhatId"):
            return [
                entry(
                    "FIELD_INTEGRITY_EXCEPTION",
                    "Related To ID: a task about a Lead cannot be related to another record",
                    ["WhatId"],
                )
            ]
        return []


def entry(code: str, message: str, fields: list[str] | None = None) -> dict[str, Any]:
    entry: dict[str, Any] = {"message": message, "errorCode": code}
    if fields is not None:
        entry["fields"] = fields
    return entry


def _type_problem(spec: Field, value: Any) -> tuple[str, str] | None:
    label = spec.label or spec.name
    if spec.kind in ("string", "textarea", "phone", "email", "url", "id", "reference"):
        if not isinstance(value, str):
            return "JSON_PARSER_ERROR", f"Cannot deserialize instance of string from {value!r}"
        if len(value) > spec.length:
            return (
                "STRING_TOO_LONG",
                f"{label}: data value too large: {value[:20]}... (max length={spec.length})",
            )
    elif spec.kind == "picklist":
        if spec.restricted and value not in spec.values:
            return (
                "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
                f"{label}: bad value for restricted picklist field: {value}",
            )
    elif spec.kind in ("int", "double"):
        if isinstance(value, bool) or not isinstance(value, int | float):
            return "JSON_PARSER_ERROR", f"Cannot deserialize instance of {spec.kind} from {value!r}"
    elif spec.kind == "date":
        if not (isinstance(value, str) and re.fullmatch(r"\d{4}-\d{2}-\d{2}", value)):
            return (
                "JSON_PARSER_ERROR",
                f"Cannot deserialize instance of date from VALUE_STRING value {value}",
            )
    elif spec.kind == "datetime" and not (
        isinstance(value, str)
        and re.fullmatch(
            r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{3})?(Z|[+-]\d{2}:?\d{2})", value
        )
    ):
        return (
            "JSON_PARSER_ERROR",
            f"Cannot deserialize instance of datetime from VALUE_STRING value {value}",
        )
    return None
