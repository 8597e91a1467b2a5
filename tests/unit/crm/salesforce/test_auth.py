"""OAuth pieces and the ``auth_flow`` generator, driven by hand: no network at all."""

from __future__ import annotations

import base64
import hashlib
import json
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from ctibridge.crm.salesforce.auth import (
    PLACEHOLDER_BASE,
    TOKEN_REQUEST,
    JwtGrant,
    RefreshGrant,
    SalesforceAuth,
    Session,
    Token,
    authorize_url,
    jwt_assertion,
    jwt_audience,
    new_pkce,
    parse_token,
)
from ctibridge.errors import CrmAuthError, CrmUnavailable

LOGIN = "https://login.example.test"
INSTANCE = "https://acme.my.example.test"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _form(request: httpx.Request) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(request.content.decode()).items()}


def _token_reply(
    access: str, *, refresh: str | None = None, instance: str = INSTANCE
) -> httpx.Response:
    body = {"access_token": access, "instance_url": instance, "issued_at": "1773360000000"}
    if refresh:
        body["refresh_token"] = refresh
    return httpx.Response(200, json=body)


EXPIRED = httpx.Response(
    401, json=[{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}]
)


def _api_request() -> httpx.Request:
    return httpx.Request("GET", PLACEHOLDER_BASE + "/services/data/v62.0/search?q=x")


def _auth(token: Token | None = None, refresh: str = "r1") -> SalesforceAuth:
    return SalesforceAuth(Session(token, refresh_token=refresh), RefreshGrant(LOGIN, "cid"))


def test_pkce_challenge_is_the_s256_of_the_verifier() -> None:
    pkce = new_pkce()
    assert 43 <= len(pkce.verifier) <= 128
    assert pkce.challenge == _b64(hashlib.sha256(pkce.verifier.encode()).digest())
    assert new_pkce().verifier != pkce.verifier
    assert pkce.verifier not in repr(pkce)


def test_authorize_url_asks_for_a_code_with_pkce() -> None:
    pkce = new_pkce()
    url = authorize_url(LOGIN + "/", "cid", "https://cti.example.test/cb", pkce)
    parts = urlsplit(url)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == LOGIN + "/services/oauth2/authorize"
    assert query == {
        "response_type": "code",
        "client_id": "cid",
        "redirect_uri": "https://cti.example.test/cb",
        "code_challenge": pkce.challenge,
        "code_challenge_method": "S256",
        "state": pkce.state,
        "scope": "api refresh_token",
    }


def test_first_request_gets_a_token_then_goes_to_the_instance() -> None:
    auth = _auth()
    flow = auth.auth_flow(_api_request())
    token_request = next(flow)
    assert str(token_request.url) == LOGIN + "/services/oauth2/token"
    assert _form(token_request) == {
        "grant_type": "refresh_token",
        "refresh_token": "r1",
        "client_id": "cid",
    }
    assert token_request.extensions[TOKEN_REQUEST] == 0
    api = flow.send(_token_reply("a1"))
    assert api.url.host == "acme.my.example.test"
    assert api.url.path == "/services/data/v62.0/search"
    assert api.headers["Authorization"] == "Bearer a1"
    assert api.headers["Host"] == "acme.my.example.test"
    ok = httpx.Response(200, json={"searchRecords": []})
    with pytest.raises(StopIteration) as done:
        flow.send(ok)
    assert done.value.value is ok
    assert auth.session.version == 1


def test_a_401_renews_once_and_retries() -> None:
    auth = _auth(Token("old", INSTANCE))
    flow = auth.auth_flow(_api_request())
    assert next(flow).headers["Authorization"] == "Bearer old"
    renew = flow.send(EXPIRED)
    assert _form(renew)["grant_type"] == "refresh_token"
    retry = flow.send(_token_reply("new", refresh="r2", instance="https://moved.example.test"))
    assert retry.headers["Authorization"] == "Bearer new"
    assert retry.url.host == "moved.example.test"  # always the latest instance_url
    ok = httpx.Response(200, json={})
    with pytest.raises(StopIteration) as done:
        flow.send(ok)
    assert done.value.value is ok
    assert auth.session.refresh_token == "r2"


