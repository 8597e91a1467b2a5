"""Sign-in, renewal and failures over real HTTP against the fake Salesforce."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

import ctibridge.crm.salesforce as package
from ctibridge.config import CallsSettings
from ctibridge.crm.base import CrmAdapter
from ctibridge.crm.salesforce import (
    SalesforceAdapter,
    SalesforceOrg,
    StaticOrgs,
    authorize_url,
    new_pkce,
)
from ctibridge.crm.salesforce.auth import RefreshGrant, SalesforceAuth, Session, exchange_code
from ctibridge.crm.salesforce.client import SalesforceClient
from ctibridge.errors import CrmAuthError, CrmRejected, CrmUnavailable
from tests.fakes.fake_salesforce import FakeSalesforce
from tests.unit.crm.salesforce.conftest import TENANT, make_log, org_for

NUMBER = "+441632960123"
EXPIRED = [{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}]


async def test_web_server_flow_with_pkce(fake: FakeSalesforce) -> None:
    pkce = new_pkce()
    url = authorize_url(fake.login_url, fake.CLIENT_ID, fake.REDIRECT_URI, pkce)
    async with httpx.AsyncClient() as http:
        consent = await http.get(url)  # the admin's browser; the fake approves at once
        assert consent.status_code == 302
        callback = parse_qs(urlsplit(consent.headers["Location"]).query)
        assert callback["state"] == [pkce.state]
        code = callback["code"][0]
        token = await exchange_code(
            http, fake.login_url, fake.CLIENT_ID, fake.REDIRECT_URI, code, pkce.verifier
        )
    assert token.instance_url == fake.instance_url != fake.login_url
    assert token.refresh_token in fake.refresh_tokens
    assert token.identity_url and token.identity_url.endswith(fake.USER_ID)


async def test_code_exchange_checks_the_verifier(fake: FakeSalesforce) -> None:
    pkce = new_pkce()
    async with httpx.AsyncClient() as http:
        consent = await http.get(
            authorize_url(fake.login_url, fake.CLIENT_ID, fake.REDIRECT_URI, pkce)
        )
        code = parse_qs(urlsplit(consent.headers["Location"]).query)["code"][0]
        with pytest.raises(CrmAuthError, match="invalid code verifier"):
            await exchange_code(
                http, fake.login_url, fake.CLIENT_ID, fake.REDIRECT_URI, code, new_pkce().verifier
            )


async def test_expired_session_is_renewed_once_then_the_call_succeeds(
    fake: FakeSalesforce, adapter: SalesforceAdapter
) -> None:
    await adapter.lookup_by_number(TENANT, NUMBER)
    fake.expire_sessions()
    fake.add_record("Contact", {"LastName": "Lovelace", "Phone": NUMBER})
    found = await adapter.lookup_by_number(TENANT, NUMBER)
    assert [r.name for r in found] == ["Lovelace"]
    trail = [(r.server, r.path.rsplit("/", 1)[-1], r.status) for r in fake.requests()]
    assert trail == [
        ("login", "token", 200),
        ("instance", "search", 200),
        ("instance", "search", 401),
        ("login", "token", 200),
        ("instance", "search", 200),
    ]


async def test_a_second_401_is_an_auth_error(
    fake: FakeSalesforce, adapter: SalesforceAdapter
) -> None:
    await adapter.lookup_by_number(TENANT, NUMBER)
    fake.expire_sessions()
    fake.fail_next(401, EXPIRED)
    with pytest.raises(CrmAuthError, match="Session expired or invalid"):
        await adapter.lookup_by_number(TENANT, NUMBER)
    assert sum(r.path.endswith("/token") for r in fake.requests()) == 2


async def test_a_revoked_refresh_token_is_an_auth_error(
    fake: FakeSalesforce, adapter: SalesforceAdapter
) -> None:
    fake.refresh_tokens.clear()
    with pytest.raises(CrmAuthError, match="invalid_grant"):
        await adapter.lookup_by_number(TENANT, NUMBER)


async def test_concurrent_expiries_spend_one_rotating_refresh_token(fake: FakeSalesforce) -> None:
    fake.rotate_refresh_tokens = True
    orgs = StaticOrgs({TENANT: org_for(fake)})
    first = orgs.orgs[TENANT].refresh_token
    crm = SalesforceAdapter(orgs=orgs, calls=CallsSettings(default_region="GB"))
    try:
        await crm.lookup_by_number(TENANT, NUMBER)
        fake.expire_sessions()
        results = await asyncio.gather(*(crm.lookup_by_number(TENANT, NUMBER) for _ in range(8)))
    finally:
        await crm.close()
    assert results == [[]] * 8
    assert sum(r.path.endswith("/token") for r in fake.requests()) == 2
    rotated = orgs.orgs[TENANT].refresh_token
    assert rotated != first and fake.refresh_tokens[rotated]["active"]  # stored for next time


async def test_request_limit_is_unavailable_with_retry_hint(
    fake: FakeSalesforce, adapter: SalesforceAdapter
) -> None:
    fake.exhaust_limits(1)
    with pytest.raises(CrmUnavailable, match="TotalRequests Limit exceeded") as caught:
        await adapter.lookup_by_number(TENANT, NUMBER)
    assert caught.value.details["retry_after"] == 3600.0
    assert await adapter.lookup_by_number(TENANT, NUMBER) == []


async def test_salesforce_down_is_unavailable(
    fake: FakeSalesforce, adapter: SalesforceAdapter
) -> None:
    fake.set_down(True)
    with pytest.raises(CrmUnavailable, match="Service temporarily unavailable"):
        await adapter.lookup_by_number(TENANT, NUMBER)
    fake.set_down(False)
    assert await adapter.lookup_by_number(TENANT, NUMBER) == []


async def test_connection_refused_is_unavailable(fake: FakeSalesforce) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{sock.getsockname()[1]}"
    crm = SalesforceAdapter(orgs=StaticOrgs({TENANT: org_for(fake, login_url=dead)}))
    try:
        with pytest.raises(CrmUnavailable, match="cannot reach Salesforce"):
            await crm.lookup_by_number(TENANT, NUMBER)
    finally:
        await crm.close()


async def test_validation_error_keeps_salesforce_message_and_fields(
    fake: FakeSalesforce, adapter: SalesforceAdapter
) -> None:
    message = "Phone: use the international format"
    fake.fail_next(
        400,
        [
            {
                "message": message,
                "errorCode": "FIELD_CUSTOM_VALIDATION_EXCEPTION",
                "fields": ["Phone"],
            }
        ],
    )
    with pytest.raises(CrmRejected) as caught:
        await adapter.create_record(TENANT, "Lead", {"Phone": "555"})
    assert caught.value.message == message
    assert caught.value.details["fields"] == ["Phone"]
    with pytest.raises(CrmRejected, match="id value of incorrect type") as bad_ref:
        await adapter.create_record(TENANT, "Contact", {"AccountId": "001000000000000AAA"})
    assert bad_ref.value.details["error_code"] == "MALFORMED_ID"
    assert bad_ref.value.details["fields"] == ["AccountId"]


async def test_unknown_tenant_is_an_auth_error(adapter: SalesforceAdapter) -> None:
    with pytest.raises(CrmAuthError, match="no Salesforce connection"):
        await adapter.lookup_by_number("nobody", NUMBER)


async def test_jwt_bearer_flow_as_an_integration_user(fake: FakeSalesforce, tmp_path: Path) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    (tmp_path / "jwt.pem").write_bytes(pem)
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    fake.add_jwt_user("int@example.com", public)
    org = org_for(
        fake,
        refresh_token="",
        username="int@example.com",
        private_key_file=str(tmp_path / "jwt.pem"),
    )
    crm = SalesforceAdapter(orgs=StaticOrgs({TENANT: org}))
    try:
        fake.add_record("Account", {"Name": "Acme", "Phone": NUMBER})
        assert [r.name for r in await crm.lookup_by_number(TENANT, NUMBER)] == ["Acme"]
        fake.expire_sessions()  # no refresh token: a new assertion instead
        assert len(await crm.lookup_by_number(TENANT, NUMBER)) == 1
    finally:
        await crm.close()
    grants = [r.body["grant_type"] for r in fake.requests() if r.path.endswith("/token")]
    assert grants == ["urn:ietf:params:oauth:grant-type:jwt-bearer"] * 2


async def test_missing_jwt_key_is_an_auth_error(fake: FakeSalesforce, tmp_path: Path) -> None:
    org = org_for(fake, username="int@example.com", private_key_file=str(tmp_path / "none.pem"))
    crm = SalesforceAdapter(orgs=StaticOrgs({TENANT: org}))
    with pytest.raises(CrmAuthError, match="cannot use the JWT key"):
        await crm.lookup_by_number(TENANT, NUMBER)
    await crm.close()


async def test_query_follows_next_records_url_and_usage_is_read(fake: FakeSalesforce) -> None:
    fake.query_page_size = 2
    for n in range(5):
        fake.add_record("Lead", {"LastName": f"L{n}", "Company": "Acme"})
    session = Session(refresh_token=fake.grant_refresh_token())
    client = SalesforceClient(SalesforceAuth(session, RefreshGrant(fake.login_url, fake.CLIENT_ID)))
    try:
        rows = await client.query("SELECT Id, Name FROM Lead WHERE Company = 'Acme'")
        assert [r["Name"] for r in rows] == ["L0", "L1", "L2", "L3", "L4"]
        assert client.api_requests == 3
        assert client.usage is not None and client.usage.used == fake.api_used == 3
        assert await client.retrieve("Lead", "00Q000000000000AAA", ["Id"]) is None
    finally:
        await client.aclose()


async def test_usage_is_reported_and_a_forgotten_tenant_signs_in_again(
    fake: FakeSalesforce, adapter: SalesforceAdapter
) -> None:
    assert adapter.api_usage(TENANT) is None
    await adapter.lookup_by_number(TENANT, NUMBER)
    usage = adapter.api_usage(TENANT)
    assert usage is not None and (usage.used, usage.max) == (1, fake.API_MAX)
    await adapter.forget(TENANT)
    assert adapter.api_usage(TENANT) is None
    await adapter.lookup_by_number(TENANT, NUMBER)
    assert sum(r.path.endswith("/token") for r in fake.requests()) == 2


async def test_broken_tenant_settings_are_an_auth_error_for_that_tenant() -> None:
    class Broken(StaticOrgs):
        async def org(self, tenant_id: str) -> SalesforceOrg | None:
            return SalesforceOrg(client_id="")

    crm = SalesforceAdapter(orgs=Broken())
    (result,) = await crm.log_calls([make_log(1)])
    assert isinstance(result, CrmAuthError) and "client_id" in result.message


def test_is_a_crm_adapter() -> None:
    crm: CrmAdapter = SalesforceAdapter(orgs=StaticOrgs())
    assert crm.name == "salesforce"


def test_public_surface() -> None:
    assert sorted(package.__all__) == sorted(set(package.__all__))
    assert all(hasattr(package, name) for name in package.__all__)
