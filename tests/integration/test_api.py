"""The REST API over real HTTP: sign-in, scopes, filters, errors, admin, operations."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from ctibridge.demo.directory import DEMO
from ctibridge.demo.traffic import DemoTraffic
from ctibridge.launcher import DemoSystem
from ctibridge.storage.base import CallQuery
from ctibridge.types import TenantId
from tests.integration.conftest import until


def _auth(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


@pytest.fixture
async def http(sqlite_system: DemoSystem) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=sqlite_system.http.url, timeout=10) as client:
        yield client


async def _one_call(system: DemoSystem, agent: str) -> str:
    traffic = DemoTraffic(system.kazoo.publish, account=system.account, speed=300.0)
    await traffic.start_scenario("inbound_answered", agent=agent, ring_seconds=1, talk_seconds=5)
    await until(lambda: not system.services.calls.active(system.account.account_id))
    await system.services.writer.drained()
    page = await system.services.calls.list_calls(CallQuery(TenantId(system.account.account_id)))
    return page.items[0].call.call_id


async def test_sign_in_and_who_am_i(http: httpx.AsyncClient) -> None:
    agent = DEMO.agents[1]
    bad = await http.post("/api/session", json={"login": agent.login, "password": "nope-nope"})
    assert bad.status_code == 401 and bad.json()["error_id"] == "not-authenticated"
    missing = await http.post("/api/session", json={"login": agent.login})
    assert missing.status_code == 400 and missing.json()["error_id"] == "invalid-request"
    broken = await http.post(
        "/api/session", content=b"{", headers={"content-type": "application/json"}
    )
    assert broken.status_code == 400
    ok = await http.post("/api/session", json={"login": agent.login, "password": agent.password})
    assert ok.status_code == 200
    token = ok.json()["token"]
    me = await http.get("/api/me", headers=_auth(token))
    assert me.json()["agent"]["extension"] == agent.extension and me.json()["role"] == "agent"
    assert (await http.get("/api/me")).status_code == 401
    assert (await http.delete("/api/session", headers=_auth(token))).status_code == 204
    assert (await http.get("/api/me", headers=_auth(token))).status_code == 401


async def test_agents_see_only_their_calls_admins_see_the_tenant(
    sqlite_system: DemoSystem, http: httpx.AsyncClient
) -> None:
    call_id = await _one_call(sqlite_system, "101")
    tokens = sqlite_system.tokens
    mine = (await http.get("/api/calls", headers=_auth(tokens["101"]))).json()["items"]
    assert [c["call_id"] for c in mine] == [call_id]
    assert (await http.get("/api/calls", headers=_auth(tokens["102"]))).json()["items"] == []
    other = await http.get(f"/api/calls/{call_id}", headers=_auth(tokens["102"]))
    assert other.status_code == 404 and other.json()["error_id"] == "no-such-call"
    card = (await http.get(f"/api/calls/{call_id}", headers=_auth(tokens["101"]))).json()
    assert card["state"] == "ended" and card["answered_by"] == "101"

    admin = _auth(sqlite_system.services.admin_token)
    assert (await http.get("/api/calls", headers=admin)).status_code == 400
    tenant = sqlite_system.account.account_id
    listed = await http.get("/api/calls", params={"tenant": tenant}, headers=admin)
    assert [c["call_id"] for c in listed.json()["items"]] == [call_id]
    filtered = await http.get(
        "/api/calls", params={"tenant": tenant, "direction": "outbound"}, headers=admin
    )
    assert filtered.json()["items"] == []


@pytest.mark.parametrize(
    "params",
    [
        {"direction": "sideways"},
        {"limit": "0"},
        {"cursor": "garbage"},
        {"missed": "maybe"},
        {"since": "yesterday"},
    ],
)
async def test_bad_filters_are_clear_400s(
    sqlite_system: DemoSystem, http: httpx.AsyncClient, params: dict[str, str]
) -> None:
    response = await http.get(
        "/api/calls", params=params, headers=_auth(sqlite_system.tokens["101"])
    )
    assert response.status_code == 400
    assert response.json()["error_id"] == "invalid-request" and response.json()["message"]


async def test_admin_maps_an_agent_to_pbx_identities(
    sqlite_system: DemoSystem, http: httpx.AsyncClient
) -> None:
    tenant = sqlite_system.account.account_id
    body = {
        "tenant_id": tenant,
        "name": "Dana Field",
        "extension": "107",
        "pbx_user_id": "u107",
        "device_ids": ["d107"],
        "login": "dana",
        "password": "correct horse",
    }
    as_agent = await http.put(
        "/api/agents/agent-107", json=body, headers=_auth(sqlite_system.tokens["101"])
    )
    assert as_agent.status_code == 403
    admin = _auth(sqlite_system.services.admin_token)
    bad = await http.put("/api/agents/agent-107", json={**body, "extension": "10x"}, headers=admin)
    assert bad.status_code == 400 and bad.json()["details"]["field"] == "extension"
    saved = await http.put("/api/agents/agent-107", json=body, headers=admin)
    assert saved.status_code == 200 and "password" not in saved.json()
    listed = await http.get("/api/agents", params={"tenant": tenant}, headers=admin)
    assert "agent-107" in {a["agent_id"] for a in listed.json()["items"]}
    signed = await http.post("/api/session", json={"login": "dana", "password": "correct horse"})
    assert signed.status_code == 200


async def test_health_and_metrics(sqlite_system: DemoSystem, http: httpx.AsyncClient) -> None:
    health = await http.get("/healthz")
    assert health.status_code == 200
    assert health.json()["connectors"][0]["connected"] is True
    await _one_call(sqlite_system, "104")
    metrics = (await http.get("/metrics")).text
    assert 'ctibridge_calls_total{direction="inbound",outcome="completed"}' in metrics
    assert "ctibridge_ws_connections" in metrics and "ctibridge_channel_events_total" in metrics
