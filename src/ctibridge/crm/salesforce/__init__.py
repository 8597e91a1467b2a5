"""Salesforce: caller lookup and call logging over the REST API, OAuth (web-server flow with
PKCE, JWT bearer), the Call Center definition file, and the metadata our logs need.

See ``docs/salesforce.md`` for the admin's walkthrough.
"""

from ctibridge.crm.salesforce.adapter import BATCH_SIZE, SalesforceAdapter
from ctibridge.crm.salesforce.auth import Pkce, Token, authorize_url, exchange_code, new_pkce
from ctibridge.crm.salesforce.callcenter import CallCenterDefinition, definition_for, render
from ctibridge.crm.salesforce.crypto import TokenBox
from ctibridge.crm.salesforce.errors import ApiUsage, map_crm_errors
from ctibridge.crm.salesforce.orgs import (
    OrgSource,
    SalesforceOrg,
    StaticOrgs,
    org_from_settings,
    org_to_settings,
)

__all__ = [
    "BATCH_SIZE",
    "ApiUsage",
    "CallCenterDefinition",
    "OrgSource",
    "Pkce",
    "SalesforceAdapter",
    "SalesforceOrg",
    "StaticOrgs",
    "Token",
    "TokenBox",
    "authorize_url",
    "definition_for",
    "exchange_code",
    "map_crm_errors",
    "new_pkce",
    "org_from_settings",
    "org_to_settings",
    "render",
]
