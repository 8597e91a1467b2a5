"""The screen-pop query on a connection of the lookup's own, below SQLAlchemy's per-query layers.

A lookup through the async engine pays, on every call, SQLAlchemy's statement handling and
the pool's checkout: on PostgreSQL a ``pool_pre_ping`` round trip, on SQLite aiosqlite's hop
to its worker thread and back (each about 1 ms at p99 by itself). The lookup is one indexed
query, so this module compiles :data:`LOOKUP` once per dialect and runs the SQL text on a
driver connection that the lookup owns, opened on the first lookup and closed by
:meth:`FastLookup.close`:

* SQLite: a read-only ``sqlite3`` connection, called synchronously from the event loop.
  Blocking the loop is fine here because the query is an index seek of a handful of rows
  (tens of microseconds, less than the thread hop it replaces), and it never waits: the
  database is in WAL mode, so a reader neither blocks the writers nor waits for them, and
  the connection has no busy timeout (``SQLITE_BUSY`` falls back to the engine).
* PostgreSQL: one asyncpg connection taken from the engine (so with its URL and
  ``connect_args``) and detached from its pool, used without pings. The statement is
  prepared once (asyncpg's statement cache) and runs with no ``BEGIN``/``ROLLBACK`` around
  it, so every lookup reads what was committed before it started (read committed), writes
  made on other connections included. A lock keeps concurrent lookups from interleaving on
  it. A connection the server closed (restart, ``pg_terminate_backend``) is replaced before
  the query; one lost during the query (or silent for :data:`LOOKUP_TIMEOUT` seconds) is
  replaced and the query run once more on the new one.

Rows come back as mappings with the same keys and values as the engine's.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol, cast

from sqlalchemy.ext.asyncio import AsyncEngine

from ctibridge.crm._builtin_queries import LOOKUP
from ctibridge.errors import StorageError
from ctibridge.storage._engine import db_errors, sqlite_path

__all__ = ["LOOKUP_TIMEOUT", "FastLookup"]

logger = logging.getLogger(__name__)

LOOKUP_TIMEOUT = 5.0
"""Seconds a PostgreSQL lookup may take before its connection is taken for dead (a peer
gone without closing, e.g. an idle connection dropped by a firewall): the lookup is then
tried once on a new connection."""

_CLOSE_TIMEOUT = 2.0

_SERVER_GONE = frozenset({"57P01", "57P02", "57P03"})
"""SQLSTATEs of a backend shutting down (admin, crash) or not accepting connections yet."""

Row = Mapping[str, Any]
Args = tuple[Any, ...]


class _Reader(Protocol):
    async def fetch(self, args: Args) -> Sequence[Row] | None: ...

    async def close(self) -> None: ...


class FastLookup:
    """Runs the lookup for one engine; :meth:`fetch` returns None when it cannot (in-memory
    SQLite, a busy database, after :meth:`close`), and the caller then uses the engine."""

    def __init__(self, engine: AsyncEngine) -> None:
        compiled = LOOKUP.compile(dialect=engine.dialect)
        self._order = tuple(compiled.positiontup or ())
        # the query's constants (object names, ranks) as bound values, the three inputs empty
        self._constants = compiled.construct_params({"tenant_id": "", "e164": "", "limit": 0})
        keys = tuple(LOOKUP.selected_columns.keys())
        self._reader = _reader_for(engine, str(compiled), keys)

    @property
    def reader(self) -> _Reader | None:
        return self._reader

    async def fetch(self, params: Mapping[str, Any]) -> Sequence[Row] | None:
        if self._reader is None:
            return None
        values = {**self._constants, **params}
        return await self._reader.fetch(tuple(values[name] for name in self._order))

    async def close(self) -> None:
        """Close the lookup's connection; later lookups go through the engine."""
        if self._reader is not None:
            await self._reader.close()


def _reader_for(engine: AsyncEngine, sql: str, keys: tuple[str, ...]) -> _Reader | None:
    if engine.dialect.name == "postgresql":
        return PostgresReader(engine, sql, keys)
    path = sqlite_path(engine.url)
    return SqliteReader(path, sql, keys) if path is not None else None


