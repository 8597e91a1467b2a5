"""What each agent did in the CRM during each call, kept until the call's logs are queued.

The association rules of seed 002 (``call_log.py``) need, per call and agent, the record a
click-to-dial started from, the record the agent chose (picked, navigated to, or created
with New) and what the number lookup found. :class:`CallContexts` keeps them in memory (the
live view, read synchronously) and writes every change to the ``call_contexts`` table at
once, in order and batched, off the caller's path. At the end of a call the database is the
truth: a restart between the agent's choice and the hang-up loses nothing. Contexts are
deleted once the call's logs are queued; those of calls whose end was never seen expire.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from typing import Any

from ctibridge.crm.base import CrmRecord, CrmRef
from ctibridge.errors import CtiError
from ctibridge.services.call_log import AgentContext
from ctibridge.services.directory import AgentDirectory
from ctibridge.storage.base import CallContext, Storage
from ctibridge.tasks import stop
from ctibridge.types import AgentId, CallId, TenantId

__all__ = ["RETENTION", "CallContexts", "record_from_dict", "record_to_dict"]

logger = logging.getLogger(__name__)

RETENTION = 2 * 86_400.0
"""Seconds a context is kept after its last change when its call's end is never seen."""

SWEEP_INTERVAL = 3_600.0


def record_to_dict(record: CrmRecord) -> dict[str, Any]:
    """A lookup's record as stored (its extra ``fields`` are not kept)."""
    return {
        "object": record.ref.object,
        "id": record.ref.record_id,
        "name": record.name,
        "matched_field": record.matched_field,
        "number": record.number,
        "account_name": record.account_name,
        "url": record.url,
        "last_activity_at": record.last_activity_at,
    }


def record_from_dict(data: dict[str, Any]) -> CrmRecord:
    return CrmRecord(
        ref=CrmRef(str(data["object"]), str(data["id"])),
        name=str(data.get("name") or ""),
        matched_field=data.get("matched_field"),
        number=data.get("number"),
        account_name=data.get("account_name"),
        url=data.get("url"),
        last_activity_at=data.get("last_activity_at"),
    )


def _pair(ref: CrmRef | None) -> tuple[str, str] | None:
    return (ref.object, ref.record_id) if ref is not None else None


def _ref(pair: tuple[str, str] | None) -> CrmRef | None:
    return CrmRef(*pair) if pair is not None else None


def _agent_context(stored: CallContext) -> AgentContext:
    return AgentContext(
        clicked=_ref(stored.clicked),
        chosen=_ref(stored.chosen),
        matches=tuple(record_from_dict(m) for m in stored.matches or ()),
    )


def _newer(live: AgentContext, stored: AgentContext) -> AgentContext:
    """What this process saw (newer) over what the database holds (perhaps from before a
    restart), field by field."""
    return AgentContext(
        clicked=live.clicked or stored.clicked,
        chosen=live.chosen or stored.chosen,
        matches=live.matches or stored.matches,
    )


