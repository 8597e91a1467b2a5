"""The composition root: builds storage, bus, services and connectors from the settings."""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import secrets
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

from ctibridge.bus.memory import MemoryBus
from ctibridge.config import Settings
from ctibridge.connectors.ami import AmiConnector
from ctibridge.connectors.ami_control import AsteriskControl
from ctibridge.connectors.esl import EslConnector
from ctibridge.connectors.esl_control import FreeswitchControl
from ctibridge.connectors.kazoo import KazooConnector
from ctibridge.connectors.kazoo_auth import CrossbarAuth
from ctibridge.connectors.kazoo_control import KazooControl
from ctibridge.crm.base import CrmAdapter
from ctibridge.crm.builtin import BuiltinCrm
from ctibridge.crm.memory import MemoryCrm
from ctibridge.crm.salesforce import SalesforceAdapter, TokenBox
from ctibridge.errors import ConfigError, PbxAuthError
from ctibridge.observability import PBX_CONNECTED
from ctibridge.services.agents import ALL_TENANTS, AgentsService, token_hash
from ctibridge.services.call_control import CallControl, CallControlService
from ctibridge.services.calls import CallsService
from ctibridge.services.crm_logging import CrmLoggingService
from ctibridge.services.directory import AgentDirectory
from ctibridge.services.presence import PresenceService
from ctibridge.services.recordings import RecordingsService, build_recordings
from ctibridge.services.salesforce_connect import ConfiguredOrgs, SalesforceConnectService
from ctibridge.services.salesforce_orgs import StoredOrgs
from ctibridge.services.screenpop import ScreenPopService
from ctibridge.services.writer import CallWriter
from ctibridge.storage import SqlStorage, open_storage
from ctibridge.storage.base import Storage, Tenant
from ctibridge.tasks import stop
from ctibridge.types import TenantId

__all__ = ["Services", "build_services"]

logger = logging.getLogger(__name__)


class Connector(Protocol):
    """What the runtime needs of a PBX connector."""

    async def run(self) -> None: ...

    def status(self) -> dict[str, Any]: ...


@dataclass
class Services:
    settings: Settings
    storage: Storage
    bus: MemoryBus
    agents: AgentsService
    calls: CallsService
    writer: CallWriter
    admin_token: str
    connectors: list[Connector] = field(default_factory=list)
    crm_logging: CrmLoggingService | None = None
    call_control: CallControlService | None = None
    screenpop: ScreenPopService | None = None
    crm: CrmAdapter | None = None
    recordings: RecordingsService | None = None
    presence: PresenceService | None = None
    salesforce: SalesforceConnectService | None = None
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)

    async def start(self) -> None:
        # Calls in progress at the last stop: their first resync ends those that went away.
        since = time.time() - self.settings.calls.restore_window_hours * 3600
        self.calls.restore(await self.storage.open_call_events(since))
        self.writer.start()
        if self.crm_logging is not None:
            self.crm_logging.start()
        if self.recordings is not None:
            self.recordings.start()
        for connector in self.connectors:
            pbx, _fix = _describe(connector)
            self._tasks.append(asyncio.create_task(_run_connector(connector), name=pbx))

    async def stop(self) -> None:
        await stop(*self._tasks)
        self._tasks.clear()
        if self.call_control is not None:
            await self.call_control.close()
        if self.recordings is not None:
            await self.recordings.stop()
        if self.screenpop is not None:
            await self.screenpop.stop()
        if self.presence is not None:
            await self.presence.stop()
        if self.crm_logging is not None:
            await self.crm_logging.stop()
        if self.crm is not None:
            await self.crm.close()
        await self.writer.stop()
        await self.bus.close()
        await self.storage.close()

    def status(self) -> dict[str, object]:
        return {
            "connectors": [c.status() for c in self.connectors],
            "storage_pending": self.writer.pending,
        }


def _describe(connector: Connector) -> tuple[str, str]:
    """The connector's PBX label, and the settings to fix when it refuses our credentials."""
    if isinstance(connector, AmiConnector):
        return "asterisk", "asterisk.username/asterisk.secret"
    if isinstance(connector, EslConnector):
        return "freeswitch", "freeswitch.password (and the event socket ACL)"
    return "kazoo", "kazoo.api_key"


