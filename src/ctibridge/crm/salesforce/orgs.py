"""Which Salesforce org each tenant logs to, and how we sign in to it.

A tenant's connection lives in ``Tenant.settings["salesforce"]`` (a JSON dict). Secrets are
stored sealed by :class:`~ctibridge.crm.salesforce.crypto.TokenBox` (``*_sealed`` keys), bound
to the tenant. Two ways to sign in:

* **web** (default): an admin connected the org through the web-server flow with PKCE; we
  keep the refresh token (rotated tokens are handed back through
  :meth:`OrgSource.refresh_token_rotated` to be stored again).
* **jwt**: ``username`` + ``private_key_file``: the JWT bearer flow as an integration user.
  Tasks then carry an explicit ``OwnerId`` (the agent's Salesforce user).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from ctibridge.crm.salesforce.crypto import TokenBox
from ctibridge.errors import ConfigError

__all__ = [
    "DEFAULT_API_VERSION",
    "OrgSource",
    "SalesforceOrg",
    "StaticOrgs",
    "org_from_settings",
    "org_to_settings",
]

DEFAULT_API_VERSION = "62.0"
SETTINGS_KEY = "salesforce"
_SECRETS = ("client_secret", "refresh_token")
_VERSION = re.compile(r"^\d{2,3}\.0$")


@dataclass(frozen=True, slots=True)
class SalesforceOrg:
    client_id: str
    """Consumer key of the External Client App (or connected app)."""
    login_url: str = "https://login.salesforce.com"
    """``https://login.salesforce.com``, ``https://test.salesforce.com`` or the My Domain."""
    client_secret: str = field(default="", repr=False)
    """Only if the app requires a secret for the web-server flow (PKCE makes it optional)."""
    refresh_token: str = field(default="", repr=False)
    username: str = ""
    """JWT bearer flow: the integration user's username."""
    private_key_file: str = ""
    """JWT bearer flow: PEM file of the RSA key whose certificate is on the app."""
    api_version: str = DEFAULT_API_VERSION
    default_owner_id: str = ""
    """Task owner when a log names no Salesforce user (an integration user's id, a queue)."""
    region: str = ""
    """Region for national numbers; empty: ``calls.default_region``."""
    lead_company: str = "Unknown"
    """Company of Leads created for unknown callers (a required Lead field)."""
    write_call_data: bool = True
    """Also write a ``KazooCallData__c`` record per log (the shipped metadata)."""

    def __post_init__(self) -> None:
        if not self.client_id:
            raise ConfigError("a Salesforce connection needs the app's client_id")
        if not _VERSION.match(self.api_version):
            raise ConfigError(f"Salesforce api_version looks like 62.0, not {self.api_version!r}")
        if bool(self.username) != bool(self.private_key_file):
            raise ConfigError("the JWT bearer flow needs both username and private_key_file")

    @property
    def flow(self) -> str:
        return "jwt" if self.username else "web"


class OrgSource(Protocol):
    """Where the adapter finds each tenant's connection (the services layer backs it with
    storage; tests use :class:`StaticOrgs`)."""

    async def org(self, tenant_id: str) -> SalesforceOrg | None: ...

    async def refresh_token_rotated(self, tenant_id: str, refresh_token: str) -> None:
        """Salesforce issued a new refresh token (rotation): store it, the old one is void."""


class StaticOrgs:
    """Connections held in memory."""

    def __init__(self, orgs: Mapping[str, SalesforceOrg] | None = None) -> None:
        self.orgs: dict[str, SalesforceOrg] = dict(orgs or {})

    async def org(self, tenant_id: str) -> SalesforceOrg | None:
        return self.orgs.get(tenant_id)

    async def refresh_token_rotated(self, tenant_id: str, refresh_token: str) -> None:
        if tenant_id in self.orgs:
            self.orgs[tenant_id] = replace(self.orgs[tenant_id], refresh_token=refresh_token)


def _context(tenant_id: str, name: str) -> str:
    return f"{tenant_id}:salesforce:{name}"


def org_from_settings(
    settings: Mapping[str, Any], box: TokenBox, *, tenant_id: str
) -> SalesforceOrg | None:
    """The connection in a tenant's settings dict (None if it has none)."""
    raw = settings.get(SETTINGS_KEY)
    if not isinstance(raw, Mapping):
        return None
    values = {k: v for k, v in raw.items() if k in _PLAIN}
    for name in _SECRETS:
        sealed = raw.get(f"{name}_sealed")
        if sealed:
            values[name] = box.decrypt(str(sealed), context=_context(tenant_id, name))
    return SalesforceOrg(**values)


def org_to_settings(org: SalesforceOrg, box: TokenBox, *, tenant_id: str) -> dict[str, Any]:
    """The ``salesforce`` entry to store in ``Tenant.settings`` (secrets sealed)."""
    out: dict[str, Any] = {name: getattr(org, name) for name in _PLAIN}
    for name in _SECRETS:
        value = getattr(org, name)
        if value:
            out[f"{name}_sealed"] = box.encrypt(value, context=_context(tenant_id, name))
    return out


_PLAIN = (
    "client_id",
    "login_url",
    "username",
    "private_key_file",
    "api_version",
    "default_owner_id",
    "region",
    "lead_company",
    "write_call_data",
)
