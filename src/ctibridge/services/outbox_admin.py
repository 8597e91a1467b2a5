"""The admin's view of the outbox: CRM writes that failed and wait for another attempt
(a Salesforce validation rule refusing a Task stays there, retried with backoff), and what
an admin may do about one: retry it now, or discard it.

Both actions are audited: one INFO line each on this module's logger, whose fields carry
``audit`` (``outbox.retry`` or ``outbox.discard``), who asked, the item and its last error.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ctibridge.errors import NotFound
from ctibridge.services.crm_logging import TOPIC as CALL_LOG_TOPIC
from ctibridge.services.directory import AgentDirectory
from ctibridge.services.outbox import OutboxWorker
from ctibridge.storage import SqlStorage
from ctibridge.storage.base import OutboxItem
from ctibridge.storage.outbox_index import OutboxIndex
from ctibridge.types import AgentId, TenantId

if TYPE_CHECKING:
    from ctibridge.services.runtime import Services

__all__ = ["FailedWrite", "OutboxAdminService", "RetryOutcome", "outbox_admin_for"]

logger = logging.getLogger(__name__)

KINDS = {CALL_LOG_TOPIC: "call_log"}
"""Outbox topic → the kind of write an admin sees."""


@dataclass(frozen=True, slots=True)
class FailedWrite:
    """An outbox item as the admin sees it."""

    item_id: int
    kind: str
    key: str
    call_id: str | None
    agent_id: str | None
    agent_name: str | None
    subject: str | None
    attempts: int
    error_code: str | None
    error_message: str
    next_attempt_at: float
    created_at: float
    done: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {
            "item_id": self.item_id,
            "kind": self.kind,
            "key": self.key,
            "call_id": self.call_id,
            "agent_id": self.agent_id,
            "agent_name": self.agent_name,
            "subject": self.subject,
            "attempts": self.attempts,
            "error_code": self.error_code,
            "last_error": self.error_message,
            "next_attempt_at": self.next_attempt_at,
            "created_at": self.created_at,
            "done": self.done,
        }


@dataclass(frozen=True, slots=True)
class RetryOutcome:
    delivered: bool
    item: FailedWrite
    """The item after the attempt (with the new error when it failed again)."""


def _text(payload: dict[str, Any], key: str) -> str | None:
    value = payload.get(key)
    return value if isinstance(value, str) and value else None


class OutboxAdminService:
    def __init__(
        self,
        *,
        index: OutboxIndex,
        worker: OutboxWorker,
        directory: AgentDirectory,
        crm: str = "",
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._index = index
        self._worker = worker
        self._directory = directory
        self.crm = crm
        """Where the writes go (``salesforce``, ``builtin``...)."""
        self._clock = clock

    def describe(self, item: OutboxItem) -> FailedWrite:
        assert item.item_id is not None
        payload = item.payload
        agent_id = _text(payload, "agent_id")
        agent = self._directory.get(AgentId(agent_id)) if agent_id else None
        return FailedWrite(
            item_id=item.item_id,
            kind=KINDS.get(item.topic, item.topic),
            key=item.key,
            call_id=_text(payload, "call_id"),
            agent_id=agent_id,
            agent_name=agent.name if agent is not None else None,
            subject=_text(payload, "subject"),
            attempts=item.attempts,
            error_code=item.last_error_code,
            error_message=item.last_error or "",
            next_attempt_at=item.next_attempt_at,
            created_at=item.created_at,
            done=item.done_at is not None,
        )

    async def failing(
        self, tenant_id: TenantId, *, limit: int = 100
    ) -> tuple[list[FailedWrite], int]:
        """The tenant's failed writes (newest first, at most ``limit``) and how many in all."""
        items = await self._index.failing(tenant_id, limit=limit)
        total = await self._index.count_failing(tenant_id)
        return [self.describe(item) for item in items], total

    async def retry_now(self, tenant_id: TenantId, item_id: int, *, by: str) -> RetryOutcome:
        """Deliver the item at once, whenever its next attempt was due."""
        item = await self._waiting(tenant_id, item_id)
        delivered = await self._worker.deliver_now(item)
        after = await self._index.get(item_id)
        outcome = RetryOutcome(delivered, self.describe(after or item))
        _audit(
            "outbox.retry",
            "%s retried outbox item %s (%s): %s",
            by,
            outcome.item,
            "delivered" if delivered else f"failed again: {after and after.last_error}",
            delivered=delivered,
        )
        return outcome

    async def discard(self, tenant_id: TenantId, item_id: int, *, by: str) -> FailedWrite:
        """Never try the item again."""
        item = await self._waiting(tenant_id, item_id)
        if not await self._index.discard(item_id, self._clock()):
            raise NotFound("that write is no longer waiting: it was delivered meanwhile")
        shown = self.describe(item)
        _audit(
            "outbox.discard",
            "%s discarded outbox item %s (%s); its last error: %s",
            by,
            shown,
            item.last_error,
        )
        return shown

    async def _waiting(self, tenant_id: TenantId, item_id: int) -> OutboxItem:
        item = await self._index.get(item_id)
        if item is None or item.tenant_id != tenant_id:
            raise NotFound(f"no outbox item {item_id}", details={"item_id": item_id})
        if item.done_at is not None:
            raise NotFound(
                "that write is no longer waiting: it was delivered or discarded",
                details={"item_id": item_id},
            )
        return item


def _audit(action: str, text: str, by: str, item: FailedWrite, said: Any, **extra: Any) -> None:
    what = f"{item.kind} of call {item.call_id} for {item.agent_id}"
    fields = {
        "audit": action,
        "by": by,
        "item_id": item.item_id,
        "key": item.key,
        "call_id": item.call_id,
        "agent_id": item.agent_id,
        "error_code": item.error_code,
        **extra,
    }
    logger.info(text, by, item.item_id, what, said, extra=fields)


def outbox_admin_for(services: Services) -> OutboxAdminService | None:
    """The service over ``services``' outbox; None without CRM logging (nothing to show)."""
    logging_service = services.crm_logging
    if logging_service is None or not isinstance(services.storage, SqlStorage):
        return None
    return OutboxAdminService(
        index=OutboxIndex(services.storage),
        worker=logging_service.worker,
        directory=services.agents.directory,
        crm=logging_service.crm.name,
    )
