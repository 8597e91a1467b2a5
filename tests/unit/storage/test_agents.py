"""Tenants, agents with their PBX identities, and API tokens."""

from __future__ import annotations

from dataclasses import replace

import pytest
import sqlalchemy as sa

from ctibridge.callstate.events import AgentRef
from ctibridge.errors import StorageError
from ctibridge.storage import SqlStorage
from ctibridge.storage.base import Agent, ApiToken, Tenant
from ctibridge.storage.tables import agent_identities
from ctibridge.types import AgentId, TenantId
from tests.unit.storage.builders import T1, T2, TENANT

ALICE = Agent(
    agent_id=AgentId("a-alice"),
    tenant_id=T1,
    name="Alice",
    extension="201",
    pbx_user_id="u-alice",
    device_ids=("d-alice-desk", "d-alice-soft"),
    email="alice@example.com",
    login="alice",
    password_hash="pbkdf2$abc",
    timezone="Europe/London",
    crm_user_id="005XX",
    active=True,
)
BOB = Agent(AgentId("a-bob"), T1, "Bob", extension="202", device_ids=("d-bob",))


@pytest.fixture
async def tenants(storage: SqlStorage) -> SqlStorage:
    await storage.upsert_tenant(TENANT)
    await storage.upsert_tenant(Tenant(T2, "Other"))
    return storage


async def test_tenant_round_trip_and_update(storage: SqlStorage) -> None:
    tenant = Tenant(T1, "Acme", pbx="asterisk", settings={"internal_digits": 4, "tags": ["a"]})
    await storage.upsert_tenant(tenant)
    assert await storage.get_tenant(T1) == tenant
    renamed = replace(tenant, name="Acme Group", settings={})
    await storage.upsert_tenant(renamed)
    assert await storage.get_tenant(T1) == renamed
    assert await storage.get_tenant(TenantId("nope")) is None


async def test_list_tenants_by_id(storage: SqlStorage) -> None:
    for tenant_id in ("b", "a", "c"):
        await storage.upsert_tenant(Tenant(TenantId(tenant_id), tenant_id.upper()))
    assert [t.tenant_id for t in await storage.list_tenants()] == ["a", "b", "c"]


async def test_agent_round_trip_update_and_lookups(tenants: SqlStorage) -> None:
    await tenants.upsert_agent(ALICE)
    await tenants.upsert_agent(BOB)
    assert await tenants.get_agent(ALICE.agent_id) == ALICE
    assert await tenants.get_agent(BOB.agent_id) == BOB
    assert await tenants.get_agent_by_login("alice") == ALICE
    assert await tenants.get_agent_by_login("nobody") is None
    assert await tenants.get_agent(AgentId("nobody")) is None

    changed = replace(ALICE, name="Alice Smith", active=False, device_ids=())
    await tenants.upsert_agent(changed)
    assert await tenants.get_agent(ALICE.agent_id) == changed


async def test_list_agents_per_tenant_by_name(tenants: SqlStorage) -> None:
    carol = Agent(AgentId("a-carol"), T2, "Carol")
    for agent in (BOB, carol, ALICE):
        await tenants.upsert_agent(agent)
    assert await tenants.list_agents(T1) == [ALICE, BOB]
    assert await tenants.list_agents(T2) == [carol]


async def test_identities_are_indexed_on_upsert(tenants: SqlStorage) -> None:
    await tenants.upsert_agent(ALICE)
    async with tenants.engine.connect() as conn:
        rows = (await conn.execute(sa.select(agent_identities))).all()
    assert sorted(tuple(r) for r in rows) == [
        (T1, "device", "d-alice-desk", "a-alice"),
        (T1, "device", "d-alice-soft", "a-alice"),
        (T1, "extension", "201", "a-alice"),
        (T1, "user", "u-alice", "a-alice"),
    ]


@pytest.mark.parametrize(
    "ref",
    [
        AgentRef(user_id="u-alice"),
        AgentRef(device_id="d-alice-soft"),
        AgentRef(extension="201"),
        AgentRef(user_id="unknown", device_id="d-alice-desk"),
    ],
)
async def test_find_agent_by_any_identity(tenants: SqlStorage, ref: AgentRef) -> None:
    await tenants.upsert_agent(ALICE)
    await tenants.upsert_agent(BOB)
    assert await tenants.find_agent(T1, ref) == ALICE


