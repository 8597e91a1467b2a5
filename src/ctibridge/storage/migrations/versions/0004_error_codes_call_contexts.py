"""The outbox error code in a column of its own; per-agent CRM context of calls.

``outbox.last_error_code`` holds the outside service's code for the last failure, which
earlier versions wrote in front of the message (``[CODE] message``): existing rows are split.
``call_contexts`` keeps what each agent did in the CRM during a call until its logs are
queued, so a restart between the agent's choice and the call's end loses nothing.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import re

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

# Types are spelled out here rather than imported from tables.py: a migration is history.
TIME: sa.Double[float] = sa.Double()
JSON_OR_NULL = sa.JSON(none_as_null=True).with_variant(
    postgresql.JSONB(none_as_null=True), "postgresql"
)

# How 0001-0003 wrote a coded error; a discarded item's text starts with "discarded: ".
_CODED = re.compile(r"(discarded: )?\[([A-Z][A-Z0-9_]{0,79})\] (.*)", re.DOTALL)

_outbox = sa.table(
    "outbox",
    sa.column("id", sa.BigInteger),
    sa.column("last_error", sa.Text),
    sa.column("last_error_code", sa.String),
)


def _split_coded_errors() -> None:
    """``[CODE] message`` → code in ``last_error_code``, the message in ``last_error``."""
    conn = op.get_bind()
    c = _outbox.c
    coded = sa.select(c.id, c.last_error).where(c.last_error.like("%[%] %"))
    for item_id, text in conn.execute(coded).all():
        found = _CODED.fullmatch(text)
        if found is None:
            continue
        prefix, code, message = found.groups()
        conn.execute(
            sa.update(_outbox)
            .where(c.id == item_id)
            .values(last_error=(prefix or "") + message, last_error_code=code)
        )


def _join_coded_errors() -> None:
    """The way back: the code in front of the message again."""
    conn = op.get_bind()
    c = _outbox.c
    coded = sa.select(c.id, c.last_error, c.last_error_code).where(c.last_error_code.is_not(None))
    for item_id, text, code in conn.execute(coded).all():
        prefix = "discarded: " if (text or "").startswith("discarded: ") else ""
        message = (text or "")[len(prefix) :]
        conn.execute(
            sa.update(_outbox)
            .where(c.id == item_id)
            .values(last_error=f"{prefix}[{code}] {message}"[:2000])
        )


def upgrade() -> None:
    op.add_column("outbox", sa.Column("last_error_code", sa.String))
    _split_coded_errors()

    op.create_table(
        "call_contexts",
        sa.Column("tenant_id", sa.String, primary_key=True),
        sa.Column("call_id", sa.String, primary_key=True),
        sa.Column("agent_id", sa.String, primary_key=True),
        sa.Column("clicked_object", sa.String),
        sa.Column("clicked_id", sa.String),
        sa.Column("chosen_object", sa.String),
        sa.Column("chosen_id", sa.String),
        sa.Column("matches", JSON_OR_NULL),
        sa.Column("updated_at", TIME, nullable=False),
    )
    op.create_index("ix_call_contexts_updated_at", "call_contexts", ["updated_at"])


def downgrade() -> None:
    op.drop_table("call_contexts")
    _join_coded_errors()
    with op.batch_alter_table("outbox") as batch:
        batch.drop_column("last_error_code")
