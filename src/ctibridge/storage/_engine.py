"""The SQLAlchemy engine for SQLite or PostgreSQL, and the mapping of its failures."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any, Protocol

import orjson
import sqlalchemy as sa
from alembic.util.exc import CommandError
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from ctibridge.errors import StorageError

__all__ = [
    "SQLITE_BUSY_TIMEOUT_MS",
    "EngineUser",
    "HasEngine",
    "create_engine",
    "db_errors",
    "insert_for",
    "parse_url",
    "sqlite_path",
]

SQLITE_BUSY_TIMEOUT_MS = 5000
"""How long a SQLite writer waits for another one before failing with ``database is locked``."""

_SQLITE_PRAGMAS = (
    "PRAGMA journal_mode=WAL",
    "PRAGMA synchronous=NORMAL",
    "PRAGMA foreign_keys=ON",
    f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}",
)

_ASYNC_DRIVERS = {
    "sqlite": "sqlite+aiosqlite",
    "sqlite+aiosqlite": "sqlite+aiosqlite",
    "postgres": "postgresql+asyncpg",
    "postgresql": "postgresql+asyncpg",
    "postgresql+asyncpg": "postgresql+asyncpg",
}


@contextmanager
def db_errors(what: str) -> Iterator[None]:
    """Re-raise database, driver and migration failures as :class:`StorageError`.

    Statement parameters never reach the message (engines use ``hide_parameters``)."""
    try:
        yield
    except (SQLAlchemyError, CommandError, OSError) as exc:
        raise StorageError(f"storage: {what} failed: {type(exc).__name__}: {exc}") from exc


def parse_url(url: str) -> URL:
    """The URL with its async driver (``sqlite`` → ``sqlite+aiosqlite``, ``postgresql`` →
    ``postgresql+asyncpg``); StorageError for anything else."""
    with db_errors("reading the storage URL"):
        parsed = make_url(url)
    driver = _ASYNC_DRIVERS.get(parsed.drivername)
    if driver is None:
        raise StorageError(
            f"storage: unsupported database {parsed.drivername!r}; "
            "use sqlite+aiosqlite:///path or postgresql+asyncpg://user@host/db"
        )
    return parsed.set(drivername=driver)


def sqlite_path(url: URL) -> Path | None:
    """The database file of a SQLite URL; None for PostgreSQL and in-memory SQLite."""
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return None
    if url.query.get("mode") == "memory" or str(url.database).startswith("file:"):
        return None
    return Path(str(url.database))


def _set_sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    try:
        for pragma in _SQLITE_PRAGMAS:
            cursor.execute(pragma)
    finally:
        cursor.close()


def _json_text(value: Any) -> str:
    return orjson.dumps(value).decode()


def create_engine(url: URL, *, echo: bool, connect_args: Mapping[str, Any]) -> AsyncEngine:
    options: dict[str, Any] = {
        "echo": echo,
        "hide_parameters": True,
        # Every call change stores the call as JSON: orjson encodes it several times faster
        # than the standard library, on the event loop's thread.
        "json_serializer": _json_text,
        "json_deserializer": orjson.loads,
    }
    if connect_args:
        options["connect_args"] = dict(connect_args)
    if url.get_backend_name() == "postgresql":
        options["pool_pre_ping"] = True
    with db_errors("creating the database engine"):
        engine = create_async_engine(url, **options)
    if url.get_backend_name() == "sqlite":
        sa.event.listen(engine.sync_engine, "connect", _set_sqlite_pragmas)
    return engine


def insert_for(conn: AsyncConnection, table: sa.Table) -> postgresql.Insert | sqlite.Insert:
    """``INSERT`` with the dialect's ``ON CONFLICT`` clauses (both spell them alike)."""
    if conn.dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


class HasEngine(Protocol):
    """Something that holds the engine (``SqlStorage``)."""

    @property
    def engine(self) -> AsyncEngine: ...


class EngineUser:
    """Base of the modules that query their own tables on the storage's engine (the
    recordings index, the outbox index): the engine, and connections whose failures come
    back as ``StorageError`` naming the operation."""

    def __init__(self, store: AsyncEngine | HasEngine) -> None:
        self._engine = store if isinstance(store, AsyncEngine) else store.engine

    @asynccontextmanager
    async def _connect(self, what: str, *, write: bool = False) -> AsyncIterator[AsyncConnection]:
        with db_errors(what):
            async with self._engine.begin() if write else self._engine.connect() as conn:
                yield conn
