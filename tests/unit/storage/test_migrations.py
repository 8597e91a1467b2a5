"""Schema creation and upgrade through Alembic, engine settings, and StorageError."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy.engine import Connection

from ctibridge.errors import StorageError
from ctibridge.storage import SqlStorage, migrate, open_storage
from ctibridge.storage.tables import metadata
from tests.unit.storage.builders import TENANT
from tests.unit.storage.conftest import Backend

TABLES = {
    "agent_identities", "agents", "alembic_version", "api_tokens", "call_agents",
    "call_contexts", "call_events", "calls", "legs", "outbox", "tenants", "recordings",
} | {table for table in metadata.tables if table.startswith("crm_")}  # fmt: skip


async def _sync(store: SqlStorage, fn: Any) -> Any:
    async with store.engine.connect() as conn:
        return await conn.run_sync(fn)


def _table_names(conn: Connection) -> set[str]:
    return set(sa.inspect(conn).get_table_names())


def _sqlite_file(backend: Backend) -> Path:
    return Path(backend.url.partition(":///")[2])


def _schema_diff(conn: Connection) -> list[Any]:
    return list(compare_metadata(MigrationContext.configure(conn), metadata))


async def test_start_creates_every_table_on_an_empty_database(backend: Backend) -> None:
    store = backend.make()
    if backend.name == "sqlite":
        assert not _sqlite_file(backend).exists()
    else:
        assert await _sync(store, _table_names) == set()
    await store.start()
    try:
        assert await _sync(store, _table_names) == TABLES
        assert await _sync(store, migrate.current_revision) == migrate.head_revision()
    finally:
        await store.close()


async def test_migrations_build_exactly_the_tables_module(storage: SqlStorage) -> None:
    assert await _sync(storage, _schema_diff) == []


async def test_restart_on_an_existing_database_keeps_data(backend: Backend) -> None:
    first = backend.make()
    await first.start()
    await first.upsert_tenant(TENANT)
    await first.start()  # a second start on the same object is harmless too
    await first.close()

    second = backend.make()
    await second.start()
    try:
        assert await second.get_tenant(TENANT.tenant_id) == TENANT
        assert await _sync(second, migrate.current_revision) == migrate.head_revision()
    finally:
        await second.close()


async def test_database_from_a_newer_ctibridge_is_refused(backend: Backend) -> None:
    store = backend.make()
    await store.start()
    async with store.engine.begin() as conn:
        await conn.execute(sa.text("UPDATE alembic_version SET version_num = '9999'"))
    with pytest.raises(StorageError, match="migrating the schema"):
        await store.start()
    await store.close()


async def test_sqlite_creates_folder_and_file_with_pragmas(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "ctibridge.db"
    store = open_storage(f"sqlite+aiosqlite:///{path}")
    assert not path.parent.exists()
    await store.start()
    try:
        assert path.is_file()
        async with store.engine.connect() as conn:
            pragmas = {
                name: (await conn.execute(sa.text(f"PRAGMA {name}"))).scalar_one()
                for name in ("journal_mode", "foreign_keys", "busy_timeout")
            }
        assert pragmas == {"journal_mode": "wal", "foreign_keys": 1, "busy_timeout": 5000}
    finally:
        await store.close()


@pytest.mark.parametrize(
    ("url", "driver"),
    [
        ("sqlite:///x.db", "aiosqlite"),
        ("postgresql://u@h/db", "asyncpg"),
        ("postgres://u@h/db", "asyncpg"),
    ],
)
def test_sync_driver_urls_get_the_async_driver(url: str, driver: str) -> None:
    assert open_storage(url).engine.dialect.driver == driver


@pytest.mark.parametrize(
    "url",
    ["not a url", "nosuchdb://x/y", "mysql+aiomysql://u@h/db", "postgresql+psycopg2://u@h/db"],
)
def test_unusable_url_is_a_storage_error(url: str) -> None:
    with pytest.raises(StorageError):
        open_storage(url)


async def test_unreachable_postgresql_is_a_storage_error() -> None:
    store = open_storage("postgresql+asyncpg://postgres@127.0.0.1:1/test")
    with pytest.raises(StorageError, match="migrating the schema"):
        await store.start()
    await store.close()


async def test_unwritable_sqlite_folder_is_a_storage_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    store = open_storage(f"sqlite+aiosqlite:///{blocker / 'sub' / 'ctibridge.db'}")
    with pytest.raises(StorageError, match="creating the folder"):
        await store.start()
    await store.close()


def test_secrets_stay_out_of_repr() -> None:
    store = open_storage("postgresql+asyncpg://ctib:s3cret@db.example/ctibridge")
    assert "s3cret" not in repr(store)


ADD_TENANT_NOTE = '''"""Add tenants.note.