async def _run_connector(connector: Connector) -> None:
    try:
        await connector.run()
    except PbxAuthError as exc:
        pbx, fix = _describe(connector)
        PBX_CONNECTED.labels(pbx).set(0)
        logger.error("%s refused our credentials; fix %s and restart: %s", pbx, fix, exc)


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
    services.presence = PresenceService(bus=bus, directory=directory)
    calls.listen(services.presence.on_call_changed)
    crm = await _crm(settings, storage)
    if crm is not None:
        _attach_crm(services, crm)
    if isinstance(crm, SalesforceAdapter):
        services.salesforce = _salesforce_connect(services, crm)
    if settings.recordings.enabled and isinstance(storage, SqlStorage):
        services.recordings = build_recordings(settings, storage=storage, calls=calls)
        calls.listen(services.recordings.on_call_changed)
        calls.notifier.decorators.append(services.recordings.card_extra)
    controls: dict[str, CallControl] = {}
    if settings.kazoo.enabled:
        kazoo_auth = CrossbarAuth(settings.kazoo)  # one crossbar token for events and control
        services.connectors.append(
            KazooConnector(
                settings.kazoo,
                sink=calls,
                internal_digits=settings.calls.internal_digits,
                auth=kazoo_auth,
            )
        )
        controls["kazoo"] = KazooControl(settings.kazoo, auth=kazoo_auth)
    digits = settings.calls.internal_digits
    if settings.asterisk.enabled:  # control rides on the connector's one AMI session
        await _ensure_tenant(storage, settings.asterisk.tenant_id, "asterisk")
        ami = AmiConnector(settings.asterisk, sink=calls, internal_digits=digits)
        services.connectors.append(ami)
        controls["asterisk"] = AsteriskControl(settings.asterisk, connector=ami)
    if settings.freeswitch.enabled:  # control rides on the connector's one ESL session
        await _ensure_tenant(storage, settings.freeswitch.tenant_id, "freeswitch")
        esl = EslConnector(settings.freeswitch, sink=calls, internal_digits=digits)
        services.connectors.append(esl)
        controls["freeswitch"] = FreeswitchControl(settings.freeswitch, connector=esl)
    services.call_control = CallControlService(
        calls=calls,
        crm_logging=services.crm_logging,
        controls=controls,
        storage=storage,
        region=settings.calls.default_region,
        internal_digits=settings.calls.internal_digits,
    )
    return services


async def _crm(settings: Settings, storage: Storage) -> CrmAdapter | None:
    provider = settings.crm.provider
    if provider == "memory":
        return MemoryCrm()
    if provider == "builtin":
        if not isinstance(storage, SqlStorage):
            raise ConfigError("the built-in CRM needs the SQL storage")
        builtin = BuiltinCrm(
            storage,
            default_region=settings.calls.default_region,
            internal_digits=settings.calls.internal_digits,
        )
        return builtin
    if provider == "salesforce":
        return SalesforceAdapter(orgs=_salesforce_orgs(settings, storage), calls=settings.calls)
    return None


def _salesforce_orgs(settings: Settings, storage: Storage) -> ConfiguredOrgs:
    stored = StoredOrgs(storage, TokenBox.from_data_dir(settings.data_dir))
    return ConfiguredOrgs(stored, settings.salesforce)


def _salesforce_connect(services: Services, crm: SalesforceAdapter) -> SalesforceConnectService:
    """The admin's "Connect Salesforce" button and agent ↔ Salesforce user matching."""
    settings = services.settings
    return SalesforceConnectService(
        settings=settings.salesforce,
        orgs=_salesforce_orgs(settings, services.storage),
        storage=services.storage,
        agents=services.agents,
        adapter=crm,
        redirect_uri=f"{settings.public_url}/salesforce/callback",
    )


def _attach_crm(services: Services, crm: CrmAdapter) -> None:
    """Screen pops and call logs for every call, through ``crm``."""
    settings = services.settings
    services.crm = crm
    services.crm_logging = CrmLoggingService(
        storage=services.storage,
        directory=services.agents.directory,
        crm=crm,
        region=settings.calls.default_region,
        context_retention=settings.calls.context_retention_hours * 3600,
    )
    services.screenpop = ScreenPopService(
        crm=crm,
        bus=services.bus,
        crm_logging=services.crm_logging,
        region=settings.calls.default_region,
        internal_digits=settings.calls.internal_digits,
    )
    services.calls.listen(services.screenpop.on_call_changed)
    services.calls.listen(services.crm_logging.on_call_changed)
    services.calls.notifier.decorators.append(services.screenpop.card_extra)


async def _ensure_tenant(storage: Storage, tenant_id: str, pbx: str) -> None:
    """An Asterisk or FreeSWITCH is one tenant: record which phone system it is (call control
    is routed by it)."""
    tenant = await storage.get_tenant(TenantId(tenant_id))
    if tenant is None:
        await storage.upsert_tenant(Tenant(TenantId(tenant_id), tenant_id, pbx))
    elif tenant.pbx != pbx:
        await storage.upsert_tenant(replace(tenant, pbx=pbx))


def tune_gc() -> None:
    """Garbage collection for a long-running server holding thousands of live calls.

    Objects made while starting (modules, config, caches) never die: freeze them out of
    collection. Young-generation collections run much less often; full collections, which
    walk every live call and were the tail of the push latency, become rare.
    """
    gc.freeze()
    gc.set_threshold(20_000, 50, 100)


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
