"""The built-in CRM: accounts, contacts, leads, the phone index and call activities.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

# Types are spelled out here rather than imported from crm_tables.py: a migration is history.
TIME: sa.Double[float] = sa.Double()


def _record_columns() -> list[sa.Column[Any]]:
    return [
        sa.Column("tenant_id", sa.String, primary_key=True),
        sa.Column("id", sa.String, primary_key=True),
        sa.Column("created_at", TIME, nullable=False),
        sa.Column("updated_at", TIME, nullable=False),
        sa.Column("last_activity_at", TIME),
    ]


def _phone_columns() -> list[sa.Column[Any]]:
    return [
        sa.Column("phone", sa.String),
        sa.Column("mobile_phone", sa.String),
        sa.Column("other_phone", sa.String),
    ]


def _records() -> None:
    op.create_table(
        "crm_accounts",
        *_record_columns(),
        sa.Column("name", sa.String, nullable=False),
        sa.Column("phone", sa.String),
        sa.Column("website", sa.String),
        sa.Column("industry", sa.String),
        sa.Column("city", sa.String),
    )
    op.create_index("ix_crm_accounts_name", "crm_accounts", ["tenant_id", "name", "id"])

    op.create_table(
        "crm_contacts",
        *_record_columns(),
        sa.Column("name", sa.String, nullable=False),
        sa.Column("first_name", sa.String),
        sa.Column("last_name", sa.String, nullable=False),
        sa.Column("title", sa.String),
        sa.Column("email", sa.String),
        sa.Column("account_id", sa.String),
        *_phone_columns(),
    )
    op.create_index("ix_crm_contacts_name", "crm_contacts", ["tenant_id", "name", "id"])
    op.create_index("ix_crm_contacts_account", "crm_contacts", ["tenant_id", "account_id"])

    op.create_table(
        "crm_leads",
        *_record_columns(),
        sa.Column("name", sa.String, nullable=False),
        sa.Column("first_name", sa.String),
        sa.Column("last_name", sa.String, nullable=False),
        sa.Column("title", sa.String),
        sa.Column("company", sa.String),
        sa.Column("email", sa.String),
        *_phone_columns(),
        sa.Column("status", sa.String, nullable=False),
    )
    op.create_index("ix_crm_leads_name", "crm_leads", ["tenant_id", "name", "id"])


def _phones_and_activities() -> None:
    # One row per non-empty phone field of a record; screen pop reads (tenant_id, e164).
    op.create_table(
        "crm_phones",
        sa.Column("tenant_id", sa.String, primary_key=True),
        sa.Column("object", sa.String, primary_key=True),
        sa.Column("record_id", sa.String, primary_key=True),
        sa.Column("field", sa.String, primary_key=True),
        sa.Column("e164", sa.String, nullable=False),
        sa.Column("number", sa.String, nullable=False),
    )
    op.create_index("ix_crm_phones_e164", "crm_phones", ["tenant_id", "e164"])

    op.create_table(
        "crm_activities",
        sa.Column("id", sa.String, primary_key=True),
        sa.Column("tenant_id", sa.String, nullable=False),
        sa.Column("key", sa.String, nullable=False),
        sa.Column("call_id", sa.String, nullable=False),
        sa.Column("agent_id", sa.String, nullable=False),
        sa.Column("crm_user_id", sa.String),
        sa.Column("call_type", sa.String, nullable=False),
        sa.Column("subject", sa.String, nullable=False),
        sa.Column("started_at", TIME, nullable=False),
        sa.Column("ended_at", TIME, nullable=False),
        sa.Column("duration_seconds", sa.Integer, nullable=False),
        sa.Column("disposition", sa.String, nullable=False),
        sa.Column("remote_number", sa.String),
        sa.Column("remote_name", sa.String),
        sa.Column("who_object", sa.String),
        sa.Column("who_id", sa.String),
        sa.Column("what_object", sa.String),
        sa.Column("what_id", sa.String),
        sa.Column("recording_url", sa.String),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("timezone", sa.String, nullable=False),
        sa.Column("logged_at", TIME, nullable=False),
    )
    op.create_index("ux_crm_activities_key", "crm_activities", ["tenant_id", "key"], unique=True)
    op.create_index(
        "ix_crm_activities_who",
        "crm_activities",
        ["tenant_id", "who_object", "who_id", "started_at"],
    )
    op.create_index(
        "ix_crm_activities_what",
        "crm_activities",
        ["tenant_id", "what_object", "what_id", "started_at"],
    )


def upgrade() -> None:
    _records()
    _phones_and_activities()


def downgrade() -> None:
    for table in ("crm_activities", "crm_phones", "crm_leads", "crm_contacts", "crm_accounts"):
        op.drop_table(table)
