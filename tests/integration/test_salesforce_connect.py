"""Connecting a tenant's Salesforce org with the admin's button, over real HTTP: ctibridge on
its port, the fake Salesforce on two more (login host and org instance).

connect → Salesforce's authorise page → callback → refresh token stored sealed → status;
a forged, replayed, expired or foreign state and Salesforce's refusals store nothing and show
Salesforce's own words; agents matched to the org's users; disconnect; the JWT bearer flow
configured by file.
"""

from __future__ import annotations

import contextlib
import json
import socket
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from ctibridge.config import load
from ctibridge.crm.salesforce import TokenBox
from ctibridge.demo.directory import DEMO
from ctibridge.launcher import DemoSystem, running_demo
from ctibridge.services.salesforce_connect import STATE_TTL
from ctibridge.services.salesforce_orgs import StoredOrgs
from ctibridge.services.salesforce_users import USERS_SOQL
from ctibridge.types import TenantId
from ctibridge.web.routes.salesforce import BROWSER_COOKIE
from tests.fakes.fake_salesforce import FakeSalesforce

TENANT = DEMO.account_id
JSON = {"Accept": "application/json"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.asynccontextmanager
async def stack(
    tmp_path: Path, fake: FakeSalesforce, **salesforce: Any
) -> AsyncIterator[DemoSystem]:
    """ctibridge with Salesforce as its CRM, its app's callback registered at the fake.

    The callback URL must be known before ctibridge listens, so the port is chosen first; if
    another server takes it in between, start again on another one."""
    for attempt in range(5):
        port = free_port()
        public_url = f"http://127.0.0.1:{port}"
        fake.REDIRECT_URI = f"{public_url}/salesforce/callback"
        settings = load(
            None,
            {},
            {
                "data_dir": str(tmp_path / f"data{attempt}"),
                "web": {"port": port, "public_url": public_url},
                "storage": {"flush_interval": 0.005},
                "crm": {"provider": "salesforce"},
                "salesforce": {
                    "client_id": fake.CLIENT_ID,
                    "login_url": fake.login_url,
                    **salesforce,
                },
            },
        )
        try:
            demo = running_demo(settings, traffic=False)
            system = await demo.__aenter__()
        except OSError:
            continue  # the port was taken meanwhile
        try:
            yield system
        finally:
            await demo.__aexit__(None, None, None)
        return
    raise AssertionError("no free port for ctibridge after 5 tries")


@pytest.fixture
async def system(tmp_path: Path, fake: FakeSalesforce) -> AsyncIterator[DemoSystem]:
    async with stack(tmp_path, fake) as running:
        yield running


@pytest.fixture
async def admin(system: DemoSystem) -> AsyncIterator[httpx.AsyncClient]:
    """The admin's browser: keeps cookies, sends the admin token to ctibridge only."""
    headers = {"Authorization": f"Bearer {system.services.admin_token}"}
    async with httpx.AsyncClient(base_url=system.http.url, headers=headers) as client:
        yield client


async def begin(admin: httpx.AsyncClient) -> tuple[str, dict[str, str]]:
    """Connect pressed: Salesforce's authorise URL and its query."""
    response = await admin.get("/api/salesforce/connect", params={"tenant": TENANT})
    assert response.status_code == 302, response.text
    location = response.headers["location"]
    return location, {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


async def approve(admin: httpx.AsyncClient, authorize: str) -> str:
    """Salesforce approves (the fake at once): the callback URL it sends the browser to."""
    response = await admin.get(authorize)
    assert response.status_code == 302, response.text
    return response.headers["location"]


async def connect(admin: httpx.AsyncClient) -> httpx.Response:
    authorize, _ = await begin(admin)
    return await admin.get(authorize, follow_redirects=True)


async def tenant_settings(system: DemoSystem) -> dict[str, Any]:
    tenant = await system.services.storage.get_tenant(TenantId(TENANT))
    assert tenant is not None
    return tenant.settings


def issued_refresh_tokens(fake: FakeSalesforce) -> list[str]:
    return list(fake.refresh_tokens)


async def test_connect_stores_the_refresh_token_sealed_and_reports_the_connection(
    system: DemoSystem, fake: FakeSalesforce, admin: httpx.AsyncClient
) -> None:
    authorize, query = await begin(admin)
    assert authorize.startswith(f"{fake.login_url}/services/oauth2/authorize?")
    assert query["client_id"] == fake.CLIENT_ID
    assert query["redirect_uri"] == f"{system.http.url}/salesforce/callback"
    assert query["code_challenge_method"] == "S256" and len(query["code_challenge"]) == 43
    assert len(query["state"]) >= 32 and "refresh_token" in query["scope"].split()
    assert admin.cookies.get(BROWSER_COOKIE)

    final = await admin.get(authorize, follow_redirects=True)
    assert [r.status_code for r in final.history] == [302, 302]
    assert final.history[-1].headers["location"] == (f"/admin#tenant={TENANT}&salesforce=connected")
    assert final.status_code == 200 and final.url.path == "/admin"

    (token_request,) = [r for r in fake.requests() if r.path == "/services/oauth2/token"]
    assert token_request.body["grant_type"] == "authorization_code"
    assert token_request.body["code_verifier"] and token_request.status == 200  # PKCE checked
    (refresh_token,) = issued_refresh_tokens(fake)
    settings = await tenant_settings(system)
    stored = settings["salesforce"]
    assert stored["refresh_token_sealed"].startswith("v1.")
    assert refresh_token not in json.dumps(settings)
    assert stored["client_id"] == fake.CLIENT_ID and stored["login_url"] == fake.login_url
    box = TokenBox.from_data_dir(system.services.settings.data_dir)
    org = await StoredOrgs(system.services.storage, box).org(TENANT)
    assert org is not None and org.refresh_token == refresh_token

    status = (await admin.get("/api/salesforce/status", params={"tenant": TENANT})).json()
    assert status["connected"] is True and status["flow"] == "web"
    assert status["instance_url"] == fake.instance_url
    assert status["org_id"] == fake.ORG_ID
    assert status["user"] == {
        "id": fake.USER_ID,
        "name": "Integration User",
        "username": "integration@example.com",
    }
    assert status["api_usage"] == {"used": 1, "max": fake.API_MAX}
    assert abs(status["connected_at"] - time.time()) < 30
    # the user was read from the org's instance, not from the login host
    (whoami,) = fake.api_requests()
    assert whoami.path.endswith("/query") and fake.USER_ID in whoami.query["q"]


async def test_a_forged_replayed_or_foreign_state_stores_nothing(
    system: DemoSystem, fake: FakeSalesforce, admin: httpx.AsyncClient
) -> None:
    forged = await admin.get("/salesforce/callback", params={"code": "x", "state": "forged"})
    assert forged.status_code == 400
    assert forged.headers["content-type"].startswith("text/html")
    assert "unknown or has expired" in forged.text and 'href="/admin"' in forged.text
    as_json = await admin.get(
        "/salesforce/callback", params={"code": "x", "state": "forged"}, headers=JSON
    )
    assert as_json.json()["details"] == {"reason": "state"}

    authorize, _ = await begin(admin)
    callback = await approve(admin, authorize)
    async with httpx.AsyncClient() as other_browser:  # no cookie: someone else's link
        foreign = await other_browser.get(callback, headers=JSON)
    assert foreign.status_code == 400 and foreign.json()["details"] == {"reason": "browser"}
    replayed = await admin.get(callback, headers=JSON)  # the state was spent by the attempt
    assert replayed.status_code == 400 and replayed.json()["details"] == {"reason": "state"}
    assert "salesforce" not in await tenant_settings(system)
    assert not [r for r in fake.requests() if r.path == "/services/oauth2/token"]


async def test_an_expired_state_stores_nothing(
    system: DemoSystem, fake: FakeSalesforce, admin: httpx.AsyncClient, monkeypatch: Any
) -> None:
    service = system.services.salesforce
    assert service is not None
    authorize, _ = await begin(admin)
    callback = await approve(admin, authorize)
    later = time.monotonic() + STATE_TTL + 1
    monkeypatch.setattr(service, "_clock", lambda: later)
    expired = await admin.get(callback)
    assert expired.status_code == 400 and "expired" in expired.text
    assert "salesforce" not in await tenant_settings(system)


async def test_salesforce_refusing_is_shown_in_its_own_words_and_nothing_is_stored(
    system: DemoSystem, fake: FakeSalesforce, admin: httpx.AsyncClient
) -> None:
    _, query = await begin(admin)
    denied = await admin.get(
        "/salesforce/callback",
        params={
            "error": "access_denied",
            "error_description": "end-user denied authorization",
            "state": query["state"],
        },
    )
    assert denied.status_code == 502
    assert "access_denied" in denied.text and "end-user denied authorization" in denied.text

    authorize, _ = await begin(admin)
    callback = await approve(admin, authorize)
    fake.codes.clear()  # the code is no longer valid when ctibridge spends it
    refused = await admin.get(callback)
    assert refused.status_code == 502
    assert "invalid_grant" in refused.text and "invalid authorization code" in refused.text
    (token_request,) = [r for r in fake.requests() if r.path == "/services/oauth2/token"]
    assert token_request.status == 400
    assert "salesforce" not in await tenant_settings(system)
    status = (await admin.get("/api/salesforce/status", params={"tenant": TENANT})).json()
    assert status["connected"] is False and status["can_connect"] is True


def _user(
    fake: FakeSalesforce, name: str, email: str, *, active: bool = True, fed: str = ""
) -> str:
    fields = {"Name": name, "Email": email, "IsActive": active, "Username": f"{email}.sf"}
    if fed:
        fields["FederationIdentifier"] = fed
    return fake.add_record("User", fields)


async def test_agents_are_matched_to_salesforce_users(
    system: DemoSystem, fake: FakeSalesforce, admin: httpx.AsyncClient
) -> None:
    await connect(admin)
    olivia = _user(fake, "Olivia B.", "o.bennett@corp.example", fed="Olivia.Bennett")
    james = _user(fake, "James Whitfield", "JAMES.Whitfield@harbourside.example")
    priya_1 = _user(fake, "Priya Raman", "priya.raman@harbourside.example")
    priya_2 = _user(fake, "Priya Raman (admin)", "priya.raman@harbourside.example")
    _user(fake, "Tom Hargreaves", "tom.hargreaves@harbourside.example", active=False)
    aisha = _user(fake, "A. Okafor", "aisha@elsewhere.example")
    put = await admin.put(
        "/api/agents/agent-105",
        json={
            "tenant_id": TENANT,
            "name": "Aisha Okafor",
            "extension": "105",
            "email": "aisha.okafor@harbourside.example",
            "crm_user_id": aisha[:15],
        },
    )
    assert put.status_code == 200  # mapped by hand, with the 15-character id

    report = (await admin.post("/api/salesforce/match-users", params={"tenant": TENANT})).json()
    matched = {m["agent_id"]: (m["crm_user_id"], m["by"], m["changed"]) for m in report["matched"]}
    assert matched == {
        "agent-101": (olivia, "federation_id", True),
        "agent-102": (james, "email", True),
        "agent-105": (aisha[:15], "existing", False),
    }
    (ambiguous,) = report["ambiguous"]
    assert ambiguous["agent_id"] == "agent-103" and ambiguous["by"] == "email"
    assert {c["id"] for c in ambiguous["candidates"]} == {priya_1, priya_2}
    assert {u["agent_id"] for u in report["unmatched"]} == {"agent-104", "agent-106"}
    assert report["users"] == 5  # the inactive user was not even returned

    agents = (await admin.get("/api/agents", params={"tenant": TENANT})).json()["items"]
    mapped = {a["agent_id"]: a["crm_user_id"] for a in agents}
    assert mapped == {
        "agent-101": olivia,
        "agent-102": james,
        "agent-103": None,
        "agent-104": None,
        "agent-105": aisha[:15],
        "agent-106": None,
    }
    query = [r for r in fake.api_requests() if r.query.get("q") == USERS_SOQL]
    assert len(query) == 1 and query[0].status == 200

    again = (await admin.post("/api/salesforce/match-users", params={"tenant": TENANT})).json()
    assert {m["by"] for m in again["matched"]} == {"existing"}
    assert not any(m["changed"] for m in again["matched"])


async def test_disconnect_forgets_the_org_and_revokes_its_token(
    system: DemoSystem, fake: FakeSalesforce, admin: httpx.AsyncClient
) -> None:
    await connect(admin)
    (refresh_token,) = issued_refresh_tokens(fake)
    assert (await admin.post("/api/salesforce/match-users", params={"tenant": TENANT})).is_success
    gone = await admin.delete("/api/salesforce/connection", params={"tenant": TENANT})
    assert gone.status_code == 204
    settings = await tenant_settings(system)
    assert "salesforce" not in settings and "salesforce_connection" not in settings
    (revoke,) = [r for r in fake.requests() if r.path == "/services/oauth2/revoke"]
    assert revoke.method == "POST" and revoke.body == {"token": refresh_token}
    status = (await admin.get("/api/salesforce/status", params={"tenant": TENANT})).json()
    assert status["connected"] is False and status["api_usage"] is None
    refused = await admin.post("/api/salesforce/match-users", params={"tenant": TENANT})
    assert refused.status_code == 502 and refused.json()["error_id"] == "crm-auth-failed"


async def test_only_admins_of_the_tenant_connect(
    system: DemoSystem, admin: httpx.AsyncClient
) -> None:
    agent = {"Authorization": f"Bearer {system.tokens['101']}"}
    for path in ("/api/salesforce/connect", "/api/salesforce/status"):
        response = await admin.get(path, params={"tenant": TENANT}, headers=agent)
        assert response.status_code == 403, path
    other = await system.services.agents.issue_token(TenantId("another"), "admin")
    response = await admin.get(
        "/api/salesforce/connect",
        params={"tenant": TENANT},
        headers={"Authorization": f"Bearer {other}"},
    )
    assert response.status_code == 403
    assert (await admin.get("/api/salesforce/connect")).status_code == 400  # which tenant?


async def test_an_integration_user_configured_by_file(tmp_path: Path, fake: FakeSalesforce) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    key_file = tmp_path / "integration.pem"
    key_file.write_bytes(pem)
    fake.add_jwt_user(
        "integration@example.com",
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ),
    )
    olivia = _user(fake, "Olivia Bennett", "olivia.bennett@harbourside.example")
    config = {"username": "integration@example.com", "private_key_file": str(key_file)}
    async with stack(tmp_path, fake, **config) as system:
        headers = {"Authorization": f"Bearer {system.services.admin_token}"}
        async with httpx.AsyncClient(base_url=system.http.url, headers=headers) as admin:
            params = {"tenant": TENANT}
            status = (await admin.get("/api/salesforce/status", params=params)).json()
            assert (status["connected"], status["flow"], status["source"]) == (
                True,
                "jwt",
                "config",
            )
            assert status["user"]["username"] == "integration@example.com"
            report = (await admin.post("/api/salesforce/match-users", params=params)).json()
    assert [(m["agent_id"], m["crm_user_id"]) for m in report["matched"]] == [("agent-101", olivia)]
    (token_request,) = [r for r in fake.requests() if r.path == "/services/oauth2/token"]
    assert token_request.body["grant_type"] == "urn:ietf:params:oauth:grant-type:jwt-bearer"


async def test_without_salesforce_as_the_crm_the_panel_has_nothing_to_show(
    sqlite_system: DemoSystem,
) -> None:
    headers = {"Authorization": f"Bearer {sqlite_system.services.admin_token}"}
    async with httpx.AsyncClient(base_url=sqlite_system.http.url, headers=headers) as admin:
        params = {"tenant": TENANT}
        status = await admin.get("/api/salesforce/status", params=params)
        assert status.json() == {"tenant_id": TENANT, "enabled": False, "connected": False}
        refused = await admin.get("/api/salesforce/connect", params=params)
        assert refused.status_code == 404 and "crm.provider" in refused.json()["message"]


async def test_admins_download_the_call_center_definition(tmp_path: Path) -> None:
    from ctibridge.config import load
    from ctibridge.launcher import running_demo

    settings = load(
        None,
        {},
        {
            "data_dir": str(tmp_path / "data"),
            "web": {"port": 0, "public_url": "https://cti.example.net"},
            "crm": {"provider": "salesforce"},
            "salesforce": {"client_id": "3MVG-demo"},
        },
    )
    async with running_demo(settings, traffic=False) as demo:
        tenant = demo.account.account_id
        async with httpx.AsyncClient(base_url=demo.http.url, timeout=10) as http:
            admin = {"authorization": f"Bearer {demo.services.admin_token}"}
            reply = await http.get(
                "/api/salesforce/callcenter.xml", params={"tenant": tenant}, headers=admin
            )
            assert reply.status_code == 200, reply.text
            assert reply.headers["content-type"].startswith("application/xml")
            assert "https://cti.example.net/softphone" in reply.text
            assert "3MVG-demo" not in reply.text and demo.services.admin_token not in reply.text
            agent = {"authorization": f"Bearer {demo.tokens['101']}"}
            refused = await http.get(
                "/api/salesforce/callcenter.xml", params={"tenant": tenant}, headers=agent
            )
            assert refused.status_code == 403
