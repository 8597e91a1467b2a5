"""A fake Salesforce over real HTTP, an adapter connected to it, and log builders."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from typing import Any

import pytest

from ctibridge.config import CallsSettings
from ctibridge.crm.base import CallLog
from ctibridge.crm.salesforce import SalesforceAdapter, SalesforceOrg, StaticOrgs
from tests.fakes.fake_salesforce import FakeSalesforce

TENANT = "tenant-sf"
T0 = 1_773_360_000.0  # 2026-03-13T00:00:00Z


@pytest.fixture
async def fake() -> AsyncIterator[FakeSalesforce]:
    async with FakeSalesforce() as server:
        yield server


def org_for(fake: FakeSalesforce, **overrides: Any) -> SalesforceOrg:
    base = SalesforceOrg(
        client_id=fake.CLIENT_ID,
        login_url=fake.login_url,
        refresh_token=fake.grant_refresh_token(),
        region="GB",
    )
    return dataclasses.replace(base, **overrides)


@pytest.fixture
def orgs(fake: FakeSalesforce) -> StaticOrgs:
    return StaticOrgs({TENANT: org_for(fake)})


@pytest.fixture
async def adapter(orgs: StaticOrgs) -> AsyncIterator[SalesforceAdapter]:
    crm = SalesforceAdapter(orgs=orgs, calls=CallsSettings(default_region="GB"))
    yield crm
    await crm.close()


def make_log(n: int = 0, **overrides: Any) -> CallLog:
    log = CallLog(
        key=f"call-{n}:agent-1",
        tenant_id=TENANT,
        call_id=f"call-{n}",
        agent_id="agent-1",
        crm_user_id=None,
        call_type="Inbound",
        subject=f"Inbound call from +44 1632 960{n:03d}",
        started_at=T0 + n,
        ended_at=T0 + n + 95,
        duration_seconds=95,
        disposition="Answered",
        remote_number=f"+441632960{n:03d}",
        remote_name="Ada Lovelace",
    )
    return dataclasses.replace(log, **overrides)
