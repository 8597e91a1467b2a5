"""Each tenant's Salesforce connection, kept in the tenant's settings with secrets sealed."""

from __future__ import annotations

from dataclasses import replace

from ctibridge.crm.salesforce.crypto import TokenBox
from ctibridge.crm.salesforce.orgs import (
    SETTINGS_KEY,
    SalesforceOrg,
    org_from_settings,
    org_to_settings,
)
from ctibridge.storage.base import Storage, Tenant
from ctibridge.types import TenantId

__all__ = ["StoredOrgs"]


class StoredOrgs:
    """An ``OrgSource`` backed by storage: ``Tenant.settings["salesforce"]``."""

    def __init__(self, storage: Storage, box: TokenBox) -> None:
        self._storage = storage
        self._box = box

    async def org(self, tenant_id: str) -> SalesforceOrg | None:
        tenant = await self._storage.get_tenant(TenantId(tenant_id))
        if tenant is None:
            return None
        return org_from_settings(tenant.settings, self._box, tenant_id=tenant_id)

    async def save(self, tenant_id: str, org: SalesforceOrg) -> None:
        tenant = await self._storage.get_tenant(TenantId(tenant_id)) or Tenant(
            TenantId(tenant_id), tenant_id, "kazoo"
        )
        settings = dict(tenant.settings)
        settings[SETTINGS_KEY] = org_to_settings(org, self._box, tenant_id=tenant_id)
        await self._storage.upsert_tenant(replace(tenant, settings=settings))

    async def refresh_token_rotated(self, tenant_id: str, refresh_token: str) -> None:
        org = await self.org(tenant_id)
        if org is not None:
            await self.save(tenant_id, replace(org, refresh_token=refresh_token))
