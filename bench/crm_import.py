"""CSV import rate of the built-in CRM (``ctibridge crm import``), on SQLite and PostgreSQL.

Generates a Salesforce-style contacts export of ``--records`` rows in a temporary folder
(``Id, FirstName, LastName, Email, Phone, MobilePhone, AccountName``; every row a phone
number in one of six spellings, a fifth of them a mobile too, 2,000 account names that the
import finds or creates), then imports it with ``csvio.import_csv``: the code behind the
command, all rows checked and written in one transaction. The baseline, timed in the same
run, is Python's ``csv`` module reading the same file (decoding and splitting only).

Run: ``.venv/bin/python bench/crm_import.py`` (``--records 100000`` for a quick run). One
figure a line, ``name: value unit``. PostgreSQL runs in a scratch schema of ``--pg-url``.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import random
import secrets
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import asyncpg

from ctibridge.crm import csvio
from ctibridge.crm.builtin import BuiltinCrm
from ctibridge.storage import SqlStorage

TENANT = "bench-tenant"
PG_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
HEADER = ["Id", "FirstName", "LastName", "Email", "Phone", "MobilePhone", "AccountName"]
FIRST = ["Olivia", "James", "Priya", "Tom", "Aisha", "Daniel", "Megan", "Ravi", "Zara", "Owen"]
LAST = ["Bennett", "Whitfield", "Raman", "Hargreaves", "Okafor", "Price", "Hughes", "Patel"]


def _spellings(digits: str) -> list[str]:
    """``digits`` is a London number without the 0: ``2079460381``."""
    area, a, b = digits[:2], digits[2:6], digits[6:]
    return [
        f"0{area} {a} {b}",
        f"0{area}{a}{b}",
        f"+44 {area} {a} {b}",
        f"+44{digits}",
        f"(0{area}) {a} {b}",
        f"0044 {area} {a}-{b}",
    ]


def generate(path: Path, records: int) -> None:
    rng = random.Random(3)
    accounts = [f"Account {n:04d} Ltd" for n in range(2000)]
    with path.open("w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(HEADER)
        for i in range(records):
            first, last = rng.choice(FIRST), rng.choice(LAST)
            phone = rng.choice(_spellings(f"20{70_000_000 + i:08d}"))
            mobile = f"07{400_000_000 + i:09d}" if rng.random() < 0.2 else ""
            email = f"{first}.{last}.{i}@example.com".lower()
            writer.writerow(
                [f"003{i:015d}", first, last, email, phone, mobile, rng.choice(accounts)]
            )


def baseline(path: Path) -> tuple[int, float]:
    """Rows read by the ``csv`` module, and the seconds it took."""
    started = time.perf_counter()
    with path.open(encoding="utf-8", newline="") as source:
        rows = sum(1 for _ in csv.reader(source)) - 1
    return rows, time.perf_counter() - started


async def import_file(storage: SqlStorage, path: Path) -> tuple[csvio.ImportReport, float]:
    crm = BuiltinCrm(storage)
    started = time.perf_counter()
    with path.open("rb") as source:
        report = await csvio.import_csv(crm, TENANT, source, "contacts")
    return report, time.perf_counter() - started


@asynccontextmanager
async def sqlite_storage() -> AsyncIterator[SqlStorage]:
    with tempfile.TemporaryDirectory() as folder:
        storage = SqlStorage(f"sqlite+aiosqlite:///{Path(folder) / 'bench.db'}")
        await storage.start()
        try:
            yield storage
        finally:
            await storage.close()


@asynccontextmanager
async def postgres_storage(url: str) -> AsyncIterator[SqlStorage]:
    schema = f"bench_{secrets.token_hex(6)}"
    admin = await asyncpg.connect(url.replace("+asyncpg", ""))
    await admin.execute(f'CREATE SCHEMA "{schema}"')
    storage = SqlStorage(url, connect_args={"server_settings": {"search_path": schema}})
    try:
        await storage.start()
        yield storage
    finally:
        await storage.close()
        await admin.execute(f'DROP SCHEMA "{schema}" CASCADE')
        await admin.close()


async def run_one(name: str, opened: Callable[[], Any], path: Path, rows: int) -> None:
    async with opened() as storage:
        report, seconds = await import_file(storage, path)
    if report.bad or report.rows != rows:
        raise SystemExit(f"{name}: import failed: {report.rows} rows, {report.bad[:5]}")
    print(f"{name}.import_seconds: {seconds:.1f} s")
    print(f"{name}.import_rate: {rows / seconds:,.0f} rows/s")
    print(f"{name}.accounts_created: {report.written.get('Account', 0)} accounts")
    sys.stdout.flush()


async def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--backend", choices=("sqlite", "postgres", "both"), default="both")
    parser.add_argument("--pg-url", default=PG_URL)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "contacts.csv"
        started = time.perf_counter()
        generate(path, args.records)
        print(f"csv.rows: {args.records} rows")
        print(f"csv.size: {path.stat().st_size / 1e6:.1f} MB")
        print(f"csv.generate_seconds: {time.perf_counter() - started:.1f} s")
        rows, seconds = baseline(path)
        print(f"baseline.csv_module_rate: {rows / seconds:,.0f} rows/s")
        sys.stdout.flush()
        if args.backend in ("sqlite", "both"):
            await run_one("sqlite", sqlite_storage, path, rows)
        if args.backend in ("postgres", "both"):
            await run_one("postgres", lambda: postgres_storage(args.pg_url), path, rows)


if __name__ == "__main__":
    asyncio.run(main())
