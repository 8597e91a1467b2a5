"""The built-in CRM's tables: accounts, contacts, leads, the phone index and call activities.

They live in the same ``MetaData`` as the rest of the schema (``tables.py`` imports this
module), so the migration contract test covers them too; migration ``0002`` creates them.
Every table is tenant-scoped: keys start with ``tenant_id``. Record ids are strings (ours are
random hex, imported ones keep the Salesforce ``Id``).

``crm_phones`` is the index screen pop uses: one row per non-empty phone field of a record,
holding the number in E.164 and as stored. The CRM code rewrites a record's rows in the same
transaction as every create, update and delete of that record.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from ctibridge.storage.tables import TIME, metadata

__all__ = [
    "crm_accounts",
    "crm_activities",
    "crm_contacts",
    "crm_leads",
    "crm_phones",
]


def _record_columns() -> list[sa.Column[Any]]:
    """Key and bookkeeping columns every record table has."""
    return [
        sa.Column("tenant_id", sa.String, primary_key=True),
        sa.Column("id", sa.String, primary_key=True),
        sa.Column("created_at", TIME, nullable=False),
        sa.Column("updated_at", TIME, nullable=False),
        sa.Column("last_activity_at", TIME),
    ]


crm_accounts = sa.Table(
    "crm_accounts",
    metadata,
    *_record_columns(),
    sa.Column("name", sa.String, nullable=False),
    sa.Column("phone", sa.String),
    sa.Column("website", sa.String),
    sa.Column("industry", sa.String),
    sa.Column("city", sa.String),
    sa.Index("ix_crm_accounts_name", "tenant_id", "name", "id"),
)

crm_contacts = sa.Table(
    "crm_contacts",
    metadata,
    *_record_columns(),
    sa.Column("name", sa.String, nullable=False),
    sa.Column("first_name", sa.String),
    sa.Column("last_name", sa.String, nullable=False),
    sa.Column("title", sa.String),
    sa.Column("email", sa.String),
    sa.Column("account_id", sa.String),
    sa.Column("phone", sa.String),
    sa.Column("mobile_phone", sa.String),
    sa.Column("other_phone", sa.String),
    sa.Index("ix_crm_contacts_name", "tenant_id", "name", "id"),
    sa.Index("ix_crm_contacts_account", "tenant_id", "account_id"),
)
"""``name`` is ``first_name last_name``, kept for sorting and search. ``account_id`` has no
foreign key (the key would need the tenant too); deleting an account clears it in code."""

crm_leads = sa.Table(
    "crm_leads",
    metadata,
    *_record_columns(),
    sa.Column("name", sa.String, nullable=False),
    sa.Column("first_name", sa.String),
    sa.Column("last_name", sa.String, nullable=False),
    sa.Column("title", sa.String),
    sa.Column("company", sa.String),
    sa.Column("email", sa.String),
    sa.Column("phone", sa.String),
    sa.Column("mobile_phone", sa.String),
    sa.Column("other_phone", sa.String),
    sa.Column("status", sa.String, nullable=False),
    sa.Index("ix_crm_leads_name", "tenant_id", "name", "id"),
)

crm_phones = sa.Table(
    "crm_phones",
    metadata,
    sa.Column("tenant_id", sa.String, primary_key=True),
    sa.Column("object", sa.String, primary_key=True),
    sa.Column("record_id", sa.String, primary_key=True),
    sa.Column("field", sa.String, primary_key=True),
    sa.Column("e164", sa.String, nullable=False),
    sa.Column("number", sa.String, nullable=False),
    sa.Index("ix_crm_phones_e164", "tenant_id", "e164"),
)
"""The phone index: ``(tenant, object, record, field) → e164, number as stored``."""

crm_activities = sa.Table(
    "crm_activities",
    metadata,
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
    sa.Index("ux_crm_activities_key", "tenant_id", "key", unique=True),
    sa.Index("ix_crm_activities_who", "tenant_id", "who_object", "who_id", "started_at"),
    sa.Index("ix_crm_activities_what", "tenant_id", "what_object", "what_id", "started_at"),
)
"""One call log (``CallLog``) on a person (``who``) and/or a thing (``what``); ``key`` makes
``log_call`` idempotent."""
