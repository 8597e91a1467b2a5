"""The login host of the fake Salesforce: ``/services/oauth2/authorize`` (approves at once
and redirects with a code), ``/services/oauth2/token`` for the authorization-code grant with
PKCE verification, refresh tokens (optionally rotated; reusing a rotated one revokes the
family) and the JWT bearer grant (RS256 checked against registered public keys).
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import time
from typing import Any
from urllib.parse import urlencode

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from tests.fakes.fake_salesforce_store import USER_ID, Reply

__all__ = ["FakeLogin"]


class FakeLogin:
    """OAuth state and endpoints; :class:`FakeSalesforce` inherits them."""

    CLIENT_ID = "3MVG9fake.ctibridge.client"
    CLIENT_SECRET = "fake-client-secret"
    REDIRECT_URI = "https://ctibridge.example.com/salesforce/callback"
    USER_ID = USER_ID
    ORG_ID = "00DFk0000000001AAA"

    rotate_refresh_tokens: bool

    @property
    def login_url(self) -> str:
        raise NotImplementedError

    @property
    def instance_url(self) -> str:
        raise NotImplementedError

    def reset_login(self) -> None:
        self.jwt_users: dict[str, rsa.RSAPublicKey] = {}
        self.access_tokens: dict[str, str] = {}
        self.refresh_tokens: dict[str, dict[str, Any]] = {}
        self.codes: dict[str, dict[str, str]] = {}

    def add_jwt_user(self, username: str, public_pem: bytes) -> None:
        key = serialization.load_pem_public_key(public_pem)
        assert isinstance(key, rsa.RSAPublicKey)
        self.jwt_users[username] = key

    def grant_refresh_token(self, user_id: str | None = None) -> str:
        """A refresh token as if an admin had connected the org (skips the browser)."""
        token = "5Aep" + secrets.token_urlsafe(24)
        self.refresh_tokens[token] = {
            "user": user_id or self.USER_ID,
            "family": token,
            "active": True,
        }
        return token

    def _oauth(self, method: str, path: str, query: dict[str, str], body: Any) -> Reply:
        if method == "GET" and path == "/services/oauth2/authorize":
            return self._authorize(query)
        if method == "POST" and path == "/services/oauth2/token" and isinstance(body, dict):
            grant = body.get("grant_type", "")
            handler = {
                "authorization_code": self._code_grant,
                "refresh_token": self._refresh_grant,
                "urn:ietf:params:oauth:grant-type:jwt-bearer": self._jwt_grant,
            }.get(grant)
            if handler is None:
                return _oauth_error("unsupported_grant_type", "grant type not supported")
            return handler(body)
        return Reply(404, {"error": "not_found", "error_description": path})

    def _authorize(self, query: dict[str, str]) -> Reply:
        if query.get("client_id") != self.CLIENT_ID:
            return _oauth_error("invalid_client_id", "client identifier invalid")
        if query.get("redirect_uri") != self.REDIRECT_URI:
            return _oauth_error("redirect_uri_mismatch", "redirect_uri must match configuration")
        if (
            query.get("response_type") != "code"
            or query.get("code_challenge_method") != "S256"
            or not query.get("code_challenge")
        ):
            return _oauth_error("invalid_request", "PKCE with S256 and response_type=code required")
        code = "aPrx" + secrets.token_urlsafe(16)
        self.codes[code] = {
            "challenge": query["code_challenge"],
            "redirect_uri": query["redirect_uri"],
            "scope": query.get("scope", ""),
        }
        location = (
            f"{query['redirect_uri']}?{urlencode({'code': code, 'state': query.get('state', '')})}"
        )
        return Reply(302, None, {"Location": location})

    def _client_ok(self, form: dict[str, str]) -> bool:
        secret = form.get("client_secret")
        return form.get("client_id") == self.CLIENT_ID and secret in (None, self.CLIENT_SECRET)

    def _code_grant(self, form: dict[str, str]) -> Reply:
        if not self._client_ok(form):
            return _oauth_error("invalid_client", "invalid client credentials")
        issued = self.codes.pop(form.get("code", ""), None)
        if issued is None:
            return _oauth_error("invalid_grant", "invalid authorization code")
        verifier = form.get("code_verifier", "")
        challenge = (
            base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
            .decode()
            .rstrip("=")
        )
        if challenge != issued["challenge"]:
            return _oauth_error("invalid_grant", "invalid code verifier")
        if form.get("redirect_uri") != issued["redirect_uri"]:
            return _oauth_error("invalid_grant", "redirect_uri mismatch")
        refresh = self.grant_refresh_token() if "refresh_token" in issued["scope"].split() else None
        return self._token(self.USER_ID, refresh)

    def _refresh_grant(self, form: dict[str, str]) -> Reply:
        if not self._client_ok(form):
            return _oauth_error("invalid_client", "invalid client credentials")
        entry = self.refresh_tokens.get(form.get("refresh_token", ""))
        if entry is None or not entry["active"]:
            if entry is not None:  # reuse of a rotated token revokes the whole family
                for other in self.refresh_tokens.values():
                    if other["family"] == entry["family"]:
                        other["active"] = False
            return _oauth_error("invalid_grant", "expired access/refresh token")
        new_refresh = None
        if self.rotate_refresh_tokens:
            entry["active"] = False
            new_refresh = "5Aep" + secrets.token_urlsafe(24)
            self.refresh_tokens[new_refresh] = {
                "user": entry["user"],
                "family": entry["family"],
                "active": True,
            }
        return self._token(entry["user"], new_refresh)

    def _jwt_grant(self, form: dict[str, str]) -> Reply:
        try:
            header_b64, claims_b64, signature_b64 = form.get("assertion", "").split(".")
            claims = json.loads(_unb64(claims_b64))
            header = json.loads(_unb64(header_b64))
        except ValueError:
            return _oauth_error("invalid_grant", "invalid assertion")
        key = self.jwt_users.get(str(claims.get("sub")))
        if header.get("alg") != "RS256" or key is None:
            return _oauth_error("invalid_grant", "user hasn't approved this consumer")
        try:
            key.verify(
                _unb64(signature_b64),
                f"{header_b64}.{claims_b64}".encode(),
                padding.PKCS1v15(),
                hashes.SHA256(),
            )
        except InvalidSignature:
            return _oauth_error("invalid_grant", "invalid assertion")
        if claims.get("iss") != self.CLIENT_ID or claims.get("aud") != self.login_url:
            return _oauth_error("invalid_grant", "audience or issuer invalid")
        if not time.time() < float(claims.get("exp", 0)) <= time.time() + 300:
            return _oauth_error("invalid_grant", "expired authorization code")
        return self._token(self.USER_ID, None)

    def _token(self, user_id: str, refresh_token: str | None) -> Reply:
        access = f"{self.ORG_ID}!" + secrets.token_urlsafe(32)
        self.access_tokens[access] = user_id
        body = {
            "access_token": access,
            "instance_url": self.instance_url,
            "id": f"{self.login_url}/id/{self.ORG_ID}/{user_id}",
            "token_type": "Bearer",
            "issued_at": str(int(time.time() * 1000)),
            "signature": base64.b64encode(secrets.token_bytes(32)).decode(),
            "scope": "api refresh_token",
        }
        if refresh_token:
            body["refresh_token"] = refresh_token
        return Reply(200, body)


def _oauth_error(error: str, description: str) -> Reply:
    return Reply(400, {"error": error, "error_description": description})


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
