"""Call recordings: one row per recording, pending until fetched, then stored or failed.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

# Types are spelled out here rather than imported from tables.py: a migration is history.
TIME: sa.Double[float] = sa.Double()
PENDING = sa.text("state = 'pending'")


def upgrade() -> None:
    op.create_table(
        "recordings",
        sa.Column("recording_id", sa.String, primary_key=True),
        sa.Column("tenant_id", sa.String, nullable=False),
        sa.Column("call_id", sa.String, nullable=False),
        sa.Column("pbx", sa.String, nullable=False),
        sa.Column("ref", sa.Text, nullable=False),
        sa.Column("source_url", sa.Text),
        sa.Column("state", sa.String, nullable=False),
        sa.Column("content_type", sa.String),
        sa.Column("size", sa.BigInteger),
        sa.Column("sha256", sa.String),
        sa.Column("stored_path", sa.Text),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("next_attempt_at", TIME, nullable=False),
        sa.Column("last_error", sa.Text),
        sa.Column("created_at", TIME, nullable=False),
        sa.Column("stored_at", TIME),
    )
    op.create_index("ix_recordings_call", "recordings", ["tenant_id", "call_id"])
    op.create_index(
        "ix_recordings_due",
        "recordings",
        ["next_attempt_at"],
        sqlite_where=PENDING,
        postgresql_where=PENDING,
    )


def downgrade() -> None:
    op.drop_table("recordings")
