"""Salesforce OAuth 2.0: the web-server flow with PKCE, refresh, the JWT bearer flow, and
``auth_flow``, the generator that signs API requests and renews the session once on 401.

Everything here builds requests and reads responses; nothing sends. The generator is
driven by :class:`ctibridge.crm.salesforce.client.SalesforceClient` (and by tests, with no
network at all), the way httpx drives ``Auth.auth_flow``.

Always the ``instance_url`` of the latest token is the base of API calls: requests reach
the generator with a placeholder host and are bound to the session's instance there.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import time
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import urlencode

import httpx
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from ctibridge.crm.salesforce.errors import error_for, map_crm_errors, parse_errors
from ctibridge.errors import CrmAuthError, CrmUnavailable

__all__ = [
    "JWT_BEARER",
    "PLACEHOLDER_BASE",
    "TOKEN_PATH",
    "TOKEN_REQUEST",
    "Grant",
    "JwtGrant",
    "Pkce",
    "RefreshGrant",
    "SalesforceAuth",
    "Session",
    "Token",
    "authorize_url",
    "code_request",
    "exchange_code",
    "jwt_assertion",
    "load_private_key",
    "new_pkce",
    "parse_token",
]

TOKEN_PATH = "/services/oauth2/token"
AUTHORIZE_PATH = "/services/oauth2/authorize"
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
TOKEN_REQUEST = "ctibridge.salesforce.session_version"
"""Extension key marking a token request; its value is the session version it renews."""
PLACEHOLDER_BASE = "https://instance.invalid"
"""Host of API requests before :meth:`SalesforceAuth.auth_flow` binds them to the org."""
JWT_LIFETIME = 180


@dataclass(frozen=True, slots=True)
class Token:
    """What the token endpoint returned. Secrets never appear in the repr."""

    access_token: str = field(repr=False)
    instance_url: str
    refresh_token: str | None = field(default=None, repr=False)
    identity_url: str | None = None
    issued_at: float | None = None


class Session:
    """The live token of one org connection, shared by all its requests.

    Mutable on purpose: it is the one place a renewal lands. ``version`` grows with every
    renewal, so a request can tell whether someone renewed while it waited.
    """

    def __init__(self, token: Token | None = None, *, refresh_token: str | None = None) -> None:
        self.token = token
        self.refresh_token = refresh_token or (token.refresh_token if token else None)
        self.version = 0

    def __repr__(self) -> str:
        return f"Session(version={self.version}, instance={self.instance_url!r})"

    @property
    def instance_url(self) -> str | None:
        return self.token.instance_url if self.token else None

    def renewed(self, token: Token) -> None:
        self.token = token
        if token.refresh_token:
            self.refresh_token = token.refresh_token
        self.version += 1


# --- web-server flow with PKCE --------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Pkce:
    verifier: str = field(repr=False)
    challenge: str
    state: str


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def new_pkce() -> Pkce:
    """A fresh code verifier (RFC 7636: 43 to 128 unreserved characters), its S256 challenge
    and an anti-CSRF state. Keep the verifier and state server-side until the callback."""
    verifier = secrets.token_urlsafe(64)
    challenge = _b64url(hashlib.sha256(verifier.encode("ascii")).digest())
    return Pkce(verifier, challenge, secrets.token_urlsafe(24))


def authorize_url(
    login_url: str,
    client_id: str,
    redirect_uri: str,
    pkce: Pkce,
    *,
    scope: str = "api refresh_token",
) -> str:
    """Where to send the admin's browser to connect the org (``refresh_token`` in the
    scope asks for a refresh token)."""
    query = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": redirect_uri,
        "code_challenge": pkce.challenge,
        "code_challenge_method": "S256",
        "state": pkce.state,
        "scope": scope,
    }
    return f"{login_url.rstrip('/')}{AUTHORIZE_PATH}?{urlencode(query)}"


def _token_request(login_url: str, form: dict[str, str]) -> httpx.Request:
    return httpx.Request(
        "POST",
        f"{login_url.rstrip('/')}{TOKEN_PATH}",
        data={k: v for k, v in form.items() if v},
        headers={"Accept": "application/json"},
    )


def code_request(
    login_url: str,
    client_id: str,
    redirect_uri: str,
    code: str,
    verifier: str,
    *,
    client_secret: str = "",
) -> httpx.Request:
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "client_id": client_id,
        "client_secret": client_secret,
        "redirect_uri": redirect_uri,
        "code_verifier": verifier,
    }
    return _token_request(login_url, form)


def parse_token(response: httpx.Response, previous: Token | None = None) -> Token:
    """The token in a token-endpoint answer. An answer without a refresh token keeps the
    previous one (rotation is off, or the JWT flow, which never issues one)."""
    if response.status_code != 200:
        raise _token_error(response)
    with map_crm_errors("the Salesforce token endpoint"):
        body: dict[str, Any] = response.json()
    try:
        access, instance = str(body["access_token"]), str(body["instance_url"])
    except (KeyError, TypeError) as exc:
        raise CrmAuthError("the Salesforce token answer has no access token") from exc
    issued = str(body.get("issued_at") or "")
    return Token(
        access_token=access,
        instance_url=instance.rstrip("/"),
        refresh_token=body.get("refresh_token") or (previous.refresh_token if previous else None),
        identity_url=body.get("id"),
        issued_at=int(issued) / 1000 if issued.isdigit() else None,
    )


def _token_error(response: httpx.Response) -> CrmAuthError | CrmUnavailable:
    try:
        body: Any = response.json()
    except ValueError:
        body = None
    if response.status_code in (400, 401, 403):
        items = parse_errors(body)
        reason = "; ".join(f"{i.error_code}: {i.message}" for i in items) or "refused"
        return CrmAuthError(
            f"Salesforce refused the token request ({reason})",
            details={"status": response.status_code, "errors": [i.as_dict() for i in items]},
        )
    error = error_for(response.status_code, body, response.headers)
    if isinstance(error, CrmUnavailable):
        return error
    return CrmAuthError(error.message, details=error.details)


async def exchange_code(
    http: httpx.AsyncClient,
    login_url: str,
    client_id: str,
    redirect_uri: str,
    code: str,
    verifier: str,
    *,
    client_secret: str = "",
) -> Token:
    """The callback step of the web-server flow: the authorisation code (and the PKCE
    verifier) for a token whose refresh token the caller stores, encrypted."""
    request = code_request(
        login_url, client_id, redirect_uri, code, verifier, client_secret=client_secret
    )
    with map_crm_errors("the Salesforce token endpoint"):
        response = await http.send(request)
    return parse_token(response)


# --- grants: how a session is (re)newed -----------------------------------------------------


class Grant(Protocol):
    def request(self, session: Session) -> httpx.Request:
        """The token request that renews ``session``, built from its current state."""


@dataclass(frozen=True, slots=True)
class RefreshGrant:
    """The refresh-token flow (the token of a web-server login, possibly rotated since)."""

    login_url: str
    client_id: str
    client_secret: str = field(default="", repr=False)

    def request(self, session: Session) -> httpx.Request:
        if not session.refresh_token:
            raise CrmAuthError("Salesforce is not connected: no refresh token stored")
        form = {
            "grant_type": "refresh_token",
            "refresh_token": session.refresh_token,
            "client_id": self.client_id,
            "client_secret": self.client_secret,
        }
        return _token_request(self.login_url, form)


def load_private_key(pem: bytes) -> rsa.RSAPrivateKey:
    key = serialization.load_pem_private_key(pem, password=None)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise CrmAuthError("the JWT signing key must be an RSA private key")
    return key


def jwt_assertion(
    client_id: str,
    username: str,
    audience: str,
    key: rsa.RSAPrivateKey,
    *,
    now: float,
    lifetime: int = JWT_LIFETIME,
) -> str:
    """An RS256-signed JWT: ``iss`` the app's client id, ``sub`` the user, ``aud`` the
    login host, ``exp`` a few minutes ahead."""
    header = _b64url(json.dumps({"alg": "RS256"}, separators=(",", ":")).encode())
    claims = {"iss": client_id, "sub": username, "aud": audience, "exp": int(now) + lifetime}
    payload = _b64url(json.dumps(claims, separators=(",", ":")).encode())
    signing_input = f"{header}.{payload}".encode("ascii")
    signature = key.sign(signing_input, padding.PKCS1v15(), hashes.SHA256())
    return f"{header}.{payload}.{_b64url(signature)}"


def jwt_audience(login_url: str) -> str:
    """Salesforce wants ``login`` or ``test`` here, not a My Domain; anything else (an
    Experience Cloud site, a test server) is its own audience."""
    host = httpx.URL(login_url).host
    if host == "test.salesforce.com" or host.endswith(".sandbox.my.salesforce.com"):
        return "https://test.salesforce.com"
    if host.endswith(".salesforce.com"):
        return "https://login.salesforce.com"
    return login_url.rstrip("/")


@dataclass(frozen=True, slots=True)
class JwtGrant:
    """The JWT bearer flow for an integration user: a new signed assertion each time (no
    refresh token is ever issued)."""

    login_url: str
    client_id: str
    username: str
    key: rsa.RSAPrivateKey = field(repr=False)
    clock: Callable[[], float] = time.time

    def request(self, session: Session) -> httpx.Request:
        assertion = jwt_assertion(
            self.client_id,
            self.username,
            jwt_audience(self.login_url),
            self.key,
            now=self.clock(),
        )
        return _token_request(self.login_url, {"grant_type": JWT_BEARER, "assertion": assertion})


# --- the generator --------------------------------------------------------------------------

Flow = Generator[httpx.Request, "httpx.Response | None", httpx.Response]


class SalesforceAuth:
    """Signs API requests with the session's token; on a 401 ``INVALID_SESSION_ID`` renews
    the session through its grant and retries once. A second 401 is returned as is (the
    client turns it into :class:`CrmAuthError`).

    Token requests carry ``extensions[TOKEN_REQUEST]`` = the session version they renew.
    The driver answers ``None`` instead of a response when the session was renewed by
    another request meanwhile; the flow then uses that token (so a rotating refresh token
    is never spent twice).
    """

    def __init__(self, session: Session, grant: Grant) -> None:
        self.session = session
        self.grant = grant

    def auth_flow(self, request: httpx.Request) -> Flow:
        if self.session.token is None:
            yield from self._renew(self.session.version)
        version = self.session.version
        response = yield self._bind(request)
        if response is None:
            raise CrmAuthError("no answer to an API request")
        if not _session_expired(response):
            return response
        yield from self._renew(version)
        retried = yield self._bind(request)
        if retried is None:
            raise CrmAuthError("no answer to an API request")
        return retried

    def _renew(self, version: int) -> Generator[httpx.Request, httpx.Response | None, None]:
        if self.session.version != version:
            return
        token_request = self.grant.request(self.session)
        token_request.extensions = {**token_request.extensions, TOKEN_REQUEST: version}
        reply = yield token_request
        if reply is None:
            if self.session.token is None:
                raise CrmAuthError("Salesforce session could not be established")
            return
        self.session.renewed(parse_token(reply, self.session.token))

    def _bind(self, request: httpx.Request) -> httpx.Request:
        token = self.session.token
        if token is None:
            raise CrmAuthError("Salesforce session could not be established")
        base = httpx.URL(token.instance_url)
        url = request.url.copy_with(scheme=base.scheme, host=base.host, port=base.port)
        headers = [
            (k, v)
            for k, v in request.headers.multi_items()
            if k.lower() not in ("host", "authorization", "content-length")
        ]
        headers.append(("Authorization", f"Bearer {token.access_token}"))
        return httpx.Request(
            request.method,
            url,
            headers=headers,
            content=request.content,
            extensions=request.extensions,
        )


def _session_expired(response: httpx.Response) -> bool:
    if response.status_code != 401:
        return False
    try:
        codes = {item.error_code for item in parse_errors(response.json())}
    except ValueError:
        return True
    return not codes or "INVALID_SESSION_ID" in codes
