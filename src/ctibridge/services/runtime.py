"""The composition root: builds storage, bus, services and connectors from the settings."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from ctibridge.bus.memory import MemoryBus
from ctibridge.config import Settings
from ctibridge.connectors.kazoo import KazooConnector
from ctibridge.crm.base import CrmAdapter
from ctibridge.crm.memory import MemoryCrm
from ctibridge.errors import PbxAuthError
from ctibridge.observability import PBX_CONNECTED
from ctibridge.services.agents import ALL_TENANTS, AgentsService, token_hash
from ctibridge.services.calls import CallsService
from ctibridge.services.crm_logging import CrmLoggingService
from ctibridge.services.directory import AgentDirectory
from ctibridge.services.writer import CallWriter
from ctibridge.storage import open_storage
from ctibridge.storage.base import Storage

__all__ = ["Services", "build_services"]

logger = logging.getLogger(__name__)


@dataclass
class Services:
    settings: Settings
    storage: Storage
    bus: MemoryBus
    agents: AgentsService
    calls: CallsService
    writer: CallWriter
    admin_token: str
    connectors: list[KazooConnector] = field(default_factory=list)
    crm_logging: CrmLoggingService | None = None
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)

    async def start(self) -> None:
        self.writer.start()
        if self.crm_logging is not None:
            self.crm_logging.start()
        for connector in self.connectors:
            self._tasks.append(asyncio.create_task(_run_connector(connector), name="kazoo"))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        if self.crm_logging is not None:
            await self.crm_logging.stop()
            await self.crm_logging.crm.close()
        await self.writer.stop()
        await self.bus.close()
        await self.storage.close()

    def status(self) -> dict[str, object]:
        return {
            "connectors": [c.status() for c in self.connectors],
            "storage_pending": self.writer.pending,
        }


async def _run_connector(connector: KazooConnector) -> None:
    try:
        await connector.run()
    except PbxAuthError as exc:
        PBX_CONNECTED.labels("kazoo").set(0)
        logger.error("Kazoo refused our credentials; fix kazoo.api_key and restart: %s", exc)


async def build_services(settings: Settings, *, storage: Storage | None = None) -> Services:
    _prepare_data_dir(settings.data_dir)
    if storage is None:
        storage = open_storage(settings.storage_url, echo=settings.storage.echo)
    await storage.start()
    bus = MemoryBus()
    directory = AgentDirectory()
    agents = AgentsService(
        storage=storage, directory=directory, token_ttl=settings.web.token_ttl_hours * 3600
    )
    await agents.load()
    writer = CallWriter(storage, flush_interval=settings.storage.flush_interval)
    calls = CallsService(
        storage=storage,
        bus=bus,
        directory=directory,
        writer=writer,
        internal_digits=settings.calls.internal_digits,
    )
    admin_token = await _admin_token(settings, agents, storage)
    services = Services(settings, storage, bus, agents, calls, writer, admin_token)
    crm = _crm(settings)
    if crm is not None:
        services.crm_logging = CrmLoggingService(
            storage=storage, directory=directory, crm=crm, region=settings.calls.default_region
        )
        calls.listen(services.crm_logging.on_call_changed)
    if settings.kazoo.enabled:
        services.connectors.append(
            KazooConnector(
                settings.kazoo, sink=calls, internal_digits=settings.calls.internal_digits
            )
        )
    return services


def _crm(settings: Settings) -> CrmAdapter | None:
    if settings.crm.provider == "memory":
        return MemoryCrm()
    return None


def _prepare_data_dir(data_dir: str) -> None:
    Path(data_dir).mkdir(parents=True, exist_ok=True)


def _token_file(settings: Settings) -> str:
    """The configured admin token, else the one kept in the data dir, else a new one kept
    there (mode 0600)."""
    if settings.web.admin_token:
        return settings.web.admin_token
    path = Path(settings.data_dir) / "admin-token"
    if path.exists():
        token = path.read_text().strip()
        if token:
            return token
    token = secrets.token_urlsafe(32)
    path.write_text(token + "\n")
    os.chmod(path, 0o600)
    logger.info("generated an admin token in %s", path)
    return token


async def _admin_token(settings: Settings, agents: AgentsService, storage: Storage) -> str:
    token = _token_file(settings)
    if await storage.get_token(token_hash(token)) is None:
        await agents.issue_token(ALL_TENANTS, "admin", ttl=None, token=token)
    return token
