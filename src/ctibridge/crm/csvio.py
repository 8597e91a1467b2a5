"""CSV import and export for the built-in CRM, in the shape of a Salesforce export.

Import reads the file once, checks every row, and writes good rows in chunks inside one
transaction. By default any bad row (or unknown column) rolls the whole import back, after
every row has been checked so that one run reports every problem; ``skip_bad`` commits the
good rows instead. Export writes the columns import reads, so a file round-trips.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, BinaryIO, TextIO

import phonenumbers

from ctibridge.crm._builtin_schema import (
    CONTACT,
    FieldSpec,
    NumberRules,
    ObjectSpec,
    check_fields,
    object_spec,
)
from ctibridge.crm._builtin_writes import BulkRow, BulkWriter, new_id
from ctibridge.crm.builtin import BuiltinCrm
from ctibridge.errors import InvalidRequest

__all__ = [
    "SALESFORCE_SYSTEM_COLUMNS",
    "BadRow",
    "ImportReport",
    "export_csv",
    "export_header",
    "import_csv",
]

ID = "id"
ACCOUNT_NAME = "account_name"
"""Contacts only: the account to find (by exact name) or create when ``AccountId`` is empty."""

SALESFORCE_SYSTEM_COLUMNS = frozenset(
    {
        "IsDeleted", "MasterRecordId", "OwnerId", "CreatedDate", "CreatedById",
        "LastModifiedDate", "LastModifiedById", "SystemModstamp", "LastActivityDate",
        "LastViewedDate", "LastReferencedDate", "PhotoUrl", "Jigsaw", "JigsawContactId",
    }
)  # fmt: skip
"""Columns of a Salesforce export that import skips without a ``--map``."""

CHUNK = 2000
"""Rows per ``executemany``."""

Progress = Callable[[int, int, int], None]
"""``progress(bytes_read, total_bytes, rows_read)``, called after each chunk."""


@dataclass(frozen=True, slots=True)
class BadRow:
    line: int
    """Line of the file where the row starts (the header is line 1)."""
    column: str | None
    """The column as the file names it (None when the whole row is wrong)."""
    reason: str

    def __str__(self) -> str:
        where = f"line {self.line}" + (f", column {self.column}" if self.column is not None else "")
        return f"{where}: {self.reason}"


@dataclass(frozen=True, slots=True)
class ImportReport:
    object: str
    rows: int
    """Data rows read (blank lines aside)."""
    written: dict[str, int]
    """Records written per object; empty when nothing was committed. Accounts created for
    contacts' ``AccountName`` count under ``Account``."""
    bad: tuple[BadRow, ...]

    @property
    def committed(self) -> bool:
        return bool(self.written)


def _targets(spec: ObjectSpec) -> dict[str, str]:
    """Header (lower case) → target, for Salesforce labels and our own field names."""
    targets = {ID: ID, "id": ID}
    for f in spec.fields:
        targets[f.label.lower()] = f.name
        targets[f.name] = f.name
    if spec is CONTACT:
        targets.update({"accountname": ACCOUNT_NAME, ACCOUNT_NAME: ACCOUNT_NAME})
    return targets


def _check_mapping(spec: ObjectSpec, mapping: Mapping[str, str]) -> None:
    allowed = set(_targets(spec).values())
    for column, target in mapping.items():
        if target and target not in allowed:
            raise InvalidRequest(
                f"--map {column}={target}: {spec.name} has no field {target!r} "
                f"(fields: {', '.join(sorted(allowed))})",
                details={"field": "map"},
            )


@dataclass
class _Header:
    """Which column feeds which field (None: skipped)."""

    names: list[str]
    """The columns as the file names them."""
    targets: list[str | None]
    bad: list[BadRow]
    columns: dict[str, str] = field(default_factory=dict)
    """Target field → the column header, for error messages."""


