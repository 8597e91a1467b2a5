"""Connecting a tenant's Salesforce org, what that connection is, and which Salesforce user
each agent is.

**Connect** (web-server flow with PKCE): :meth:`SalesforceConnectService.begin` makes the
authorise URL with a fresh verifier and a random ``state`` kept here for ten minutes, bound to
the tenant and to the admin's browser (a nonce the web layer keeps in a cookie: a link
started by someone else cannot connect an org in this browser). The callback,
:meth:`~SalesforceConnectService.complete`, spends the state once, exchanges the code at the
org's token endpoint and stores the refresh token sealed (``StoredOrgs.save``). API calls
always go to the ``instance_url`` of the token.

**JWT bearer flow**: ``[salesforce] username`` + ``private_key_file`` in the configuration
file; :class:`ConfiguredOrgs` hands that integration user to every tenant that connected no
org of its own.

**Users**: :meth:`~SalesforceConnectService.match_users` sets each agent's ``crm_user_id``
from the org's active users, by federation id, else by e-mail (case-insensitive). A mapping an
agent already has to an active user is kept (set it by hand with ``PUT /api/agents/{id}``).

Pending states live in this process: with several web instances, route ``/salesforce/*`` to
one of them (or keep the admin on one through the load balancer's affinity).
"""

from __future__ import annotations

import hmac
import logging
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import httpx

from ctibridge.config import SalesforceSettings
from ctibridge.crm.salesforce.adapter import SalesforceAdapter
from ctibridge.crm.salesforce.auth import (
    RefreshGrant,
    SalesforceAuth,
    Session,
    Token,
    authorize_url,
    exchange_code,
    new_pkce,
)
from ctibridge.crm.salesforce.client import SalesforceClient
from ctibridge.crm.salesforce.errors import ApiUsage
from ctibridge.crm.salesforce.orgs import SalesforceOrg
from ctibridge.crm.salesforce.search import soql_quote
from ctibridge.errors import ConfigError, CrmAuthError, CrmError, CtiError, InvalidRequest
from ctibridge.services.agents import AgentsService
from ctibridge.services.salesforce_orgs import StoredOrgs
from ctibridge.services.salesforce_users import USERS_SOQL, SalesforceUser, match_agents
from ctibridge.storage.base import Storage
from ctibridge.types import TenantId

__all__ = [
    "CONNECTION_KEY",
    "STATE_TTL",
    "ConfiguredOrgs",
    "ConnectStart",
    "SalesforceConnectService",
]

logger = logging.getLogger(__name__)

STATE_TTL = 600.0
"""Seconds an authorise link stays usable."""
MAX_PENDING = 500
CONNECTION_KEY = "salesforce_connection"
"""``Tenant.settings`` key of what we learnt when connecting (instance, user, when)."""
REVOKE_PATH = "/services/oauth2/revoke"


@dataclass(frozen=True, slots=True)
class ConnectStart:
    authorize_url: str
    browser: str = field(repr=False)
    """The browser-binding nonce (for the cookie)."""
    expires_in: float = STATE_TTL


@dataclass(frozen=True, slots=True)
class _Pending:
    tenant_id: str
    org: SalesforceOrg
    verifier: str = field(repr=False)
    browser: str = field(repr=False)
    expires_at: float = 0.0


class ConfiguredOrgs:
    """The adapter's ``OrgSource``: a tenant's stored connection, else the integration user
    of the configuration file (JWT bearer flow), else none."""

    def __init__(self, stored: StoredOrgs, settings: SalesforceSettings) -> None:
        self.stored = stored
        self.jwt_org: SalesforceOrg | None = None
        if settings.username:
            self.jwt_org = SalesforceOrg(
                client_id=settings.client_id,
                login_url=settings.login_url,
                username=settings.username,
                private_key_file=settings.private_key_file,
                api_version=settings.api_version,
                default_owner_id=settings.default_owner_id,
            )

    async def org(self, tenant_id: str) -> SalesforceOrg | None:
        return await self.stored.org(tenant_id) or self.jwt_org

    async def refresh_token_rotated(self, tenant_id: str, refresh_token: str) -> None:
        await self.stored.refresh_token_rotated(tenant_id, refresh_token)