Revision ID: 9001
Revises: {head}
"""

import sqlalchemy as sa
from alembic import op

revision = "9001"
down_revision = "{head}"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("tenants", sa.Column("note", sa.String))


def downgrade() -> None:
    op.drop_column("tenants", "note")
'''


@pytest.fixture
def migrations_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A scratch copy of the migrations folder that ``migrate`` uses instead of ours."""
    folder = tmp_path / "migrations"
    shutil.copytree(migrate.MIGRATIONS_DIR, folder, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(migrate, "MIGRATIONS_DIR", folder)
    return folder


def _add_second_migration(folder: Path) -> None:
    """A migration after the newest one, as a later release would ship."""
    text = ADD_TENANT_NOTE.replace("{head}", migrate.head_revision())
    (folder / "versions" / "9001_add_tenant_note.py").write_text(text)


def _tenant_columns(conn: Connection) -> list[str]:
    return [c["name"] for c in sa.inspect(conn).get_columns("tenants")]


async def test_start_upgrades_an_older_database(backend: Backend, migrations_copy: Path) -> None:
    store = backend.make()
    await store.start()
    await store.upsert_tenant(TENANT)
    _add_second_migration(migrations_copy)
    await store.start()
    try:
        assert await _sync(store, migrate.current_revision) == "9001"
        assert "note" in await _sync(store, _tenant_columns)
        assert await store.get_tenant(TENANT.tenant_id) == TENANT
    finally:
        await store.close()


def test_new_migration_is_drafted_after_head(
    migrations_copy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    head = migrate.head_revision()
    migrate.main(["new", "--autogenerate", "nothing changed"])
    (drafted,) = (migrations_copy / "versions").glob(f"{int(head) + 1:04d}_nothing_changed.py")
    text = drafted.read_text()
    assert f"down_revision = '{head}'" in text
    assert "op." not in text  # tables.py and the migrations agree: nothing to do
    assert "Generating" in capsys.readouterr().out


def _outbox_errors(conn: Connection) -> list[tuple[Any, ...]]:
    columns = [c["name"] for c in sa.inspect(conn).get_columns("outbox")]
    code = "last_error_code" if "last_error_code" in columns else "NULL"
    query = f"SELECT key, last_error, {code} FROM outbox ORDER BY id"
    return [tuple(row) for row in conn.execute(sa.text(query))]


def _add_coded_errors(conn: Connection) -> None:
    """Outbox rows as 0001-0003 wrote them: the code in brackets before the message."""
    rows = [
        ("coded", "[FIELD_CUSTOM_VALIDATION_EXCEPTION] Call result is required"),
        ("plain", "Service temporarily unavailable"),
        ("gone", "discarded: [MALFORMED_ID] OwnerId: bad id"),
        ("odd", "[not a code] text"),
        ("none", None),
    ]
    for key, error in rows:
        conn.execute(
            sa.text(
                "INSERT INTO outbox (key, topic, tenant_id, payload, attempts, next_attempt_at,"
                " last_error, created_at) VALUES (:key, 't', 'acct-1', '{}', 1, 0, :error, 0)"
            ),
            {"key": key, "error": error},
        )


async def test_0004_moves_the_bracketed_error_code_to_its_column_and_back(
    backend: Backend,
) -> None:
    if backend.name == "sqlite":
        _sqlite_file(backend).parent.mkdir(parents=True)
    store = backend.make()
    try:
        async with store.engine.begin() as conn:
            await conn.run_sync(migrate.upgrade, "0003")
            await conn.run_sync(_add_coded_errors)
            await conn.run_sync(migrate.upgrade, "0004")
        assert await _sync(store, _outbox_errors) == [
            ("coded", "Call result is required", "FIELD_CUSTOM_VALIDATION_EXCEPTION"),
            ("plain", "Service temporarily unavailable", None),
            ("gone", "discarded: OwnerId: bad id", "MALFORMED_ID"),
            ("odd", "[not a code] text", None),
            ("none", None, None),
        ]
        async with store.engine.begin() as conn:
            await conn.run_sync(lambda c: command.downgrade(migrate.alembic_config(c), "0003"))
        assert await _sync(store, _outbox_errors) == [
            ("coded", "[FIELD_CUSTOM_VALIDATION_EXCEPTION] Call result is required", None),
            ("plain", "Service temporarily unavailable", None),
            ("gone", "discarded: [MALFORMED_ID] OwnerId: bad id", None),
            ("odd", "[not a code] text", None),
            ("none", None, None),
        ]
        assert "call_contexts" not in await _sync(store, _table_names)
        await store.start()  # and up again, to head
        assert await _sync(store, _schema_diff) == []
    finally:
        await store.close()
