"""Running ctibridge: the HTTP server, and the demo (server + built-in phone system).

The demo phone system is a separate program in spirit: it speaks the Kazoo REST and
websocket protocols on its own port, and ctibridge's real Kazoo connector consumes it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import socket
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field, replace
from typing import Any

import uvicorn
from starlette.applications import Starlette

from ctibridge.config import Settings
from ctibridge.crm.builtin import BuiltinCrm
from ctibridge.demo.crm_data import seed_demo_crm
from ctibridge.demo.directory import DEMO, DemoAccount
from ctibridge.demo.kazoo.server import KazooServer
from ctibridge.demo.kazoo.state import QuickCall
from ctibridge.demo.recordings import with_recordings
from ctibridge.demo.scenarios.outbound import click_to_dial
from ctibridge.demo.scenarios.script import ScenarioContext, Step, greg_from_unix
from ctibridge.demo.traffic import DemoTraffic
from ctibridge.services.runtime import Services, build_services
from ctibridge.storage.base import Agent, Storage, Tenant
from ctibridge.types import AgentId, TenantId
from ctibridge.web.app import create_app

__all__ = ["DemoSystem", "HttpServer", "demo_settings", "running_demo", "seed_demo_agents"]

logger = logging.getLogger(__name__)


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        # Embedded: the caller owns signal handling.
        yield


class HttpServer:
    """Uvicorn serving an ASGI app in this event loop (port 0 picks a free port)."""

    def __init__(self, app: Starlette, settings: Settings) -> None:
        self.app = app
        self.settings = settings
        self.port = settings.web.port
        self._server: _Server | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        scheme = "https" if self.settings.web.tls_cert else "http"
        return f"{scheme}://{self.settings.web.host}:{self.port}"

    async def start(self) -> None:
        # IPPROTO_TCP explicitly: asyncio sets TCP_NODELAY only on sockets that say so, and
        # without it every small response waits for the peer's delayed ACK (~40 ms).
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.settings.web.host, self.port))
        self.port = sock.getsockname()[1]
        web = self.settings.web
        config = uvicorn.Config(
            self.app,
            log_config=None,
            access_log=False,
            ws="websockets-sansio",
            ssl_certfile=web.tls_cert or None,
            ssl_keyfile=web.tls_key or None,
            timeout_graceful_shutdown=3,
        )
        self._server = _Server(config)
        self._task = asyncio.create_task(self._server.serve(sockets=[sock]), name="http")
        while not self._server.started:
            if self._task.done():
                self._task.result()
                raise RuntimeError(f"the web server did not start on {self.url}")
            await asyncio.sleep(0.01)

    async def stop(self) -> None:
        if self._server is None or self._task is None:
            return
        self._server.should_exit = True
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._server = self._task = None

    async def wait(self) -> None:
        if self._task is not None:
            await self._task


def demo_settings(settings: Settings, kazoo: KazooServer, account: DemoAccount) -> Settings:
    """The settings pointed at the built-in phone system (and, unless another CRM is
    configured, the built-in CRM filled with the demo data set)."""
    crm = settings.crm
    if crm.provider == "none":
        crm = replace(crm, provider="builtin")
    return replace(
        settings,
        crm=crm,
        kazoo=replace(
            settings.kazoo,
            enabled=True,
            api_url=kazoo.url,
            ws_url=kazoo.ws_url,
            api_key=account.api_key,
            account_ids=(account.account_id,),
        ),
    )


def register_account(kazoo: KazooServer, account: DemoAccount) -> None:
    kazoo.add_account(account.account_id, account.api_key)
    for agent in account.agents:
        kazoo.add_user(
            account.account_id,
            agent.user_id,
            first_name=agent.first_name,
            last_name=agent.last_name,
            extension=agent.extension,
            email=agent.email,
        )
        kazoo.add_device(
            account.account_id,
            agent.device_id,
            owner_id=agent.user_id,
            name=f"{agent.name} softphone",
            username=agent.sip_username,
        )


async def seed_demo_agents(services: Services, account: DemoAccount) -> dict[str, str]:
    """Our agents for the demo account (idempotent); returns extension → sign-in token."""
    tenant = TenantId(account.account_id)
    await services.storage.upsert_tenant(Tenant(tenant, account.name, "kazoo"))
    tokens: dict[str, str] = {}
    for demo in account.agents:
        agent = Agent(
            agent_id=AgentId(f"agent-{demo.extension}"),
            tenant_id=tenant,
            name=demo.name,
            extension=demo.extension,
            pbx_user_id=demo.user_id,
            device_ids=(demo.device_id,),
            email=demo.email,
            login=demo.login,
            timezone=account.timezone,
        )
        await services.agents.save_agent(agent, password=demo.password)
        tokens[demo.extension] = await services.agents.issue_token(
            tenant, "agent", agent.agent_id, ttl=None
        )
    return tokens


@dataclass
class DemoSystem:
    """The built-in phone system plus ctibridge, all on this machine."""

    kazoo: KazooServer
    services: Services
    http: HttpServer
    account: DemoAccount
    tokens: dict[str, str]
    traffic: DemoTraffic | None = None
    _tasks: list[asyncio.Task[Any]] = field(default_factory=list)

    def softphone_url(self, extension: str) -> str:
        return f"{self.http.url}/softphone#token={self.tokens[extension]}"

    def admin_url(self) -> str:
        return f"{self.http.url}/admin#token={self.services.admin_token}"

    async def publish(self, data: dict[str, Any]) -> None:
        await self.kazoo.publish(self.account.account_id, data)


class _QuickCalls:
    """Makes the demo phone system honour quickcalls: each plays the ``click_to_dial``
    scenario for that agent, number and request id, on the Call-ID the reply announced."""

    def __init__(self, account: DemoAccount) -> None:
        self.account = account
        self.player: DemoTraffic | None = None

    async def __call__(self, call: QuickCall) -> None:
        key = "user_id" if call.target_type == "user" else "device_id"
        agents = [a for a in self.account.agents if getattr(a, key) == call.target_id]
        if not agents or self.player is None:
            return
        ctx = ScenarioContext(
            account=self.account.account_id,
            realm=self.account.realm,
            start_greg=greg_from_unix(time.time()),
            rng=random.Random(),
            media_server=self.account.media_servers[0],
            carrier=self.account.carrier,
            account_name=self.account.name,
        )
        request_id = call.custom_application_vars.get("ctibridge_req", "")
        steps = click_to_dial(
            ctx, agent=agents[0], number=call.number, request_id=request_id, via=call.target_type
        )
        await self.player.play(_renamed(steps, steps[0].data["call_id"], call.call_id))


def _renamed(steps: list[Step], old: str, new: str) -> list[Step]:
    def swap(value: Any) -> Any:
        if isinstance(value, dict):
            return {key: swap(item) for key, item in value.items()}
        if isinstance(value, list):
            return [swap(item) for item in value]
        return new if value == old else value

    return [Step(step.delay, swap(step.data)) for step in steps]


@contextlib.asynccontextmanager
async def running_demo(
    settings: Settings,
    *,
    account: DemoAccount = DEMO,
    traffic: bool = True,
    speed: float = 1.0,
    seed: int | None = None,
    storage: Storage | None = None,
) -> AsyncIterator[DemoSystem]:
    """Start the demo phone system, ctibridge against it, and (optionally) live traffic."""
    quickcalls = _QuickCalls(account)
    kazoo = KazooServer(port=0, on_quickcall=quickcalls)
    register_account(kazoo, account)
    await kazoo.start()
    try:
        settings = demo_settings(settings, kazoo, account)
        services = await build_services(settings, storage=storage)
        tokens = await seed_demo_agents(services, account)
        if isinstance(services.crm, BuiltinCrm):
            await seed_demo_crm(services.crm, account.account_id)
        http = HttpServer(create_app(settings, services), settings)
        await http.start()
        system = DemoSystem(kazoo, services, http, account, tokens)
        publish = with_recordings(kazoo)  # recorded calls leave a recording to fetch
        try:
            if traffic:
                system.traffic = DemoTraffic(
                    publish,
                    account=account,
                    focus=account.agents[0].extension,
                    rng=random.Random(seed),
                    speed=speed,
                    clock=time.time,
                )
                system._tasks.append(asyncio.create_task(system.traffic.run(), name="traffic"))
            quickcalls.player = system.traffic or DemoTraffic(
                publish, account=account, speed=speed, clock=time.time
            )
            yield system
        finally:
            for task in system._tasks:
                task.cancel()
            await asyncio.gather(*system._tasks, return_exceptions=True)
            await http.stop()
    finally:
        await kazoo.stop()