class SalesforceConnectService:
    def __init__(
        self,
        *,
        settings: SalesforceSettings,
        orgs: ConfiguredOrgs,
        storage: Storage,
        agents: AgentsService,
        adapter: SalesforceAdapter,
        redirect_uri: str,
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self._settings = settings
        self._orgs = orgs
        self._storage = storage
        self._agents = agents
        self._adapter = adapter
        self.redirect_uri = redirect_uri
        self._transport = transport
        self._clock = clock
        self._wall = wall_clock
        self._pending: dict[str, _Pending] = {}
        self._usage: dict[str, ApiUsage] = {}

    # -- connect --------------------------------------------------------------------------

    async def begin(self, tenant_id: str, *, browser: str | None = None) -> ConnectStart:
        """Where to send the admin's browser to connect ``tenant_id``'s org."""
        org = _connect_org(self._settings, await self._stored(tenant_id))
        pkce = new_pkce()
        browser = browser or secrets.token_urlsafe(24)
        self._purge()
        self._pending[pkce.state] = _Pending(
            tenant_id, org, pkce.verifier, browser, self._clock() + STATE_TTL
        )
        url = authorize_url(org.login_url, org.client_id, self.redirect_uri, pkce)
        return ConnectStart(url, browser)

    async def complete(
        self,
        *,
        state: str,
        code: str = "",
        error: str = "",
        error_description: str = "",
        browser: str = "",
    ) -> str:
        """The callback: store the connection; returns the tenant. Nothing is stored when the
        state is unknown, expired or from another browser, or when Salesforce refused."""
        pending = self._take(state, browser)
        if error:
            raise CrmAuthError(
                f"Salesforce did not connect the org: {error_description or error}",
                details={"error": error, "error_description": error_description},
            )
        if not code:
            raise InvalidRequest("Salesforce sent no authorisation code", details={"field": "code"})
        org = pending.org
        async with httpx.AsyncClient(transport=self._transport, timeout=20.0) as http:
            token = await exchange_code(
                http,
                org.login_url,
                org.client_id,
                self.redirect_uri,
                code,
                pending.verifier,
                client_secret=org.client_secret,
            )
        if not token.refresh_token:
            raise CrmAuthError(
                "Salesforce issued no refresh token: give the app the refresh_token "
                "(offline_access) scope",
                details={"error": "no_refresh_token"},
            )
        await self._save(pending.tenant_id, org, token)
        return pending.tenant_id

    def _take(self, state: str, browser: str) -> _Pending:
        pending = self._pending.pop(state, None)
        if pending is None or pending.expires_at <= self._clock():
            raise InvalidRequest(
                "this Salesforce sign-in is unknown or has expired (links last ten minutes): "
                "connect again from the admin page",
                details={"reason": "state"},
            )
        if not hmac.compare_digest(pending.browser.encode(), browser.encode()):
            raise InvalidRequest(
                "this Salesforce sign-in was started in another browser: connect again from "
                "the admin page",
                details={"reason": "browser"},
            )
        return pending

    def _purge(self) -> None:
        now = self._clock()
        for state in [s for s, p in self._pending.items() if p.expires_at <= now]:
            del self._pending[state]
        while len(self._pending) >= MAX_PENDING:
            del self._pending[next(iter(self._pending))]

    async def _save(self, tenant_id: str, org: SalesforceOrg, token: Token) -> None:
        org_id, user_id = _identity(token.identity_url)
        user, refresh_token = await self._whoami(tenant_id, org, token, user_id)
        await self._orgs.stored.save(tenant_id, replace(org, refresh_token=refresh_token))
        info = {
            "instance_url": token.instance_url,
            "org_id": org_id,
            "user": user,
            "connected_at": self._wall(),
        }
        await self._set_info(tenant_id, info)
        await self._adapter.forget(tenant_id)
        logger.info("tenant %s connected Salesforce org %s (%s)", tenant_id, org_id, org.login_url)

    async def _whoami(
        self, tenant_id: str, org: SalesforceOrg, token: Token, user_id: str
    ) -> tuple[dict[str, Any], str]:
        """The connecting user (one query, which also proves the API answers), and the
        refresh token to keep (a renewal meanwhile may have rotated it)."""
        user: dict[str, Any] = {"id": user_id or None, "name": None, "username": None}
        session = Session(token)
        client = SalesforceClient(
            SalesforceAuth(session, RefreshGrant(org.login_url, org.client_id, org.client_secret)),
            api_version=org.api_version,
            transport=self._transport,
        )
        try:
            if user_id:
                soql = f"SELECT Id, Name, Username FROM User WHERE Id = {soql_quote(user_id)}"
                for row in await client.query(soql):
                    user.update(name=row.get("Name"), username=row.get("Username"))
        except CrmError as exc:
            logger.warning("Salesforce user of tenant %s not read: %s", tenant_id, exc.message)
        finally:
            await client.aclose()
        if client.usage is not None:
            self._usage[tenant_id] = client.usage
        return user, session.refresh_token or token.refresh_token or ""

    # -- the connection -------------------------------------------------------------------

    async def status(self, tenant_id: str) -> dict[str, Any]:
        out: dict[str, Any] = {
            "tenant_id": tenant_id,
            "enabled": True,
            "connected": False,
            "flow": None,
            "source": None,
            "login_url": None,
            "instance_url": None,
            "org_id": None,
            "user": None,
            "connected_at": None,
            "api_usage": None,
            "can_connect": bool(self._settings.client_id),
            "problem": None,
        }
        try:
            org = await self._orgs.stored.org(tenant_id)
        except CtiError as exc:
            org, out["problem"] = None, exc.message
        if org is not None:
            out.update(connected=True, flow=org.flow, source="tenant", login_url=org.login_url)
            out["can_connect"] = True
            out.update(await self._info(tenant_id))
        elif self._orgs.jwt_org is not None:
            jwt = self._orgs.jwt_org
            out.update(connected=True, flow="jwt", source="config", login_url=jwt.login_url)
            out["user"] = {"id": None, "name": None, "username": jwt.username}
        usage = self._adapter.api_usage(tenant_id) or self._usage.get(tenant_id)
        if usage is not None:
            out["api_usage"] = {"used": usage.used, "max": usage.max}
        return out

    async def disconnect(self, tenant_id: str) -> bool:
        """Forget the tenant's connection and revoke its refresh token (best effort).
        Returns whether there was one."""
        try:
            org = await self._orgs.stored.org(tenant_id)
        except CtiError:
            org = None
        tenant = await self._storage.get_tenant(TenantId(tenant_id))
        if tenant is None or not ({"salesforce", CONNECTION_KEY} & set(tenant.settings)):
            return False
        settings = {
            k: v for k, v in tenant.settings.items() if k not in ("salesforce", CONNECTION_KEY)
        }
        await self._storage.upsert_tenant(replace(tenant, settings=settings))
        await self._adapter.forget(tenant_id)
        self._usage.pop(tenant_id, None)
        if org is not None and org.refresh_token:
            await self._revoke(org)
        logger.info("tenant %s disconnected its Salesforce org", tenant_id)
        return True

    async def _revoke(self, org: SalesforceOrg) -> None:
        url = f"{org.login_url.rstrip('/')}{REVOKE_PATH}"
        try:
            async with httpx.AsyncClient(transport=self._transport, timeout=10.0) as http:
                response = await http.post(url, data={"token": org.refresh_token})
        except (httpx.HTTPError, OSError) as exc:
            logger.warning("Salesforce token revocation failed: %s", exc)
            return
        if response.status_code != 200:
            logger.warning("Salesforce token revocation answered HTTP %d", response.status_code)

    async def _stored(self, tenant_id: str) -> SalesforceOrg | None:
        try:
            return await self._orgs.stored.org(tenant_id)
        except CtiError as exc:  # unreadable secrets: connecting again is the cure
            logger.warning("stored Salesforce settings of %s ignored: %s", tenant_id, exc.message)
            return None

    async def _info(self, tenant_id: str) -> dict[str, Any]:
        tenant = await self._storage.get_tenant(TenantId(tenant_id))
        raw = tenant.settings.get(CONNECTION_KEY) if tenant is not None else None
        if not isinstance(raw, Mapping):
            return {}
        keys = ("instance_url", "org_id", "user", "connected_at")
        return {k: raw.get(k) for k in keys}

    async def _set_info(self, tenant_id: str, info: dict[str, Any]) -> None:
        tenant = await self._storage.get_tenant(TenantId(tenant_id))
        if tenant is not None:
            settings = {**tenant.settings, CONNECTION_KEY: info}
            await self._storage.upsert_tenant(replace(tenant, settings=settings))

    # -- agents and Salesforce users ------------------------------------------------------

    async def match_users(self, tenant_id: str) -> dict[str, Any]:
        """Set agents' ``crm_user_id`` from the org's active users; the report of it."""
        connection = await self._adapter._connection(tenant_id)  # the adapter's own session:
        # a rotating refresh token must never be spent by two sessions.
        rows = await connection.client.query(USERS_SOQL)
        users = [u for u in map(SalesforceUser.from_row, rows) if u is not None]
        agents = [a for a in await self._agents.list_agents(TenantId(tenant_id)) if a.active]
        report = match_agents(agents, users)
        by_id = {a.agent_id: a for a in agents}
        for item in report["matched"]:
            if item["changed"]:
                agent = by_id[item["agent_id"]]
                await self._agents.save_agent(replace(agent, crm_user_id=item["crm_user_id"]))
        return {"tenant_id": tenant_id, **report}


def _identity(identity_url: str | None) -> tuple[str | None, str]:
    """Org and user ids from the identity URL ``…/id/<org id>/<user id>``."""
    parts = (identity_url or "").rstrip("/").split("/")
    if len(parts) >= 3 and parts[-3] == "id":
        return parts[-2], parts[-1]
    return None, ""


def _connect_org(settings: SalesforceSettings, stored: SalesforceOrg | None) -> SalesforceOrg:
    """The org to connect: the configured app (or, without one, the app the tenant used
    before), keeping the tenant's own choices (region, owner, Leads, call data)."""
    if settings.client_id:
        app = SalesforceOrg(
            client_id=settings.client_id,
            login_url=settings.login_url,
            client_secret=settings.client_secret,
            api_version=settings.api_version,
            default_owner_id=settings.default_owner_id,
        )
    elif stored is not None:
        app = replace(stored, refresh_token="", username="", private_key_file="")
    else:
        raise ConfigError(
            "Salesforce is not set up: set salesforce.client_id (the app's consumer key)"
        )
    if stored is None:
        return app
    return replace(
        app,
        default_owner_id=stored.default_owner_id or app.default_owner_id,
        region=stored.region,
        lead_company=stored.lead_company,
        write_call_data=stored.write_call_data,
    )