def _read_header(spec: ObjectSpec, header: Sequence[str], mapping: Mapping[str, str]) -> _Header:
    known = _targets(spec)
    result = _Header([h.strip() for h in header], [], [])
    if not header:
        result.bad.append(BadRow(1, None, "no header line"))
    for raw in header:
        name = raw.strip()
        if name in mapping:
            target: str | None = mapping[name] or None
        elif name.lower() in known:
            target = known[name.lower()]
        elif name in SALESFORCE_SYSTEM_COLUMNS:
            target = None
        else:
            target = None
            hint = f"map it with --map '{name}=field', or '{name}=' to skip it"
            result.bad.append(BadRow(1, name, f"unknown column for {spec.plural} ({hint})"))
        if target is not None and target in result.columns:
            result.bad.append(BadRow(1, name, f"second column for {target}"))
            target = None
        if target is not None:
            result.columns[target] = name
        result.targets.append(target)
    missing = [mapped for mapped in mapping if mapped not in result.names]
    result.bad += [BadRow(1, m, "mapped column is not in the file") for m in missing]
    return result


_SURROGATE = re.compile("[\udc80-\udcff]")


def _broken(text: str) -> bool:
    """Bytes that were not UTF-8 come back as lone surrogates (``surrogateescape``)."""
    return not text.isascii() and _SURROGATE.search(text) is not None


@dataclass
class _RowReader:
    spec: ObjectSpec
    header: _Header
    rules: NumberRules
    seen: dict[str, int] = field(default_factory=dict)
    """Id → the line it was first seen on."""

    def read(self, line: int, cells: list[str]) -> tuple[BulkRow | None, list[BadRow]]:
        if len(cells) > len(self.header.targets):
            reason = f"{len(cells)} cells but the header has {len(self.header.targets)}"
            return None, [BadRow(line, None, reason)]
        bad = [
            BadRow(line, self.header_of(i), "not valid UTF-8 (save the file as UTF-8)")
            for i, cell in enumerate(cells)
            if _broken(cell)
        ]
        if bad:
            return None, bad
        values = {t: c for t, c in zip(self.header.targets, cells, strict=False) if t}
        return self._row(line, values)

    def header_of(self, index: int) -> str:
        return self.header.names[index]

    def _row(self, line: int, values: dict[str, str]) -> tuple[BulkRow | None, list[BadRow]]:
        record_id = values.pop(ID, "").strip()
        account_name = values.pop(ACCOUNT_NAME, "").strip() or None
        cleaned, problems = check_fields(self.spec, values, self.rules)
        bad = [self._bad(line, exc) for exc in problems]
        if record_id in self.seen:
            first = self.seen[record_id]
            bad.append(BadRow(line, self.column(ID), f"duplicate id {record_id} (line {first})"))
        elif record_id:
            self.seen[record_id] = line
        if bad:
            return None, bad
        return BulkRow(record_id or new_id(), cleaned, account_name), []

    def column(self, target: str) -> str:
        return self.header.columns.get(target, target)

    def _bad(self, line: int, exc: InvalidRequest) -> BadRow:
        target = str(exc.details.get("field", ""))
        reason = str(exc.details.get("reason", exc.message))
        value = exc.details.get("value")
        return BadRow(line, self.column(target), f"{value!r} {reason}" if value else reason)


@dataclass
class _Import:
    """One import run: chunks go to the writer while no row has been bad (or with
    ``skip_bad``); rows keep being checked either way."""

    spec: ObjectSpec
    writer: BulkWriter
    reader: _RowReader
    skip_bad: bool
    bad: list[BadRow]
    pending: list[tuple[int, BulkRow]] = field(default_factory=list)
    rows: int = 0

    async def add(self, line: int, cells: list[str]) -> None:
        self.rows += 1
        row, bad = self.reader.read(line, cells)
        self.bad += bad
        if row is not None:
            self.pending.append((line, row))
        if len(self.pending) >= CHUNK:
            await self.flush()

    async def flush(self) -> None:
        pending, self.pending = self.pending, []
        if self.spec is CONTACT:
            pending = await self._known_accounts(pending)
        if self.bad and not self.skip_bad:
            return
        await self.writer.upsert(self.spec, [row for _, row in pending])

    async def _known_accounts(
        self, pending: list[tuple[int, BulkRow]]
    ) -> list[tuple[int, BulkRow]]:
        wanted = {r.values["account_id"] for _, r in pending if r.values["account_id"]}
        known = await self.writer.existing_accounts(a for a in wanted if a)
        column = self.reader.column("account_id")
        kept = []
        for line, row in pending:
            account_id = row.values["account_id"]
            if account_id and account_id not in known:
                self.bad.append(BadRow(line, column, f"no account with id {account_id}"))
            else:
                kept.append((line, row))
        return kept


