"""Screen-pop lookup latency of the built-in CRM with many records, on SQLite and PostgreSQL.

For each database: load ``--records`` records (60% contacts, 25% leads, 15% accounts; every
record a phone number, a fifth of the contacts a mobile too, 1% of the numbers shared by two
or three records), then time ``BuiltinCrm.lookup_by_number`` for ``--lookups`` distinct
numbers, each in a national spelling (``020 7…``) so normalisation is part of the figure.
The baseline, timed in the same run and interleaved with the lookups, is a bare indexed
``SELECT`` of a contact by primary key through the same engine (pooled connection,
SQLAlchemy, async driver): the floor any query through the engine pays on that database
(the lookup itself runs on the driver, on a connection of its own that it opens on the
first lookup and keeps, see ``crm/_fast_lookup.py``). Both are also timed
in CPU seconds of this process per call (``*_cpu_mean``; SQLite runs in the process, the
PostgreSQL server does not), which other programs on the machine disturb less.

The records are written with plain multi-row inserts (numbers generated already in E.164):
this measures lookups, not the import (``bench/crm_import.py`` does that).

Run: ``.venv/bin/python bench/crm_lookup.py`` (``--records 100000`` for a quick run). One
figure a line, ``name: value unit``. PostgreSQL runs in a scratch schema of ``--pg-url``.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import secrets
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import asyncpg
import sqlalchemy as sa

from ctibridge.crm.builtin import BuiltinCrm
from ctibridge.numbers import to_e164
from ctibridge.storage import SqlStorage
from ctibridge.storage.crm_tables import crm_accounts, crm_contacts, crm_leads, crm_phones

TENANT = "bench-tenant"
PG_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
CHUNK = 10_000
SHARE = 100
"""One number in this many is shared by two or three records."""


def _national(e164: str) -> str:
    digits = e164[3:]  # +44 20 7xxx xxxx → 020 7xxx xxxx
    return f"0{digits[:2]} {digits[2:6]} {digits[6:]}"


def _number(i: int) -> str:
    return f"+4420{70_000_000 + i:08d}"


def _stored_number(i: int) -> str:
    """The phone number record ``i`` holds (every SHARE-th record shares its neighbour's)."""
    return _number(i - 1 if i % SHARE == 1 else i)


def _plan(records: int) -> Iterator[tuple[sa.Table, str, dict[str, Any], list[dict[str, Any]]]]:
    """``(table, object, row, phone rows)`` for each record, deterministic."""
    rng = random.Random(7)
    for i in range(records):
        e164 = _stored_number(i)
        kind = rng.random()
        record_id = f"r{i:08d}"
        base = {"tenant_id": TENANT, "id": record_id, "created_at": 0.0, "updated_at": 0.0,
                "last_activity_at": None, "phone": _national(e164)}  # fmt: skip
        phones = [("phone", e164, _national(e164))]
        if kind < 0.15:
            yield (
                crm_accounts,
                "Account",
                {**base, "name": f"Company {i}"},
                _index("Account", record_id, phones),
            )
            continue
        person = {**base, "first_name": "Pat", "last_name": f"Person{i}", "name": f"Pat Person{i}"}
        if kind < 0.40:
            row = {**person, "status": "Open", "company": f"Company {i}"}
            yield crm_leads, "Lead", row, _index("Lead", record_id, phones)
            continue
        if rng.random() < 0.2:
            mobile = f"+447{400_000_000 + i:09d}"
            person["mobile_phone"] = mobile
            phones.append(("mobile_phone", mobile, mobile))
        yield crm_contacts, "Contact", person, _index("Contact", record_id, phones)


def _index(
    object_name: str, record_id: str, phones: list[tuple[str, str, str]]
) -> list[dict[str, Any]]:
    return [
        {"tenant_id": TENANT, "object": object_name, "record_id": record_id,
         "field": field, "e164": e164, "number": number}
        for field, e164, number in phones
    ]  # fmt: skip


def _full(row: dict[str, Any], table: sa.Table) -> dict[str, Any]:
    return {c.name: row.get(c.name) for c in table.c}


async def load(storage: SqlStorage, records: int) -> float:
    started = time.perf_counter()
    tables = (crm_accounts, crm_contacts, crm_leads, crm_phones)
    batches: dict[sa.Table, list[dict[str, Any]]] = {table: [] for table in tables}

    async def flush(conn: Any, force: bool = False) -> None:
        for table, rows in batches.items():
            if rows and (force or len(rows) >= CHUNK):
                await conn.execute(table.insert(), rows)
                rows.clear()

    async with storage.engine.begin() as conn:
        for table, _, row, phones in _plan(records):
            batches[table].append(_full(row, table))
            batches[crm_phones].extend(phones)
            await flush(conn)
        await flush(conn, force=True)
    async with storage.engine.begin() as conn:
        await conn.execute(sa.text("ANALYZE"))  # fresh planner statistics, as in production
    return time.perf_counter() - started


def _percentile(samples: list[float], p: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(p * len(ordered)))]


