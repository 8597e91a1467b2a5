"""The CRM interface every adapter implements (built-in CRM, Salesforce).

Adapters do I/O only: the association rules and the call-log subject live once, in
``services/call_log.py``, and reach adapters as a finished :class:`CallLog`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

__all__ = ["CallLog", "CrmAdapter", "CrmRecord", "CrmRef"]


@dataclass(frozen=True, slots=True)
class CrmRef:
    """A record in a CRM: object type (``Contact``, ``Lead``, ``Account``...) and its id."""

    object: str
    record_id: str


@dataclass(frozen=True, slots=True)
class CrmRecord:
    """A record as a lookup or search returns it."""

    ref: CrmRef
    name: str
    matched_field: str | None = None
    """Which phone field matched (``Phone``, ``MobilePhone``, ``OtherPhone``...)."""
    number: str | None = None
    """The number as the CRM stores it."""
    account_name: str | None = None
    url: str | None = None
    """Where an agent opens the record."""
    last_activity_at: float | None = None
    fields: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class CallLog:
    """One agent's log of one call (seed 002: one per agent who handled it)."""

    key: str
    """Idempotency key, ``<call_id>:<agent_id>``: logging the same key twice makes one log."""
    tenant_id: str
    call_id: str
    agent_id: str
    crm_user_id: str | None
    """The agent's user in the CRM (Task OwnerId)."""
    call_type: str
    """``Inbound``, ``Outbound`` or ``Internal``."""
    subject: str
    started_at: float
    ended_at: float
    duration_seconds: int
    disposition: str
    """Outcome in words: ``Answered``, ``Missed``, ``Voicemail``, ``Busy``, ``No answer``..."""
    remote_number: str | None = None
    remote_name: str | None = None
    who: CrmRef | None = None
    """A person: Contact or Lead."""
    what: CrmRef | None = None
    """A thing: Account, Opportunity, Case..."""
    recording_url: str | None = None
    description: str = ""
    timezone: str = "UTC"


class CrmAdapter(Protocol):
    name: str
    """``builtin``, ``salesforce``..."""

    async def lookup_by_number(
        self, tenant_id: str, number: str, *, limit: int = 20
    ) -> list[CrmRecord]:
        """Records with this number (E.164) in a phone field; most recent activity first."""

    async def get_record(self, tenant_id: str, ref: CrmRef) -> CrmRecord | None: ...

    async def create_record(
        self, tenant_id: str, object: str, fields: dict[str, Any]
    ) -> CrmRecord: ...

    async def log_call(self, log: CallLog) -> str:
        """Write the call log; returns the CRM's id for it. Idempotent by ``log.key``."""

    async def search(self, tenant_id: str, text: str, *, limit: int = 20) -> list[CrmRecord]: ...

    async def close(self) -> None: ...