def _records(reader: Any) -> Iterator[tuple[int, list[str]]]:
    """``(line where the record starts, cells)`` for each non-blank record after the header."""
    end = reader.line_num
    for cells in reader:
        start, end = end + 1, reader.line_num
        if any(cell.strip() for cell in cells):
            yield start, cells


async def import_csv(
    crm: BuiltinCrm,
    tenant_id: str,
    source: BinaryIO,
    object: str,
    *,
    mapping: Mapping[str, str] | None = None,
    region: str | None = None,
    skip_bad: bool = False,
    progress: Progress | None = None,
) -> ImportReport:
    """Import ``source`` (UTF-8 CSV with a header line, opened in binary mode) as ``object``
    records of the tenant.

    Records with an ``Id`` already stored are overwritten. InvalidRequest for an unknown
    object or a mapping to a field the object does not have."""
    spec = object_spec(object)
    mapping = dict(mapping or {})
    _check_mapping(spec, mapping)
    region = (region or crm.rules.region).upper()
    if region not in phonenumbers.SUPPORTED_REGIONS:
        raise InvalidRequest(f"unknown region {region!r} (use a code such as GB, FR, US)")
    rules = NumberRules(region, crm.rules.internal_digits)
    total = _size(source)
    text = io.TextIOWrapper(source, encoding="utf-8-sig", errors="surrogateescape", newline="")
    try:
        reader = csv.reader(text)
        header = _read_header(spec, next(reader, []), mapping)
        async with crm.bulk(tenant_id, rules=rules) as writer:
            run = _Import(spec, writer, _RowReader(spec, header, rules), skip_bad, header.bad)
            await _feed(run, _records(reader), source, total, progress)
            if run.bad and not skip_bad:
                writer.discard()
    finally:
        text.detach()  # the caller owns ``source``
    written = {} if writer.discarded else dict(writer.counts)
    return ImportReport(spec.name, run.rows, written, tuple(sorted(run.bad, key=_order)))


def _size(source: BinaryIO) -> int:
    """Bytes left in ``source``; 0 when it cannot tell (a pipe)."""
    try:
        start = source.tell()
        end = source.seek(0, io.SEEK_END)
        source.seek(start)
    except (OSError, ValueError):
        return 0
    return end - start


async def _feed(
    run: _Import,
    records: Iterator[tuple[int, list[str]]],
    raw: BinaryIO,
    total: int,
    progress: Progress | None,
) -> None:
    for line, cells in records:
        await run.add(line, cells)
        if progress and run.rows % CHUNK == 0:
            progress(raw.tell(), total, run.rows)
    await run.flush()
    if progress:
        progress(total, total, run.rows)


def _order(bad: BadRow) -> tuple[int, str]:
    return bad.line, bad.column or ""


def export_header(spec: ObjectSpec) -> list[str]:
    """``Id``, the Salesforce label of every field, and ``AccountName`` for contacts."""
    labels = ["Id", *(f.label for f in spec.fields)]
    return [*labels, "AccountName"] if spec is CONTACT else labels


def _export_row(spec: ObjectSpec, record: Any) -> list[str]:
    cells = [record.ref.record_id, *(_cell(record.fields, f) for f in spec.fields)]
    return [*cells, record.account_name or ""] if spec is CONTACT else cells


def _cell(fields: Mapping[str, Any], spec: FieldSpec) -> str:
    value = fields.get(spec.name)
    return "" if value is None else str(value)


async def export_csv(crm: BuiltinCrm, tenant_id: str, object: str, out: TextIO) -> int:
    """Write the tenant's ``object`` records (by name) as CSV; returns how many."""
    spec = object_spec(object)
    writer = csv.writer(out)
    writer.writerow(export_header(spec))
    count, cursor = 0, None
    while True:
        page = await crm.list_records(tenant_id, spec.name, limit=1000, cursor=cursor)
        writer.writerows(_export_row(spec, record) for record in page.records)
        count += len(page.records)
        if page.next_cursor is None:
            return count
        cursor = page.next_cursor
