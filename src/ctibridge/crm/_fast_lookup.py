"""The screen-pop query run on the driver, below SQLAlchemy's per-query layers.

A lookup through the async engine pays, on every call, SQLAlchemy's statement handling and,
on SQLite, aiosqlite's hop to its worker thread and back (about 1 ms at p99 by itself). The
lookup is one indexed query, so this module compiles :data:`LOOKUP` once per dialect and runs
the SQL text on the driver:

* SQLite: a dedicated read-only ``sqlite3`` connection, called synchronously from the event
  loop. Blocking the loop is fine here because the query is an index seek of a handful of
  rows (tens of microseconds, less than the thread hop it replaces), and it never waits:
  the database is in WAL mode, so a reader neither blocks the writers nor waits for them,
  and the connection has no busy timeout (``SQLITE_BUSY`` falls back to the engine).
* PostgreSQL: a pooled connection's asyncpg connection, with the statement prepared once
  per connection (asyncpg's statement cache) and no ``BEGIN``/``ROLLBACK`` around it.

Rows come back as mappings with the same keys and values as the engine's.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from ctibridge.crm._builtin_queries import LOOKUP
from ctibridge.errors import StorageError
from ctibridge.storage._engine import db_errors, sqlite_path

__all__ = ["FastLookup"]

logger = logging.getLogger(__name__)

Row = Mapping[str, Any]


class FastLookup:
    """Runs the lookup for one engine; :meth:`fetch` returns None when it cannot (in-memory
    SQLite, a busy database), and the caller then uses the engine."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        compiled = LOOKUP.compile(dialect=engine.dialect)
        self._sql = str(compiled)
        self._order = tuple(compiled.positiontup or ())
        # the query's constants (object names, ranks) as bound values, the three inputs empty
        self._constants = compiled.construct_params({"tenant_id": "", "e164": "", "limit": 0})
        self._keys = tuple(LOOKUP.selected_columns.keys())
        self._sqlite_path: Path | None = sqlite_path(engine.url)
        self._sqlite: sqlite3.Connection | None = None

    async def fetch(self, params: Mapping[str, Any]) -> Sequence[Row] | None:
        values = {**self._constants, **params}
        args = tuple(values[name] for name in self._order)
        if self._engine.dialect.name == "postgresql":
            return await self._fetch_postgres(args)
        if self._sqlite_path is None:
            return None
        return self._fetch_sqlite(args)

    def _fetch_sqlite(self, args: tuple[Any, ...]) -> Sequence[Row] | None:
        try:
            conn = self._sqlite or self._open_sqlite()
            rows = conn.execute(self._sql, args).fetchall()
        except sqlite3.OperationalError as exc:  # busy, or the file is not there yet
            logger.debug("crm: fast lookup unavailable (%s); using the engine", exc)
            self.close()
            return None
        return [dict(zip(self._keys, row, strict=True)) for row in rows]

    def _open_sqlite(self) -> sqlite3.Connection:
        uri = f"{self._sqlite_path.absolute().as_uri()}?mode=ro" if self._sqlite_path else ""
        # timeout=0: never wait for a lock on the event loop; isolation_level=None: each
        # SELECT reads the latest committed data (no transaction held between lookups);
        # check_same_thread=False: calls are never concurrent (each runs to its end on the
        # loop), but a CRM may outlive the loop's thread (``asyncio.run`` per CLI command).
        conn = sqlite3.connect(
            uri, uri=True, timeout=0, isolation_level=None, check_same_thread=False
        )
        conn.execute("PRAGMA query_only=ON")
        self._sqlite = conn
        return conn

    async def _fetch_postgres(self, args: tuple[Any, ...]) -> Sequence[Row]:
        with db_errors("looking up a number"):
            async with self._engine.connect() as conn:
                raw = await conn.get_raw_connection()
                driver = raw.driver_connection
                try:
                    records = await driver.fetch(self._sql, *args)  # type: ignore[union-attr]
                except Exception as exc:  # asyncpg's errors have no common SQLAlchemy base
                    await conn.invalidate(exc)
                    raise StorageError(
                        f"storage: looking up a number failed: {type(exc).__name__}: {exc}"
                    ) from exc
        return [dict(zip(self._keys, record.values(), strict=True)) for record in records]

    def close(self) -> None:
        if self._sqlite is not None:
            self._sqlite.close()
            self._sqlite = None
