"""What services need from storage. One SQL implementation serves SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from ctibridge.callstate.events import AgentRef, ChannelEvent
from ctibridge.callstate.model import Call, CallState, Direction
from ctibridge.types import AgentId, CallId, TenantId

__all__ = [
    "Agent",
    "ApiToken",
    "CallContext",
    "CallPage",
    "CallQuery",
    "CallWrite",
    "OutboxItem",
    "Storage",
    "StoredCall",
    "Tenant",
]


@dataclass(frozen=True, slots=True)
class Tenant:
    tenant_id: TenantId
    name: str
    pbx: str = "kazoo"
    settings: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Agent:
    agent_id: AgentId
    tenant_id: TenantId
    name: str
    extension: str | None = None
    pbx_user_id: str | None = None
    """Kazoo owner_id; Asterisk/FreeSWITCH: unused."""
    device_ids: tuple[str, ...] = ()
    """Kazoo device ids, Asterisk endpoints (``PJSIP/1001``), FreeSWITCH users."""
    email: str | None = None
    login: str | None = None
    password_hash: str | None = None
    timezone: str = "UTC"
    crm_user_id: str | None = None
    active: bool = True

    def matches(self, ref: AgentRef) -> bool:
        return bool(
            (ref.user_id and ref.user_id == self.pbx_user_id)
            or (ref.device_id and ref.device_id in self.device_ids)
            or (ref.extension and ref.extension == self.extension)
        )


@dataclass(frozen=True, slots=True)
class ApiToken:
    token_hash: str
    """sha256 hex of the token; the token itself is never stored."""
    tenant_id: TenantId
    role: str
    """``agent`` or ``admin``."""
    agent_id: AgentId | None
    created_at: float
    expires_at: float | None = None
    revoked: bool = False


@dataclass(frozen=True, slots=True)
class StoredCall:
    call: Call
    handled_by: tuple[AgentId, ...] = ()
    """Our agents who handled it, in order."""
    rung: tuple[AgentId, ...] = ()
    """Our agents whose phone rang."""

    @property
    def call_id(self) -> CallId:
        return CallId(self.call.call_id)


@dataclass(frozen=True, slots=True)
class CallWrite:
    """The state of a call to store, with the channel events that led to it."""

    stored: StoredCall
    events: Sequence[ChannelEvent] = ()
    replaces: tuple[CallId, ...] = ()
    """Call ids merged into this one: delete them."""


@dataclass(frozen=True, slots=True)
class CallQuery:
    tenant_id: TenantId
    agent_id: AgentId | None = None
    """Calls this agent handled or was rung for."""
    direction: Direction | None = None
    state: CallState | None = None
    active: bool | None = None
    """True: not ended; False: ended."""
    missed: bool | None = None
    number: str | None = None
    """Substring of the from or to number."""
    since: float | None = None
    until: float | None = None
    limit: int = 50
    cursor: str | None = None
    """Opaque, from the previous page's ``next_cursor``."""


@dataclass(frozen=True, slots=True)
class CallPage:
    items: list[StoredCall]
    next_cursor: str | None


@dataclass(frozen=True, slots=True)
class OutboxItem:
    """A message to deliver to the outside (CRM call log, webhook) at least once."""

    key: str
    """Idempotency key: adding the same key twice keeps one item."""
    topic: str
    payload: dict[str, Any]
    tenant_id: TenantId
    item_id: int | None = None
    attempts: int = 0
    next_attempt_at: float = 0.0
    last_error: str | None = None
    """The last failure's message."""
    last_error_code: str | None = None
    """The outside service's own code for that failure, when it gave one
    (``FIELD_CUSTOM_VALIDATION_EXCEPTION``)."""
    created_at: float = 0.0
    done_at: float | None = None


@dataclass(frozen=True, slots=True)
class CallContext:
    """What one agent did in the CRM during one call, kept until the call's logs are queued.

    CRM records are ``(object, record_id)`` pairs; ``matches`` are the lookup's records as
    JSON objects. In an upsert, a field left None keeps the stored value."""

    tenant_id: TenantId
    call_id: CallId
    agent_id: AgentId
    clicked: tuple[str, str] | None = None
    """The record a click-to-dial started from."""
    chosen: tuple[str, str] | None = None
    """The record picked, navigated to or created with New (the latest)."""
    matches: tuple[dict[str, Any], ...] | None = None
    """What the number lookup found (None: not looked up)."""
    updated_at: float = 0.0


class Storage(Protocol):
    async def start(self) -> None:
        """Open the pool and bring the schema to the newest migration."""

    async def close(self) -> None: ...

    # tenants and agents
    async def upsert_tenant(self, tenant: Tenant) -> None: ...
    async def get_tenant(self, tenant_id: TenantId) -> Tenant | None: ...
    async def list_tenants(self) -> list[Tenant]: ...
    async def upsert_agent(self, agent: Agent) -> None: ...
    async def get_agent(self, agent_id: AgentId) -> Agent | None: ...
    async def get_agent_by_login(self, login: str) -> Agent | None: ...
    async def list_agents(self, tenant_id: TenantId) -> list[Agent]: ...
    async def remove_agent(self, agent_id: AgentId) -> None: ...

    # tokens
    async def add_token(self, token: ApiToken) -> None: ...
    async def get_token(self, token_hash: str) -> ApiToken | None: ...
    async def revoke_token(self, token_hash: str) -> None: ...

    # calls and the event log
    async def save_calls(self, writes: Sequence[CallWrite], *, received_at: float) -> None:
        """In one transaction: upsert each call (with its legs and agent links), delete the
        calls it replaces, and append its channel events to the event log."""

    async def get_call(self, tenant_id: TenantId, call_id: CallId) -> StoredCall | None: ...
    async def list_calls(self, query: CallQuery) -> CallPage: ...
    async def call_events(self, tenant_id: TenantId, call_id: CallId) -> list[ChannelEvent]: ...
    async def open_call_events(self, updated_since: float) -> list[ChannelEvent]:
        """The channel events, in saved order, of the calls not ended that were updated at or
        after ``updated_since`` (what a restart folds back into the call state)."""

    # outbox
    async def outbox_add(self, items: Sequence[OutboxItem]) -> None: ...
    async def outbox_due(self, now: float, limit: int) -> list[OutboxItem]: ...
    async def outbox_done(self, item_id: int, now: float) -> None: ...
    async def outbox_retry(
        self, item_id: int, error: str, next_attempt_at: float, *, error_code: str | None = None
    ) -> None: ...
    async def outbox_pending(self, tenant_id: TenantId | None = None) -> int: ...

    # what agents did in the CRM during calls
    async def upsert_call_contexts(self, contexts: Sequence[CallContext]) -> None:
        """Insert, or merge into the stored context: fields given (not None) replace the
        stored ones, the others stay. In a batch, contexts apply in order."""

    async def list_call_contexts(self, tenant_id: TenantId, call_id: CallId) -> list[CallContext]:
        """The call's contexts, one per agent, by agent id."""

    async def remove_call_contexts(self, tenant_id: TenantId, call_id: CallId) -> None: ...
    async def expire_call_contexts(self, before: float) -> int:
        """Delete contexts last updated before ``before``; returns how many."""
