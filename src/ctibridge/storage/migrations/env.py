"""Alembic environment for ctibridge: always runs on a connection ctibridge hands it.

``ctibridge.storage._migrate.upgrade`` builds the Alembic config in code and puts an open
(synchronous-facade) SQLAlchemy connection in ``config.attributes["connection"]``; there is
no ``alembic.ini`` and no URL here, and Alembic never touches the logging configuration.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection

from ctibridge.storage.tables import metadata


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


_connection = context.config.attributes.get("connection")
if not isinstance(_connection, Connection):
    raise RuntimeError("ctibridge migrations run through ctibridge.storage, not the alembic CLI")
_run(_connection)
