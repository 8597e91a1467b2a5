"""From ended calls to CRM call logs, through the outbox.

When a call ends, each agent's log is built by the rules in ``call_log.py`` and added to the
outbox (key ``<call_id>:<agent_id>``) in the database; the outbox worker hands them to the
CRM adapter, retrying while the CRM is down. What the agent did in the CRM during the call
(the record chosen, the click-to-dial origin, the lookup results) is kept per call and agent
in memory and in the database (``call_contexts.py``), so it survives a restart.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict
from typing import Any

from ctibridge.callstate.model import CallChanged, CallEventName
from ctibridge.crm.base import CallLog, CrmAdapter, CrmRecord, CrmRef
from ctibridge.errors import CtiError
from ctibridge.services.call_contexts import RETENTION, CallContexts
from ctibridge.services.call_log import AgentContext, call_logs
from ctibridge.services.directory import AgentDirectory
from ctibridge.services.outbox import OutboxWorker
from ctibridge.storage.base import OutboxItem, Storage, StoredCall
from ctibridge.types import TenantId

__all__ = ["TOPIC", "CrmLoggingService", "log_from_dict", "log_to_dict"]

logger = logging.getLogger(__name__)

TOPIC = "crm.call_log"


def log_to_dict(log: CallLog) -> dict[str, Any]:
    return asdict(log)


def _ref(data: Any) -> CrmRef | None:
    return CrmRef(data["object"], data["record_id"]) if isinstance(data, dict) else None


def log_from_dict(data: dict[str, Any]) -> CallLog:
    fields = dict(data)
    fields["who"] = _ref(fields.get("who"))
    fields["what"] = _ref(fields.get("what"))
    return CallLog(**fields)


class CrmLoggingService:
    def __init__(
        self,
        *,
        storage: Storage,
        directory: AgentDirectory,
        crm: CrmAdapter,
        region: str = "GB",
        context_retention: float = RETENTION,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._storage = storage
        self._directory = directory
        self.crm = crm
        self._region = region
        self._clock = clock
        self.contexts = CallContexts(
            storage=storage, directory=directory, retention=context_retention, clock=clock
        )
        self.worker = OutboxWorker(storage, {TOPIC: self.deliver}, clock=clock)
        self._tasks: set[asyncio.Task[None]] = set()

    # -- what the agent did --------------------------------------------------------------

    def context(self, call_id: str, agent_id: str) -> AgentContext:
        """What this process saw of the agent on the call (the live view)."""
        return self.contexts.get(call_id, agent_id)

    def remember(
        self,
        call_id: str,
        agent_id: str,
        *,
        tenant_id: str | None = None,
        clicked: CrmRef | None = None,
        chosen: CrmRef | None = None,
        matches: Sequence[CrmRecord] | None = None,
    ) -> AgentContext:
        """What the agent did: kept in memory and written to the database at once."""
        return self.contexts.remember(
            call_id, agent_id, tenant_id=tenant_id, clicked=clicked, chosen=chosen, matches=matches
        )

    # -- from calls to the outbox ---------------------------------------------------------

    def on_call_changed(self, change: CallChanged, stored: StoredCall) -> None:
        """CallsService listener: an ended call's logs go to the outbox (in a task, off the
        event path)."""
        if change.name is CallEventName.ENDED:
            task = asyncio.create_task(self.call_ended(stored))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def call_ended(self, stored: StoredCall) -> None:
        call = stored.call
        agents = {
            a: agent
            for a in stored.handled_by + stored.rung
            if (agent := self._directory.get(a)) is not None
        }
        contexts = await self.contexts.of_call(call.tenant_id, call.call_id, agents)
        logs = call_logs(
            stored,
            agents,
            contexts,
            resolve=lambda ref: self._directory.resolve(call.tenant_id, ref),
            region=self._region,
        )
        if logs:
            await self._queue(TenantId(call.tenant_id), logs)
        await self.contexts.forget(call.tenant_id, call.call_id, agents)

    async def _queue(self, tenant_id: TenantId, logs: Sequence[CallLog]) -> None:
        now = self._clock()
        await self._storage.outbox_add(
            [
                OutboxItem(
                    key=log.key,
                    topic=TOPIC,
                    payload=log_to_dict(log),
                    tenant_id=tenant_id,
                    created_at=now,
                    next_attempt_at=now,
                )
                for log in logs
            ]
        )
        self.worker.kick()

    # -- from the outbox to the CRM -------------------------------------------------------

    async def deliver(self, items: Sequence[OutboxItem]) -> list[CtiError | None]:
        results: list[CtiError | None] = []
        for item in items:
            try:
                await self.crm.log_call(log_from_dict(item.payload))
            except CtiError as exc:
                results.append(exc)
            else:
                results.append(None)
        return results

    def start(self) -> None:
        self.worker.start()
        self.contexts.start()

    async def stop(self) -> None:
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.contexts.stop()
        await self.worker.stop()