class CallContexts:
    def __init__(
        self,
        *,
        storage: Storage,
        directory: AgentDirectory,
        clock: Callable[[], float] = time.time,
        retention: float = RETENTION,
    ) -> None:
        self._storage = storage
        self._directory = directory
        self._clock = clock
        self._retention = retention
        self._live: dict[tuple[str, str], AgentContext] = {}
        self._unsaved: list[CallContext] = []
        self._stored: set[tuple[str, str]] = set()
        """(tenant, call) with contexts in the database, as far as this process knows."""
        self._saver: asyncio.Task[None] | None = None
        self._sweeper: asyncio.Task[None] | None = None

    def get(self, call_id: str, agent_id: str) -> AgentContext:
        """What this process saw (the database may know more after a restart)."""
        return self._live.get((call_id, agent_id), AgentContext())

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
        """Record what changed (arguments left None stay as they were) and queue it for the
        database. ``tenant_id`` defaults to the agent's; an agent we do not know is kept in
        memory only (no log is written for them)."""
        ctx = self.get(call_id, agent_id)
        if clicked is not None:
            ctx = replace(ctx, clicked=clicked)
        if chosen is not None:
            ctx = replace(ctx, chosen=chosen)
        if matches is not None:
            ctx = replace(ctx, matches=tuple(matches))
        self._live[call_id, agent_id] = ctx
        tenant = tenant_id or self._tenant_of(agent_id)
        if tenant is not None:
            self._stored.add((tenant, call_id))
            self._save(
                CallContext(
                    tenant_id=TenantId(tenant),
                    call_id=CallId(call_id),
                    agent_id=AgentId(agent_id),
                    clicked=_pair(clicked),
                    chosen=_pair(chosen),
                    matches=tuple(map(record_to_dict, matches)) if matches is not None else None,
                    updated_at=self._clock(),
                )
            )
        return ctx

    def _tenant_of(self, agent_id: str) -> str | None:
        agent = self._directory.get(AgentId(agent_id))
        return agent.tenant_id if agent is not None else None

    # -- the database ---------------------------------------------------------------------

    def _save(self, context: CallContext) -> None:
        self._unsaved.append(context)
        if self._saver is None or self._saver.done():
            self._saver = asyncio.create_task(self._save_all(), name="call-contexts")

    async def _save_all(self) -> None:
        """One writer: changes reach the database in the order they were made, each batch
        in one transaction."""
        while self._unsaved:
            batch, self._unsaved = self._unsaved, []
            try:
                await self._storage.upsert_call_contexts(batch)
            except CtiError as exc:
                logger.warning(
                    "could not save the CRM context of %d call(s): %s", len(batch), exc.message
                )

    async def saved(self) -> None:
        """Wait until every change made so far is in the database (or failed)."""
        while self._saver is not None and not self._saver.done():
            await asyncio.wait({self._saver})

    async def of_call(
        self, tenant_id: str, call_id: str, agent_ids: Iterable[str]
    ) -> dict[AgentId, AgentContext]:
        """Each agent's context: the database's, with what this process saw on top."""
        await self.saved()
        try:
            rows = await self._storage.list_call_contexts(TenantId(tenant_id), CallId(call_id))
        except CtiError as exc:
            logger.warning("could not read the CRM context of call %s: %s", call_id, exc.message)
            rows = []
        if rows:
            self._stored.add((tenant_id, call_id))
        out = {row.agent_id: _agent_context(row) for row in rows}
        for agent_id in agent_ids:
            key = AgentId(agent_id)
            out[key] = _newer(self.get(call_id, agent_id), out.get(key, AgentContext()))
        return out

    async def forget(self, tenant_id: str, call_id: str, agent_ids: Iterable[str]) -> None:
        """The call's logs are queued: its contexts are no longer needed."""
        for agent_id in agent_ids:
            self._live.pop((call_id, agent_id), None)
        await self.saved()
        if (tenant_id, call_id) not in self._stored:
            return  # nothing was stored (most internal calls): no write needed
        self._stored.discard((tenant_id, call_id))
        try:
            await self._storage.remove_call_contexts(TenantId(tenant_id), CallId(call_id))
        except CtiError as exc:  # they expire later
            logger.warning("could not remove the CRM context of call %s: %s", call_id, exc.message)

    async def expire(self) -> int:
        """Delete contexts unchanged for the retention period (calls whose end we missed)."""
        removed = await self._storage.expire_call_contexts(self._clock() - self._retention)
        if removed:
            logger.info("expired %d CRM context(s) of calls never seen ending", removed)
        return removed

    async def _sweep(self) -> None:
        while True:
            try:
                await self.expire()
            except CtiError as exc:
                logger.warning("could not expire old call contexts: %s", exc.message)
            await asyncio.sleep(SWEEP_INTERVAL)

    def start(self) -> None:
        self._sweeper = asyncio.create_task(self._sweep(), name="call-contexts-sweep")

    async def stop(self) -> None:
        await stop(self._sweeper)
        self._sweeper = None
        await self.saved()