async def measure(storage: SqlStorage, records: int, lookups: int) -> dict[str, list[float]]:
    crm = BuiltinCrm(storage)
    try:
        return await _measure(crm, storage, records, lookups)
    finally:
        await crm.close()


async def _measure(
    crm: BuiltinCrm, storage: SqlStorage, records: int, lookups: int
) -> dict[str, list[float]]:
    rng = random.Random(11)
    numbers = rng.sample(range(records), min(lookups, records))
    contact_ids = [f"r{i:08d}" for i in numbers]
    by_pk = sa.select(crm_contacts).where(
        crm_contacts.c.tenant_id == sa.bindparam("t"), crm_contacts.c.id == sa.bindparam("i")
    )

    async def baseline(record_id: str) -> None:
        async with storage.engine.connect() as conn:
            (await conn.execute(by_pk, {"t": TENANT, "i": record_id})).first()

    samples: dict[str, list[float]] = {"lookup": [], "baseline_pk_select": [], "matches": []}
    for i in range(50):  # warm the pool and the statement caches
        await crm.lookup_by_number(TENANT, _national(_number(i)))
        await baseline(contact_ids[0])
    for i, record_id in zip(numbers, contact_ids, strict=True):
        started = time.perf_counter()
        found = await crm.lookup_by_number(TENANT, _national(_stored_number(i)))
        samples["lookup"].append(time.perf_counter() - started)
        samples["matches"].append(float(len(found)))
        started = time.perf_counter()
        await baseline(record_id)
        samples["baseline_pk_select"].append(time.perf_counter() - started)
    # CPU seconds of this process per call (SQLite runs in it too): a figure that other
    # programs competing for the processors disturb less than wall-clock percentiles.
    to_e164.cache_clear()  # every number read afresh, as in the timed loop
    started = time.process_time()
    for i in numbers:
        await crm.lookup_by_number(TENANT, _national(_stored_number(i)))
    samples["lookup_cpu"] = [(time.process_time() - started) / len(numbers)]
    started = time.process_time()
    for record_id in contact_ids:
        await baseline(record_id)
    samples["baseline_pk_select_cpu"] = [(time.process_time() - started) / len(numbers)]
    return samples


def report(name: str, load_seconds: float, records: int, samples: dict[str, list[float]]) -> None:
    print(f"{name}.records: {records} records")
    print(f"{name}.load: {load_seconds:.1f} s")
    for key in ("lookup", "baseline_pk_select"):
        values = samples[key]
        print(f"{name}.{key}_p50: {statistics.median(values) * 1000:.3f} ms")
        print(f"{name}.{key}_p99: {_percentile(values, 0.99) * 1000:.3f} ms")
        print(f"{name}.{key}_mean: {statistics.fmean(values) * 1000:.3f} ms")
    for key in ("lookup_cpu", "baseline_pk_select_cpu"):
        print(f"{name}.{key}_mean: {samples[key][0] * 1000:.3f} ms")
    print(f"{name}.lookups: {len(samples['lookup'])} lookups")
    print(f"{name}.records_per_lookup: {statistics.fmean(samples['matches']):.2f} records")
    sys.stdout.flush()


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
    dsn = url.replace("+asyncpg", "")
    schema = f"bench_{secrets.token_hex(6)}"
    admin = await asyncpg.connect(dsn)
    await admin.execute(f'CREATE SCHEMA "{schema}"')
    storage = SqlStorage(url, connect_args={"server_settings": {"search_path": schema}})
    try:
        await storage.start()
        yield storage
    finally:
        await storage.close()
        await admin.execute(f'DROP SCHEMA "{schema}" CASCADE')
        await admin.close()


async def run_one(name: str, opened: Callable[[], Any], records: int, lookups: int) -> None:
    async with opened() as storage:
        load_seconds = await load(storage, records)
        samples = await measure(storage, records, lookups)
    report(name, load_seconds, records, samples)


async def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--lookups", type=int, default=10_000)
    parser.add_argument("--backend", choices=("sqlite", "postgres", "both"), default="both")
    parser.add_argument("--pg-url", default=PG_URL)
    args = parser.parse_args(argv)
    runs: list[tuple[str, Callable[[], Any]]] = []
    if args.backend in ("sqlite", "both"):
        runs.append(("sqlite", sqlite_storage))
    if args.backend in ("postgres", "both"):
        runs.append(("postgres", lambda: postgres_storage(args.pg_url)))
    for name, opened in runs:
        await run_one(name, opened, args.records, args.lookups)


if __name__ == "__main__":
    asyncio.run(main())
