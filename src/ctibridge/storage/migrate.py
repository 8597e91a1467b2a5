"""Alembic, driven from code: bring a database to the newest schema, or draft a migration.

``SqlStorage.start()`` calls :func:`upgrade` through ``AsyncConnection.run_sync``. There is
no ``alembic.ini``: the config is built here and points at the ``migrations/`` folder.

Drafting a new migration (see ``docs/storage.md``)::

    python -m ctibridge.storage.migrate new "add calls.queue_name"
    python -m ctibridge.storage.migrate new --autogenerate "add calls.queue_name"
"""

from __future__ import annotations

import argparse
import tempfile
from collections.abc import Sequence
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection

__all__ = ["MIGRATIONS_DIR", "alembic_config", "current_revision", "head_revision", "upgrade"]

MIGRATIONS_DIR = Path(__file__).resolve().with_name("migrations")


def alembic_config(connection: Connection | None = None) -> Config:
    """An Alembic config for our migrations folder, optionally bound to ``connection``."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("path_separator", "os")
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def upgrade(connection: Connection, revision: str = "head") -> None:
    """Run the migrations up to ``revision`` on ``connection`` (inside its transaction)."""
    command.upgrade(alembic_config(connection), revision)


def current_revision(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if head is None:  # pragma: no cover - the initial migration always exists
        raise RuntimeError("no migrations found")
    return head


def _next_rev_id() -> str:
    return f"{int(head_revision()) + 1:04d}"


def new_revision(message: str, *, autogenerate: bool = False) -> None:
    """Write ``migrations/versions/<NNNN>_<slug>.py``. With ``autogenerate``, diff
    ``tables.py`` against a scratch SQLite database at head to draft the operations."""
    rev_id = _next_rev_id()
    if not autogenerate:
        command.revision(alembic_config(), message, rev_id=rev_id)
        return
    with tempfile.TemporaryDirectory() as scratch:
        engine = sa.create_engine(f"sqlite:///{Path(scratch) / 'draft.db'}")
        with engine.begin() as connection:
            upgrade(connection)
            command.revision(alembic_config(connection), message, True, rev_id=rev_id)
        engine.dispose()


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m ctibridge.storage.migrate")
    sub = parser.add_subparsers(dest="command", required=True)
    new = sub.add_parser("new", help="draft a new migration file")
    new.add_argument("message")
    new.add_argument("--autogenerate", action="store_true")
    args = parser.parse_args(argv)
    new_revision(args.message, autogenerate=args.autogenerate)


if __name__ == "__main__":
    main()
