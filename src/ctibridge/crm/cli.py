"""``ctibridge crm ...``: import, export and look up built-in CRM records from the shell.

``cli.py`` wires these in with :func:`add_parser` and :func:`run`; ``python -m
ctibridge.crm.cli`` runs them on their own. Exit codes: 0 ok, 1 bad rows (with
``--skip-bad`` the good rows were still written), 2 usage, configuration or database errors.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any, TextIO

from ctibridge.config import Settings, load
from ctibridge.crm import csvio
from ctibridge.crm.builtin import BuiltinCrm
from ctibridge.errors import CtiError, InvalidRequest
from ctibridge.numbers import is_internal
from ctibridge.storage import SqlStorage

__all__ = ["add_parser", "main", "run"]

OK, BAD_ROWS, USAGE = 0, 1, 2
_OBJECTS = ("contacts", "accounts", "leads")


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-c", "--config", help="TOML config file (conf.d/*.toml beside it too)")
    parser.add_argument("--data-dir", help="where the SQLite database lives")
    parser.add_argument("--tenant", help="tenant id (default: the only tenant stored)")


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``crm`` and its sub-commands to the ``ctibridge`` command line."""
    crm = subparsers.add_parser("crm", help="the built-in CRM: import, export, lookup")
    sub = crm.add_subparsers(dest="crm_command", required=True)

    imp = sub.add_parser("import", help="import records from a CSV file (Salesforce headers)")
    _common(imp)
    imp.add_argument("file", help="CSV file, UTF-8, with a header line")
    imp.add_argument("--object", required=True, choices=_OBJECTS)
    imp.add_argument(
        "--map",
        action="append",
        default=[],
        metavar="COLUMN=FIELD",
        help="read COLUMN as FIELD (our field name); COLUMN= skips the column",
    )
    imp.add_argument("--region", help="region of national numbers (default: calls setting)")
    imp.add_argument("--skip-bad", action="store_true", help="write the good rows anyway")
    imp.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")

    exp = sub.add_parser("export", help="write records as CSV (the shape import reads)")
    _common(exp)
    exp.add_argument("--object", required=True, choices=_OBJECTS)
    exp.add_argument("file", nargs="?", default="-", help="output file (default: stdout)")

    look = sub.add_parser("lookup", help="the records a call from NUMBER pops, as JSON lines")
    _common(look)
    look.add_argument("number")
    look.add_argument("--limit", type=int, default=20)

    seed = sub.add_parser("seed-demo", help="load the demo data set (about 10,000 records)")
    _common(seed)


def run(args: argparse.Namespace) -> int:
    """Run a parsed ``crm`` command; returns the exit code."""
    try:
        settings = _settings(args)
        return asyncio.run(_COMMANDS[args.crm_command](args, settings))
    except CtiError as exc:  # configuration, usage (InvalidRequest), database
        _err(f"ctibridge crm: {exc}")
        return USAGE


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="ctibridge")
    add_parser(parser.add_subparsers(dest="command", required=True))
    return run(parser.parse_args(argv))


