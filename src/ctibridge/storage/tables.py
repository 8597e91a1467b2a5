"""The SQL schema as SQLAlchemy Core tables: what the queries are written against.

The migrations in ``migrations/versions/`` create the same schema by hand; a contract test
compares the two, so a change here without a migration (or the other way round) fails.
Times are unix seconds (``DOUBLE PRECISION``), like everywhere else in ctibridge.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

__all__ = [
    "agent_identities",
    "agents",
    "api_tokens",
    "call_agents",
    "call_contexts",
    "call_events",
    "calls",
    "legs",
    "metadata",
    "outbox",
    "recordings",
    "tenants",
]

JSON_TYPE = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
"""JSON text on SQLite, JSONB on PostgreSQL."""

JSON_OR_NULL = sa.JSON(none_as_null=True).with_variant(
    postgresql.JSONB(none_as_null=True), "postgresql"
)
"""The same, but Python ``None`` is SQL ``NULL`` (not the JSON ``null``)."""

SERIAL = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
"""A 64-bit auto-increment key; SQLite only auto-increments ``INTEGER PRIMARY KEY``."""

TIME: sa.Double[float] = sa.Double()

metadata = sa.MetaData()

tenants = sa.Table(
    "tenants",
    metadata,
    sa.Column("tenant_id", sa.String, primary_key=True),
    sa.Column("name", sa.String, nullable=False),
    sa.Column("pbx", sa.String, nullable=False),
    sa.Column("settings", JSON_TYPE, nullable=False),
)

agents = sa.Table(
    "agents",
    metadata,
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
    sa.Column("device_ids", JSON_TYPE, nullable=False),
    sa.Column("email", sa.String),
    sa.Column("login", sa.String),
    sa.Column("password_hash", sa.String),
    sa.Column("timezone", sa.String, nullable=False),
    sa.Column("crm_user_id", sa.String),
    sa.Column("active", sa.Boolean, nullable=False),
    sa.Index("ix_agents_tenant_id", "tenant_id"),
    sa.Index("ux_agents_login", "login", unique=True),
)

agent_identities = sa.Table(
    "agent_identities",
    metadata,
    sa.Column("tenant_id", sa.String, primary_key=True),
    sa.Column("kind", sa.String, primary_key=True),
    sa.Column("value", sa.String, primary_key=True),
    sa.Column(
        "agent_id",
        sa.String,
        sa.ForeignKey("agents.agent_id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Index("ix_agent_identities_agent_id", "agent_id"),
)
"""How the PBX names an agent (``user``, ``device`` or ``extension``): one row per name."""

api_tokens = sa.Table(
    "api_tokens",
    metadata,
    sa.Column("token_hash", sa.String, primary_key=True),
    sa.Column("tenant_id", sa.String, nullable=False),
    sa.Column("role", sa.String, nullable=False),
    sa.Column("agent_id", sa.String, sa.ForeignKey("agents.agent_id", ondelete="CASCADE")),
    sa.Column("created_at", TIME, nullable=False),
    sa.Column("expires_at", TIME),
    sa.Column("revoked", sa.Boolean, nullable=False),
    sa.Index("ix_api_tokens_agent_id", "agent_id"),
)

calls = sa.Table(
    "calls",
    metadata,
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
    sa.Column("data", JSON_TYPE, nullable=False),
    sa.Index("ix_calls_tenant_started", "tenant_id", "started_at", "call_id"),
    sa.Index(
        "ix_calls_active",
        "tenant_id",
        "started_at",
        sqlite_where=sa.text("state != 'ended'"),
        postgresql_where=sa.text("state != 'ended'"),
    ),
)
"""One row per call: the queryable columns, and the whole call in ``data``."""

call_agents = sa.Table(
    "call_agents",
    metadata,
    sa.Column(
        "call_id",
        sa.String,
        sa.ForeignKey("calls.call_id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("role", sa.String, primary_key=True),
    sa.Column("position", sa.Integer, primary_key=True),
    sa.Column("agent_id", sa.String, nullable=False),
    sa.Index("ix_call_agents_agent_id", "agent_id", "call_id"),
)
"""Our agents on a call: ``handled`` or ``rung``, in order. No foreign key to ``agents``:
removing an agent keeps the history of their calls."""

legs = sa.Table(
    "legs",
    metadata,
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
    sa.Index("ix_legs_leg_id", "leg_id"),
)

call_events = sa.Table(
    "call_events",
    metadata,
    sa.Column("id", SERIAL, primary_key=True, autoincrement=True),
    sa.Column("tenant_id", sa.String, nullable=False),
    sa.Column("call_id", sa.String, nullable=False),
    sa.Column("leg_id", sa.String, nullable=False),
    sa.Column("kind", sa.String, nullable=False),
    sa.Column("at", TIME, nullable=False),
    sa.Column("received_at", TIME, nullable=False),
    sa.Column("payload", JSON_TYPE, nullable=False),
    sa.Index("ix_call_events_call_id", "call_id", "id"),
)
"""Append-only log of channel events. No foreign key to ``calls``: the log outlives merges
(events of a merged call are re-pointed to the surviving call, never deleted)."""

outbox = sa.Table(
    "outbox",
    metadata,
    sa.Column("id", SERIAL, primary_key=True, autoincrement=True),
    sa.Column("key", sa.String, nullable=False),
    sa.Column("topic", sa.String, nullable=False),
    sa.Column("tenant_id", sa.String, nullable=False),
    sa.Column("payload", JSON_TYPE, nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("next_attempt_at", TIME, nullable=False),
    sa.Column("last_error", sa.Text),
    sa.Column("last_error_code", sa.String),
    sa.Column("created_at", TIME, nullable=False),
    sa.Column("done_at", TIME),
    sa.Index("ux_outbox_key", "key", unique=True),
    sa.Index(
        "ix_outbox_due",
        "next_attempt_at",
        sqlite_where=sa.text("done_at IS NULL"),
        postgresql_where=sa.text("done_at IS NULL"),
    ),
)
"""``last_error`` is the last failure's message; ``last_error_code`` the outside service's
own code for it, when it gave one (Salesforce's ``errorCode``)."""

call_contexts = sa.Table(
    "call_contexts",
    metadata,
    sa.Column("tenant_id", sa.String, primary_key=True),
    sa.Column("call_id", sa.String, primary_key=True),
    sa.Column("agent_id", sa.String, primary_key=True),
    sa.Column("clicked_object", sa.String),
    sa.Column("clicked_id", sa.String),
    sa.Column("chosen_object", sa.String),
    sa.Column("chosen_id", sa.String),
    sa.Column("matches", JSON_OR_NULL),
    sa.Column("updated_at", TIME, nullable=False),
    sa.Index("ix_call_contexts_updated_at", "updated_at"),
)
"""What one agent did in the CRM during one call (screen pop, seed 002): the record a
click-to-dial started from, the record chosen (picked, navigated to or created with New) and
what the number lookup found (``NULL``: not looked up). Kept until the call's logs are in the
outbox, so a restart in between loses none of it; rows of calls whose end was never seen are
swept by ``updated_at``. No foreign key to ``calls``: the call row may be written later."""

recordings = sa.Table(
    "recordings",
    metadata,
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
    sa.Index("ix_recordings_call", "tenant_id", "call_id"),
    sa.Index(
        "ix_recordings_due",
        "next_attempt_at",
        sqlite_where=sa.text("state = 'pending'"),
        postgresql_where=sa.text("state = 'pending'"),
    ),
)
"""One row per call recording the phone system made: ``pending`` until fetched into the
recordings store, then ``stored`` (or ``failed``). No foreign key to ``calls``: a recording
outlives merges (its ``call_id`` moves to the surviving call)."""

from ctibridge.storage import crm_tables as _crm_tables  # noqa: E402, F401  (same MetaData)