class SqliteReader:
    """A read-only ``sqlite3`` connection of the database file, reopened after a failure."""

    def __init__(self, path: Path, sql: str, keys: tuple[str, ...]) -> None:
        self._path = path
        self._sql = sql
        self._keys = keys
        self._conn: sqlite3.Connection | None = None
        self._closed = False

    async def fetch(self, args: Args) -> Sequence[Row] | None:
        if self._closed:
            return None
        try:
            conn = self._conn or self._open()
            rows = conn.execute(self._sql, args).fetchall()
        except sqlite3.OperationalError as exc:  # busy, or the file is not there yet
            logger.debug("crm: fast lookup unavailable (%s); using the engine", exc)
            self._drop()
            return None
        return [dict(zip(self._keys, row, strict=True)) for row in rows]

    def _open(self) -> sqlite3.Connection:
        uri = f"{self._path.absolute().as_uri()}?mode=ro"
        # timeout=0: never wait for a lock on the event loop; isolation_level=None: each
        # SELECT reads the latest committed data (no transaction held between lookups);
        # check_same_thread=False: calls are never concurrent (each runs to its end on the
        # loop), but a CRM may outlive the loop's thread (``asyncio.run`` per CLI command).
        conn = sqlite3.connect(
            uri, uri=True, timeout=0, isolation_level=None, check_same_thread=False
        )
        conn.execute("PRAGMA query_only=ON")
        self._conn = conn
        return conn

    def _drop(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    async def close(self) -> None:
        self._closed = True
        self._drop()


class _Driver(Protocol):
    """What the lookup uses of an asyncpg connection (its signatures, hence ``timeout``)."""

    async def fetch(
        self,
        query: str,
        *args: Any,
        timeout: float | None = None,  # noqa: ASYNC109
    ) -> list[Any]: ...

    def is_closed(self) -> bool: ...

    def get_server_pid(self) -> int: ...

    async def close(self, *, timeout: float | None = None) -> None: ...  # noqa: ASYNC109

    def terminate(self) -> None: ...


class _ConnectionLost(StorageError):
    """The lookup failed because its connection did, not because of the query."""


class PostgresReader:
    """One asyncpg connection for lookups, owned here: opened on the first lookup, replaced
    when found broken, closed by :meth:`close`. Lookups take turns on it (``asyncio.Lock``);
    each is a single statement outside any transaction."""

    def __init__(self, engine: AsyncEngine, sql: str, keys: tuple[str, ...]) -> None:
        self._engine = engine
        self._sql = sql
        self._keys = keys
        self._driver: _Driver | None = None
        self._lock = asyncio.Lock()
        self._closed = False

    @property
    def server_pid(self) -> int | None:
        """The server process of the open connection; None while there is none."""
        driver = self._driver
        return None if driver is None or driver.is_closed() else driver.get_server_pid()

    async def fetch(self, args: Args) -> Sequence[Row] | None:
        async with self._lock:
            if self._closed:
                return None
            records = await self._fetch(args)
        return [dict(zip(self._keys, record.values(), strict=True)) for record in records]

    async def _fetch(self, args: Args) -> list[Any]:
        driver = self._driver
        if driver is not None and driver.is_closed():
            logger.info("crm: the server closed the lookup connection; reconnecting")
        elif driver is not None:
            try:
                return await self._attempt(driver, args)
            except _ConnectionLost as exc:
                logger.info("crm: the lookup connection was lost (%s); reconnecting", exc)
        # never opened, closed by the server while idle, or just lost: one new connection,
        # whose failure is final (the server is down, or the query itself fails)
        self._drop()
        return await self._attempt(await self._open(), args)

    async def _attempt(self, driver: _Driver, args: Args) -> list[Any]:
        try:
            return await driver.fetch(self._sql, *args, timeout=LOOKUP_TIMEOUT)
        except Exception as exc:  # asyncpg's errors have no common base with OSError's
            what = f"storage: looking up a number failed: {type(exc).__name__}: {_reason(exc)}"
            if _connection_lost(driver, exc):
                self._drop()
                raise _ConnectionLost(what) from exc
            raise StorageError(what) from exc

    async def _open(self) -> _Driver:
        with db_errors("opening the CRM lookup connection"):
            proxied = await self._engine.raw_connection()
        driver = cast(_Driver, proxied.driver_connection)
        proxied.detach()  # ours from now on: outside the pool's count, closed by close()
        self._driver = driver
        logger.debug("crm: lookup connection open (server pid %s)", driver.get_server_pid())
        return driver

    def _drop(self) -> None:
        driver, self._driver = self._driver, None
        if driver is not None:
            driver.terminate()

    async def close(self) -> None:
        async with self._lock:  # after the lookup under way, if any
            self._closed = True
            driver, self._driver = self._driver, None
        if driver is None or driver.is_closed():
            return
        try:
            await driver.close(timeout=_CLOSE_TIMEOUT)
        except Exception as exc:  # a dead peer; asyncpg has aborted the connection
            logger.debug("crm: closing the lookup connection: %s", exc)


def _connection_lost(driver: _Driver, exc: Exception) -> bool:
    """Whether ``exc`` means the connection failed rather than the query: it is closed, the
    error came from the driver or the socket (no SQLSTATE, a timeout), or the server said
    it is going away (class 08, backend shutdown)."""
    if driver.is_closed():
        return True
    state = getattr(exc, "sqlstate", None)
    if not isinstance(state, str):
        return True
    return state.startswith("08") or state in _SERVER_GONE


def _reason(exc: Exception) -> str:
    if isinstance(exc, TimeoutError) and not str(exc):  # asyncpg's ``timeout`` ran out
        return f"no answer in {LOOKUP_TIMEOUT:g} s"
    return str(exc)
