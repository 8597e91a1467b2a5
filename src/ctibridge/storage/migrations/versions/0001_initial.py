"""Initial schema: tenants, agents, tokens, calls, legs, the event log and the outbox.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

# Types are spelled out here rather than imported from tables.py: a migration is history
# and must keep creating exactly this, whatever tables.py becomes later.
JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
SERIAL = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TIME: sa.Double[float] = sa.Double()
NOT_ENDED = sa.text("state != 'ended'")
NOT_DONE = sa.text("done_at IS NULL")


def _tenants_and_agents() -> None:
    op.create_table(
        "tenants",
        sa.Column("tenant_id", sa.String, primary_key=True),
        sa.Column("name", sa.String, nullable=False),
        sa.Column("pbx", sa.String, nullable=False),
        sa.Column("settings", JSON, nullable=False),
    )
    op.create_table(
        "agents",
        sa.Column("agent_id", sa.String, primary_key=True),
        sa.Column(
            "tenant_id",
            sa.String,
            sa.ForeignKey("tenants.tenant_id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("name", sa.String, nullable=False),
        sa.Column("extension", sa.String),
        sa.Column("pbx_user_id", sa.String),
        sa.Column("device_ids", JSON, nullable=False),
        sa.Column("email", sa.String),
        sa.Column("login", sa.String),
        sa.Column("password_hash", sa.String),
        sa.Column("timezone", sa.String, nullable=False),
        sa.Column("crm_user_id", sa.String),
        sa.Column("active", sa.Boolean, nullable=False),
    )
    op.create_index("ix_agents_tenant_id", "agents", ["tenant_id"])
    op.create_index("ux_agents_login", "agents", ["login"], unique=True)

    # kind is user | device | extension; one row per (tenant, kind, value).
    op.create_table(
        "agent_identities",
        sa.Column("tenant_id", sa.String, primary_key=True),
        sa.Column("kind", sa.String, primary_key=True),
        sa.Column("value", sa.String, primary_key=True),
        sa.Column(
            "agent_id",
            sa.String,
            sa.ForeignKey("agents.agent_id", ondelete="CASCADE"),
            nullable=False,
        ),
    )
    op.create_index("ix_agent_identities_agent_id", "agent_identities", ["agent_id"])

    op.create_table(
        "api_tokens",
        sa.Column("token_hash", sa.String, primary_key=True),
        sa.Column("tenant_id", sa.String, nullable=False),
        sa.Column("role", sa.String, nullable=False),
        sa.Column("agent_id", sa.String, sa.ForeignKey("agents.agent_id", ondelete="CASCADE")),
        sa.Column("created_at", TIME, nullable=False),
        sa.Column("expires_at", TIME),
        sa.Column("revoked", sa.Boolean, nullable=False),
    )
    op.create_index("ix_api_tokens_agent_id", "api_tokens", ["agent_id"])


def _calls() -> None:
    op.create_table(
        "calls",
        sa.Column("call_id", sa.String, primary_key=True),
        sa.Column("tenant_id", sa.String, nullable=False),
        sa.Column("pbx", sa.String, nullable=False),
        sa.Column("state", sa.String, nullable=False),
        sa.Column("direction", sa.String, nullable=False),
        sa.Column("from_number", sa.String),
        sa.Column("to_number", sa.String),
        sa.Column("missed", sa.Boolean, nullable=False),
        sa.Column("started_at", TIME, nullable=False),
        sa.Column("answered_at", TIME),
        sa.Column("ended_at", TIME),
        sa.Column("end_reason", sa.String),
        sa.Column("seq", sa.BigInteger, nullable=False),
        sa.Column("updated_at", TIME, nullable=False),
        sa.Column("data", JSON, nullable=False),
    )
    op.create_index("ix_calls_tenant_started", "calls", ["tenant_id", "started_at", "call_id"])
    op.create_index(
        "ix_calls_active",
        "calls",
        ["tenant_id", "started_at"],
        sqlite_where=NOT_ENDED,
        postgresql_where=NOT_ENDED,
    )

    # role is handled | rung; position keeps the order of StoredCall.handled_by / .rung.
    op.create_table(
        "call_agents",
        sa.Column(
            "call_id",
            sa.String,
            sa.ForeignKey("calls.call_id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("role", sa.String, primary_key=True),
        sa.Column("position", sa.Integer, primary_key=True),
        sa.Column("agent_id", sa.String, nullable=False),
    )
    op.create_index("ix_call_agents_agent_id", "call_agents", ["agent_id", "call_id"])

    op.create_table(
        "legs",
        sa.Column(
            "call_id",
            sa.String,
            sa.ForeignKey("calls.call_id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("position", sa.Integer, primary_key=True),
        sa.Column("leg_id", sa.String, nullable=False),
        sa.Column("tenant_id", sa.String, nullable=False),
        sa.Column("party", sa.String, nullable=False),
        sa.Column("originator", sa.Boolean, nullable=False),
        sa.Column("agent_user_id", sa.String),
        sa.Column("agent_device_id", sa.String),
        sa.Column("agent_extension", sa.String),
        sa.Column("created_at", TIME, nullable=False),
        sa.Column("answered_at", TIME),
        sa.Column("ended_at", TIME),
        sa.Column("hangup_cause", sa.String),
        sa.Column("node", sa.String),
    )
    op.create_index("ix_legs_leg_id", "legs", ["leg_id"])


def _event_log_and_outbox() -> None:
    op.create_table(
        "call_events",
        sa.Column("id", SERIAL, primary_key=True, autoincrement=True),
        sa.Column("tenant_id", sa.String, nullable=False),
        sa.Column("call_id", sa.String, nullable=False),
        sa.Column("leg_id", sa.String, nullable=False),
        sa.Column("kind", sa.String, nullable=False),
        sa.Column("at", TIME, nullable=False),
        sa.Column("received_at", TIME, nullable=False),
        sa.Column("payload", JSON, nullable=False),
    )
    op.create_index("ix_call_events_call_id", "call_events", ["call_id", "id"])

    op.create_table(
        "outbox",
        sa.Column("id", SERIAL, primary_key=True, autoincrement=True),
        sa.Column("key", sa.String, nullable=False),
        sa.Column("topic", sa.String, nullable=False),
        sa.Column("tenant_id", sa.String, nullable=False),
        sa.Column("payload", JSON, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("next_attempt_at", TIME, nullable=False),
        sa.Column("last_error", sa.Text),
        sa.Column("created_at", TIME, nullable=False),
        sa.Column("done_at", TIME),
    )
    op.create_index("ux_outbox_key", "outbox", ["key"], unique=True)
    op.create_index(
        "ix_outbox_due",
        "outbox",
        ["next_attempt_at"],
        sqlite_where=NOT_DONE,
        postgresql_where=NOT_DONE,
    )


def upgrade() -> None:
    _tenants_and_agents()
    _calls()
    _event_log_and_outbox()


def downgrade() -> None:
    for table in (
        "outbox", "call_events", "legs", "call_agents", "calls",
        "api_tokens", "agent_identities", "agents", "tenants",
    ):  # fmt: skip
        op.drop_table(table)
