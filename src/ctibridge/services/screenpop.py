"""Screen pop: when an external call reaches an agent, look the number up in the CRM.

The lookup runs beside the call (never in the event path). Its result is kept per call, put
on the call card (``crm`` field) and sent to the call's agents as a ``crm`` frame, and handed
to CRM logging as what the agent saw (one match → the log goes to it, seed 002), which keeps
it in the database until the call's logs are queued. Internal calls are never looked up.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from ctibridge.bus.base import Bus, Message
from ctibridge.callstate.model import CallChanged, CallEventName, CallState, Direction
from ctibridge.crm.base import CrmAdapter, CrmRecord
from ctibridge.errors import CtiError
from ctibridge.numbers import to_e164
from ctibridge.services.call_contexts import record_to_dict
from ctibridge.services.crm_logging import CrmLoggingService
from ctibridge.storage.base import StoredCall

__all__ = ["ScreenPopService", "record_out"]

logger = logging.getLogger(__name__)


def record_out(record: CrmRecord) -> dict[str, Any]:
    """A record as the API and the cards show it (as it is also stored for the call)."""
    return record_to_dict(record)


class ScreenPopService:
    def __init__(
        self,
        *,
        crm: CrmAdapter,
        bus: Bus,
        crm_logging: CrmLoggingService | None,
        region: str = "GB",
        internal_digits: int = 5,
        keep: int = 5000,
    ) -> None:
        self._crm = crm
        self._bus = bus
        self._logging = crm_logging
        self._region = region
        self._digits = internal_digits
        self._keep = keep
        self._results: dict[str, dict[str, Any]] = {}
        self._found: dict[str, tuple[CrmRecord, ...]] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def card_extra(self, stored: StoredCall) -> dict[str, Any]:
        """What the call card shows of the lookup (``status``: pending, done, error, skipped)."""
        found = self._results.get(stored.call.call_id)
        return {"crm": found} if found is not None else {}

    def on_call_changed(self, change: CallChanged, stored: StoredCall) -> None:
        call = stored.call
        if call.call_id in self._results or call.state is CallState.ENDED:
            if change.name is CallEventName.ENDED:
                self._trim()
            elif call.state is not CallState.ENDED:
                self._share(stored)
            return
        if call.direction is Direction.INTERNAL or not (stored.rung or stored.handled_by):
            return
        number = to_e164(call.remote_number, self._region, self._digits)
        if number is None:
            self._results[call.call_id] = {"status": "skipped", "number": None, "matches": []}
            return
        self._results[call.call_id] = {"status": "pending", "number": number, "matches": []}
        task = asyncio.create_task(self._lookup(stored, number))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _lookup(self, stored: StoredCall, number: str) -> None:
        call = stored.call
        try:
            matches = await self._crm.lookup_by_number(call.tenant_id, number)
        except CtiError as exc:
            logger.warning("screen pop lookup of %s failed: %s", number, exc.message)
            self._results[call.call_id] = {
                "status": "error",
                "number": number,
                "matches": [],
                "message": exc.message,
            }
        else:
            self._results[call.call_id] = {
                "status": "done",
                "number": number,
                "matches": [record_out(m) for m in matches],
            }
            self._found[call.call_id] = tuple(matches)
            if self._logging is not None:
                for agent_id in dict.fromkeys((*stored.handled_by, *stored.rung)):
                    self._logging.remember(
                        call.call_id, agent_id, tenant_id=call.tenant_id, matches=matches
                    )
        agents = tuple(dict.fromkeys((*stored.handled_by, *stored.rung)))
        await self._bus.publish(
            Message(
                name="call.crm",
                tenant_id=call.tenant_id,
                payload={
                    "event": "crm",
                    "call_id": call.call_id,
                    "crm": self._results[call.call_id],
                },
                agent_ids=agents,
            )
        )

    def _share(self, stored: StoredCall) -> None:
        """Agents who join a call after its lookup (a transfer) saw the same result."""
        found = self._found.get(stored.call.call_id)
        if self._logging is None or not found:
            return
        call = stored.call
        for agent_id in dict.fromkeys((*stored.handled_by, *stored.rung)):
            if not self._logging.context(call.call_id, agent_id).matches:
                self._logging.remember(
                    call.call_id, agent_id, tenant_id=call.tenant_id, matches=found
                )

    def matches(self, call_id: str) -> list[dict[str, Any]]:
        found = self._results.get(call_id)
        return list(found["matches"]) if found else []

    def _trim(self) -> None:
        """Ended calls keep their result a while (late card views); the oldest go first."""
        if len(self._results) > self._keep:
            for old in list(self._results)[: len(self._results) - self._keep]:
                del self._results[old]
                self._found.pop(old, None)

    async def stop(self) -> None:
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