def test_a_second_401_is_returned_not_retried() -> None:
    flow = _auth(Token("old", INSTANCE)).auth_flow(_api_request())
    next(flow)
    flow.send(EXPIRED)
    flow.send(_token_reply("new"))
    with pytest.raises(StopIteration) as done:
        flow.send(EXPIRED)
    assert done.value.value is EXPIRED


def test_other_errors_are_not_retried() -> None:
    flow = _auth(Token("a", INSTANCE)).auth_flow(_api_request())
    next(flow)
    limited = httpx.Response(403, json=[{"message": "x", "errorCode": "REQUEST_LIMIT_EXCEEDED"}])
    with pytest.raises(StopIteration) as done:
        flow.send(limited)
    assert done.value.value is limited


def test_a_renewal_done_elsewhere_is_used_instead_of_spending_the_refresh_token() -> None:
    auth = _auth(Token("old", INSTANCE))
    flow = auth.auth_flow(_api_request())
    next(flow)
    flow.send(EXPIRED)  # the flow asks for a renewal of version 0...
    auth.session.renewed(Token("fresh", INSTANCE))  # ...another request renewed meanwhile
    retry = flow.send(None)  # the driver answers None: nothing was sent
    assert retry.headers["Authorization"] == "Bearer fresh"


def test_refused_refresh_is_an_auth_error_and_an_outage_is_unavailable() -> None:
    flow = _auth().auth_flow(_api_request())
    next(flow)
    refused = httpx.Response(
        400, json={"error": "invalid_grant", "error_description": "expired access/refresh token"}
    )
    with pytest.raises(CrmAuthError, match="invalid_grant: expired access/refresh token"):
        flow.send(refused)
    flow = _auth().auth_flow(_api_request())
    next(flow)
    with pytest.raises(CrmUnavailable):
        flow.send(
            httpx.Response(503, json=[{"message": "down", "errorCode": "SERVER_UNAVAILABLE"}])
        )


def test_no_refresh_token_means_not_connected() -> None:
    auth = SalesforceAuth(Session(), RefreshGrant(LOGIN, "cid"))
    with pytest.raises(CrmAuthError, match="not connected"):
        next(auth.auth_flow(_api_request()))


def test_parse_token_keeps_the_refresh_token_when_none_is_returned() -> None:
    previous = Token("a", INSTANCE, refresh_token="keep")
    token = parse_token(_token_reply("b", instance=INSTANCE + "/"), previous)
    assert token.refresh_token == "keep"
    assert token.instance_url == INSTANCE
    assert token.issued_at == 1_773_360_000.0
    assert "keep" not in repr(token) and "'b'" not in repr(token)
    with pytest.raises(CrmAuthError):
        parse_token(httpx.Response(200, json={"instance_url": INSTANCE}))


def test_jwt_assertion_is_rs256_signed_with_the_claims_salesforce_wants() -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    assertion = jwt_assertion(
        "cid", "int@example.com", "https://login.salesforce.com", key, now=1000
    )
    header, claims, signature = assertion.split(".")
    assert json.loads(_unb64(header)) == {"alg": "RS256"}
    assert json.loads(_unb64(claims)) == {
        "iss": "cid",
        "sub": "int@example.com",
        "aud": "https://login.salesforce.com",
        "exp": 1180,
    }
    key.public_key().verify(
        _unb64(signature), f"{header}.{claims}".encode(), padding.PKCS1v15(), hashes.SHA256()
    )


def test_jwt_grant_builds_a_fresh_assertion() -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    grant = JwtGrant(LOGIN, "cid", "int@example.com", key, clock=lambda: 2000.0)
    form = _form(grant.request(Session()))
    assert form["grant_type"] == "urn:ietf:params:oauth:grant-type:jwt-bearer"
    claims = json.loads(_unb64(form["assertion"].split(".")[1]))
    assert claims["exp"] == 2180 and claims["aud"] == LOGIN


@pytest.mark.parametrize(
    ("login", "audience"),
    [
        ("https://login.salesforce.com", "https://login.salesforce.com"),
        ("https://acme.my.salesforce.com", "https://login.salesforce.com"),
        ("https://test.salesforce.com", "https://test.salesforce.com"),
        ("https://acme--dev.sandbox.my.salesforce.com", "https://test.salesforce.com"),
        ("https://community.example.com/", "https://community.example.com"),
    ],
)
def test_jwt_audience(login: str, audience: str) -> None:
    assert jwt_audience(login) == audience