async def test_find_agent_prefers_user_then_device_then_extension(tenants: SqlStorage) -> None:
    carol = Agent(AgentId("a-carol"), T1, "Carol", extension="203", pbx_user_id="u-carol")
    for agent in (ALICE, BOB, carol):
        await tenants.upsert_agent(agent)
    everything = AgentRef(user_id="u-carol", device_id="d-bob", extension="201")
    assert await tenants.find_agent(T1, everything) == carol
    assert (
        await tenants.find_agent(T1, AgentRef(None, everything.device_id, everything.extension))
        == BOB
    )
    assert await tenants.find_agent(T1, AgentRef(device_id="x", extension="201")) == ALICE


async def test_find_agent_misses(tenants: SqlStorage) -> None:
    await tenants.upsert_agent(ALICE)
    assert await tenants.find_agent(T2, AgentRef(user_id="u-alice")) is None
    assert await tenants.find_agent(T1, AgentRef()) is None
    assert await tenants.find_agent(T1, AgentRef(extension="999")) is None


async def test_identities_follow_the_agent(tenants: SqlStorage) -> None:
    await tenants.upsert_agent(ALICE)
    moved = replace(ALICE, extension="301", device_ids=("d-new",))
    await tenants.upsert_agent(moved)
    assert await tenants.find_agent(T1, AgentRef(extension="201")) is None
    assert await tenants.find_agent(T1, AgentRef(device_id="d-alice-desk")) is None
    assert await tenants.find_agent(T1, AgentRef(device_id="d-new")) == moved


async def test_identity_moves_to_the_last_agent_upserted(tenants: SqlStorage) -> None:
    await tenants.upsert_agent(ALICE)
    await tenants.upsert_agent(replace(BOB, device_ids=("d-alice-desk",)))
    found = await tenants.find_agent(T1, AgentRef(device_id="d-alice-desk"))
    assert found is not None
    assert found.agent_id == BOB.agent_id
    assert await tenants.find_agent(T1, AgentRef(device_id="d-alice-soft")) == ALICE


async def test_remove_agent_takes_identities_and_tokens(tenants: SqlStorage) -> None:
    await tenants.upsert_agent(ALICE)
    token = ApiToken("h-alice", T1, "agent", ALICE.agent_id, created_at=1.0)
    await tenants.add_token(token)
    await tenants.remove_agent(ALICE.agent_id)
    assert await tenants.get_agent(ALICE.agent_id) is None
    assert await tenants.find_agent(T1, AgentRef(user_id="u-alice")) is None
    assert await tenants.get_token("h-alice") is None
    await tenants.remove_agent(ALICE.agent_id)  # removing twice is fine


async def test_agent_of_an_unknown_tenant_is_a_storage_error(storage: SqlStorage) -> None:
    with pytest.raises(StorageError, match="saving an agent"):
        await storage.upsert_agent(ALICE)


async def test_login_is_unique(tenants: SqlStorage) -> None:
    await tenants.upsert_agent(ALICE)
    with pytest.raises(StorageError) as caught:
        await tenants.upsert_agent(replace(BOB, login="alice", password_hash="secret-hash"))
    assert "secret-hash" not in str(caught.value)
    assert await tenants.get_agent(BOB.agent_id) is None


async def test_token_round_trip_and_revoke(tenants: SqlStorage) -> None:
    await tenants.upsert_agent(ALICE)
    agent_token = ApiToken("h1", T1, "agent", ALICE.agent_id, 10.0, expires_at=99.5)
    admin_token = ApiToken("h2", T1, "admin", None, 11.0)
    await tenants.add_token(agent_token)
    await tenants.add_token(admin_token)
    assert await tenants.get_token("h1") == agent_token
    assert await tenants.get_token("h2") == admin_token
    assert await tenants.get_token("h3") is None

    await tenants.revoke_token("h1")
    assert await tenants.get_token("h1") == replace(agent_token, revoked=True)
    await tenants.add_token(agent_token)  # adding it again does not revive it
    assert await tenants.get_token("h1") == replace(agent_token, revoked=True)
    assert await tenants.get_token("h2") == admin_token
