"""Seed 002 across a restart: the record an agent chose during a call is where the call's log
goes, even when ctibridge restarts between the choice and the hang-up.

The demo phone system (a Kazoo-compatible server) stays up while ctibridge is stopped and a
new runtime is started over the same database (the SQLite file, or the PostgreSQL schema).
The new runtime picks the live call up from Kazoo's channel listing, and the built-in CRM
logs its end on the record chosen before the restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest

from ctibridge.callstate.model import CallState
from ctibridge.config import Settings
from ctibridge.crm.builtin import BuiltinCrm
from ctibridge.demo.directory import DEMO
from ctibridge.demo.kazoo.server import KazooServer
from ctibridge.demo.scenarios.inbound import inbound_answered
from ctibridge.demo.scenarios.script import ScenarioContext, Step, greg_from_unix
from ctibridge.launcher import HttpServer, demo_settings, register_account, seed_demo_agents
from ctibridge.services.runtime import Services, build_services
from ctibridge.storage import SqlStorage
from ctibridge.storage.base import StoredCall
from ctibridge.types import CallId, TenantId
from ctibridge.web.app import create_app
from tests.integration.conftest import PG_URL, _pg, fast_settings, until

TENANT = TenantId(DEMO.account_id)
OLIVIA = DEMO.agent("101")
CALLER = replace(DEMO.callers[0], number="+441632960777", name="Sam Taylor")
"""A number the demo data does not have: only the two records made here match it."""


class Rig:
    """The demo phone system, always up, and ctibridge against it, started and stopped at
    will over the same database."""

    def __init__(self, kazoo: KazooServer, settings: Settings, schema: str | None) -> None:
        self.kazoo = kazoo
        self.settings = settings
        self.schema = schema
        self.http: HttpServer | None = None

    @property
    def services(self) -> Services:
        assert self.http is not None
        services: Services = self.http.app.state.services
        return services

    @property
    def crm(self) -> BuiltinCrm:
        crm = self.services.crm
        assert isinstance(crm, BuiltinCrm)
        return crm

    async def start(self) -> None:
        storage = None
        if self.schema is not None:
            server_settings = {"search_path": self.schema}
            storage = SqlStorage(PG_URL, connect_args={"server_settings": server_settings})
        services = await build_services(self.settings, storage=storage)
        self.http = HttpServer(create_app(self.settings, services), self.settings)
        await self.http.start()  # the app's lifespan starts the services
        await until(
            lambda: services.status()["connectors"][0].get("connected"),
            what="the Kazoo connector to connect",
        )

    async def stop(self) -> None:
        if self.http is not None:
            await self.http.stop()  # the app's lifespan stops the services
            self.http = None

    async def publish(self, steps: list[Step]) -> None:
        for step in steps:
            await self.kazoo.publish(DEMO.account_id, step.data)

    def live(self) -> StoredCall | None:
        return next(iter(self.services.calls.active(TENANT)), None)


@contextlib.asynccontextmanager
async def rig(backend: str, tmp_path: Path) -> AsyncIterator[Rig]:
    kazoo = KazooServer(port=0)
    register_account(kazoo, DEMO)
    await kazoo.start()
    schema = f"it_{secrets.token_hex(6)}" if backend == "postgres" else None
    if schema is not None:
        await _pg(f'CREATE SCHEMA "{schema}"')
    settings = fast_settings(tmp_path, crm={"provider": "builtin"})
    running = Rig(kazoo, demo_settings(settings, kazoo, DEMO), schema)
    try:
        yield running
    finally:
        await running.stop()
        await kazoo.stop()
        if schema is not None:
            await _pg(f'DROP SCHEMA "{schema}" CASCADE')


def _call_in_two(seed: int) -> tuple[list[Step], list[Step]]:
    """An inbound call Olivia answers: the steps up to its first hang-up, and the rest."""
    ctx = ScenarioContext(
        account=TENANT,
        realm=DEMO.realm,
        start_greg=greg_from_unix(1_790_000_000),
        rng=random.Random(seed),
    )
    steps = inbound_answered(ctx, agent=OLIVIA, caller=CALLER, ring_seconds=3, talk_seconds=60)
    end = next(i for i, s in enumerate(steps) if s.data["event_name"] == "CHANNEL_DESTROY")
    return steps[:end], steps[end:]


async def _sam_taylor_twice(crm: BuiltinCrm) -> tuple[Any, Any]:
    fields = {"first_name": "Sam", "last_name": "Taylor", "phone": "01632 960777"}
    contact = await crm.create_record(TENANT, "Contact", fields)
    lead = await crm.create_record(TENANT, "Lead", fields | {"company": "Taylor & Co"})
    return contact.ref, lead.ref


@pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
async def test_the_record_chosen_before_a_restart_gets_the_log(
    backend: str, tmp_path: Path
) -> None:
    async with rig(backend, tmp_path) as cti:
        await cti.start()
        tokens = await seed_demo_agents(cti.services, DEMO)
        contact, lead = await _sam_taylor_twice(cti.crm)
        before_hang_up, hang_up = _call_in_two(seed=7)

        await cti.publish(before_hang_up)
        stored: StoredCall = await until(
            lambda: (s := cti.live()) is not None and s.call.state is CallState.ANSWERED and s,
            what="the answered call",
        )
        call_id = stored.call.call_id
        popped = cti.services.screenpop
        assert popped is not None
        await until(lambda: len(popped.matches(call_id)) == 2, what="both records to match")
        assert cti.http is not None
        async with httpx.AsyncClient(base_url=cti.http.url, timeout=10) as http:
            picked = await http.put(  # several matches: Olivia picks the Lead in the chooser
                f"/api/calls/{call_id}/record",
                json={"object": lead.object, "id": lead.record_id},
                headers={"authorization": f"Bearer {tokens['101']}"},
            )
        assert picked.status_code == 200, picked.text

        await cti.stop()  # ctibridge restarts while the call goes on
        await cti.start()
        again = await until(cti.live, what="the call picked up from the channel listing")
        assert again.call.call_id == call_id
        crm_logging = cti.services.crm_logging
        assert crm_logging is not None
        assert crm_logging.context(call_id, "agent-101").chosen is None  # not in memory

        await cti.publish(hang_up)
        on_lead = await until_async(lambda: cti.crm.activities(TENANT, lead), what="the log")
        assert [(a.log.call_id, a.log.agent_id, a.log.who) for a in on_lead] == [
            (call_id, "agent-101", lead)
        ]
        assert await cti.crm.activities(TENANT, contact) == []
        storage = cti.services.storage
        # Cleaned up once the call's logs are queued (the removal runs on the writer task).

        async def cleaned_up() -> bool:
            return await storage.list_call_contexts(TENANT, CallId(call_id)) == []

        await until_async(cleaned_up, what="the call's contexts to be removed")


async def until_async(
    check: Callable[[], Awaitable[Any]], *, what: str, within: float = 10.0
) -> Any:
    """Bounded poll of an async ``check()`` until it returns something truthy."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not (result := await check()):
        assert loop.time() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.02)
    return result