def _err(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def _settings(args: argparse.Namespace) -> Settings:
    overrides = {"data_dir": args.data_dir} if args.data_dir else {}
    return load(args.config, os.environ, overrides)


@asynccontextmanager
async def _opened(
    args: argparse.Namespace, settings: Settings
) -> AsyncIterator[tuple[BuiltinCrm, str]]:
    storage = SqlStorage(settings.storage_url, echo=settings.storage.echo)
    crm: BuiltinCrm | None = None
    try:
        await storage.start()
        tenant = args.tenant or await _only_tenant(storage)
        calls = settings.calls
        crm = BuiltinCrm(
            storage,
            default_region=calls.default_region,
            internal_digits=calls.internal_digits,
        )
        yield crm, tenant
    finally:
        if crm is not None:
            await crm.close()
        await storage.close()


async def _only_tenant(storage: SqlStorage) -> str:
    tenants = await storage.list_tenants()
    if len(tenants) == 1:
        return tenants[0].tenant_id
    known = ", ".join(t.tenant_id for t in tenants) or "none stored yet"
    raise InvalidRequest(f"name the tenant with --tenant (tenants: {known})")


def _mapping(pairs: Sequence[str]) -> dict[str, str]:
    mapping = {}
    for pair in pairs:
        column, sep, target = pair.partition("=")
        if not sep or not column.strip():
            raise InvalidRequest(f"--map {pair!r}: write COLUMN=FIELD (or COLUMN= to skip)")
        mapping[column.strip()] = target.strip()
    return mapping


async def _import(args: argparse.Namespace, settings: Settings) -> int:
    mapping = _mapping(args.map)
    try:
        source = open(args.file, "rb")  # noqa: ASYNC230, SIM115 - a CLI reading its input
    except OSError as exc:
        raise InvalidRequest(f"cannot read {args.file}: {exc.strerror}") from exc
    bar = None if args.no_progress else ProgressBar(sys.stderr, f"importing {args.object}")
    async with _opened(args, settings) as (crm, tenant):
        with source:
            report = await csvio.import_csv(
                crm,
                tenant,
                source,
                args.object,
                mapping=mapping,
                region=args.region,
                skip_bad=args.skip_bad,
                progress=bar.update if bar else None,
            )
    if bar:
        bar.finish()
    return _report(args.file, report)


def _report(path: str, report: csvio.ImportReport) -> int:
    for bad in report.bad:
        _err(f"{path}: {bad}")
    problems = _count(len(report.bad), "problem")
    if report.committed:
        written = ", ".join(_count(n, obj.lower()) for obj, n in sorted(report.written.items()))
        skipped = f"; {problems} reported above" if report.bad else ""
        print(f"imported {written} from {_count(report.rows, 'row')}{skipped}", flush=True)
    elif report.bad:
        print(f"nothing imported: {problems} (--skip-bad imports the good rows)", flush=True)
    else:
        print("nothing imported: no rows", flush=True)
    return BAD_ROWS if report.bad else OK


def _count(count: int, noun: str) -> str:
    return f"{count} {noun}" + ("" if count == 1 else "s")


async def _export(args: argparse.Namespace, settings: Settings) -> int:
    async with _opened(args, settings) as (crm, tenant):
        if args.file == "-":
            count = await csvio.export_csv(crm, tenant, args.object, sys.stdout)
            sys.stdout.flush()
        else:
            with open(args.file, "w", encoding="utf-8", newline="") as out:  # noqa: ASYNC230
                count = await csvio.export_csv(crm, tenant, args.object, out)
    _err(f"exported {count} {args.object}")
    return OK


async def _lookup(args: argparse.Namespace, settings: Settings) -> int:
    async with _opened(args, settings) as (crm, tenant):
        number = args.number
        if is_internal(number, crm.rules.internal_digits):
            _err(f"{number}: an internal number (at most {crm.rules.internal_digits} digits),")
            _err("  never looked up: calls from it do not pop a record")
            return OK
        e164 = crm.rules.e164(number)
        if e164 is None:
            raise InvalidRequest(f"{number!r} is not a phone number (region {crm.rules.region})")
        records = await crm.lookup_by_number(tenant, e164, limit=args.limit)
    for record in records:
        print(json.dumps(_lookup_line(record)), flush=True)
    _err(f"{number} → {e164}: {_count(len(records), 'record')}")
    return OK


def _lookup_line(record: Any) -> dict[str, Any]:
    return {
        "object": record.ref.object,
        "id": record.ref.record_id,
        "name": record.name,
        "matched_field": record.matched_field,
        "number": record.number,
    }


async def _seed_demo(args: argparse.Namespace, settings: Settings) -> int:
    from ctibridge.demo.crm_data import seed_demo_crm

    async with _opened(args, settings) as (crm, tenant):
        counts = await seed_demo_crm(crm, tenant)
    print("loaded " + ", ".join(f"{n} {obj}" for obj, n in counts.items()), flush=True)
    return OK


_COMMANDS = {"import": _import, "export": _export, "lookup": _lookup, "seed-demo": _seed_demo}


class ProgressBar:
    """A one-line progress bar: redrawn in place on a terminal, every 10% otherwise."""

    WIDTH = 30

    def __init__(self, stream: TextIO, label: str) -> None:
        self._stream = stream
        self._label = label
        self._tty = stream.isatty()
        self._start = time.monotonic()
        self._last_step = -1
        self._drawn = False

    def update(self, done: int, total: int, rows: int) -> None:
        fraction = min(done / total, 1.0) if total else 0.0
        step = int(fraction * 10)
        if not self._tty and step == self._last_step:
            return
        self._last_step = step
        elapsed = max(time.monotonic() - self._start, 1e-6)
        filled = int(fraction * self.WIDTH)
        bar = "#" * filled + "-" * (self.WIDTH - filled)
        text = f"{self._label} [{bar}] {fraction:4.0%} {rows:,} rows {rows / elapsed:,.0f} rows/s"
        self._stream.write(("\r" + text) if self._tty else text + "\n")
        self._stream.flush()
        self._drawn = True

    def finish(self) -> None:
        if self._tty and self._drawn:
            self._stream.write("\n")
            self._stream.flush()


if __name__ == "__main__":
    raise SystemExit(main())
